import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { type LogLine, watchCourier } from './courier.js';
import { waitFor } from './wait.js';

/**
 * Courier's container image run with Podman (scripts/image.sh builds it), the way a pod runs it:
 * the host's network namespace (a pod's containers share one: Courier posts to the app on
 * 127.0.0.1), a read-only root filesystem with no writable /tmp, no capabilities, no privilege
 * escalation, the deployment's memory limit and heap; stopped as the kubelet stops a container:
 * SIGTERM to PID 1, SIGKILL after the grace period.
 */

const root = resolve(import.meta.dirname, '../..');
/** Podman with the project's settings (scripts/image/containers.conf), as scripts/image.sh runs it. */
const env = { ...process.env, CONTAINERS_CONF: resolve(root, 'scripts/image/containers.conf') };
/** Every container a test run starts carries it, so the global teardown can remove leftovers. */
export const RUN_LABEL = 'courier.test.run';

export async function podman(args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await promisify(execFile)('podman', args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Runs podman and answers its exit code and output, also when it fails. */
export function podmanResult(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile('podman', args, { env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** A port free on 127.0.0.1 now (the kernel's choice), for a container on the host network. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  const { port } = server.address() as { port: number };
  await new Promise((resolvePromise) => server.close(resolvePromise));
  return port;
}

export interface ContainerOptions {
  /** The value of its RUN_LABEL: the test run's, so the run's teardown finds it. */
  run: string;
  /** The deployment's limit (deploy/base: 256Mi) and half of it as heap, as NODE_OPTIONS there. */
  memory?: string;
  /** Extra `podman run` options. */
  podmanArgs?: string[];
}

export class CourierContainer {
  readonly name = `courier-test-${randomUUID().slice(0, 8)}`;
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly port: Promise<number>;
  /** When `podman run` was started (ms since the epoch). */
  startedAt = 0;
  private exited: Promise<number | null> | undefined;
  exitCode: number | null | undefined;

  constructor(
    readonly image: string,
    private readonly env: Record<string, string>,
    private readonly options: ContainerOptions,
  ) {
    this.port = freePort();
  }

  /** `podman run` in the foreground: its stdout is Courier's log, its exit code Courier's. */
  async start(): Promise<this> {
    const port = await this.port;
    const memory = this.options.memory ?? '256m';
    const heapMib = Math.floor(Number.parseInt(memory, 10) / 2);
    const env: Record<string, string> = {
      COURIER_HOST: '127.0.0.1',
      COURIER_PORT: String(port),
      NODE_OPTIONS: `--max-old-space-size=${heapMib}`,
      ...this.env,
    };
    const args = [
      'run',
      '--name',
      this.name,
      '--label',
      `${RUN_LABEL}=${this.options.run}`,
      '--network',
      'host',
      '--read-only',
      '--read-only-tmpfs=false',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--memory',
      memory,
      ...(this.options.podmanArgs ?? []),
      ...Object.entries(env).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
      this.image,
    ];
    this.startedAt = Date.now();
    const child = spawn('podman', args, {
      env: { ...process.env, CONTAINERS_CONF: resolve(root, 'scripts/image/containers.conf') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = watchCourier(child, this, this.logs);
    return this;
  }

  async url(path = ''): Promise<string> {
    return `http://127.0.0.1:${await this.port}${path}`;
  }

  /** Waits until GET `path` answers 200 and answers when, in ms after `podman run` started. */
  async until200(path: string, timeoutMs = 60_000): Promise<number> {
    const url = await this.url(path);
    await waitFor(
      `${path} to answer 200`,
      async () => {
        if (this.exitCode !== undefined) throw new Error(`the container exited (${this.exitCode}): ${this.stderr}\n${this.dump()}`);
        return (await fetch(url)).status === 200;
      },
      timeoutMs,
      50,
    );
    return Date.now() - this.startedAt;
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const response = await fetch(await this.url(path));
    return { status: response.status, text: await response.text() };
  }

  /** `podman exec` in the running container (no shell there: argv as given). */
  exec(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return podmanResult(['exec', this.name, ...argv]);
  }

  async hostPid(): Promise<number> {
    return Number((await podman(['inspect', '--format', '{{.State.Pid}}', this.name])).trim());
  }

  /** The container's memory cgroup (cgroup v2, or v1's memory controller) as a directory. */
  async memoryCgroup(): Promise<{ dir: string; v2: boolean }> {
    const lines = readFileSync(`/proc/${await this.hostPid()}/cgroup`, 'utf8')
      .trim()
      .split('\n');
    const v1 = lines.map((l) => l.split(':')).find(([, controllers]) => controllers?.split(',').includes('memory'));
    if (v1) return { dir: `/sys/fs/cgroup/memory${v1[2]}`, v2: false };
    const unified = lines.map((l) => l.split(':')).find(([id]) => id === '0');
    if (!unified) throw new Error(`no memory cgroup in ${lines.join(' | ')}`);
    return { dir: `/sys/fs/cgroup${unified[2]}`, v2: true };
  }

  /**
   * The container's memory from its cgroup, in bytes: `rss` the anonymous memory of its processes
   * (v1 memory.stat total_rss, v2 memory.stat anon), `usage` the cgroup's charge (page cache of the
   * image's files included), `peak` the highest charge since it started (v1 max_usage_in_bytes,
   * v2 memory.peak where the kernel has it).
   */
  async memory(): Promise<{ rss: number; usage: number; peak: number | undefined; limit: number }> {
    const { dir, v2 } = await this.memoryCgroup();
    const read = (file: string) => {
      try {
        return readFileSync(`${dir}/${file}`, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    const stat = new Map(
      (read('memory.stat') ?? '')
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k, Number(v)] as const),
    );
    if (v2) {
      const peak = read('memory.peak');
      return { rss: stat.get('anon') ?? 0, usage: Number(read('memory.current')), peak: peak ? Number(peak) : undefined, limit: Number(read('memory.max')) };
    }
    return {
      rss: stat.get('total_rss') ?? stat.get('rss') ?? 0,
      usage: Number(read('memory.usage_in_bytes')),
      peak: Number(read('memory.max_usage_in_bytes')),
      limit: Number(read('memory.limit_in_bytes')),
    };
  }

  /**
   * Stops it as the kubelet does: `podman stop --time GRACE` sends SIGTERM to PID 1 and SIGKILL
   * after GRACE seconds. Answers the exit code and how long the stop took.
   */
  async stop(graceSeconds = 30): Promise<{ code: number | null; ms: number }> {
    const started = Date.now();
    if (this.exitCode === undefined) await podman(['stop', '--time', String(graceSeconds), this.name], (graceSeconds + 30) * 1000);
    const code = (await this.exited) ?? null;
    return { code, ms: Date.now() - started };
  }

  /** Removes the container whatever its state. */
  async remove(): Promise<void> {
    await podmanResult(['rm', '--force', '--time', '0', this.name]);
    await this.exited;
  }

  hasLog(predicate: (line: LogLine) => boolean): boolean {
    return this.logs.some(predicate);
  }

  dump(): string {
    return this.logs.map((l) => JSON.stringify(l)).join('\n');
  }
}
