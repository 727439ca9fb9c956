import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { LagReport, PauseResultBody, ReadinessReason, SeekResultBody } from '../api/schemas.js';
import type { MetricsSource, Operations } from '../api/server.js';
import { backoff } from '../delivery/retry.js';
import { mergeAssignment, mergeLag, mergePause, mergeReasons, mergeRebalances, mergeRoutes } from './merge.js';
import { type Channel, isReply, type OperationName } from './protocol.js';

/**
 * COURIER_WORKERS > 1: N worker processes, each a whole Courier in the same consumer group (Kafka's
 * group protocol spreads the partitions among them), and one API in front. The supervisor owns no
 * Kafka client: it starts the workers, restarts one that exits, and answers the API by asking each
 * worker over its IPC channel and merging the answers (workers/merge.ts). It does not touch
 * `process`: main spawns the processes and hands them over as WorkerProcess.
 */

export interface WorkerProcess {
  readonly channel: Channel;
  /** Calls back once when the process has exited. */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(signal: 'SIGTERM' | 'SIGKILL'): void;
}

export interface SupervisorOptions {
  readonly count: number;
  readonly spawn: (index: number) => WorkerProcess;
  readonly logger: Logger;
  /** The supervisor's own metrics (its process, the workers' restarts); workers' are merged in. */
  readonly registry: Registry;
  /** How long status calls wait for a worker before it counts as unresponsive. */
  readonly callTimeoutMs?: number;
  /** Restart delays: 1 s doubling to 30 s; a worker that ran a minute starts again from 1 s. */
  readonly restartInitialMs?: number;
  readonly restartMaxMs?: number;
  readonly now?: () => number;
}

/** Exits within this window that make the container unhealthy (/healthz 503): the kubelet restarts it. */
const CRASH_LOOP = { exits: 5, windowMs: 5 * 60_000 } as const;
const STABLE_AFTER_MS = 60_000;

interface Slot {
  readonly index: number;
  process: WorkerProcess | undefined;
  startedAt: number;
  /** Consecutive quick exits, for the restart delay. */
  quickExits: number;
  restartTimer: NodeJS.Timeout | undefined;
  lastExit: string | undefined;
  readonly pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout }>;
}

export class Supervisor {
  private readonly slots: Slot[];
  private readonly exits: number[] = [];
  private nextCallId = 1;
  private stopping = false;
  private readonly now: () => number;
  private readonly restarts: Counter;

  constructor(private readonly options: SupervisorOptions) {
    this.now = options.now ?? Date.now;
    this.slots = Array.from({ length: options.count }, (_, index) => ({
      index,
      process: undefined,
      startedAt: 0,
      quickExits: 0,
      restartTimer: undefined,
      lastExit: undefined,
      pending: new Map(),
    }));
    this.restarts = new Counter({
      name: 'courier_worker_restarts_total',
      help: 'Workers restarted after they exited (COURIER_WORKERS)',
      registers: [options.registry],
    });
    const slots = this.slots;
    new Gauge({
      name: 'courier_workers',
      help: 'Worker processes running (COURIER_WORKERS)',
      registers: [options.registry],
      collect() {
        this.set(slots.filter((slot) => slot.process !== undefined).length);
      },
    });
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
  }

  /** Asks every worker to stop (SIGTERM: each drains and commits) and waits for them, at most `graceMs`, then kills. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const waits = this.slots.map((slot) => {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      const child = slot.process;
      if (!child) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.onExit(() => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    });
    await Promise.all(waits);
  }

  /** The API's Operations, answered by the workers. */
  readonly operations: Operations = {
    failure: () => {
      const recent = this.exits.filter((at) => at > this.now() - CRASH_LOOP.windowMs);
      return recent.length >= CRASH_LOOP.exits
        ? `workers exited ${recent.length} times in the last ${CRASH_LOOP.windowMs / 60_000} minutes (last: ${this.slots.map((slot) => slot.lastExit).find(Boolean) ?? 'unknown'}); see their log lines`
        : undefined;
    },
    notReadyReasons: async () => {
      if (this.stopping) return [{ code: 'stopping', message: 'shutting down: the workers are draining' }];
      const answers = await Promise.all(
        this.slots.map(async (slot): Promise<ReadinessReason[]> => {
          if (!slot.process) return [workerDown(slot)];
          try {
            return (await this.call(slot, 'notReadyReasons', [])) as ReadinessReason[];
          } catch (error) {
            return [{ code: 'worker_down', message: `worker ${slot.index} does not answer: ${(error as Error).message}` }];
          }
        }),
      );
      return mergeReasons(answers);
    },
    lag: async () => mergeLag((await this.everyRunning('lag', [])) as LagReport[]),
    assignment: async () => mergeAssignment((await this.everyRunning('assignment', [])) as never),
    routes: async () => mergeRoutes((await this.everyRunning('routes', [])) as never),
    rebalances: async () => mergeRebalances((await this.everyRunning('rebalances', [])) as never),
    adminPause: async (topic, partitions, pause) =>
      mergePause((await this.everyRunning('adminPause', [topic, partitions, pause])) as Array<PauseResultBody | null>),
    seek: async (request) => {
      // The worker that owns the partition seeks; the others say it is not theirs.
      const answers = (await this.everyRunning('seek', [request], { timeoutMs: 0 })) as Array<
        SeekResultBody | { notAssigned: unknown } | { unknownTopic: true }
      >;
      const done = answers.find((answer) => !('notAssigned' in answer) && !('unknownTopic' in answer));
      if (done) return done as SeekResultBody;
      if (answers.length > 0 && answers.every((answer) => 'unknownTopic' in answer)) return { unknownTopic: true };
      return { notAssigned: [{ topic: request.topic, partition: request.partition }] };
    },
    // One redrive at a time per Courier, and the DLQ is read without the group: the first worker does it.
    redrive: async (request) => (await this.call(this.firstRunning(), 'redrive', [request], { timeoutMs: 0 })) as never,
    deadLetters: async (query) => (await this.call(this.firstRunning(), 'deadLetters', [query], { timeoutMs: 0 })) as never,
  };

  /** `/metrics`: every running worker's series and the supervisor's own, summed per series (prom-client's aggregation; states use min/max). */
  readonly metrics: MetricsSource = {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    metrics: async () => {
      const parts = await this.everyRunning('metrics', []);
      const own = await this.options.registry.getMetricsAsJSON();
      return AggregatorRegistry.aggregate([...parts, own] as object[]).metrics();
    },
  } as MetricsSource;

  private spawn(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.stopping) return;
    const child = this.options.spawn(slot.index);
    slot.process = child;
    slot.startedAt = this.now();
    child.channel.onMessage((message) => {
      if (!isReply(message)) return;
      const waiting = slot.pending.get(message.id);
      if (!waiting) return;
      slot.pending.delete(message.id);
      if (waiting.timer) clearTimeout(waiting.timer);
      if ('error' in message) waiting.reject(Object.assign(new Error(message.error), message.code ? { code: message.code } : {}));
      else waiting.resolve(message.value);
    });
    child.onExit((code, signal) => this.exited(slot, child, code, signal));
  }

  private exited(slot: Slot, child: WorkerProcess, code: number | null, signal: string | null): void {
    if (slot.process !== child) return;
    slot.process = undefined;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    slot.lastExit = how;
    for (const waiting of slot.pending.values()) {
      if (waiting.timer) clearTimeout(waiting.timer);
      waiting.reject(new Error(`worker ${slot.index} exited (${how})`));
    }
    slot.pending.clear();
    if (this.stopping) return;
    this.exits.push(this.now());
    while (this.exits.length > CRASH_LOOP.exits * 2) this.exits.shift();
    slot.quickExits = this.now() - slot.startedAt >= STABLE_AFTER_MS ? 1 : slot.quickExits + 1;
    const delay = backoff(slot.quickExits, { initialMs: this.options.restartInitialMs ?? 1000, maxMs: this.options.restartMaxMs ?? 30_000, jitter: 'none' });
    this.options.logger.error({ worker: slot.index, exit: how, restartInMs: delay }, 'worker exited; its partitions go to the other workers until it is back');
    this.restarts.inc();
    slot.restartTimer = setTimeout(() => this.spawn(slot), delay);
  }

  private firstRunning(): Slot {
    const slot = this.slots.find((candidate) => candidate.process !== undefined);
    if (!slot) throw new Error('no worker is running (they are restarting)');
    return slot;
  }

  /** Every running worker's answer; one that fails or times out is left out (its partitions are in no one's answer until it is back). */
  private async everyRunning(op: OperationName, args: readonly unknown[], options: { timeoutMs?: number } = {}): Promise<unknown[]> {
    const answers = await Promise.allSettled(this.slots.filter((slot) => slot.process).map((slot) => this.call(slot, op, args, options)));
    return answers.filter((answer): answer is PromiseFulfilledResult<unknown> => answer.status === 'fulfilled').map((answer) => answer.value);
  }

  private call(slot: Slot, op: OperationName, args: readonly unknown[], options: { timeoutMs?: number } = {}): Promise<unknown> {
    const child = slot.process;
    if (!child) return Promise.reject(new Error(`worker ${slot.index} is not running`));
    const id = this.nextCallId++;
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const waiting: { resolve: (value: unknown) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout } = { resolve, reject };
      if (timeoutMs > 0)
        waiting.timer = setTimeout(() => {
          slot.pending.delete(id);
          reject(new Error(`no answer to ${op} within ${timeoutMs} ms`));
        }, timeoutMs);
      slot.pending.set(id, waiting);
      try {
        child.channel.send({ kind: 'call', id, op, args });
      } catch (error) {
        slot.pending.delete(id);
        if (waiting.timer) clearTimeout(waiting.timer);
        reject(error as Error);
      }
    });
  }
}

function workerDown(slot: Slot): ReadinessReason {
  return {
    code: 'worker_down',
    message: `worker ${slot.index} is not running${slot.lastExit ? ` (exited with ${slot.lastExit}; restarting)` : ''}: its partitions are delivered by the others after a rebalance`,
  };
}
