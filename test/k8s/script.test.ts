import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { root } from '../deploy/tools.js';
import { type ControlPlane, kube } from './kube.js';

/** scripts/k8s.sh as a developer uses it: start, status, kubeconfig, stop, and its errors. */

function k8s(...args: string[]) {
  const result = spawnSync('bash', ['scripts/k8s.sh', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
  } catch {
    return false;
  }
};

describe('scripts/k8s.sh', () => {
  it('status and kubeconfig describe the running control plane', () => {
    const info = inject('k8sInfo');
    const name = basename(dirname(info));
    expect(k8s('status', '--name', name)).toMatchObject({ status: 0, stdout: info });
    const plane = JSON.parse(readFileSync(info, 'utf8')) as ControlPlane;
    const kubeconfig = k8s('kubeconfig', '--name', name);
    expect(kubeconfig).toMatchObject({ status: 0, stdout: plane.kubeconfig });
    const text = readFileSync(plane.kubeconfig, 'utf8');
    expect(text).toContain(`server: ${plane.server}`);
    expect(text).toContain(`token: ${plane.token}`);
  });

  it('start prints an info.json whose server answers; stop ends etcd and kube-apiserver; both are idempotent', async () => {
    const name = `script-test-${process.pid}`;
    const started = k8s('start', '--name', name);
    expect(started.status, started.stderr).toBe(0);
    expect(k8s('start', '--name', name)).toMatchObject({ status: 0, stdout: started.stdout });
    const plane = JSON.parse(readFileSync(started.stdout, 'utf8')) as ControlPlane;
    const client = kube(plane);
    try {
      const version = await client.ok('GET', '/version');
      expect(version.gitVersion).toBe(plane.version);
      // RBAC decides: without the token a request is system:anonymous, which may not list namespaces.
      const anonymous = kube({ ...plane, token: '' });
      const denied = await anonymous.request('GET', '/api/v1/namespaces');
      await anonymous.close();
      expect(denied.status).toBe(403);
      expect(denied.body.message).toContain('User "system:anonymous" cannot list resource "namespaces"');
    } finally {
      await client.close();
    }
    const dir = dirname(started.stdout);
    const pids = ['etcd', 'kube-apiserver'].map((what) => Number(readFileSync(`${dir}/${what}.pid`, 'utf8')));
    expect(pids.every(alive)).toBe(true);

    expect(k8s('stop', '--name', name).status).toBe(0);
    expect(pids.some(alive)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(k8s('status', '--name', name)).toMatchObject({ status: 1, stdout: '' });
    const again = k8s('stop', '--name', name);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain(`control plane '${name}' is not running`);
  });

  it('refuses what it does not understand, saying why', () => {
    const badName = k8s('start', '--name', 'no spaces');
    expect(badName.status).toBe(1);
    expect(badName.stderr).toContain("invalid --name 'no spaces'");
    const unknown = k8s('launch');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'launch'");
    expect(unknown.stderr).toContain('Usage:');
    expect(k8s('stop', '--name', 'x', '--bogus').stderr).toContain("unknown argument '--bogus'");
  });
});
