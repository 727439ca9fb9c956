import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attemptHeaders, CE_TYPE, isoTime, type PushSettings, percentEncode, preparePush, signatureOf } from '../../src/delivery/push.js';
import type { KafkaRecord } from '../../src/record.js';

const TIMESTAMP = Date.parse('2025-01-15T12:00:00.000Z');
const noSigning: PushSettings = { signingKeys: [] };

function record(overrides: Partial<KafkaRecord> = {}): KafkaRecord {
  return {
    topic: 'orders',
    partition: 3,
    offset: 42,
    timestamp: TIMESTAMP,
    key: Buffer.from('order-1'),
    value: Buffer.from('{"id":1}'),
    headers: [],
    fetchedAt: TIMESTAMP,
    ...overrides,
  };
}

const h = (name: string, value: string | Buffer): readonly [string, Buffer] => [name, typeof value === 'string' ? Buffer.from(value, 'latin1') : value];

/** Strict decoder for percentEncode output: unreserved characters and %XX only. */
function percentDecode(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad escape at ${i}: ${hex}`);
      out.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (/^[A-Za-z0-9\-._~]$/.test(c)) out.push(c.charCodeAt(0));
    else throw new Error(`unexpected character ${JSON.stringify(c)} at ${i}`);
  }
  return Buffer.from(out);
}

describe('percentEncode', () => {
  it('keeps RFC 3986 unreserved bytes and encodes everything else as uppercase %XX', () => {
    expect(percentEncode(Buffer.from('AZaz09-._~'))).toBe('AZaz09-._~');
    expect(percentEncode(Buffer.from(' /:%+\r\n\0'))).toBe('%20%2F%3A%25%2B%0D%0A%00');
    expect(percentEncode(Buffer.from([0xff, 0xab, 0x7f]))).toBe('%FF%AB%7F');
    expect(percentEncode(Buffer.from('é'))).toBe('%C3%A9');
    expect(percentEncode(Buffer.alloc(0))).toBe('');
  });

  it('encodes each of the 256 byte values as documented', () => {
    for (let byte = 0; byte < 256; byte++) {
      const c = String.fromCharCode(byte);
      const expected = /^[A-Za-z0-9\-._~]$/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      expect(percentEncode(Uint8Array.of(byte))).toBe(expected);
    }
  });

  it('is byte-exact for arbitrary bytes and uses only unreserved characters and %XX (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const encoded = percentEncode(bytes);
        expect(encoded).toMatch(/^(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*$/);
        expect(percentDecode(encoded).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });

  it('round-trips through decodeURIComponent for valid UTF-8 (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (text) => {
        expect(decodeURIComponent(percentEncode(Buffer.from(text, 'utf8')))).toBe(text);
      }),
    );
  });
});

describe('isoTime', () => {
  it('equals Date#toISOString for any millisecond timestamp, in any order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 8.64e15 }), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_002_000 })), { maxLength: 50 }),
        (stamps) => {
          for (const ms of stamps) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('falls back to Date#toISOString for a timestamp that is not a whole number of milliseconds', () => {
    expect(isoTime(1_700_000_000_000.5)).toBe(new Date(1_700_000_000_000.5).toISOString());
  });
});

describe('preparePush: A2 headers', () => {
  it('sets coordinates, CloudEvents attributes and the default content type for a plain record', () => {
    const { headers, messageId, droppedHeaders } = preparePush(record(), noSigning);
    expect(headers).toEqual({
      'content-type': 'application/octet-stream',
      'ce-specversion': '1.0',
      'ce-id': 'orders-3-42',
      'ce-source': '/kafka/orders',
      'ce-type': CE_TYPE,
      'ce-time': '2025-01-15T12:00:00.000Z',
      'kafka-topic': 'orders',
      'kafka-partition': '3',
      'kafka-offset': '42',
      'kafka-timestamp': String(TIMESTAMP),
      'kafka-key': 'order-1',
      'courier-attempt': '1',
    });
    expect(messageId).toBe('orders-3-42');
    expect(droppedHeaders).toBe(0);
  });

  it('uses a ceSource callback when given', () => {
    const { headers } = preparePush(record(), { signingKeys: [], ceSource: (topic) => `urn:test:${topic}` });
    expect(headers['ce-source']).toBe('urn:test:orders');
  });

  it('uses the route’s defaultContentType for a record without a valid content-type, never over a valid one', () => {
    expect(preparePush(record(), noSigning, 'application/json').headers['content-type']).toBe('application/json');
    expect(preparePush(record({ headers: [h('content-type', 'not a type')] }), noSigning, 'application/json').headers['content-type']).toBe('application/json');
    expect(preparePush(record({ headers: [h('content-type', 'text/plain')] }), noSigning, 'application/json').headers['content-type']).toBe('text/plain');
  });

  it('marks a null value as a tombstone, and only a null value (an empty one is a record)', () => {
    expect(preparePush(record({ value: null }), noSigning).headers['kafka-tombstone']).toBe('true');
    expect(preparePush(record({ value: Buffer.alloc(0) }), noSigning).headers['kafka-tombstone']).toBeUndefined();
    expect(preparePush(record(), noSigning).headers['kafka-tombstone']).toBeUndefined();
  });

  it('takes content-type from the record header (any case)', () => {
    expect(preparePush(record({ headers: [h('content-type', 'application/json')] }), noSigning).headers['content-type']).toBe('application/json');
    expect(preparePush(record({ headers: [h('Content-Type', 'text/plain; charset=utf-8')] }), noSigning).headers['content-type']).toBe(
      'text/plain; charset=utf-8',
    );
  });

  it.each(['text/plain\r\nx-evil: 1', 'text/plain\nx: y', 'text/plain\0', 'not a media type', '', 'application/json; charset="a\r\nb"'])(
    'ignores an invalid content-type record header %j and falls back to application/octet-stream',
    (value) => {
      const { headers } = preparePush(record({ headers: [h('content-type', value)] }), noSigning);
      expect(headers['content-type']).toBe('application/octet-stream');
      expect(headers['kafka-header-content-type']).toBe(percentEncode(Buffer.from(value, 'latin1')));
      expect(headers['x-evil']).toBeUndefined();
    },
  );

  it('passes the record ce_* headers through as ce-* and they win over generated ones', () => {
    const { headers, messageId } = preparePush(
      record({
        headers: [
          h('ce_id', 'evt-7'),
          h('ce_type', 'com.example.order.created'),
          h('ce_source', '/orders'),
          h('ce_subject', 'order 1'),
          h('CE_TIME', '2020-01-01T00:00:00Z'),
        ],
      }),
      noSigning,
    );
    expect(headers['ce-id']).toBe('evt-7');
    expect(headers['ce-type']).toBe('com.example.order.created');
    expect(headers['ce-source']).toBe('/orders');
    expect(headers['ce-subject']).toBe('order%201');
    expect(headers['ce-time']).toBe('2020-01-01T00:00:00Z');
    expect(headers['ce-specversion']).toBe('1.0');
    expect(headers['kafka-header-ce_id']).toBe('evt-7');
    // webhook-id follows ce-id: a producer's duplicate (same ce_id) is the same message.
    expect(messageId).toBe('evt-7');
  });

  it('percent-encodes kafka-key bytes and leaves kafka-key out for a null key', () => {
    expect(preparePush(record({ key: Buffer.from([0x00, 0x41, 0x20, 0xff]) }), noSigning).headers['kafka-key']).toBe('%00A%20%FF');
    expect(preparePush(record({ key: Buffer.alloc(0) }), noSigning).headers['kafka-key']).toBe('');
    expect('kafka-key' in preparePush(record({ key: null }), noSigning).headers).toBe(false);
  });

  it('sends record headers as kafka-header-<lowercased name> with percent-encoded values, repeated names as arrays in order', () => {
    const { headers } = preparePush(
      record({ headers: [h('X-Tenant', 'acme corp'), h('retry', '1'), h('retry', '2'), h('RETRY', '3'), h('bin', Buffer.from([0x0d, 0x0a]))] }),
      noSigning,
    );
    expect(headers['kafka-header-x-tenant']).toBe('acme%20corp');
    expect(headers['kafka-header-retry']).toEqual(['1', '2', '3']);
    expect(headers['kafka-header-bin']).toBe('%0D%0A');
  });

  it('drops and counts record header names that are not HTTP tokens', () => {
    const { headers, droppedHeaders } = preparePush(
      record({ headers: [h('bad name', 'x'), h('a:b', 'x'), h('', 'x'), h('caf\u00e9', 'x'), h('line\r\nx-evil', 'x'), h('ok', 'y')] }),
      noSigning,
    );
    expect(droppedHeaders).toBe(5);
    expect(Object.keys(headers).filter((k) => k.startsWith('kafka-header-'))).toEqual(['kafka-header-ok']);
    expect(headers['x-evil']).toBeUndefined();
  });

  it('copies a valid traceparent and tracestate', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const { headers } = preparePush(record({ headers: [h('traceparent', traceparent), h('tracestate', tracestate)] }), noSigning);
    expect(headers.traceparent).toBe(traceparent);
    expect(headers.tracestate).toBe(tracestate);
  });

  it.each([
    ['traceparent', '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01'],
    ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx-evil: 1'],
    ['traceparent', 'garbage'],
    ['tracestate', 'a=b\r\nx-evil: 1'],
    ['tracestate', 'a=b\u0000'],
  ])('does not copy an invalid %s %j', (name, value) => {
    const { headers } = preparePush(record({ headers: [h(name, value)] }), noSigning);
    expect(headers[name]).toBeUndefined();
    expect(headers[`kafka-header-${name}`]).toBe(percentEncode(Buffer.from(value, 'latin1')));
  });

  it.each([
    'authorization',
    'content-length',
    'host',
    'transfer-encoding',
    'kafka-topic',
    'kafka-offset',
    'kafka-key',
    'courier-attempt',
    'webhook-id',
    'webhook-signature',
    'ce-id',
    'cookie',
  ])('a record header named %s only appears as kafka-header-%s', (name) => {
    const { headers } = preparePush(record({ headers: [h(name, 'injected')] }), { signingKeys: [], appToken: 'app-token' });
    expect(headers[`kafka-header-${name}`]).toBe('injected');
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith('kafka-header-')) expect(v).not.toContain('injected');
    if (name === 'authorization') expect(headers.authorization).toBe('Bearer app-token');
  });

  it('sets authorization only from the app token', () => {
    expect(preparePush(record(), { signingKeys: [], appToken: 'tok' }).headers.authorization).toBe('Bearer tok');
    expect('authorization' in preparePush(record(), noSigning).headers).toBe(false);
  });

  const GENERATED = new Set([
    'content-type',
    'courier-attempt',
    'kafka-topic',
    'kafka-partition',
    'kafka-offset',
    'kafka-timestamp',
    'kafka-key',
    'authorization',
    'traceparent',
    'tracestate',
  ]);
  const anyName = fc.oneof(
    fc.constantFrom(
      'content-type',
      'authorization',
      'content-length',
      'host',
      'traceparent',
      'tracestate',
      'ce_id',
      'ce_type',
      'ce_x',
      'kafka-topic',
      'Content-Type',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 6 }),
  );
  const anyBytes = fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.constantFrom('\r\nx-evil: 1', '\0', 'text/plain', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01').map((s) => Buffer.from(s, 'latin1')),
  );

  it('never produces a header value with CR, LF or NUL, nor any header outside A2, for arbitrary records (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(anyName, anyBytes), { maxLength: 12 }),
        fc.option(fc.uint8Array({ maxLength: 30 }), { nil: null }),
        fc.nat({ max: 2 ** 31 }),
        fc.boolean(),
        (recordHeaders, key, offset, withToken) => {
          const rec = record({ headers: recordHeaders, key: key === null ? null : Buffer.from(key), offset });
          const { headers } = preparePush(rec, { signingKeys: [], appToken: withToken ? 'secret' : undefined });
          for (const [name, value] of Object.entries(headers)) {
            expect(name).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
            expect(GENERATED.has(name) || name.startsWith('ce-') || name.startsWith('kafka-header-'), `unexpected header ${name}`).toBe(true);
            for (const v of Array.isArray(value) ? value : [value]) {
              expect(v).not.toMatch(/[\r\n\0]/);
              expect(v).toMatch(/^[\x20-\x7e]*$/);
            }
          }
          expect(headers['kafka-topic']).toBe('orders');
          expect(headers['kafka-partition']).toBe('3');
          expect(headers['kafka-offset']).toBe(String(offset));
          expect(headers['kafka-timestamp']).toBe(String(TIMESTAMP));
          if (key === null) expect('kafka-key' in headers).toBe(false);
          else expect(headers['kafka-key']).toBe(percentEncode(key));
          expect(headers.authorization).toBe(withToken ? 'Bearer secret' : undefined);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('attemptHeaders', () => {
  const secretBytes = Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw0123456789ab', 'base64');
  const signing: PushSettings = { signingKeys: [secretBytes], appToken: 'app-token' };

  function verify(headers: Record<string, string | string[]>, body: Buffer) {
    const id = headers['webhook-id'] as string;
    const timestamp = headers['webhook-timestamp'] as string;
    const expected = createHmac('sha256', secretBytes)
      .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
      .digest('base64');
    expect(headers['webhook-signature']).toBe(`v1,${expected}`);
  }

  it('sets courier-attempt on the prepared headers (updated in place: an attempt allocates no header object)', () => {
    const prepared = preparePush(record(), { signingKeys: [], appToken: 'app-token' });
    expect(prepared.headers['courier-attempt']).toBe('1');
    const headers = attemptHeaders(prepared, Buffer.from('x'), 3, { signingKeys: [], appToken: 'app-token' }, 1_700_000_000);
    expect(headers['courier-attempt']).toBe('3');
    expect(headers.authorization).toBe('Bearer app-token');
    expect(headers['ce-id']).toBe('orders-3-42');
    expect(headers['webhook-signature']).toBeUndefined();
    expect(headers['webhook-id']).toBeUndefined();
    expect(headers).toBe(prepared.headers);
  });

  it('signs per Standard Webhooks, verifiable with node:crypto over "id.timestamp.body"', () => {
    const body = Buffer.from('{"id":1}');
    const prepared = preparePush(record(), signing);
    const headers = attemptHeaders(prepared, body, 1, signing, 1_700_000_000);
    expect(headers['webhook-id']).toBe('orders-3-42');
    expect(headers['webhook-timestamp']).toBe('1700000000');
    verify(headers, body);
  });

  it('signs an empty body for a null value', () => {
    const prepared = preparePush(record({ value: null }), signing);
    const headers = attemptHeaders(prepared, null, 1, signing, 1_700_000_001);
    verify(headers, Buffer.alloc(0));
  });

  it('signs arbitrary body bytes correctly (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 2 ** 32 }), (bytes, now) => {
        const body = Buffer.from(bytes);
        const headers = attemptHeaders(preparePush(record({ value: body }), signing), body, 1, signing, now);
        verify(headers, body);
      }),
    );
  });

  it('keeps webhook-id (and ce-id) stable across attempts while the timestamp and signature follow the attempt', () => {
    const body = Buffer.from('payload');
    const prepared = preparePush(record(), signing);
    const first = { ...attemptHeaders(prepared, body, 1, signing, 1_700_000_000) };
    const second = { ...attemptHeaders(prepared, body, 2, signing, 1_700_000_030) };
    expect(second['webhook-id']).toBe(first['webhook-id']);
    expect(second['ce-id']).toBe(first['ce-id']);
    expect([first['courier-attempt'], second['courier-attempt']]).toEqual(['1', '2']);
    expect(second['webhook-timestamp']).toBe('1700000030');
    expect(second['webhook-signature']).not.toBe(first['webhook-signature']);
    verify(second, body);
  });

  it('signs with every configured key, the first first, so either side of a rotation verifies', () => {
    const other = Buffer.from('another-key-0123456789');
    const settings: PushSettings = { signingKeys: [secretBytes, other] };
    const body = Buffer.from('b');
    const headers = attemptHeaders(preparePush(record(), settings), body, 1, settings, 5);
    const signatures = String(headers['webhook-signature']).split(' ');
    const sign = (key: Buffer) =>
      `v1,${createHmac('sha256', key)
        .update(Buffer.concat([Buffer.from(`${headers['webhook-id']}.5.`), body]))
        .digest('base64')}`;
    expect(signatures).toEqual([sign(secretBytes), sign(other)]);
  });

  it('signatureOf matches the Standard Webhooks reference vector', () => {
    // From the Standard Webhooks spec / svix test suite.
    const key = Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64');
    const payload = Buffer.from('{"test": 2432232314}');
    expect(signatureOf(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, payload)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});
