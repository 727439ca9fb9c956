import { pino } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OFFLINE_OPERATIONS } from '../../src/api/offline.js';
import type { Operations } from '../../src/api/server.js';
import { answerCalls, type Channel } from '../../src/workers/protocol.js';
import { Supervisor, type WorkerProcess } from '../../src/workers/supervisor.js';

/** A worker process in memory: its Operations answer over a channel pair, as over node's IPC. */
class FakeWorker implements WorkerProcess {
  readonly channel: Channel;
  readonly signals: string[] = [];
  readonly registry = new Registry();
  private readonly exitListeners: Array<(code: number | null, signal: string | null) => void> = [];
  private readonly toSupervisor: Array<(message: unknown) => void> = [];
  private readonly toWorker: Array<(message: unknown) => void> = [];
  exited = false;
  /** A worker that ignores SIGTERM (stuck) is killed after the grace period. */
  stuck = false;
  silent = false;

  constructor(
    readonly index: number,
    operations: Partial<Operations>,
  ) {
    this.channel = {
      send: (message) => {
        if (!this.silent) for (const listener of this.toWorker) queueMicrotask(() => listener(structuredClone(message)));
      },
      onMessage: (listener) => this.toSupervisor.push(listener),
    };
    const workerEnd: Channel = {
      send: (message) => {
        for (const listener of this.toSupervisor) queueMicrotask(() => listener(structuredClone(message)));
      },
      onMessage: (listener) => this.toWorker.push(listener),
    };
    answerCalls(workerEnd, { ...OFFLINE_OPERATIONS, ...operations } as Operations, this.registry);
  }

  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.exitListeners.push(listener);
  }

  kill(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.signals.push(signal);
    if (signal === 'SIGTERM' && this.stuck) return;
    setTimeout(() => this.exit(signal === 'SIGKILL' ? null : 0, signal === 'SIGKILL' ? 'SIGKILL' : null), 1);
  }

  exit(code: number | null, signal: string | null = null): void {
    if (this.exited) return;
    this.exited = true;
    for (const listener of this.exitListeners) listener(code, signal);
  }
}

const partition = (n: number) => ({
  topic: 'orders',
  partition: n,
  state: 'active' as const,
  inFlight: 0,
  queued: 0,
  oldestInFlightMs: null,
  pausedReason: null,
  pausedReasons: [],
});

let supervisor: Supervisor | undefined;
afterEach(async () => {
  await supervisor?.stop(50);
  supervisor = undefined;
});

function supervise(count: number, make: (index: number, generation: number) => FakeWorker, options: { callTimeoutMs?: number } = {}) {
  const spawned: FakeWorker[] = [];
  const generations = new Map<number, number>();
  supervisor = new Supervisor({
    count,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    restartInitialMs: 5,
    restartMaxMs: 5,
    ...options,
    spawn: (index) => {
      const generation = (generations.get(index) ?? 0) + 1;
      generations.set(index, generation);
      const worker = make(index, generation);
      spawned.push(worker);
      return worker;
    },
  });
  supervisor.start();
  return { supervisor, spawned };
}

describe('Supervisor', () => {
  it("answers the API from every worker's part: assignment, lag, readiness", async () => {
    const { supervisor } = supervise(
      2,
      (index) =>
        new FakeWorker(index, {
          assignment: () => [partition(index), partition(index + 2)],
          notReadyReasons: () => (index === 1 ? [{ code: 'app_down', message: 'connection refused' }] : []),
        }),
    );
    expect((await supervisor.operations.assignment()).map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    expect(await supervisor.operations.notReadyReasons()).toEqual([{ code: 'app_down', message: 'connection refused' }]);
  });

  it('restarts a worker that exits, says so in readiness meanwhile, and counts the restart', async () => {
    const { supervisor, spawned } = supervise(2, (index) => new FakeWorker(index, { assignment: () => [partition(index)] }));
    const registry = supervisor.metrics;
    spawned[1]?.exit(1);
    const reasons = await supervisor.operations.notReadyReasons();
    expect(reasons).toEqual([
      expect.objectContaining({ code: 'worker_down', message: expect.stringContaining('worker 1 is not running (exited with code 1') }),
    ]);
    // Meanwhile the API answers from the workers that run.
    expect((await supervisor.operations.assignment()).map((p) => p.partition)).toEqual([0]);
    await vi.waitFor(() => expect(spawned).toHaveLength(3));
    expect(await supervisor.operations.notReadyReasons()).toEqual([]);
    expect((await supervisor.operations.assignment()).map((p) => p.partition)).toEqual([0, 1]);
    expect(await registry.metrics()).toMatch(/^courier_worker_restarts_total 1$/m);
    expect(await registry.metrics()).toMatch(/^courier_workers 2$/m);
  });

  it('fails a call waiting on a worker that exits, and a worker that does not answer counts as down', async () => {
    const { supervisor, spawned } = supervise(2, (index) => new FakeWorker(index, {}), { callTimeoutMs: 30 });
    const worker = spawned[0] as FakeWorker;
    worker.silent = true;
    expect(await supervisor.operations.notReadyReasons()).toEqual([
      { code: 'worker_down', message: 'worker 0 does not answer: no answer to notReadyReasons within 30 ms' },
    ]);
    const seek = supervisor.operations.redrive({ topic: 'orders' });
    worker.exit(1);
    await expect(seek).rejects.toThrow('worker 0 exited (code 1)');
  });

  it('reports a crash loop as a failure (liveness), so the kubelet restarts the container', async () => {
    const { supervisor, spawned } = supervise(1, (index, generation) => {
      const worker = new FakeWorker(index, {});
      if (generation <= 5) setTimeout(() => worker.exit(1), 1);
      return worker;
    });
    await vi.waitFor(() => expect(spawned).toHaveLength(6));
    expect(await supervisor.operations.failure()).toMatch(/^workers exited 5 times in the last 5 minutes \(last: code 1\)/);
  });

  it('stops every worker with SIGTERM, restarts none, and kills one that outlives the grace period', async () => {
    const { supervisor, spawned } = supervise(2, (index) => new FakeWorker(index, {}));
    (spawned[1] as FakeWorker).stuck = true;
    await supervisor.stop(40);
    expect(spawned.map((worker) => worker.signals)).toEqual([['SIGTERM'], ['SIGTERM', 'SIGKILL']]);
    expect(spawned.every((worker) => worker.exited)).toBe(true);
    expect(spawned).toHaveLength(2);
    expect(await supervisor.operations.notReadyReasons()).toEqual([{ code: 'stopping', message: 'shutting down: the workers are draining' }]);
  });

  it('seeks on the worker that owns the partition', async () => {
    const done = { topic: 'orders', partition: 3, offset: 7, previousOffset: 9 };
    const { supervisor } = supervise(
      2,
      (index) => new FakeWorker(index, { seek: async (request) => (index === 1 && request.partition === 3 ? (done as never) : { notAssigned: [request] }) }),
    );
    expect(await supervisor.operations.seek({ topic: 'orders', partition: 3, offset: 7 })).toEqual(done);
    expect(await supervisor.operations.seek({ topic: 'orders', partition: 4, offset: 7 })).toEqual({ notAssigned: [{ topic: 'orders', partition: 4 }] });
  });

  it('says unknown topic when every worker does', async () => {
    const { supervisor } = supervise(2, (index) => new FakeWorker(index, {}));
    expect(await supervisor.operations.seek({ topic: 'nope', partition: 0, offset: 0 })).toEqual({ unknownTopic: true });
    expect(await supervisor.operations.adminPause('nope', undefined, true)).toBeNull();
  });

  it('redrives on one worker only, and keeps the error code the API maps (a missing DLQ topic is 404)', async () => {
    const calls: number[] = [];
    const { supervisor } = supervise(
      2,
      (index) =>
        new FakeWorker(index, {
          redrive: async () => {
            calls.push(index);
            throw Object.assign(new Error('DLQ topic orders.dlq does not exist'), { code: 'TOPIC_NOT_FOUND' });
          },
        }),
    );
    await expect(supervisor.operations.redrive({ topic: 'orders' })).rejects.toMatchObject({
      code: 'TOPIC_NOT_FOUND',
      message: 'DLQ topic orders.dlq does not exist',
    });
    expect(calls).toEqual([0]);
  });

  it("serves one /metrics: the workers' series summed, states by min/max, with its own", async () => {
    const { supervisor } = supervise(2, (index) => {
      const worker = new FakeWorker(index, {});
      new Counter({ name: 'courier_records_delivered_total', help: 'h', labelNames: ['topic'], registers: [worker.registry] }).inc(
        { topic: 'orders' },
        10 + index,
      );
      new Gauge({ name: 'courier_app_up', help: 'h', aggregator: 'min', registers: [worker.registry] }).set(index === 0 ? 1 : 0);
      return worker;
    });
    const text = await supervisor.metrics.metrics();
    expect(text).toMatch(/^courier_records_delivered_total\{topic="orders"\} 21$/m);
    expect(text).toMatch(/^courier_app_up 0$/m);
    expect(text).toMatch(/^courier_workers 2$/m);
  });
});
