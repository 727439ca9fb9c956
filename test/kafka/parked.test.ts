import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ParkingReason, parkedHeaders, readParked, redriveCountOf, redriveHeaders } from '../../src/kafka/parked.js';
import type { KafkaRecord } from '../../src/record.js';

const reason: ParkingReason = { errorType: 'retries_exhausted', errorMessage: '2 attempts failed', httpStatus: 503, attempts: 2, failedAt: new Date(0) };

function source(headers: Array<[string, Buffer]>): KafkaRecord {
  return { topic: 'orders', partition: 3, offset: 1207, timestamp: 1_764_400_000_000, key: Buffer.from('k'), value: Buffer.from('v'), headers, fetchedAt: 5 };
}

/** What a consumer fetches back from the topic the parked record was written to. */
function fetched(record: KafkaRecord, why: ParkingReason, topic = 'orders.retry-5m'): KafkaRecord {
  const headers = parkedHeaders(record, why).map((header) => Object.entries(header)[0] as [string, Buffer]);
  return { ...record, topic, partition: 0, offset: 9, headers };
}

describe('parked records', () => {
  it("reads back the original coordinates and own headers, whatever the record's own headers are named", () => {
    const name = fc.constantFrom('original_topic', 'attempts', 'retry_tier', 'error_type', 'x', 'redrive_count');
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.uint8Array({ maxLength: 8 })), { maxLength: 6 }), (pairs) => {
        const own = pairs.map(([n, v]) => [n, Buffer.from(v)] as [string, Buffer]);
        const parked = readParked(fetched(source(own), { ...reason, retryTier: '5m', retryDueAt: 1234 }));
        expect(parked.original).toMatchObject({ topic: 'orders', partition: 3, offset: 1207, timestamp: 1_764_400_000_000 });
        expect(parked.original.headers).toEqual(own);
        expect(parked.attempts).toBe(2);
        expect(parked.retryTier).toBe('5m');
        expect(parked.dueAt).toBe(1234);
      }),
    );
  });

  it('keeps the history of every stay', () => {
    const history = [{ tier: null, attempts: 2, errorType: 'retries_exhausted', httpStatus: 503, failedAt: '1970-01-01T00:00:00.000Z' }];
    expect(readParked(fetched(source([]), { ...reason, history })).history).toEqual(history);
  });

  it('treats a record without Courier headers as its own original, due at once', () => {
    const plain = { ...source([['a', Buffer.from('1')]]), topic: 'orders.retry-5m' };
    const parked = readParked(plain);
    expect(parked.original).toEqual(plain);
    expect(parked.dueAt).toBeUndefined();
    expect(parked.attempts).toBe(0);
  });

  it('ignores unreadable numbers and history instead of failing', () => {
    const record = fetched(source([]), reason);
    const headers = record.headers.map(([n, v]) => (n === 'attempts' ? ([n, Buffer.from('many')] as [string, Buffer]) : ([n, v] as [string, Buffer])));
    headers.push(['retry_history', Buffer.from('{not json')], ['retry_due_at', Buffer.from('-5')]);
    const parked = readParked({ ...record, headers });
    expect(parked.attempts).toBe(0);
    expect(parked.history).toEqual([]);
    expect(parked.dueAt).toBeUndefined();
  });

  it('writes redrive headers once, replacing earlier ones, and counts them', () => {
    const own: Array<[string, Buffer]> = [
      ['a', Buffer.from('1')],
      ['courier_redriven_from', Buffer.from('orders.dlq-0-3')],
      ['redrive_count', Buffer.from('1')],
    ];
    expect(redriveCountOf(own)).toBe(1);
    const next = redriveHeaders(own, 'orders.dlq-0-9', 2).map((header) => Object.entries(header)[0] as [string, Buffer]);
    expect(next.map(([n, v]) => `${n}=${v}`)).toEqual(['a=1', 'courier_redriven_from=orders.dlq-0-9', 'redrive_count=2']);
    expect(redriveCountOf(next)).toBe(2);
    expect(redriveCountOf([])).toBe(0);
  });
});
