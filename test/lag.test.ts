import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LagMonitor, type LagSource } from '../src/lag.js';
import { createMetrics } from '../src/metrics.js';
import type { TopicPartition } from '../src/record.js';

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
    expect(report.partitions).toEqual([
      { topic: 't', partition: 0, committedOffset: 40, highWatermark: 100, lag: 60 },
      { topic: 't', partition: 1, committedOffset: null, highWatermark: 12, lag: 7 },
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
