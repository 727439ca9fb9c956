import { describe, expect, it } from 'vitest';
import type { DeadLetterRecord } from '../../src/kafka/dlq-reader.js';
import { matchesFilter, readRange } from '../../src/kafka/dlq-reader.js';
import { parkedHeaders, readParked } from '../../src/kafka/parked.js';
import { REDRIVE_LIMIT, RedriveFailed, type RedriveRequest, redrive } from '../../src/kafka/redrive.js';
import type { KafkaRecord } from '../../src/record.js';

/** A DLQ record as the reader hands it over. */
function dead(
  offset: number,
  fields: { topic?: string; status?: number; errorType?: string; redriveCount?: number; omitted?: boolean } = {},
): DeadLetterRecord {
  const own: Array<[string, Buffer]> = [['trace', Buffer.from('t1')]];
  if (fields.redriveCount !== undefined) own.push(['redrive_count', Buffer.from(String(fields.redriveCount))]);
  const source: KafkaRecord = {
    topic: fields.topic ?? 'orders',
    partition: 2,
    offset: 100 + offset,
    timestamp: 5,
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    headers: own,
    fetchedAt: 0,
  };
  const headers = parkedHeaders(
    source,
    { errorType: fields.errorType ?? 'rejected_by_app', errorMessage: 'no', httpStatus: fields.status ?? 422, attempts: 1, failedAt: new Date(0) },
    fields.omitted ?? false,
  ).map((h) => Object.entries(h)[0] as [string, Buffer]);
  const record: KafkaRecord = { ...source, topic: 'orders.dlq', partition: 0, offset, headers };
  return { record, parked: readParked(record) };
}

function reader(records: DeadLetterRecord[]) {
  const stats = { visited: 0 };
  return {
    stats,
    async replay(visit: (entry: DeadLetterRecord) => Promise<boolean> | boolean) {
      for (const entry of records) {
        stats.visited++;
        if (!(await visit(entry))) return;
      }
    },
  };
}

function setup(records: DeadLetterRecord[], request: Partial<RedriveRequest> = {}) {
  const source = reader(records);
  const writes: Array<{ topic: string; record: KafkaRecord; headers: Array<[string, string]> }> = [];
  let now = 1_000_000;
  const sleeps: number[] = [];
  const clock = {
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
  };
  const writer = {
    write: async (topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>) => {
      writes.push({
        topic,
        record,
        headers: headers.map((h) => Object.entries(h).map(([n, v]) => [n, v.toString()] as [string, string])[0] as [string, string]),
      });
    },
  };
  const full: RedriveRequest = { topic: 'orders', dlqTopic: 'orders.dlq', limit: 1000, dryRun: false, ratePerSecond: 100, ...request };
  return { run: () => redrive({ read: (_topic, _filter, visit) => source.replay(visit) }, writer, full, clock), writes, sleeps, source };
}

describe('DLQ redrive', () => {
  it('writes matching records back to their topic with their own headers, the redrive headers, and a new timestamp', async () => {
    const { run, writes } = setup([dead(0), dead(1, { status: 400 }), dead(2, { topic: 'payments' })], { httpStatus: 422 });
    expect(await run()).toEqual({ matched: 1, redriven: 1, skipped: 0 });
    expect(writes).toHaveLength(1);
    expect(writes[0]?.topic).toBe('orders');
    expect(writes[0]?.record).toMatchObject({ topic: 'orders', partition: 2, offset: 100, timestamp: 1_000_000, value: Buffer.from('v') });
    expect(writes[0]?.headers).toEqual([
      ['trace', 't1'],
      ['courier_redriven_from', 'orders.dlq-0-0'],
      ['redrive_count', '1'],
    ]);
  });

  it('counts only in a dry run', async () => {
    const { run, writes } = setup([dead(0), dead(1), dead(2, { redriveCount: REDRIVE_LIMIT })], { dryRun: true });
    expect(await run()).toEqual({ matched: 3, redriven: 2, skipped: 1 });
    expect(writes).toEqual([]);
  });

  it('skips records redriven 3 times already, and records whose value the DLQ omitted', async () => {
    const { run, writes } = setup([dead(0, { redriveCount: 2 }), dead(1, { redriveCount: 3 }), dead(2, { omitted: true })]);
    expect(await run()).toEqual({ matched: 3, redriven: 1, skipped: 2 });
    expect(writes[0]?.headers.at(-1)).toEqual(['redrive_count', '3']);
  });

  it('stops reading at the limit of matching records', async () => {
    const { run, source } = setup([dead(0, { status: 400 }), dead(1), dead(2), dead(3)], { httpStatus: 422, limit: 2 });
    expect(await run()).toEqual({ matched: 2, redriven: 2, skipped: 0 });
    expect(source.stats.visited).toBe(3);
  });

  it('writes at most ratePerSecond records a second', async () => {
    const { run, sleeps } = setup(
      Array.from({ length: 5 }, (_, i) => dead(i)),
      { ratePerSecond: 4 },
    );
    await run();
    expect(sleeps).toEqual([250, 250, 250, 250]);
  });

  it('stops at a failed write, saying how far it got', async () => {
    const { run } = setup([dead(0), dead(1)]);
    let calls = 0;
    const failing = redrive(
      { read: async (_t, _f, visit) => void ((await visit(dead(0))) && (await visit(dead(1)))) },
      {
        write: async () => {
          if (++calls === 2) throw new Error('Broker: not authorized');
        },
      },
      { topic: 'orders', dlqTopic: 'orders.dlq', limit: 10, dryRun: false, ratePerSecond: 10_000 },
    );
    await expect(failing).rejects.toBeInstanceOf(RedriveFailed);
    await expect(failing).rejects.toMatchObject({ counts: { matched: 2, redriven: 1, skipped: 0 }, message: expect.stringContaining('orders.dlq-0-1') });
    expect(await run()).toMatchObject({ redriven: 2 });
  });
});

describe('DLQ reader filters', () => {
  it('reads only the offsets asked for, within what the partition has', () => {
    expect(readRange(0, 10, {})).toEqual({ from: 0, to: 9 });
    expect(readRange(3, 10, { fromOffset: 1, toOffset: 5 })).toEqual({ from: 3, to: 5 });
    expect(readRange(0, 10, { fromOffset: 12 })).toBeUndefined();
    expect(readRange(0, 0, {})).toBeUndefined();
  });

  it('matches by source topic, error type and HTTP status', () => {
    const { parked } = dead(0, { status: 503, errorType: 'retries_exhausted' });
    expect(matchesFilter(parked, { topic: 'orders' })).toBe(true);
    expect(matchesFilter(parked, { topic: 'payments' })).toBe(false);
    expect(matchesFilter(parked, { topic: 'orders', errorType: 'retries_exhausted', httpStatus: 503 })).toBe(true);
    expect(matchesFilter(parked, { topic: 'orders', httpStatus: 500 })).toBe(false);
    expect(matchesFilter(parked, { topic: 'orders', errorType: 'rejected_by_app' })).toBe(false);
  });
});
