import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * The k8s tests run against a real kube-apiserver and etcd (no kubelet, no controller-manager),
 * started by scripts/k8s.sh, which builds both once from the Go module proxy into .k8s/ (9 to 20 min
 * cold on two cores; scripts/test.sh does it before the suite). `courier inject` runs from dist/,
 * as users run it. K8S_TEST_INFO names the info.json of an already running control plane instead.
 */
const root = resolve(import.meta.dirname, '../..');
// One control plane per run: concurrent runs (several worktrees) must not stop each other's.
const NAME = `k8s-tests-${process.pid}`;

export default function setup(project: TestProject) {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  let started = false;
  let info = process.env.K8S_TEST_INFO;
  if (!info) {
    info = execFileSync('bash', ['scripts/k8s.sh', 'start', '--name', NAME], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    started = true;
  }
  project.provide('k8sInfo', info);
  return () => {
    if (started) execFileSync('bash', ['scripts/k8s.sh', 'stop', '--name', NAME], { cwd: root, stdio: 'inherit' });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    k8sInfo: string;
  }
}
