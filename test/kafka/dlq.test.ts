import { describe, expect, it } from 'vitest';
import { type DeadLetterReason, deadLetterHeaders } from '../../src/kafka/dlq.js';
import type { KafkaRecord } from '../../src/record.js';

const record: KafkaRecord = {
  topic: 'orders',
  partition: 2,
  offset: 1234,
  timestamp: 1_700_000_000_000,
  key: Buffer.from('k'),
  value: Buffer.from('v'),
  headers: [
    ['trace', Buffer.from('abc')],
    ['x-bin', Buffer.from([0x00, 0xff])],
    ['trace', Buffer.from('def')],
  ],
  fetchedAt: 0,
};

const reason: DeadLetterReason = {
  errorType: 'http_422',
  errorMessage: 'app answered 422 Unprocessable Entity',
  httpStatus: 422,
  attempts: 1,
  failedAt: new Date(Date.UTC(2025, 0, 15, 12, 30, 45, 123)),
};

/** [name, utf-8 value] pairs, in order. */
const flatten = (headers: Array<Record<string, Buffer>>) =>
  headers.map((entry) => {
    const names = Object.keys(entry);
    expect(names).toHaveLength(1);
    return [names[0]!, entry[names[0]!]!] as const;
  });

describe('deadLetterHeaders (DESIGN A3)', () => {
  it('puts the original headers first, in order and byte-exact, then the A3 headers in order', () => {
    const out = flatten(deadLetterHeaders(record, reason));
    expect(out.map(([n]) => n)).toEqual([
      'trace',
      'x-bin',
      'trace',
      'original_topic',
      'original_partition',
      'original_offset',
      'error_type',
      'error_message',
      'failed_at',
      'http_status',
      'attempts',
    ]);
    expect(out[0]![1].toString()).toBe('abc');
    expect(out[1]![1].equals(Buffer.from([0x00, 0xff]))).toBe(true);
    expect(out[2]![1].toString()).toBe('def');
    expect(Object.fromEntries(out.slice(3).map(([n, v]) => [n, v.toString('utf8')]))).toEqual({
      original_topic: 'orders',
      original_partition: '2',
      original_offset: '1234',
      error_type: 'http_422',
      error_message: 'app answered 422 Unprocessable Entity',
      failed_at: '2025-01-15T12:30:45.123Z',
      http_status: '422',
      attempts: '1',
    });
  });

  it('writes failed_at as ISO-8601 UTC', () => {
    const out = flatten(deadLetterHeaders(record, reason));
    const failedAt = out.find(([n]) => n === 'failed_at')![1].toString();
    expect(failedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect(Date.parse(failedAt)).toBe(reason.failedAt.getTime());
  });

  it('leaves http_status out when there was no HTTP answer', () => {
    const out = flatten(deadLetterHeaders(record, { errorType: 'timeout', errorMessage: 'no answer in 30000 ms', attempts: 5, failedAt: reason.failedAt }));
    expect(out.map(([n]) => n)).not.toContain('http_status');
    expect(out.at(-1)![0]).toBe('attempts');
    expect(out.at(-1)![1].toString()).toBe('5');
  });

  it('works for a record without headers and encodes a non-ASCII error message as UTF-8', () => {
    const out = flatten(deadLetterHeaders({ ...record, headers: [] }, { ...reason, errorMessage: 'réponse: 422 ✗' }));
    expect(out[0]![0]).toBe('original_topic');
    expect(out.find(([n]) => n === 'error_message')![1].toString('utf8')).toBe('réponse: 422 ✗');
  });

  it('does not mutate the record headers', () => {
    const before = record.headers.length;
    deadLetterHeaders(record, reason);
    expect(record.headers).toHaveLength(before);
  });
});
