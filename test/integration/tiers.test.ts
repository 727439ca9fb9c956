import { describe, expect, inject, it } from 'vitest';
import type { Receipt } from '../helpers/app.js';
import { committedOffsets, createTopics, endOffsets, headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

/** Retry tiers on the real broker (DESIGN A7): records wait in Kafka, their partitions move on. */

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

/** The tier topics of `topic` for these delays, created with one partition each. */
async function tierTopics(topic: string, delays: readonly string[]): Promise<string[]> {
  const topics = delays.map((delay) => `${topic}.retry-${delay}`);
  await createTopics(
    bootstrap,
    topics.map((name) => ({ topic: name, partitions: 1 })),
  );
  return topics;
}

const succeeded = (receipts: readonly Receipt[], body: string) => receipts.filter((r) => r.body.toString() === body && r.answer?.status === 200);

describe('retry tiers', () => {
  it('delivers a record from its second tier while the records behind it go on, never committing past it before its tier write', async () => {
    let firstAttemptAt: number | undefined;
    const { topic, groupId, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: (r) => {
        if (r.body.toString() !== 'slow') return { status: 200 };
        firstAttemptAt ??= r.at;
        return { status: r.at - firstAttemptAt < 6000 ? 500 : 200 };
      },
      env: { COURIER_MAX_ATTEMPTS: '2', COURIER_RETRY_TIERS: '2s,5s' },
    });
    const [tier1, tier2] = await tierTopics(topic, ['2s', '5s']);
    await produce(bootstrap, topic, [
      { key: 'k', value: 'slow', partition: 0 },
      ...Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `r${i}`, partition: 0 })),
    ]);
    const c = courier().start();

    // Sampled all along: whenever the source offset is past the slow record, its tier write is in Kafka.
    const violations: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const source = (await committedOffsets(bootstrap, groupId, topic)).get(0) ?? -1;
        const written = (await endOffsets(bootstrap, tier1 as string)).get(0) ?? 0;
        if (source > 0 && written === 0) violations.push(`source committed at ${source} before the tier write`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await waitFor('the slow record delivered', () => succeeded(app.receipts, 'slow').length === 1, 30_000);
      await waitFor('every offset committed', committedAtEnd, 30_000);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(violations).toEqual([]);

    const slow = app.receipts.filter((r) => r.body.toString() === 'slow');
    const success = succeeded(app.receipts, 'slow')[0] as Receipt;
    // 2 in memory, 2 in tier 2s, the 5th in tier 5s: delivered as the source record.
    expect(slow.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(success.topic).toBe(topic);
    expect(success.offset).toBe(0);
    expect(success.headers['ce-id']).toBe(slow[0]?.headers['ce-id']);
    expect(success.at - (firstAttemptAt as number)).toBeGreaterThanOrEqual(6000);
    // The partition was never held: the records behind it were delivered before its first tier attempt.
    const others = app.receipts.filter((r) => r.body.toString().startsWith('r'));
    expect(others).toHaveLength(10);
    expect(Math.max(...others.map((r) => r.at))).toBeLessThan((slow[2] as Receipt).at);
    expect((await readAll(bootstrap, tier1 as string)).map((r) => headerOf(r, 'retry_tier'))).toEqual(['2s']);
    expect((await readAll(bootstrap, tier2 as string)).map((r) => headerOf(r, 'attempts'))).toEqual(['4']);
    for (const tier of [tier1, tier2]) expect((await committedOffsets(bootstrap, groupId, tier as string)).get(0)).toBe(1);
    const metrics = await fetch(`${await c.apiUrl()}/metrics`).then((r) => r.text());
    expect(metrics).toContain(`courier_retry_tier_records{topic="${topic}",tier="5s",state="delivered"} 1`);
    expect(metrics).toContain(`courier_retry_tier_records{topic="${topic}",tier="2s",state="written"} 1`);
  });

  it('delivers a record whose tier write landed before a kill -9 took the source commit with it', async () => {
    let failing = true;
    const { topic, groupId, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: () => ({ status: failing ? 500 : 200 }),
      // Nothing is committed on a schedule before the kill.
      env: { COURIER_MAX_ATTEMPTS: '1', COURIER_RETRY_TIERS: '2s', COURIER_COMMIT_INTERVAL_MS: '600000', COURIER_COMMIT_EVERY: '1000000' },
    });
    const [tier] = await tierTopics(topic, ['2s']);
    await produce(bootstrap, topic, [{ key: 'k', value: 'parked', partition: 0 }]);
    const first = courier().start();
    await waitFor('the tier write', async () => ((await endOffsets(bootstrap, tier as string)).get(0) ?? 0) === 1, 30_000);
    await first.kill();
    expect((await committedOffsets(bootstrap, groupId, topic)).get(0) ?? -1).toBeLessThan(1);

    failing = false;
    courier({ COURIER_COMMIT_INTERVAL_MS: '200' }).start();
    await waitFor('everything committed', committedAtEnd, 60_000);
    await waitFor('the tier committed too', async () => (await committedOffsets(bootstrap, groupId, tier as string)).get(0) === 1, 30_000);
    // Delivered: from the source again and from its tier (a duplicate, which at-least-once allows).
    expect(succeeded(app.receipts, 'parked').length).toBeGreaterThanOrEqual(1);
  });

  it('dead-letters a record that fails every tier, with its whole history', async () => {
    const { topic, dlqTopic, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: () => ({ status: 500, body: 'still broken' }),
      env: { COURIER_MAX_ATTEMPTS: '1', COURIER_RETRY_TIERS: '1s,2s' },
    });
    await tierTopics(topic, ['1s', '2s']);
    await produce(bootstrap, topic, [{ key: 'k', value: 'doomed', partition: 0, headers: { trace: 'abc' } }]);
    courier().start();
    const [dead] = await waitFor('the DLQ record', async () => {
      const records = await readAll(bootstrap, dlqTopic);
      return records.length > 0 ? records : undefined;
    });
    await waitFor('everything committed', committedAtEnd, 30_000);
    expect(dead?.value?.toString()).toBe('doomed');
    expect(headerOf(dead!, 'trace')).toBe('abc');
    expect(dead?.headers.filter(([name]) => name === 'original_topic')).toHaveLength(1);
    expect(headerOf(dead!, 'original_topic')).toBe(topic);
    expect(headerOf(dead!, 'original_offset')).toBe('0');
    expect(headerOf(dead!, 'error_type')).toBe('retries_exhausted');
    expect(headerOf(dead!, 'http_status')).toBe('500');
    expect(headerOf(dead!, 'attempts')).toBe('3');
    expect(headerOf(dead!, 'retry_tier')).toBe('2s');
    expect(headerOf(dead!, 'retry_due_at')).toBeUndefined();
    const history = JSON.parse(headerOf(dead!, 'retry_history') ?? '[]') as Array<{ tier: string | null; attempts: number; httpStatus: number }>;
    expect(history.map((h) => [h.tier, h.attempts, h.httpStatus])).toEqual([
      [null, 1, 500],
      ['1s', 1, 500],
      ['2s', 1, 500],
    ]);
  });

  it('holds the partition and says why while a retry topic is missing, then moves on once it exists', async () => {
    const { topic, app, courier, committed } = await scenario({
      partitions: 1,
      handler: (r) => ({ status: r.body.toString() === 'fails' ? 500 : 200 }),
      env: { COURIER_MAX_ATTEMPTS: '1', COURIER_RETRY_TIERS: '1h', KAFKA_TOPIC_METADATA_PROPAGATION_MAX_MS: '1000' },
    });
    await produce(bootstrap, topic, [
      { key: 'a', value: 'fails', partition: 0 },
      { key: 'b', value: 'fine', partition: 0 },
    ]);
    const c = courier().start();
    await waitFor('readiness to name the missing topic and the blocked write', async () => {
      const codes = ((await c.api('/readyz')).body.reasons as Array<{ code: string }>).map((r) => r.code);
      return codes.includes('retry_topic_missing') && codes.includes('retry_blocked');
    });
    expect((await committed()).get(0) ?? -1).toBeLessThan(1);
    expect(app.receipts.filter((r) => r.body.toString() === 'fine')).toHaveLength(0);

    await tierTopics(topic, ['1h']);
    await waitFor('both committed once the tier write lands', async () => (await committed()).get(0) === 2, 60_000);
    expect(succeeded(app.receipts, 'fine')).toHaveLength(1);
  });
});
