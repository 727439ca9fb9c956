import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics, HotHistogram } from '../src/metrics.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

describe('HotHistogram', () => {
  it('exposes exactly what a prom-client Histogram exposes for the same observations (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.constantFrom('orders', 'payments', 'a"b\\c'), fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(...BUCKETS))),
          {
            maxLength: 200,
          },
        ),
        async (observations) => {
          const expected = new Registry();
          const actual = new Registry();
          const reference = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['topic'], buckets: BUCKETS, registers: [expected] });
          const hot = new HotHistogram({ name: 'h_seconds', help: 'help text', labelNames: ['topic'], buckets: BUCKETS, registers: [actual] });
          for (const [topic, value] of observations) {
            reference.labels({ topic }).observe(value);
            hot.labels({ topic }).observe(value);
          }
          expect(await actual.metrics()).toBe(await expected.metrics());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('matches prom-client without labels, and after a registry reset', async () => {
    const expected = new Registry();
    const actual = new Registry();
    const reference = new Histogram({ name: 'poll_seconds', help: 'poll', buckets: [0.1, 1], registers: [expected] });
    const hot = new HotHistogram({ name: 'poll_seconds', help: 'poll', buckets: [0.1, 1], registers: [actual] });
    for (const value of [0.05, 0.1, 0.5, 7]) {
      reference.observe(value);
      hot.observe(value);
    }
    expect(await actual.metrics()).toBe(await expected.metrics());
    // The JSON form too (prom-client adds exemplar slots, which Courier does not use).
    const plain = async (registry: Registry) =>
      (await registry.getMetricsAsJSON()).map((metric) => ({
        ...metric,
        values: metric.values.map((v) => ({ labels: v.labels, value: v.value, metricName: (v as { metricName?: string }).metricName })),
      }));
    expect(await plain(actual)).toEqual(await plain(expected));
    actual.resetMetrics();
    hot.observe(0.5);
    expect(await actual.metrics()).toContain('poll_seconds_count 1');
  });
});

describe('hot-path counters and gauge', () => {
  it('hand their plain-number increments to prom-client when scraped, and keep counting across scrapes', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false });
    const delivered = metrics.recordsDelivered.hot({ topic: 'orders' });
    expect(metrics.recordsDelivered.hot({ topic: 'orders' })).toBe(delivered);
    delivered.inc();
    delivered.inc(2);
    metrics.deliveryAttempts.hot({ topic: 'orders', result: '5xx' }).inc();
    metrics.inFlight.hot.value = 7;
    let text = await registry.metrics();
    expect(text).toContain('courier_records_delivered_total{topic="orders"} 3');
    expect(text).toContain('courier_delivery_attempts_total{topic="orders",result="5xx"} 1');
    expect(text).toContain('courier_in_flight 7');
    delivered.inc();
    metrics.recordsDelivered.inc({ topic: 'orders' }, 10); // the ordinary prom-client way still adds up
    metrics.inFlight.hot.value = 0;
    text = await registry.metrics();
    expect(text).toContain('courier_records_delivered_total{topic="orders"} 14');
    expect(text).toContain('courier_in_flight 0');
  });
});

describe('labelled counters before their first event', () => {
  it('are exported at 0 for every configured topic and every known result, reason and type', async () => {
    const registry = new Registry();
    createMetrics(registry, { defaultMetrics: false, topics: ['orders', 'payments'] });
    const text = await registry.metrics();
    for (const topic of ['orders', 'payments']) {
      expect(text).toContain(`courier_records_consumed_total{topic="${topic}"} 0`);
      expect(text).toContain(`courier_records_delivered_total{topic="${topic}"} 0`);
      for (const reason of ['rejected_by_app', 'retries_exhausted', 'record_too_large', 'too_many_headers', 'headers_too_large']) {
        expect(text).toContain(`courier_records_dead_lettered_total{topic="${topic}",reason="${reason}"} 0`);
      }
      for (const result of ['2xx', '3xx', '4xx', '5xx', 'timeout', 'connection_lost', 'unreachable']) {
        expect(text).toContain(`courier_delivery_attempts_total{topic="${topic}",result="${result}"} 0`);
      }
      expect(text).toContain(`courier_delivery_duration_seconds_count{topic="${topic}"} 0`);
    }
    for (const result of ['success', 'failure']) expect(text).toContain(`courier_commits_total{result="${result}"} 0`);
    for (const type of ['assign', 'revoke', 'lost']) expect(text).toContain(`courier_rebalances_total{type="${type}"} 0`);
  });

  it('then count from 0: a hot counter child adds to the zero series', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false, topics: ['orders'] });
    metrics.recordsDelivered.hot({ topic: 'orders' }).inc(2);
    const text = await registry.metrics();
    expect(text).toContain('courier_records_delivered_total{topic="orders"} 2');
    expect(text.match(/courier_records_delivered_total\{topic="orders"\}/g)).toHaveLength(1);
  });
});
