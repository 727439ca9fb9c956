import { describe, expect, inject, it } from 'vitest';
import { headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

describe('delivery against a real broker', () => {
  it('delivers 1,000 records over 4 partitions once each, in order per partition, and commits the end offsets', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 4 });
    const records = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 37}`, value: JSON.stringify({ seq: i }), partition: i % 4 }));
    await produce(bootstrap, topic, records);
    const courierProcess = courier().start();
    await courierProcess.ready();
    await waitFor('every record delivered', () => app.receipts.length >= 1000);
    await waitFor('committed offsets to reach the end offsets', () => committedAtEnd());

    expect(app.receipts).toHaveLength(1000);
    const seen = new Set(app.receipts.map((r) => `${r.partition}/${r.offset}`));
    expect(seen.size).toBe(1000);
    for (let partition = 0; partition < 4; partition++) {
      const offsets = app.receipts.filter((r) => r.partition === partition).map((r) => r.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      expect(offsets).toHaveLength(250);
    }
    const sequences = app.receipts.map((r) => JSON.parse(r.body.toString()).seq as number).sort((a, b) => a - b);
    expect(sequences).toEqual(records.map((_, i) => i));
    expect(await readAll(bootstrap, `${topic}.dlq`)).toEqual([]);
  });

  it('retries 500, 500, then delivers on the 200 with courier-attempt 3 and nothing in the DLQ', async () => {
    const answers = [500, 500, 200];
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 1, handler: () => ({ status: answers.shift() ?? 200 }) });
    await produce(bootstrap, topic, [{ key: 'a', value: 'retry me' }]);
    courier().start();
    await waitFor('committed offset 1', () => committedAtEnd());
    expect(app.receipts.map((r) => [r.attempt, r.answer?.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    // The idempotency key stays the same across attempts.
    expect(new Set(app.receipts.map((r) => r.headers['ce-id'])).size).toBe(1);
    expect(await readAll(bootstrap, `${topic}.dlq`)).toEqual([]);
  });

  it('dead-letters a 400 at once with every A3 header, and commits the source offset', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 1, handler: (r) => ({ status: r.body.toString() === 'bad' ? 400 : 200 }) });
    await produce(bootstrap, topic, [
      { key: 'k1', value: 'bad', headers: { trace: 'abc' } },
      { key: 'k2', value: 'good' },
    ]);
    courier().start();
    await waitFor('committed offsets at the end', () => committedAtEnd());
    expect(app.receipts.filter((r) => r.body.toString() === 'bad')).toHaveLength(1);
    const [dead, ...rest] = await readAll(bootstrap, `${topic}.dlq`);
    expect(rest).toEqual([]);
    expect(dead?.key?.toString()).toBe('k1');
    expect(dead?.value?.toString()).toBe('bad');
    expect(headerOf(dead!, 'trace')).toBe('abc');
    expect(headerOf(dead!, 'original_topic')).toBe(topic);
    expect(headerOf(dead!, 'original_partition')).toBe('0');
    expect(headerOf(dead!, 'original_offset')).toBe('0');
    expect(headerOf(dead!, 'error_type')).toBe('rejected_by_app');
    expect(headerOf(dead!, 'error_message')).toContain('400');
    expect(headerOf(dead!, 'http_status')).toBe('400');
    expect(headerOf(dead!, 'attempts')).toBe('1');
    expect(new Date(headerOf(dead!, 'failed_at') ?? '').toISOString()).toBe(headerOf(dead!, 'failed_at'));
  });

  it('dead-letters an always-503 record after COURIER_MAX_ATTEMPTS', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 1, handler: () => ({ status: 503 }), env: { COURIER_MAX_ATTEMPTS: '4' } });
    await produce(bootstrap, topic, [{ key: 'p', value: 'poison' }]);
    courier().start();
    await waitFor('committed offset after the DLQ write', () => committedAtEnd());
    expect(app.receipts.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead).toHaveLength(1);
    expect(headerOf(dead[0]!, 'error_type')).toBe('retries_exhausted');
    expect(headerOf(dead[0]!, 'http_status')).toBe('503');
    expect(headerOf(dead[0]!, 'attempts')).toBe('4');
  });
});
