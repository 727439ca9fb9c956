import { describe, expect, inject, it } from 'vitest';
import type { Answer, Receipt } from '../helpers/app.js';
import { type BatchRecord, batchRecords, isBatch, type ListedFailure, listed, recordReceipts } from '../helpers/batch.js';
import { headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

/** DESIGN A6 on the real broker: many records per request, answered per record. */
const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

// The records are JSON without a content-type header: the route says so, and the batch carries them parsed.
const BATCH = { COURIER_DELIVERY: 'batch', COURIER_BATCH_LINGER_MS: '50', COURIER_DEFAULT_CONTENT_TYPE: 'application/json' };
const records = (count: number) => Array.from({ length: count }, (_, i) => ({ key: `k${i % 13}`, value: JSON.stringify({ i }) }));
const indexOf = (record: BatchRecord) => (record.value as { i: number }).i;
const acknowledged = (receipts: readonly Receipt[]) =>
  new Set(
    receipts
      .flatMap(recordReceipts)
      .filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300)
      .map((r) => `${r.partition}/${r.offset}`),
  );

describe('batch delivery', () => {
  it('mixed answers (2xx, listed 422, listed 503 with retryAfterMs): each record acknowledged or dead-lettered exactly once, all committed', async () => {
    const overloadedOnce = new Map<number, number>(); // record index → when it was answered 503
    let retriedTooSoon = 0;
    const handler = (receipt: Receipt): Answer => {
      if (!isBatch(receipt)) return { status: 500 };
      const failures: ListedFailure[] = [];
      for (const record of batchRecords(receipt)) {
        const i = indexOf(record);
        if (i % 50 === 7) failures.push({ id: record.id, status: 422, reason: `unknown sku ${i}` });
        else if (i % 10 === 3) {
          const refusedAt = overloadedOnce.get(i);
          if (refusedAt === undefined) {
            overloadedOnce.set(i, Date.now());
            failures.push({ id: record.id, status: 503, retryAfterMs: 300 });
          } else if (Date.now() - refusedAt < 290) retriedTooSoon++;
        }
      }
      return listed(failures);
    };
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({ partitions: 4, handler, env: { ...BATCH, COURIER_ORDERING: 'key' } });
    await produce(bootstrap, topic, records(300));
    const c = await courier().start().ready();
    await waitFor('every record acknowledged or dead-lettered, and committed', committedAtEnd, 60_000);

    const dlq = await readAll(bootstrap, dlqTopic);
    const poison = records(300).filter((_, i) => i % 50 === 7).length;
    expect(dlq).toHaveLength(poison);
    for (const record of dlq) {
      const i = (JSON.parse(String(record.value)) as { i: number }).i;
      expect(i % 50).toBe(7);
      expect(headerOf(record, 'error_type')).toBe('rejected_by_app');
      expect(headerOf(record, 'http_status')).toBe('422');
      expect(headerOf(record, 'app_response')).toBe(`unknown sku ${i}`);
      expect(headerOf(record, 'error_message')).toContain(`unknown sku ${i}`);
    }
    // Everything else acknowledged; overloaded records were sent again, not before retryAfterMs.
    expect(acknowledged(app.receipts).size).toBe(300 - poison);
    expect(overloadedOnce.size).toBe(30);
    expect(retriedTooSoon).toBe(0);
    // Batches, not one request per record.
    expect(app.receipts.every(isBatch)).toBe(true);
    expect(app.receipts.length).toBeLessThan(150);
    const metrics = await fetch(`${await c.apiUrl()}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(new RegExp(`courier_batch_size_count\\{topic="${topic}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`courier_records_delivered_total\\{topic="${topic}"\\} ${300 - poison}`));
  }, 90_000);

  it('a whole-batch 500 because of one poison record: split in halves until it stands alone, only it reaches the DLQ', async () => {
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: (receipt) => {
        const batch = batchRecords(receipt);
        return batch.some((record) => indexOf(record) === 20) ? { status: 500, body: 'cannot process the batch' } : { status: 200 };
      },
      env: { ...BATCH, COURIER_BATCH_LINGER_MS: '500' },
    });
    await produce(bootstrap, topic, records(50));
    await courier().start().ready();
    await waitFor('all committed', committedAtEnd, 60_000);

    const dlq = await readAll(bootstrap, dlqTopic);
    expect(dlq.map((record) => (JSON.parse(String(record.value)) as { i: number }).i)).toEqual([20]);
    expect(headerOf(dlq[0]!, 'error_type')).toBe('retries_exhausted');
    expect(headerOf(dlq[0]!, 'http_status')).toBe('500');
    expect(headerOf(dlq[0]!, 'app_response')).toBe('cannot process the batch');
    expect(acknowledged(app.receipts).size).toBe(49);
    // The poison record was alone in its last requests; its neighbours paid a few requests each.
    const sizes = app.receipts.filter((r) => batchRecords(r).some((record) => indexOf(record) === 20)).map((r) => batchRecords(r).length);
    expect(sizes.at(-1)).toBe(1);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    const triesOf = new Map<number, number>();
    for (const receipt of app.receipts) for (const record of batchRecords(receipt)) triesOf.set(indexOf(record), (triesOf.get(indexOf(record)) ?? 0) + 1);
    for (const [i, tries] of triesOf) if (i !== 20) expect(tries).toBeLessThanOrEqual(Math.ceil(Math.log2(50)) + 1);
  }, 90_000);

  it('a neighbour of a poison record keeps its whole attempt budget: one failure of its own after the split is retried, not dead-lettered', async () => {
    let neighbourFailedAlone = false;
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: (receipt) => {
        const batch = batchRecords(receipt);
        if (batch.some((record) => indexOf(record) === 20)) return { status: 500 };
        if (batch.length === 1 && indexOf(batch[0]!) === 21 && !neighbourFailedAlone) {
          neighbourFailedAlone = true;
          return { status: 503 };
        }
        return { status: 200 };
      },
      // Few attempts: the split of 64 records alone takes 6 shared tries, more than the budget.
      env: { ...BATCH, COURIER_BATCH_LINGER_MS: '500', COURIER_MAX_ATTEMPTS: '3' },
    });
    await produce(bootstrap, topic, records(64));
    await courier().start().ready();
    await waitFor('all committed', committedAtEnd, 60_000);
    expect(neighbourFailedAlone).toBe(true);
    const dlq = await readAll(bootstrap, dlqTopic);
    expect(dlq.map((record) => (JSON.parse(String(record.value)) as { i: number }).i)).toEqual([20]);
    expect(headerOf(dlq[0]!, 'attempts')).toBe('3');
    expect(acknowledged(app.receipts).size).toBe(63);
  }, 90_000);

  it('a 2xx listing every record as failed is an outage: the route is held, nothing is dead-lettered', async () => {
    let firstAt: number | undefined;
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 2,
      // For 6 s from the first request, every record is listed as failed.
      handler: (receipt) => {
        firstAt ??= Date.now();
        return Date.now() - firstAt < 6_000 ? listed(batchRecords(receipt).map((record) => ({ id: record.id, status: 503 }))) : { status: 200 };
      },
      // Retry waits (at least 0.3 + 0.6 + 0.6 s) longer than the outage window, as the defaults are.
      env: { ...BATCH, COURIER_OUTAGE_AFTER_MS: '1000', COURIER_MAX_ATTEMPTS: '4', COURIER_RETRY_INITIAL_MS: '600', COURIER_RETRY_MAX_MS: '1200' },
    });
    await produce(bootstrap, topic, records(40));
    const c = await courier().start().ready();
    await waitFor('readyz app_failing', async () => JSON.stringify((await c.api('/readyz')).body).includes('app_failing'), 10_000);
    await waitFor('all committed', committedAtEnd, 60_000);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
    expect(acknowledged(app.receipts).size).toBe(40);
  }, 90_000);

  it('carries the A6 body: ids, offsets as strings, parsed JSON values, base64 keys, headers and binary values, tombstones, attempt', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      env: { ...BATCH, COURIER_SIGNING_SECRET: `whsec_${Buffer.from('k'.repeat(32)).toString('base64')}` },
    });
    await produce(bootstrap, topic, [
      { key: 'order-7', value: '{"order":7}', headers: { 'content-type': 'application/json' } },
      { key: Buffer.from([0xff, 0x00]), value: Buffer.from([1, 2, 3]) },
      { key: 'gone', value: null },
    ]);
    await courier().start().ready();
    await waitFor('all committed', committedAtEnd, 30_000);
    const receipt = app.receipts[0]!;
    expect(receipt.headers['content-type']).toBe('application/json');
    expect(receipt.headers['courier-batch-size']).toBe('3');
    expect(receipt.headers['webhook-id']).toBe(`${topic}-0-0`);
    expect(String(receipt.headers['webhook-signature'])).toMatch(/^v1,/);
    const [json, binary, tombstone] = batchRecords(receipt);
    expect(json).toMatchObject({
      id: `${topic}-0-0`,
      topic,
      partition: 0,
      offset: '0',
      key: Buffer.from('order-7').toString('base64'),
      keyText: 'order-7',
      contentType: 'application/json',
      value: { order: 7 },
      attempt: 1,
    });
    expect(json!.headers).toEqual([['content-type', Buffer.from('application/json').toString('base64')]]);
    expect(binary).toMatchObject({ offset: '1', key: Buffer.from([0xff, 0x00]).toString('base64'), valueBase64: Buffer.from([1, 2, 3]).toString('base64') });
    expect(binary).not.toHaveProperty('keyText');
    expect(binary).not.toHaveProperty('value');
    expect(tombstone).toMatchObject({ offset: '2', tombstone: true });
    expect(tombstone).not.toHaveProperty('value');
    expect(tombstone).not.toHaveProperty('valueBase64');
  }, 60_000);
});
