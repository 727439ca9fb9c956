import { describe, expect, it } from 'vitest';
import { checkLimits } from '../../src/delivery/limits.js';
import { preparePush } from '../../src/delivery/push.js';
import type { KafkaRecord } from '../../src/record.js';

const limits = { maxRecordBytes: 100, maxHeaders: 3, maxHeaderBytes: 120 };
const record = (value: Buffer | null, headers: Array<[string, Buffer]> = []): KafkaRecord => ({
  topic: 't',
  partition: 0,
  offset: 0,
  timestamp: 0,
  key: null,
  value,
  headers,
  fetchedAt: 0,
});
const check = (r: KafkaRecord) => checkLimits(r, preparePush(r, { signingKeys: [] }), limits);

describe('push limits', () => {
  it('let through records within every limit, null values included', () => {
    expect(check(record(Buffer.alloc(100), [['a', Buffer.from('1')]]))).toBeUndefined();
    expect(check(record(null))).toBeUndefined();
  });

  it('dead-letter a value above COURIER_MAX_RECORD_BYTES as record_too_large', () => {
    expect(check(record(Buffer.alloc(101)))).toEqual({ errorType: 'record_too_large', message: 'value is 101 bytes, above COURIER_MAX_RECORD_BYTES (100)' });
  });

  it('dead-letter more forwarded headers than COURIER_MAX_HEADERS as too_many_headers', () => {
    const headers: Array<[string, Buffer]> = ['a', 'b', 'c', 'd'].map((name) => [name, Buffer.from('x')]);
    expect(check(record(Buffer.from('v'), headers))?.errorType).toBe('too_many_headers');
  });

  it('count headers by their encoded size: percent-encoding triples unsafe bytes', () => {
    // 40 raw bytes of 0xff become 120 characters, plus "kafka-header-h: " and CRLF: above 120.
    expect(check(record(Buffer.from('v'), [['h', Buffer.alloc(40, 0xff)]]))?.errorType).toBe('headers_too_large');
    expect(check(record(Buffer.from('v'), [['h', Buffer.alloc(40, 0x61)]]))).toBeUndefined();
  });

  it('do not count dropped header names (not HTTP tokens) against the limits', () => {
    const headers: Array<[string, Buffer]> = ['bad name', 'bad\r\nname', 'also bad', 'x y'].map((name) => [name, Buffer.from('x')]);
    expect(check(record(Buffer.from('v'), headers))).toBeUndefined();
  });
});
