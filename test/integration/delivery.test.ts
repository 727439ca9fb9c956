import { afterEach, describe, expect, inject, it } from 'vitest';
import { TestApp } from '../helpers/app.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { committedOffsets, createTopics, endOffsets, headerOf, produce, readAll, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const running: Array<{ close(): Promise<unknown> }> = [];

afterEach(async () => {
  for (const thing of running.splice(0).reverse()) await thing.close();
});

async function setup(partitions: number, handler?: ConstructorParameters<typeof TestApp>[0], env: Record<string, string> = {}) {
  const topic = uniqueName('orders');
  const groupId = uniqueName('group');
  await createTopics(bootstrap, [
    { topic, partitions },
    { topic: `${topic}.dlq`, partitions: 1 },
  ]);
  const app = new TestApp(handler);
  await app.listen();
  running.push(app);
  const courier = new CourierProcess(courierEnv(bootstrap, { COURIER_GROUP_ID: groupId, COURIER_TOPICS: topic, COURIER_TARGET_URL: app.url, ...env }));
  running.push({ close: () => courier.stop() });
  return { topic, groupId, app, courier };
}

async function committedEqualsEnd(topic: string, groupId: string): Promise<boolean> {
  const [committed, ends] = await Promise.all([committedOffsets(bootstrap, groupId, topic), endOffsets(bootstrap, topic)]);
  return [...ends].every(([partition, end]) => committed.get(partition) === end);
}

describe('delivery against a real broker', () => {
  it('delivers 1,000 records over 4 partitions once each, in order per partition, and commits the end offsets', async () => {
    const { topic, groupId, app, courier } = await setup(4);
    const records = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 37}`, value: JSON.stringify({ seq: i }), partition: i % 4 }));
    await produce(bootstrap, topic, records);
    courier.start();
    await courier.ready();
    await waitFor('every record delivered', () => app.receipts.length >= 1000);
    await waitFor('committed offsets to reach the end offsets', () => committedEqualsEnd(topic, groupId));

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
    const { topic, groupId, app, courier } = await setup(1, () => ({ status: answers.shift() ?? 200 }));
    await produce(bootstrap, topic, [{ key: 'a', value: 'retry me' }]);
    courier.start();
    await waitFor('committed offset 1', () => committedEqualsEnd(topic, groupId));
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
    const { topic, groupId, app, courier } = await setup(1, (r) => ({ status: r.body.toString() === 'bad' ? 400 : 200 }));
    await produce(bootstrap, topic, [
      { key: 'k1', value: 'bad', headers: { trace: 'abc' } },
      { key: 'k2', value: 'good' },
    ]);
    courier.start();
    await waitFor('committed offsets at the end', () => committedEqualsEnd(topic, groupId));
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
    const { topic, groupId, app, courier } = await setup(1, () => ({ status: 503 }), { COURIER_MAX_ATTEMPTS: '4' });
    await produce(bootstrap, topic, [{ key: 'p', value: 'poison' }]);
    courier.start();
    await waitFor('committed offset after the DLQ write', () => committedEqualsEnd(topic, groupId));
    expect(app.receipts.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead).toHaveLength(1);
    expect(headerOf(dead[0]!, 'error_type')).toBe('retries_exhausted');
    expect(headerOf(dead[0]!, 'http_status')).toBe('503');
    expect(headerOf(dead[0]!, 'attempts')).toBe('4');
  });
});
