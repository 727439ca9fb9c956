import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { Ordering } from '../../src/config/index.js';
import { type BatchLimits, MIN_SHARE_BYTES, type PartitionQueue, Scheduler } from '../../src/pipeline/scheduler.js';
import type { TopicPartition } from '../../src/record.js';

interface Item {
  readonly key: Buffer | null;
  readonly partition: number;
  readonly offset: number;
  readonly size: number;
  readonly arrivedAt?: number;
}

const tpOf = (partition: number): TopicPartition => ({ topic: 't', partition });
const item = (partition: number, offset: number, key: string | null = null, size = 1): Item => ({
  partition,
  offset,
  key: key === null ? null : Buffer.from(key),
  size,
});

function harness(ordering: Ordering, maxInFlight: number, partitionBuffer = 1000, partitions = [0], partitionBufferBytes = 1_000_000, bufferBytes?: number) {
  const started: Item[] = [];
  const running = new Set<Item>();
  const pressure: Array<[number, boolean]> = [];
  const scheduler = new Scheduler<Item>({
    ordering,
    maxInFlight,
    partitionBuffer,
    partitionBufferBytes,
    bufferBytes,
    start: (it, tp) => {
      expect(tp.partition).toBe(it.partition);
      started.push(it);
      running.add(it);
    },
    backpressure: (tp, paused) => pressure.push([tp.partition, paused]),
  });
  const queues = new Map<number, PartitionQueue<Item>>();
  const add = (p: number) => queues.set(p, scheduler.addPartition(tpOf(p)));
  for (const p of partitions) add(p);
  const q = (p: number): PartitionQueue<Item> => {
    const queue = queues.get(p);
    if (!queue) throw new Error(`partition ${p} was never added`);
    return queue;
  };
  const finish = (it: Item) => {
    expect(running.delete(it)).toBe(true);
    scheduler.finish(it);
    scheduler.dispatch();
  };
  return { scheduler, started, running, pressure, finish, q, add };
}

const offsetsOf = (items: readonly Item[]) => items.map((i) => i.offset);

describe('Scheduler: partition ordering', () => {
  it('starts one record per partition and the next only after finish, in offset order', () => {
    const h = harness('partition', 10, 1000, [0, 1]);
    for (let o = 0; o < 3; o++) {
      h.scheduler.enqueue(h.q(0), item(0, o, 'a'));
      h.scheduler.enqueue(h.q(1), item(1, o, `k${o}`));
    }
    h.scheduler.dispatch();
    expect(h.started.map((i) => [i.partition, i.offset]).sort()).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect(h.scheduler.inFlightOf(h.q(0))).toBe(1);
    expect(h.scheduler.queuedOf(h.q(0))).toBe(2);
    h.finish(h.started[0]!);
    expect(h.started).toHaveLength(3);
    expect(h.started[2]!.offset).toBe(1);
  });
});

describe('Scheduler: key ordering', () => {
  it('runs different keys of one partition in parallel but one record per key', () => {
    const h = harness('key', 10);
    const a0 = item(0, 0, 'a');
    const a1 = item(0, 1, 'a');
    const b2 = item(0, 2, 'b');
    const a3 = item(0, 3, 'a');
    const c4 = item(0, 4, 'c');
    for (const i of [a0, a1, b2, a3, c4]) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    expect(offsetsOf(h.started)).toEqual([0, 2, 4]);
    h.finish(a0);
    expect(offsetsOf(h.started)).toEqual([0, 2, 4, 1]);
    h.finish(b2);
    expect(h.started).toHaveLength(4);
    h.finish(a1);
    expect(offsetsOf(h.started)).toEqual([0, 2, 4, 1, 3]);
  });

  it('treats null keys as independent of each other and of keyed records', () => {
    const h = harness('key', 10);
    const n0 = item(0, 0, null);
    const a1 = item(0, 1, 'a');
    const n2 = item(0, 2, null);
    const a3 = item(0, 3, 'a');
    const n4 = item(0, 4, null);
    for (const i of [n0, a1, n2, a3, n4]) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    expect(offsetsOf(h.started)).toEqual([0, 1, 2, 4]);
    h.finish(n0);
    h.finish(n2);
    expect(h.started).toHaveLength(4);
    h.finish(a1);
    expect(offsetsOf(h.started)).toEqual([0, 1, 2, 4, 3]);
  });

  it('keeps the same key on different partitions independent', () => {
    const h = harness('key', 10, 1000, [0, 1]);
    h.scheduler.enqueue(h.q(0), item(0, 0, 'a'));
    h.scheduler.enqueue(h.q(1), item(1, 0, 'a'));
    h.scheduler.dispatch();
    expect(h.started).toHaveLength(2);
  });

  it('distinguishes keys by bytes, not by their UTF-8 decoding', () => {
    const h = harness('key', 10);
    h.scheduler.enqueue(h.q(0), { partition: 0, offset: 0, key: Buffer.from([0xff]), size: 1 });
    h.scheduler.enqueue(h.q(0), { partition: 0, offset: 1, key: Buffer.from([0xfe]), size: 1 });
    h.scheduler.dispatch();
    expect(h.started).toHaveLength(2);
  });
});

describe('Scheduler: unordered', () => {
  it('starts records of one partition in parallel up to maxInFlight only', () => {
    const h = harness('unordered', 3);
    for (let o = 0; o < 5; o++) h.scheduler.enqueue(h.q(0), item(0, o, 'same'));
    h.scheduler.dispatch();
    expect(offsetsOf(h.started)).toEqual([0, 1, 2]);
    expect(h.scheduler.totalInFlight).toBe(3);
    h.finish(h.started[1]!);
    expect(offsetsOf(h.started)).toEqual([0, 1, 2, 3]);
  });
});

describe('Scheduler: invariants under random load (property)', () => {
  const scenario = fc.record({
    ordering: fc.constantFrom<Ordering>('partition', 'key', 'unordered'),
    maxInFlight: fc.integer({ min: 1, max: 6 }),
    records: fc.array(fc.record({ partition: fc.integer({ min: 0, max: 3 }), key: fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: null }) }), {
      maxLength: 80,
    }),
    picks: fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
    enqueueBatch: fc.integer({ min: 1, max: 10 }),
  });

  it('respects the global cap and the lane of every ordering mode, preserves lane order, and drains everything', () => {
    fc.assert(
      fc.property(scenario, ({ ordering, maxInFlight, records, picks, enqueueBatch }) => {
        const h = harness(ordering, maxInFlight, 1_000_000, [0, 1, 2, 3]);
        const nextOffset = [0, 0, 0, 0];
        const items = records.map((r) => item(r.partition, nextOffset[r.partition]!++, r.key));
        const finished: Item[] = [];
        const laneOf = (i: Item) =>
          ordering === 'partition' ? `${i.partition}` : ordering === 'key' && i.key !== null ? `${i.partition}/${i.key}` : undefined;
        const check = () => {
          expect(h.running.size).toBeLessThanOrEqual(maxInFlight);
          expect(h.scheduler.totalInFlight).toBe(h.running.size);
          for (const p of [0, 1, 2, 3]) {
            let ready = 0;
            for (const lane of h.q(p).lanes.values()) if (lane.running === 0) ready += lane.waiting.length;
            if (ordering !== 'unordered') expect(h.q(p).readyRecords).toBe(ready);
          }
          const lanes = new Set<string>();
          for (const r of h.running) {
            const lane = laneOf(r);
            if (lane === undefined) continue;
            expect(lanes.has(lane), `two records in flight on lane ${lane}`).toBe(false);
            lanes.add(lane);
          }
        };
        let enqueued = 0;
        let step = 0;
        while (finished.length < items.length) {
          for (let n = 0; n < enqueueBatch && enqueued < items.length; n++, enqueued++) {
            const i = items[enqueued]!;
            expect(h.scheduler.enqueue(h.q(i.partition), i)).toBe(true);
          }
          h.scheduler.dispatch();
          check();
          if (h.running.size === 0) {
            expect(enqueued < items.length, 'records queued but none in flight: stuck').toBe(true);
            continue;
          }
          const running = [...h.running];
          const done = running[picks[step++ % picks.length]! % running.length]!;
          h.finish(done);
          finished.push(done);
          check();
        }
        // Every record started exactly once.
        expect(h.started).toHaveLength(items.length);
        expect(new Set(h.started).size).toBe(items.length);
        // Within a lane, records started in offset order (and, having one in flight, finished in it).
        const lastStarted = new Map<string, number>();
        for (const s of h.started) {
          const lane = laneOf(s);
          if (lane === undefined) continue;
          expect(s.offset).toBeGreaterThan(lastStarted.get(lane) ?? -1);
          lastStarted.set(lane, s.offset);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('in key mode, a record never starts while an earlier record of its key is queued or in flight', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        (keys, picks) => {
          const h = harness('key', 100);
          const items = keys.map((k, o) => item(0, o, k));
          for (const i of items) h.scheduler.enqueue(h.q(0), i);
          h.scheduler.dispatch();
          let step = 0;
          while (h.running.size > 0) {
            const running = [...h.running];
            h.finish(running[picks[step++ % picks.length]! % running.length]!);
          }
          const byKey = new Map<string, number[]>();
          for (const s of h.started) byKey.set(s.key!.toString(), [...(byKey.get(s.key!.toString()) ?? []), s.offset]);
          for (const offsets of byKey.values()) expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
          expect(h.started).toHaveLength(items.length);
        },
      ),
    );
  });
});

describe('Scheduler: backpressure', () => {
  it('asks to pause a partition when its queue reaches partitionBuffer, once, and resumes at half', () => {
    const h = harness('partition', 10, 4, [0, 1]);
    const items = Array.from({ length: 6 }, (_, o) => item(0, o));
    for (const i of items.slice(0, 3)) h.scheduler.enqueue(h.q(0), i);
    expect(h.pressure).toEqual([]);
    h.scheduler.enqueue(h.q(0), items[3]!);
    expect(h.pressure).toEqual([[0, true]]);
    h.scheduler.enqueue(h.q(0), items[4]!);
    h.scheduler.enqueue(h.q(0), items[5]!);
    expect(h.pressure).toEqual([[0, true]]);
    h.scheduler.dispatch(); // starts 0, queue 5
    h.finish(items[0]!); // queue 4
    h.finish(items[1]!); // queue 3
    expect(h.pressure).toEqual([[0, true]]);
    h.finish(items[2]!); // queue 2 = half
    expect(h.pressure).toEqual([
      [0, true],
      [0, false],
    ]);
    h.finish(items[3]!);
    expect(h.pressure).toHaveLength(2);
  });

  it('shares one byte budget among the partitions: each pauses at its share, resumes at half of it', () => {
    const share = 4 * MIN_SHARE_BYTES;
    const h = harness('partition', 10, 1000, [0, 1, 2, 3], 16 * share, 4 * share);
    const records = Array.from({ length: 5 }, (_, o) => item(0, o, null, share / 4));
    for (const record of records.slice(0, 3)) h.scheduler.enqueue(h.q(0), record);
    expect(h.pressure).toEqual([]);
    h.scheduler.enqueue(h.q(0), records[3]!); // a quarter of the budget: its share
    expect(h.pressure).toEqual([[0, true]]);
    h.scheduler.dispatch(); // three quarters of the share wait
    h.finish(records[0]!); // half of it: resumes
    expect(h.pressure).toEqual([
      [0, true],
      [0, false],
    ]);
  });

  it('gives a lone partition the whole budget, and never less than the minimum share to many', () => {
    const alone = harness('partition', 10, 1000, [0], 1_000_000_000, 8 * MIN_SHARE_BYTES);
    for (let o = 0; o < 7; o++) alone.scheduler.enqueue(alone.q(0), item(0, o, null, MIN_SHARE_BYTES));
    expect(alone.pressure).toEqual([]);
    alone.scheduler.enqueue(alone.q(0), item(0, 7, null, MIN_SHARE_BYTES));
    expect(alone.pressure).toEqual([[0, true]]);

    const many = harness(
      'partition',
      10,
      1000,
      Array.from({ length: 64 }, (_, p) => p),
      1_000_000_000,
      8 * MIN_SHARE_BYTES,
    );
    many.scheduler.enqueue(many.q(5), item(5, 0, null, MIN_SHARE_BYTES - 1));
    expect(many.pressure).toEqual([]);
    many.scheduler.enqueue(many.q(5), item(5, 1, null, 1));
    expect(many.pressure).toEqual([[5, true]]);
  });

  it('also pauses on bytes: a few large records hold as much memory as many small ones', () => {
    const h = harness('partition', 10, 1000, [0], 1000);
    const big = [item(0, 0, null, 400), item(0, 1, null, 400), item(0, 2, null, 400)];
    h.scheduler.enqueue(h.q(0), big[0]!);
    h.scheduler.enqueue(h.q(0), big[1]!);
    expect(h.pressure).toEqual([]);
    h.scheduler.enqueue(h.q(0), big[2]!);
    expect(h.pressure).toEqual([[0, true]]);
    h.scheduler.dispatch(); // starts one: 800 bytes wait, above half
    expect(h.pressure).toEqual([[0, true]]);
    h.finish(big[0]!); // starts the next: 400 bytes wait
    expect(h.pressure).toEqual([
      [0, true],
      [0, false],
    ]);
  });

  it('can pause again after resuming', () => {
    const h = harness('unordered', 1, 2);
    const items = Array.from({ length: 5 }, (_, o) => item(0, o));
    h.scheduler.enqueue(h.q(0), items[0]!);
    h.scheduler.enqueue(h.q(0), items[1]!);
    h.scheduler.dispatch(); // starts 0, queue 1 = half
    expect(h.pressure).toEqual([
      [0, true],
      [0, false],
    ]);
    h.scheduler.enqueue(h.q(0), items[2]!);
    expect(h.pressure.at(-1)).toEqual([0, true]);
  });
});

describe('Scheduler: block and removePartition', () => {
  it('block() drops the queued records, refuses new ones and starts nothing more of that partition', () => {
    const h = harness('partition', 10, 1000, [0, 1]);
    const items = [item(0, 0), item(0, 1), item(0, 2)];
    for (const i of items) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    h.scheduler.block(h.q(0));
    expect(h.scheduler.queuedOf(h.q(0))).toBe(0);
    expect(h.scheduler.enqueue(h.q(0), item(0, 3))).toBe(false);
    h.finish(items[0]!);
    expect(offsetsOf(h.started)).toEqual([0]);
    expect(h.scheduler.totalInFlight).toBe(0);
    expect(h.scheduler.enqueue(h.q(1), item(1, 0))).toBe(true);
  });

  it('block(keep) keeps only the records it names, in lane order, and starts them as lanes free up', () => {
    const h = harness('key', 10);
    // a:0 and b:2 start; a:1 and a:3 wait behind a:0; c:4 is a free lane but over the limit.
    const items = [item(0, 0, 'a'), item(0, 1, 'a'), item(0, 2, 'b'), item(0, 3, 'a'), item(0, 4, 'c')];
    for (const i of items.slice(0, 4)) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    expect(offsetsOf(h.started)).toEqual([0, 2]);
    h.finish(items[2]!);
    h.scheduler.enqueue(h.q(0), items[4]!);
    h.scheduler.dispatch();
    expect(offsetsOf(h.started)).toEqual([0, 2, 4]);
    h.finish(items[4]!);

    h.scheduler.block(h.q(0), (i) => i.offset < 3);
    expect(h.scheduler.queuedOf(h.q(0))).toBe(1);
    expect(h.scheduler.totalWaiting).toBe(1);
    expect(h.scheduler.enqueue(h.q(0), item(0, 5, 'd'))).toBe(false);
    h.finish(items[0]!);
    expect(offsetsOf(h.started)).toEqual([0, 2, 4, 1]);
    h.finish(items[1]!);
    expect(offsetsOf(h.started)).toEqual([0, 2, 4, 1]);
    expect(h.scheduler.queuedOf(h.q(0))).toBe(0);
    expect(h.scheduler.totalInFlight).toBe(0);
  });

  it('block(keep) in unordered mode keeps the named records waiting for a slot', () => {
    const h = harness('unordered', 1);
    const items = [item(0, 0), item(0, 1), item(0, 2)];
    for (const i of items) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    h.scheduler.block(h.q(0), (i) => i.offset === 1);
    h.finish(items[0]!);
    h.finish(items[1]!);
    expect(offsetsOf(h.started)).toEqual([0, 1]);
    expect(h.scheduler.totalWaiting).toBe(0);
  });

  it('enqueue to a removed partition is refused', () => {
    const h = harness('partition', 10);
    const removed = h.q(0);
    h.scheduler.removePartition(removed);
    expect(h.scheduler.enqueue(removed, item(0, 0))).toBe(false);
  });

  it('removePartition returns the dropped queue length, frees its in-flight slots and ignores its later finish', () => {
    const h = harness('partition', 2, 1000, [0, 1]);
    const p0 = [item(0, 0), item(0, 1), item(0, 2)];
    const p1 = [item(1, 0), item(1, 1)];
    for (const i of p0) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    expect(h.scheduler.totalInFlight).toBe(1);
    for (const i of p1) h.scheduler.enqueue(h.q(1), i);
    h.scheduler.dispatch();
    expect(h.scheduler.totalInFlight).toBe(2);
    expect(h.scheduler.removePartition(h.q(0))).toBe(2);
    expect(h.scheduler.totalInFlight).toBe(1);
    expect(h.scheduler.removePartition(h.q(0))).toBe(0);
    // Re-assigned meanwhile: the old record's late finish must not free a slot of the new queue.
    h.add(0);
    const fresh = [item(0, 10), item(0, 11)];
    for (const i of fresh) h.scheduler.enqueue(h.q(0), i);
    h.scheduler.dispatch();
    expect(h.scheduler.inFlightOf(h.q(0))).toBe(1);
    h.scheduler.finish(p0[0]!);
    expect(h.scheduler.inFlightOf(h.q(0))).toBe(1);
    h.scheduler.dispatch();
    expect(h.started.filter((i) => i.partition === 0).map((i) => i.offset)).toEqual([0, 10]);
    expect(h.scheduler.removePartition(h.q(0))).toBe(1);
    expect(h.scheduler.totalInFlight).toBe(1);
    h.finish(p1[0]!);
    expect(h.started.map((i) => [i.partition, i.offset])).toEqual([
      [0, 0],
      [1, 0],
      [0, 10],
      [1, 1],
    ]);
    expect(h.scheduler.enqueue(h.q(0), item(0, 3))).toBe(false);
  });
});

describe('Scheduler: waiting fronts', () => {
  it.each(['partition', 'key', 'unordered'] as const)(
    '%s: the lowest waiting offset is always among the fronts (property, with starts and finishes interleaved)',
    (ordering) => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c', null), fc.constant('finish' as const)), { maxLength: 80 }),
          fc.integer({ min: 1, max: 4 }),
          (ops, maxInFlight) => {
            const h = harness(ordering, maxInFlight);
            let offset = 0;
            for (const op of ops) {
              if (op === 'finish') {
                const first = [...h.running][0];
                if (first) h.finish(first);
              } else {
                h.scheduler.enqueue(h.q(0), item(0, offset++, op));
                h.scheduler.dispatch();
              }
              const started = new Set(offsetsOf(h.started));
              const waiting = Array.from({ length: offset }, (_, o) => o).filter((o) => !started.has(o));
              const fronts = offsetsOf(h.scheduler.waitingFronts(h.q(0)));
              // One front per lane with waiting records, each a waiting record.
              for (const front of fronts) expect(waiting).toContain(front);
              if (waiting.length > 0) expect(fronts).toContain(Math.min(...waiting));
              else expect(fronts).toEqual([]);
            }
          },
        ),
        { numRuns: 200 },
      );
    },
  );
});

describe('Scheduler: batch partitions', () => {
  function batchHarness(ordering: Ordering, maxInFlight: number, limits: BatchLimits, now: () => number = () => 0) {
    const batches: Item[][] = [];
    const running = new Map<Item, Item[]>();
    const scheduler = new Scheduler<Item>({
      ordering,
      maxInFlight,
      partitionBuffer: 1_000_000,
      partitionBufferBytes: 1_000_000_000,
      start: () => expect.unreachable('a batch partition starts batches'),
      startBatch: (items, tp) => {
        for (const it of items) expect(it.partition).toBe(tp.partition);
        batches.push(items);
        for (const it of items) running.set(it, items);
      },
      backpressure: () => {},
      compare: (a, b) => a.offset - b.offset,
      now,
    });
    const queues = [0, 1, 2].map((p) => scheduler.addPartition(tpOf(p), undefined, limits));
    const finish = (it: Item) => {
      expect(running.delete(it)).toBe(true);
      scheduler.finish(it);
      scheduler.dispatch();
    };
    const runningBatches = () => new Set(running.values());
    return { scheduler, batches, running, queues, finish, runningBatches };
  }

  it('partition mode: one batch per partition at a time, up to the record and byte limits, a large record alone', () => {
    const h = batchHarness('partition', 10, { maxRecords: 3, maxBytes: 10, lingerMs: 0 });
    const sizes = [2, 2, 2, 2, 9, 20, 1];
    const items = sizes.map((size, o) => item(0, o, 'k', size));
    for (const it of items) h.scheduler.enqueue(h.queues[0]!, it);
    h.scheduler.dispatch();
    expect(h.batches.map(offsetsOf)).toEqual([[0, 1, 2]]);
    // Part of the batch finished: still one batch of the partition at a time.
    h.finish(items[0]!);
    h.finish(items[1]!);
    expect(h.batches).toHaveLength(1);
    h.finish(items[2]!);
    // 2 + 9 > 10 bytes: record 4 waits for the next batch; 20 bytes goes alone.
    expect(h.batches.map(offsetsOf)).toEqual([[0, 1, 2], [3]]);
    h.finish(items[3]!);
    h.finish(items[4]!);
    h.finish(items[5]!);
    expect(h.batches.map(offsetsOf)).toEqual([[0, 1, 2], [3], [4], [5], [6]]);
    expect(h.scheduler.totalInFlight).toBe(1);
  });

  it('a blocked partition sends the records it kept at once, without waiting out the linger', () => {
    const h = batchHarness('unordered', 10, { maxRecords: 10, maxBytes: 100, lingerMs: 60_000 });
    const items = [0, 1, 2].map((o) => ({ ...item(0, o), arrivedAt: 0 }));
    for (const it of items) h.scheduler.enqueue(h.queues[0]!, it);
    h.scheduler.dispatch();
    expect(h.batches).toHaveLength(0);
    h.scheduler.block(h.queues[0]!, (it) => it.offset < 2);
    h.scheduler.dispatch();
    expect(h.batches.map(offsetsOf)).toEqual([[0, 1]]);
  });

  it('counts a batch as one push against maxInFlight and frees it when its last record finishes', () => {
    const h = batchHarness('unordered', 2, { maxRecords: 2, maxBytes: 100, lingerMs: 0 });
    const items = Array.from({ length: 7 }, (_, o) => item(0, o));
    for (const it of items) h.scheduler.enqueue(h.queues[0]!, it);
    h.scheduler.dispatch();
    expect(h.batches.map(offsetsOf)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(h.scheduler.totalInFlight).toBe(2);
    h.finish(items[0]!);
    expect(h.batches).toHaveLength(2);
    h.finish(items[1]!);
    expect(h.batches.map(offsetsOf).at(-1)).toEqual([4, 5]);
    expect(h.scheduler.removePartition(h.queues[0]!)).toBe(1);
    expect(h.scheduler.totalInFlight).toBe(0);
  });

  it('waits up to the linger time for a fuller batch, and not when the batch is full', async () => {
    vi.useFakeTimers();
    try {
      const h = batchHarness('key', 10, { maxRecords: 3, maxBytes: 100, lingerMs: 5 }, () => Date.now());
      const at = Date.now();
      h.scheduler.enqueue(h.queues[0]!, { ...item(0, 0, 'a'), arrivedAt: at });
      h.scheduler.dispatch();
      expect(h.batches).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(2);
      h.scheduler.enqueue(h.queues[0]!, { ...item(0, 1, 'b'), arrivedAt: at + 2 });
      h.scheduler.dispatch();
      expect(h.batches).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(3);
      expect(h.batches.map(offsetsOf)).toEqual([[0, 1]]);
      // A full batch goes at once.
      for (let o = 2; o < 5; o++) h.scheduler.enqueue(h.queues[1]!, { ...item(1, o, `k${o}`), arrivedAt: Date.now() });
      h.scheduler.dispatch();
      expect(h.batches.map(offsetsOf)).toEqual([
        [0, 1],
        [2, 3, 4],
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps every ordering mode and the limits under random load, and starts every record once (property)', () => {
    const scenario = fc.record({
      ordering: fc.constantFrom<Ordering>('partition', 'key', 'unordered'),
      maxInFlight: fc.integer({ min: 1, max: 4 }),
      maxRecords: fc.integer({ min: 1, max: 5 }),
      maxBytes: fc.integer({ min: 1, max: 12 }),
      records: fc.array(
        fc.record({
          partition: fc.integer({ min: 0, max: 2 }),
          key: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
          size: fc.integer({ min: 1, max: 6 }),
        }),
        { maxLength: 60 },
      ),
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
      enqueueBatch: fc.integer({ min: 1, max: 10 }),
    });
    fc.assert(
      fc.property(scenario, ({ ordering, maxInFlight, maxRecords, maxBytes, records, picks, enqueueBatch }) => {
        const h = batchHarness(ordering, maxInFlight, { maxRecords, maxBytes, lingerMs: 0 });
        const nextOffset = [0, 0, 0];
        const items = records.map((r) => item(r.partition, nextOffset[r.partition]!++, r.key, r.size));
        const laneOf = (i: Item) =>
          ordering === 'partition' ? `${i.partition}` : ordering === 'key' && i.key !== null ? `${i.partition}/${i.key}` : undefined;
        const check = () => {
          const batches = h.runningBatches();
          expect(batches.size).toBeLessThanOrEqual(maxInFlight);
          expect(h.scheduler.totalInFlight).toBe(batches.size);
          // The count a batch's linger uses: the waiting records of lanes that may start.
          for (const queue of h.queues) {
            let ready = 0;
            for (const lane of queue.lanes.values()) if (lane.running === 0) ready += lane.waiting.length;
            if (ordering !== 'unordered') expect(queue.readyRecords).toBe(ready);
          }
          const laneBatch = new Map<string, Item[]>();
          for (const [it, batch] of h.running) {
            const lane = laneOf(it);
            if (lane === undefined) continue;
            const other = laneBatch.get(lane);
            expect(other === undefined || other === batch, `lane ${lane} in two batches`).toBe(true);
            laneBatch.set(lane, batch);
          }
        };
        let enqueued = 0;
        let finished = 0;
        let step = 0;
        while (finished < items.length) {
          for (let n = 0; n < enqueueBatch && enqueued < items.length; n++, enqueued++)
            h.scheduler.enqueue(h.queues[items[enqueued]!.partition]!, items[enqueued]!);
          h.scheduler.dispatch();
          check();
          if (h.running.size === 0) {
            expect(enqueued < items.length, 'records queued but none in flight: stuck').toBe(true);
            continue;
          }
          const running = [...h.running.keys()];
          h.finish(running[picks[step++ % picks.length]! % running.length]!);
          finished++;
          check();
        }
        const started = h.batches.flat();
        expect(started).toHaveLength(items.length);
        expect(new Set(started).size).toBe(items.length);
        for (const batch of h.batches) {
          expect(batch.length).toBeLessThanOrEqual(maxRecords);
          if (batch.length > 1) expect(batch.reduce((n, i) => n + i.size, 0)).toBeLessThanOrEqual(maxBytes);
          expect(offsetsOf(batch)).toEqual([...offsetsOf(batch)].sort((x, y) => x - y));
        }
        const lastStarted = new Map<string, number>();
        for (const s of started) {
          const lane = laneOf(s);
          if (lane === undefined) continue;
          expect(s.offset).toBeGreaterThan(lastStarted.get(lane) ?? -1);
          lastStarted.set(lane, s.offset);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('Scheduler: records not due yet (retry tiers)', () => {
  /** A scheduler whose items may carry a due time, recording what it starts and its due waits. */
  function dueHarness(ordering: Ordering) {
    const started: Item[] = [];
    const waits: Array<[number, boolean]> = [];
    const scheduler = new Scheduler<Item & { dueAt?: number }>({
      ordering,
      maxInFlight: 10,
      partitionBuffer: 100,
      partitionBufferBytes: 1_000_000,
      start: (it) => started.push(it),
      backpressure: () => undefined,
      waitingForDue: (tp, waiting) => waits.push([tp.partition, waiting]),
    });
    return { scheduler, started, waits, at: () => started.map((s) => `${s.partition}:${s.offset}`) };
  }

  it.each(['partition', 'key', 'unordered'] as const)(
    '%s: holds a partition whose first record is not due, others go on, then starts it when due',
    (ordering) => {
      vi.useFakeTimers({ now: 1000 });
      try {
        const { scheduler, started, waits, at } = dueHarness(ordering);
        const tier = scheduler.addPartition(tpOf(0));
        const source = scheduler.addPartition(tpOf(1));
        scheduler.enqueue(tier, { ...item(0, 0, 'a'), dueAt: 1500 });
        scheduler.enqueue(tier, { ...item(0, 1, 'b'), dueAt: 1400 });
        scheduler.enqueue(source, item(1, 0));
        scheduler.dispatch();
        expect(at()).toEqual(['1:0']);
        expect(waits).toEqual([[0, true]]);
        scheduler.dispatch(); // a second dispatch neither starts it nor asks again
        expect(waits).toHaveLength(1);

        vi.advanceTimersByTime(499);
        expect(started).toHaveLength(1);
        vi.advanceTimersByTime(1);
        expect(waits).toEqual([
          [0, true],
          [0, false],
        ]);
        // The head waited for its own time; the next one (due earlier) follows it in partition order.
        expect(at().slice(0, 2)).toEqual(['1:0', '0:0']);
        if (ordering !== 'partition') expect(at()).toContain('0:1');
      } finally {
        vi.useRealTimers();
      }
    },
  );

  it('forgets the wait when the partition is removed', () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const { scheduler, started, waits } = dueHarness('partition');
      const tier = scheduler.addPartition(tpOf(0));
      scheduler.enqueue(tier, { ...item(0, 0), dueAt: 100 });
      scheduler.dispatch();
      scheduler.removePartition(tier);
      vi.advanceTimersByTime(1000);
      expect(started).toEqual([]);
      expect(waits).toEqual([[0, true]]);
    } finally {
      vi.useRealTimers();
    }
  });
});
