import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { parkedHeaders } from '../../src/kafka/parked.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { Pipeline } from '../../src/pipeline/flow.js';
import type { KafkaRecord, TopicPartition } from '../../src/record.js';
import { type DeadLetterWrite, FakeDeadLetters, FakePusher, FakeSource, ok200, ProbeTarget, record, until } from '../helpers/fakes.js';

/** Retry tiers in the pipeline (DESIGN A7), with fakes for Kafka and HTTP; the real broker is in test/integration/tiers.test.ts. */

const TOPIC = 'orders';
const TIER1 = 'orders.retry-60ms';
const TIER2 = 'orders.retry-120ms';
const p0: TopicPartition = { topic: TOPIC, partition: 0 };
const t1: TopicPartition = { topic: TIER1, partition: 0 };
const t2: TopicPartition = { topic: TIER2, partition: 0 };

const app = new ProbeTarget();
beforeAll(() => app.open());
afterAll(() => app.close());

const running: Pipeline[] = [];
afterEach(async () => {
  for (const pipeline of running.splice(0)) await pipeline.stop();
});

function harness(pusher: FakePusher, env: Record<string, string> = {}) {
  const config = loadConfig({
    env: {
      COURIER_GROUP_ID: 'tiers-test',
      COURIER_TOPICS: TOPIC,
      COURIER_TARGET_URL: app.url,
      COURIER_MAX_ATTEMPTS: '2',
      COURIER_RETRY_INITIAL_MS: '1',
      COURIER_RETRY_MAX_MS: '2',
      COURIER_COMMIT_INTERVAL_MS: '10',
      COURIER_RETRY_TIERS: '60ms,120ms',
      ...env,
    },
    readFile: () => {
      throw new Error('no file');
    },
  });
  const registry = new Registry();
  const metrics = createMetrics(registry, {
    defaultMetrics: false,
    topics: [TOPIC],
    tiers: config.routes[0]?.tiers.map((tier) => ({ topic: TOPIC, tier: tier.label })),
  });
  const dlq = new FakeDeadLetters();
  const source = new FakeSource();
  const pipeline = new Pipeline({ config, logger: pino({ level: 'silent' }), metrics, deadLetters: dlq, pusher });
  running.push(pipeline);
  pipeline.attach(source);
  return { pipeline, dlq, source, metrics };
}

/** A parked write as the consumer would fetch it back from its topic. */
function fetchedBack(write: DeadLetterWrite, offset: number): KafkaRecord {
  const headers = parkedHeaders(write.record, write.reason).map((header) => Object.entries(header)[0] as [string, Buffer]);
  return { ...write.record, topic: write.dlqTopic, partition: 0, offset, headers, fetchedAt: Date.now() };
}

async function tierCount(metrics: Metrics, tier: string, state: string): Promise<number> {
  const values = (await metrics.retryTierRecords.get()).values;
  return values.find((v) => v.labels.tier === tier && v.labels.state === state)?.value ?? 0;
}

const failing = { kind: 'response', status: 503 } as const;
const header = (write: DeadLetterWrite, name: string) =>
  parkedHeaders(write.record, write.reason)
    .find((h) => name in h)
    ?.[name]?.toString();

describe('retry tiers in the pipeline', () => {
  it('parks a record that used its attempts in the first tier and lets its partition move on', async () => {
    const pusher = new FakePusher((call) => (call.offset === 0 ? failing : ok200));
    const { pipeline, dlq, source, metrics } = harness(pusher);
    pipeline.onAssign([p0]);
    const before = Date.now();
    pipeline.onRecords([record(0, 0), record(0, 1)]);
    await until(() => source.committed(p0) === 2, 2000, 'both source records committed');

    expect(pusher.callsOf(0, 0)).toHaveLength(2);
    expect(pusher.callsOf(0, 1)).toHaveLength(1);
    expect(dlq.writes).toHaveLength(1);
    const write = dlq.writes[0] as DeadLetterWrite;
    expect(write.dlqTopic).toBe(TIER1);
    expect(write.reason).toMatchObject({ errorType: 'retries_exhausted', httpStatus: 503, attempts: 2, retryTier: '60ms' });
    expect(write.reason.retryDueAt).toBeGreaterThanOrEqual(before + 60);
    expect(write.reason.history).toEqual([expect.objectContaining({ tier: null, attempts: 2, errorType: 'retries_exhausted', httpStatus: 503 })]);
    expect(header(write, 'retry_tier')).toBe('60ms');
    expect(await tierCount(metrics, '60ms', 'written')).toBe(1);
    // A tier write is not a DLQ write.
    expect((await metrics.recordsDeadLettered.get()).values.every((v) => v.value === 0)).toBe(true);
  });

  it('holds a tier partition until its head is due, then delivers the original record with its attempts counted on', async () => {
    const pusher = new FakePusher((call) => (call.topic === TOPIC && call.offset === 0 && call.attempt <= 2 ? failing : ok200));
    const { pipeline, dlq, source, metrics } = harness(pusher);
    pipeline.onAssign([p0, t1]);
    pipeline.onRecords([record(0, 0)]);
    await until(() => dlq.writes.length === 1, 2000, 'the tier write');
    const parked = fetchedBack(dlq.writes[0] as DeadLetterWrite, 7);
    const dueAt = dlq.writes[0]?.reason.retryDueAt as number;
    pipeline.onRecords([parked]);
    await until(() => source.pauseCount(t1) === 1, 1000, 'the tier partition paused until due');
    expect(pipeline.operator.assignment().find((p) => p.topic === TIER1)?.pausedReasons).toContain('retry_wait');
    expect(pusher.calls).toHaveLength(2);

    await until(() => source.committed(t1) === 8, 2000, 'the tier record committed');
    const redelivery = pusher.calls[2];
    expect(redelivery?.topic).toBe(TOPIC); // kafka-topic/partition/offset of the source record
    expect(redelivery?.offset).toBe(0);
    expect(redelivery?.attempt).toBe(3);
    expect(redelivery?.headers['ce-id']).toBe(pusher.calls[0]?.headers['ce-id']);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(source.resumeCount(t1)).toBe(1);
    expect(await tierCount(metrics, '60ms', 'due')).toBe(1);
    expect(await tierCount(metrics, '60ms', 'delivered')).toBe(1);
    // Retry-tier records are not consumed twice in the consumed counter.
    expect((await metrics.recordsConsumed.get()).values.find((v) => v.labels.topic === TOPIC)?.value).toBe(1);
  });

  it('moves a record that keeps failing through every tier and then to the DLQ with its whole history', async () => {
    const pusher = new FakePusher(() => failing);
    const { pipeline, dlq } = harness(pusher);
    pipeline.onAssign([p0, t1, t2]);
    pipeline.onRecords([record(0, 0)]);
    await until(() => dlq.writes.length === 1, 2000, 'tier 1 write');
    pipeline.onRecords([fetchedBack(dlq.writes[0] as DeadLetterWrite, 0)]);
    await until(() => dlq.writes.length === 2, 2000, 'tier 2 write');
    expect(dlq.writes[1]?.dlqTopic).toBe(TIER2);
    pipeline.onRecords([fetchedBack(dlq.writes[1] as DeadLetterWrite, 0)]);
    await until(() => dlq.writes.length === 3, 2000, 'DLQ write');

    const dead = dlq.writes[2] as DeadLetterWrite;
    expect(dead.dlqTopic).toBe('orders.dlq');
    expect(dead.record).toMatchObject({ topic: TOPIC, partition: 0, offset: 0 });
    expect(dead.reason).toMatchObject({ errorType: 'retries_exhausted', attempts: 6, retryTier: '120ms' });
    expect(dead.reason.retryDueAt).toBeUndefined();
    expect(header(dead, 'retry_due_at')).toBeUndefined();
    expect(dead.reason.history?.map((h) => [h.tier, h.attempts])).toEqual([
      [null, 2],
      ['60ms', 2],
      ['120ms', 2],
    ]);
    expect(pusher.calls.map((call) => call.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('dead-letters a record the app rejects while in a tier, without the next tier', async () => {
    const pusher = new FakePusher((call) => (call.attempt <= 2 ? failing : { kind: 'response', status: 422 }));
    const { pipeline, dlq } = harness(pusher);
    pipeline.onAssign([p0, t1]);
    pipeline.onRecords([record(0, 0)]);
    await until(() => dlq.writes.length === 1, 2000, 'tier write');
    pipeline.onRecords([fetchedBack(dlq.writes[0] as DeadLetterWrite, 0)]);
    await until(() => dlq.writes.length === 2, 2000, 'DLQ write');
    expect(dlq.writes[1]?.dlqTopic).toBe('orders.dlq');
    expect(dlq.writes[1]?.reason).toMatchObject({ errorType: 'rejected_by_app', attempts: 3, retryTier: '60ms' });
  });

  it('dead-letters instead when the tier topic refuses the record as too large', async () => {
    const pusher = new FakePusher(() => failing);
    const { pipeline, dlq, source } = harness(pusher);
    dlq.tooLarge.add(TIER1);
    pipeline.onAssign([p0]);
    pipeline.onRecords([record(0, 0)]);
    await until(() => source.committed(p0) === 1, 2000, 'committed after the DLQ write');
    expect(dlq.writes.map((w) => w.dlqTopic)).toEqual(['orders.dlq']);
    expect(dlq.writes[0]?.reason.retryTier).toBeUndefined();
  });

  it('holds the source offset and reports retry_blocked while the tier write fails', async () => {
    const pusher = new FakePusher((call) => (call.offset === 0 ? failing : ok200));
    const { pipeline, dlq, source } = harness(pusher);
    dlq.failFirst = 2;
    const violations: string[] = [];
    source.onCommit = (offsets) => {
      for (const o of offsets) if (o.topic === TOPIC && o.offset > 0 && dlq.writes.length === 0) violations.push(`commit @${o.offset} before the tier write`);
    };
    pipeline.onAssign([p0]);
    pipeline.onRecords([record(0, 0), record(0, 1)]);
    await until(() => dlq.sendCalls === 1, 2000, 'first failed write');
    await until(() => pipeline.operator.notReadyReasons().some((r) => r.code === 'retry_blocked'), 1000, 'retry_blocked');
    await until(() => source.committed(p0) === 2, 5000, 'committed after the third write');
    expect(violations).toEqual([]);
    expect(pipeline.operator.notReadyReasons().map((r) => r.code)).not.toContain('retry_blocked');
  });

  it('parks records in their next tier at the first failure once the route is in an outage, and holds those in their last tier', async () => {
    const pusher = new FakePusher(() => failing);
    const { pipeline, dlq, source } = harness(pusher, {
      COURIER_MAX_ATTEMPTS: '1000',
      COURIER_OUTAGE_AFTER_MS: '1000',
      COURIER_RETRY_MAX_MS: '20',
      COURIER_REQUEST_TIMEOUT_MS: '100',
    });
    pipeline.onAssign([p0, t2]);
    pipeline.onRecords([0, 1, 2, 3].map((offset) => record(0, offset)));
    await until(() => source.committed(p0) === 4, 5000, 'every source record parked');
    expect(dlq.writes.map((w) => [w.dlqTopic, w.reason.errorType])).toEqual([
      [TIER1, 'app_failing'],
      [TIER1, 'app_failing'],
      [TIER1, 'app_failing'],
      [TIER1, 'app_failing'],
    ]);
    // Each record after the first was pushed once: the outage costs them no attempts in memory.
    expect([1, 2, 3].map((offset) => pusher.callsOf(0, offset).length)).toEqual([1, 1, 1]);

    // A record in its last tier has nowhere to wait but here: it probes, and is never dead-lettered for an outage.
    const last = fetchedBack({ ...(dlq.writes[0] as DeadLetterWrite), dlqTopic: TIER2 }, 0);
    pipeline.onRecords([{ ...last, headers: last.headers.filter(([name]) => name !== 'retry_due_at') }]);
    await until(() => pusher.calls.filter((call) => call.attempt >= 2).length >= 3, 5000, 'the last-tier record probing');
    expect(dlq.writes.filter((w) => w.dlqTopic === 'orders.dlq')).toEqual([]);
    expect(source.committed(t2)).toBe(-1);
  });

  it('without tiers, a failure after its attempts goes to the DLQ with no tier headers', async () => {
    const pusher = new FakePusher(() => failing);
    const { pipeline, dlq } = harness(pusher, { COURIER_RETRY_TIERS: '' });
    pipeline.onAssign([p0]);
    pipeline.onRecords([record(0, 0)]);
    await until(() => dlq.writes.length === 1, 2000, 'DLQ write');
    expect(dlq.writes[0]?.dlqTopic).toBe('orders.dlq');
    expect(dlq.writes[0]?.reason.history).toBeUndefined();
    expect(header(dlq.writes[0] as DeadLetterWrite, 'retry_history')).toBeUndefined();
  });
});
