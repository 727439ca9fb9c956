import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from './wait.js';

/** Runs the compiled Courier (dist/main.js) as a real process, as users do. */

const root = resolve(import.meta.dirname, '../..');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export class CourierProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  exitCode: number | null | undefined;

  constructor(private readonly env: Record<string, string>) {}

  /** `processGroup`: Courier leads a process group of its own, for `signalGroup` (a terminal's Ctrl-C). */
  start({ processGroup = false } = {}): this {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', COURIER_LOG_LEVEL: 'debug', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: processGroup,
    });
    this.child = child;
    this.exited = watchCourier(child, this, this.logs);
    return this;
  }

  /** Resolves once Courier logged that it consumes and got its first assignment. */
  async ready(timeoutMs = 60_000): Promise<this> {
    await waitFor(
      'courier to join its group',
      () => this.exitCode !== undefined || this.logs.some((l) => l.msg === 'rebalance' && l.type === 'assign'),
      timeoutMs,
    );
    if (this.exitCode !== undefined) throw new Error(`courier exited early (${this.exitCode}): ${this.stderr}\n${this.dump()}`);
    return this;
  }

  /** Base URL of this instance's API (it listens on a free port). */
  async apiUrl(): Promise<string> {
    const line = await waitFor('courier to listen', () => this.logs.find((l) => l.msg === 'api listening'));
    return `http://127.0.0.1:${line.port as number}`;
  }

  /** GET or POST against this instance's API; answers status and JSON body. */
  async api(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${await this.apiUrl()}${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: response.status, body };
  }

  /** The processes this one started (COURIER_WORKERS > 1: its workers). */
  childPids(): number[] {
    const pid = this.child?.pid;
    if (pid === undefined) return [];
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  hasLog(predicate: (line: LogLine) => boolean): boolean {
    return this.logs.some(predicate);
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Signals Courier's whole process group, as a terminal does on Ctrl-C (needs `start({ processGroup: true })`). */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined) process.kill(-this.child.pid, signal);
  }

  /** Sends SIGTERM and waits for the exit code. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (!this.child || this.exitCode !== undefined) return this.exitCode ?? null;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code ?? null;
  }

  async kill(): Promise<void> {
    if (!this.child || this.exitCode !== undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  wait(): Promise<number | null> {
    return this.exited ?? Promise.resolve(null);
  }

  dump(): string {
    return this.logs.map((l) => JSON.stringify(l)).join('\n');
  }
}

export function courierEnv(bootstrap: string, overrides: Record<string, string>): Record<string, string> {
  return {
    KAFKA_BOOTSTRAP_SERVERS: bootstrap,
    // A single test broker: rebalances and retries should be quick.
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
    COURIER_RETRY_INITIAL_MS: '50',
    COURIER_RETRY_MAX_MS: '500',
    COURIER_COMMIT_INTERVAL_MS: '200',
    COURIER_HOST: '127.0.0.1',
    COURIER_PORT: '0',
    ...overrides,
  };
}

/**
 * Collects a Courier child's JSON log lines (a line that is not JSON is kept as its message) and
 * its stderr, and records its exit code: what CourierProcess and CourierContainer both watch.
 */
export function watchCourier(child: ChildProcess, into: { stderr: string; exitCode: number | null | undefined }, logs: LogLine[]): Promise<number | null> {
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 30, msg: line });
      }
      newline = buffered.indexOf('\n');
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    into.stderr += chunk.toString('utf8');
  });
  return new Promise((resolveExit) => {
    child.on('exit', (code) => {
      into.exitCode = code;
      resolveExit(code);
    });
  });
}
