import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { backlogAges, backlogNotice, type HeldRecords, LARGE_BACKLOG, LagMonitor, type LagSource, nextUnfetched, type PartitionLag } from '../src/lag.js';
import { createMetrics } from '../src/metrics.js';
import { type TopicPartition, type TopicPartitionOffset, tpKey } from '../src/record.js';
import { until } from './helpers/fakes.js';

const logger = pino({ level: 'silent' });

function fakeSource(committed: Record<number, number>, watermarks: Record<number, { low: number; high: number }>): LagSource & { calls: number } {
  const source = {
    calls: 0,
    async committed(partitions: readonly TopicPartition[]) {
      source.calls++;
      return partitions.map((tp) => ({ ...tp, offset: committed[tp.partition] ?? -1001 }));
    },
    async watermarks(tp: TopicPartition) {
      const found = watermarks[tp.partition];
      if (!found) throw new Error('unknown partition');
      return found;
    },
  };
  return source;
}

describe('LagMonitor', () => {
  it('computes high watermark − committed, counting from the low watermark when nothing is committed', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false });
    const source = fakeSource({ 0: 40 }, { 0: { low: 0, high: 100 }, 1: { low: 5, high: 12 } });
    const monitor = new LagMonitor(
      source,
      () => [
        { topic: 't', partition: 1 },
        { topic: 't', partition: 0 },
      ],
      metrics,
      logger,
    );
    const report = await monitor.refresh();
    // Without a pipeline view or a way to read records, how old the backlog is stays unknown.
    expect(report.partitions).toEqual([
      { topic: 't', partition: 0, committedOffset: 40, highWatermark: 100, lag: 60, lagSeconds: null, oldestUnackedAgeMs: null },
      { topic: 't', partition: 1, committedOffset: null, highWatermark: 12, lag: 7, lagSeconds: null, oldestUnackedAgeMs: null },
    ]);
    expect(report.totalLag).toBe(67);
    expect((await metrics.consumerLag.get()).values.map((v) => [v.labels.partition, v.value])).toEqual([
      ['0', 60],
      ['1', 7],
    ]);
  });

  it('stops exporting a partition that is no longer assigned', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    let assigned: TopicPartition[] = [
      { topic: 't', partition: 0 },
      { topic: 't', partition: 1 },
    ];
    const monitor = new LagMonitor(fakeSource({}, { 0: { low: 0, high: 3 }, 1: { low: 0, high: 4 } }), () => assigned, metrics, logger);
    await monitor.refresh();
    assigned = [{ topic: 't', partition: 1 }];
    await monitor.refresh();
    expect((await metrics.consumerLag.get()).values.map((v) => v.labels.partition)).toEqual(['1']);
  });

  it('shares one broker round trip between concurrent callers', async () => {
    const source = fakeSource({}, { 0: { low: 0, high: 1 } });
    const monitor = new LagMonitor(source, () => [{ topic: 't', partition: 0 }], createMetrics(new Registry(), { defaultMetrics: false }), logger);
    const [a, b] = await Promise.all([monitor.refresh(), monitor.refresh()]);
    expect(a).toBe(b);
    expect(source.calls).toBe(1);
  });

  it('keeps the last report when the broker cannot be asked', async () => {
    const source = fakeSource({}, { 0: { low: 0, high: 9 } });
    const monitor = new LagMonitor(source, () => [{ topic: 't', partition: 0 }], createMetrics(new Registry(), { defaultMetrics: false }), logger);
    const first = await monitor.refresh();
    source.committed = async () => {
      throw new Error('coordinator unavailable');
    };
    expect(await monitor.refresh()).toEqual(first);
  });
});

const NOW = 1_800_000_000_000;
const clock = () => NOW;
const t = (partition: number): TopicPartition => ({ topic: 't', partition });

/** A source that also reads record timestamps: `timestamps[partition][offset]`, the next one at or after. */
function peekingSource(
  committed: Record<number, number>,
  watermarks: Record<number, { low: number; high: number }>,
  timestamps: Record<number, Record<number, number>>,
): LagSource & { calls: number; peeks: TopicPartitionOffset[][]; peekFails: boolean } {
  const base = fakeSource(committed, watermarks);
  const source = Object.assign(base, {
    peeks: [] as TopicPartitionOffset[][],
    peekFails: false,
    async timestampsAt(positions: readonly TopicPartitionOffset[]) {
      source.peeks.push([...positions]);
      if (source.peekFails) throw new Error('broker timed out');
      const out = new Map<string, number | null>();
      for (const position of positions) {
        const offsets = Object.keys(timestamps[position.partition] ?? {})
          .map(Number)
          .filter((offset) => offset >= position.offset)
          .sort((a, b) => a - b);
        const first = offsets[0];
        out.set(tpKey(position), first === undefined ? null : (timestamps[position.partition]?.[first] ?? null));
      }
      return out;
    },
  });
  return source;
}

function capture() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('backlogAges', () => {
  const oldest = { offset: 7, timestamp: NOW - 90_000, fetchedAt: NOW - 2_500 };
  it('ages the oldest unacknowledged record: lagSeconds by its Kafka timestamp, oldestUnackedAgeMs by when it was fetched', () => {
    expect(backlogAges(NOW, oldest, undefined)).toEqual({ lagSeconds: 90, oldestUnackedAgeMs: 2500 });
  });

  it('without one: the next record ages lagSeconds, no record waiting is 0, unknown is null; oldestUnackedAgeMs is null', () => {
    expect(backlogAges(NOW, undefined, NOW - 1_234)).toEqual({ lagSeconds: 1.234, oldestUnackedAgeMs: null });
    expect(backlogAges(NOW, undefined, null)).toEqual({ lagSeconds: 0, oldestUnackedAgeMs: null });
    expect(backlogAges(NOW, undefined, undefined)).toEqual({ lagSeconds: null, oldestUnackedAgeMs: null });
  });

  it('is never negative (a producer clock ahead of ours), rounds to the millisecond, and says null for a record without a timestamp', () => {
    expect(backlogAges(NOW, { offset: 1, timestamp: NOW + 5_000, fetchedAt: NOW }, undefined)).toEqual({ lagSeconds: 0, oldestUnackedAgeMs: 0 });
    expect(backlogAges(NOW + 0.4, undefined, NOW - 1)).toEqual({ lagSeconds: 0.001, oldestUnackedAgeMs: null });
    expect(backlogAges(NOW, undefined, -1)).toEqual({ lagSeconds: null, oldestUnackedAgeMs: null });
    expect(backlogAges(NOW, { offset: 1, timestamp: -1, fetchedAt: NOW - 10 }, undefined)).toEqual({ lagSeconds: null, oldestUnackedAgeMs: 10 });
  });
});

describe('nextUnfetched', () => {
  it('is the committed offset, or further where Courier acknowledged records not committed yet; undefined at the end', () => {
    expect(nextUnfetched(40, 100, undefined)).toBe(40);
    expect(nextUnfetched(40, 100, { position: -1, oldest: undefined })).toBe(40);
    expect(nextUnfetched(40, 100, { position: 70, oldest: undefined })).toBe(70);
    expect(nextUnfetched(40, 100, { position: 100, oldest: undefined })).toBeUndefined();
    expect(nextUnfetched(100, 100, undefined)).toBeUndefined();
  });
});

describe('LagMonitor: how old the backlog is', () => {
  it('takes the ages from the oldest record the pipeline holds, without reading the broker', async () => {
    const source = peekingSource({ 0: 40 }, { 0: { low: 0, high: 100 } }, {});
    const held: HeldRecords = { position: 42, oldest: { offset: 42, timestamp: NOW - 30_000, fetchedAt: NOW - 1_500 } };
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const monitor = new LagMonitor(source, () => [t(0)], metrics, logger, { held: () => held, clock });
    const report = await monitor.refresh();
    expect(report.partitions).toEqual([
      { topic: 't', partition: 0, committedOffset: 40, highWatermark: 100, lag: 60, lagSeconds: 30, oldestUnackedAgeMs: 1500 },
    ]);
    expect(source.peeks).toEqual([]);
    expect((await metrics.lagSeconds.get()).values.map((v) => [v.labels, v.value])).toEqual([[{ topic: 't', partition: '0' }, 30]]);
    expect((await metrics.oldestUnackedAge.get()).values.map((v) => [v.labels, v.value])).toEqual([[{ topic: 't', partition: '0' }, 1.5]]);
  });

  it('reads the next record from the broker when the pipeline holds none, once per position', async () => {
    const source = peekingSource({ 0: 40, 1: 5 }, { 0: { low: 0, high: 100 }, 1: { low: 0, high: 9 } }, { 0: { 40: NOW - 60_000, 41: NOW - 50_000 }, 1: {} });
    let held: HeldRecords | undefined;
    const monitor = new LagMonitor(source, () => [t(0), t(1)], createMetrics(new Registry(), { defaultMetrics: false }), logger, {
      held: (tp) => (tp.partition === 0 ? held : undefined),
      clock,
    });
    const first = await monitor.refresh();
    expect(first.partitions.map((p) => [p.lagSeconds, p.oldestUnackedAgeMs])).toEqual([
      [60, null],
      // Lag, but no record to read (transaction markers): nothing waits.
      [0, null],
    ]);
    expect(source.peeks).toEqual([
      [
        { topic: 't', partition: 0, offset: 40 },
        { topic: 't', partition: 1, offset: 5 },
      ],
    ]);
    // Same position: the timestamp found is kept; "no record" is asked again.
    await monitor.refresh();
    expect(source.peeks.slice(1)).toEqual([[{ topic: 't', partition: 1, offset: 5 }]]);
    // Courier acknowledged offset 40 but has not committed it: the next record is 41.
    held = { position: 41, oldest: undefined };
    const third = await monitor.refresh();
    expect(third.partitions[0]?.lagSeconds).toBe(50);
    expect(source.peeks.slice(2)[0]).toEqual([{ topic: 't', partition: 0, offset: 41 }, expect.anything()]);
  });

  it('says 0 without asking when nothing waits: no lag, or every record up to the high watermark acknowledged', async () => {
    const source = peekingSource({ 0: 100, 1: 40 }, { 0: { low: 0, high: 100 }, 1: { low: 0, high: 50 } }, {});
    const monitor = new LagMonitor(source, () => [t(0), t(1)], createMetrics(new Registry(), { defaultMetrics: false }), logger, {
      held: (tp) => (tp.partition === 1 ? { position: 50, oldest: undefined } : undefined),
      clock,
    });
    const report = await monitor.refresh();
    expect(report.partitions.map((p) => [p.lag, p.lagSeconds, p.oldestUnackedAgeMs])).toEqual([
      [0, 0, null],
      [10, 0, null],
    ]);
    expect(source.peeks).toEqual([]);
  });

  it('says null when the broker cannot say, keeps no series for it, and 0 s oldest-unacked age when nothing is held', async () => {
    const source = peekingSource({ 0: 40 }, { 0: { low: 0, high: 100 } }, { 0: { 40: NOW - 1000 } });
    source.peekFails = true;
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const monitor = new LagMonitor(source, () => [t(0)], metrics, logger, { clock });
    expect((await monitor.refresh()).partitions[0]).toMatchObject({ lagSeconds: null, oldestUnackedAgeMs: null });
    expect((await metrics.lagSeconds.get()).values).toEqual([]);
    expect((await metrics.oldestUnackedAge.get()).values.map((v) => v.value)).toEqual([0]);
    source.peekFails = false;
    expect((await monitor.refresh()).partitions[0]?.lagSeconds).toBe(1);
    expect((await metrics.lagSeconds.get()).values.map((v) => v.value)).toEqual([1]);
  });

  it('removes every series of a partition that is no longer assigned', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    let assigned = [t(0), t(1)];
    const source = peekingSource({ 0: 1, 1: 1 }, { 0: { low: 0, high: 3 }, 1: { low: 0, high: 4 } }, { 0: { 1: NOW }, 1: { 1: NOW } });
    const monitor = new LagMonitor(source, () => assigned, metrics, logger, { clock });
    await monitor.refresh();
    assigned = [t(1)];
    await monitor.refresh();
    for (const gauge of [metrics.consumerLag, metrics.lagSeconds, metrics.oldestUnackedAge]) {
      expect((await gauge.get()).values.map((v) => v.labels.partition)).toEqual(['1']);
    }
  });
});

describe('LagMonitor: the first-join notice', () => {
  const row = (partition: number, committedOffset: number | null, lag: number): PartitionLag => ({
    topic: 'orders',
    partition,
    committedOffset,
    highWatermark: lag,
    lag,
    lagSeconds: null,
    oldestUnackedAgeMs: null,
  });

  it('says how many records will be pushed from the beginning: info, warn from LARGE_BACKLOG on', () => {
    expect(backlogNotice('g', 'earliest', [row(0, null, 10), row(1, null, 5)])).toEqual({
      level: 'info',
      message: 'group g has no committed offsets: 15 records on 2 partitions will be pushed from the beginning (auto.offset.reset=earliest)',
      records: 15,
      partitions: ['orders-0', 'orders-1'],
    });
    expect(backlogNotice('g', 'smallest', [row(0, null, LARGE_BACKLOG)])?.level).toBe('warn');
    expect(backlogNotice('g', 'earliest', [row(0, null, LARGE_BACKLOG - 1)])?.level).toBe('info');
  });

  it('names the share of new partitions without offsets, and says nothing for latest, committed or empty partitions', () => {
    expect(backlogNotice('g', 'earliest', [row(0, 3, 10), row(1, null, 5)])?.message).toBe(
      'group g has no committed offsets for 1 of 2 new partitions: 5 records on 1 partition will be pushed from the beginning (auto.offset.reset=earliest)',
    );
    expect(backlogNotice('g', 'latest', [row(0, null, 10)])).toBeUndefined();
    expect(backlogNotice('g', 'earliest', [row(0, 3, 10)])).toBeUndefined();
    expect(backlogNotice('g', 'earliest', [row(0, null, 0)])).toBeUndefined();
  });

  it('is logged once per partition set: not on later refreshes, again for partitions that come back', async () => {
    const { logger: log, lines } = capture();
    let assigned = [t(0), t(1)];
    const source = fakeSource({}, { 0: { low: 0, high: 60_000 }, 1: { low: 10, high: 50_010 }, 2: { low: 0, high: 7 } });
    const monitor = new LagMonitor(source, () => assigned, createMetrics(new Registry(), { defaultMetrics: false }), log, {
      groupId: 'orders-courier',
      offsetReset: 'earliest',
    });
    const notices = () => lines.filter((line) => line.msg.includes('has no committed offsets'));
    await monitor.assignedNow();
    await monitor.refresh();
    expect(notices()).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'group orders-courier has no committed offsets: 110000 records on 2 partitions will be pushed from the beginning (auto.offset.reset=earliest)',
        groupId: 'orders-courier',
        records: 110_000,
        partitions: ['t-0', 't-1'],
      }),
    ]);
    // A cooperative rebalance adds a partition: only it is news.
    assigned = [t(0), t(1), t(2)];
    await monitor.assignedNow();
    expect(notices().slice(1)).toEqual([expect.objectContaining({ level: 30, records: 7, partitions: ['t-2'] })]);
    // t-2 goes and comes back still without a committed offset.
    assigned = [t(0), t(1)];
    await monitor.refresh();
    assigned = [t(0), t(1), t(2)];
    await monitor.assignedNow();
    expect(notices()).toHaveLength(3);
  });

  it('assignedNow refreshes after a refresh already under way, so new partitions are in it', async () => {
    let assigned = [t(0)];
    const waiting: Array<() => void> = [];
    const source = fakeSource({}, { 0: { low: 0, high: 1 }, 1: { low: 0, high: 2 } });
    const committed = source.committed;
    source.committed = async (partitions) => {
      await new Promise<void>((resolve) => waiting.push(resolve));
      return committed(partitions, 0);
    };
    const monitor = new LagMonitor(source, () => assigned, createMetrics(new Registry(), { defaultMetrics: false }), logger);
    const under = monitor.refresh();
    await until(() => waiting.length === 1);
    assigned = [t(0), t(1)];
    const after = monitor.assignedNow();
    waiting[0]?.();
    expect((await under).partitions.map((p) => p.partition)).toEqual([0]);
    await until(() => waiting.length === 2);
    waiting[1]?.();
    expect((await after).partitions.map((p) => p.partition)).toEqual([0, 1]);
  });
});
