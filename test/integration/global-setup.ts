import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * Integration tests run against a real single-node Kafka broker started by the project's own
 * script (scripts/kafka.sh), and against the compiled Courier (dist/), exactly as users run it.
 * KAFKA_TEST_BOOTSTRAP points them at an already running broker instead.
 */
const root = resolve(import.meta.dirname, '../..');
// One broker per run: concurrent runs (several engineers, several worktrees) must not stop each other's.
const BROKER_NAME = `integration-${process.pid}`;

export default function setup(project: TestProject) {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  let started = false;
  let bootstrap = process.env.KAFKA_TEST_BOOTSTRAP;
  if (!bootstrap) {
    bootstrap = execFileSync('bash', ['scripts/kafka.sh', 'start', '--name', BROKER_NAME], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    started = true;
  }
  project.provide('bootstrap', bootstrap);
  return () => {
    if (started) execFileSync('bash', ['scripts/kafka.sh', 'stop', '--name', BROKER_NAME], { cwd: root, stdio: 'inherit' });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    bootstrap: string;
  }
}
