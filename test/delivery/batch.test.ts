import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_ANSWER_MAX_BYTES,
  type BatchEntry,
  batchBody,
  isJsonMediaType,
  isJsonText,
  jsonString,
  parseBatchAnswer,
  REASON_MAX_CHARS,
} from '../../src/delivery/batch.js';
import { identify, preparePush } from '../../src/delivery/push.js';
import type { KafkaRecord } from '../../src/record.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function record(overrides: Partial<KafkaRecord> = {}): KafkaRecord {
  return {
    topic: 'orders',
    partition: 3,
    offset: 1207,
    timestamp: 1764400000000,
    key: Buffer.from('order-7'),
    value: Buffer.from('{"order": 7}'),
    headers: [['content-type', Buffer.from('application/json')]],
    fetchedAt: 0,
    ...overrides,
  };
}

function entry(r: KafkaRecord, attempt = 1, defaultContentType?: string): BatchEntry {
  return { record: r, identity: identify(r, defaultContentType), attempt };
}

function decoded(entries: readonly BatchEntry[]): Record<string, unknown>[] {
  const body = batchBody(entries);
  // Strict: the body must be UTF-8 as sent, not what a lenient decoder makes of it.
  return JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body)).records;
}

// The references the tests compare with, written independently of src/delivery/batch.ts.

function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** JSON.parse's verdict on bytes: undecodable bytes are not JSON. */
function referenceJson(bytes: Uint8Array): boolean {
  const text = strictUtf8(bytes);
  return text !== undefined && parses(text);
}

function referenceJsonMediaType(contentType: string): boolean {
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === 'application/json' || /^[^/]+\/[^/]+\+json$/.test(mediaType);
}

describe('isJsonText', () => {
  const valid = [
    '0',
    '-0',
    '1.5e+10',
    '-12.75E-3',
    '1E5',
    'true',
    'false',
    'null',
    '""',
    '"\\ud800"', // a lone surrogate escape: JSON.parse accepts it
    '"\\uDBFF\\uDFFF"',
    '"\\"\\\\\\/\\b\\f\\n\\r\\t"',
    '"\x7f é 😀 \u2028"', // DEL and non-ASCII characters need no escape
    ' \t\n\r{ "a" : [ 1 , {} , [] , "x" ] } \r\n',
    '{"a":1,"a":2}',
    '[[[[[[[[[[]]]]]]]]]]',
    '[1,2.5,-3,true,false,null,"s",{"k":{}}]',
  ];
  const invalid = [
    '',
    ' ',
    '\n\t',
    '1e',
    '1e+',
    '-',
    '01',
    '-01',
    '1.',
    '.5',
    '+1',
    '0x10',
    'NaN',
    'Infinity',
    'tru',
    'nul',
    'fals',
    'True',
    '"a\u0000"',
    '"a\nb"',
    '"\t"',
    '"\\x"',
    '"\\u12"',
    '"\\u12G4"',
    '"\\',
    '"abc',
    "'a'",
    '{}x',
    '1 2',
    '[1,]',
    '[,1]',
    '{"a":1,}',
    '{"a"}',
    '{"a" 1}',
    '{a:1}',
    '{1:1}',
    '[',
    ']',
    '[}',
    '{]',
    '[[]',
    '{"a":[}',
    '\ufeff{}', // a byte order mark
    '{}\u00a0', // NBSP is not JSON whitespace
  ];

  it.each(valid)('accepts %j', (text) => {
    expect(parses(text)).toBe(true);
    expect(isJsonText(Buffer.from(text))).toBe(true);
  });

  it.each(invalid)('refuses %j', (text) => {
    expect(parses(text)).toBe(false);
    expect(isJsonText(Buffer.from(text))).toBe(false);
  });

  it('refuses bytes that are not UTF-8, in strings or anywhere, and an encoded surrogate', () => {
    expect(isJsonText(Buffer.from([0x22, 0xff, 0x22]))).toBe(false);
    expect(isJsonText(Buffer.from([0x22, 0xc3, 0x22]))).toBe(false); // a cut sequence
    expect(isJsonText(Buffer.from([0x22, 0xc0, 0xaf, 0x22]))).toBe(false); // overlong "/"
    expect(isJsonText(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]))).toBe(false); // U+D800 as bytes
    expect(isJsonText(Buffer.from([0x22, 0xc3, 0xa9, 0x22]))).toBe(true); // "é"
  });

  it('takes any nesting depth, as JSON.parse does', () => {
    const depth = 100_000;
    expect(isJsonText(Buffer.from('['.repeat(depth) + ']'.repeat(depth)))).toBe(true);
    expect(isJsonText(Buffer.from(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`))).toBe(true);
    expect(isJsonText(Buffer.from('['.repeat(depth) + ']'.repeat(depth - 1)))).toBe(false);
    expect(isJsonText(Buffer.from(`${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth - 1)}]}`))).toBe(false);
  });

  const tokenish = fc.constantFrom(...'{}[],:"\\ \t\n\r0123456789-+.eEtrufalsn/bu\u0000\u001fxA\u00e9\u2028\ud83d\ude00\ud800'.split(''));
  const jsonTokens = fc.constantFrom('{', '}', '[', ']', ',', ':', '"a"', '"\\u00e9"', '"\\ud800"', '0', '-1.5e3', '12', 'true', 'false', 'null', ' ', '\n');

  it('agrees with JSON.parse on random strings of JSON characters (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: tokenish, maxLength: 40 }), (text) => {
        expect(isJsonText(Buffer.from(text))).toBe(parses(text));
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with JSON.parse on random token sequences (property)', () => {
    fc.assert(
      fc.property(fc.array(jsonTokens, { maxLength: 30 }), (tokens) => {
        const text = tokens.join('');
        expect(isJsonText(Buffer.from(text))).toBe(parses(text));
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts every JSON text and agrees with JSON.parse once it is edited (property)', () => {
    const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 3 }), insert: fc.string({ unit: tokenish, maxLength: 2 }) });
    fc.assert(
      fc.property(fc.json(), edit, (json, { at, cut, insert }) => {
        expect(isJsonText(Buffer.from(json))).toBe(true);
        const position = at % (json.length + 1);
        const edited = json.slice(0, position) + insert + json.slice(position + cut);
        expect(isJsonText(Buffer.from(edited))).toBe(parses(edited));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with a strict UTF-8 decoder and JSON.parse on any text and any bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 20 }).map((text) => Buffer.from(text)),
          fc.uint8Array({ maxLength: 12 }),
        ),
        (bytes) => {
          expect(isJsonText(bytes)).toBe(referenceJson(bytes));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('isJsonMediaType', () => {
  it.each([
    ['application/json', true],
    ['Application/JSON', true],
    ['application/json; charset=utf-8', true],
    ['application/json ;charset=utf-8', true],
    ['application/cloudevents+json', true],
    ['application/problem+JSON; charset="utf-8"', true],
    ['text/x+json', true],
    ['application/+json', false],
    ['application/jsonl', false],
    ['application/json-seq', false],
    ['application/x-ndjson', false],
    ['text/json', false],
    ['application/octet-stream', false],
    ['text/plain; format=json', false],
    ['application/json+xml', false],
  ])('%s → %s', (contentType, json) => {
    expect(isJsonMediaType(contentType)).toBe(json);
  });
});

describe('jsonString', () => {
  it('writes JSON.parse-able ASCII for any string, lone surrogates included (property)', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.oneof(
            fc.constantFrom('"', '\\', '\u0000', '\u007f', '\u2028', '\ud800', '\udc00', '😀', 'é'),
            fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
          ),
        }),
        (text) => {
          const json = jsonString(text);
          expect(json).toMatch(/^[\x20-\x7f]*$/); // ASCII: the body writes its text as latin1
          expect(JSON.parse(json)).toBe(text);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('leaves printable ASCII as it is', () => {
    expect(jsonString('orders-3-1207')).toBe('"orders-3-1207"');
    expect(jsonString('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
    expect(jsonString('é😀')).toBe('"\\u00e9\\ud83d\\ude00"');
  });
});

describe('batchBody', () => {
  it('writes the record of DESIGN A6 field for field, the JSON value as its own bytes', () => {
    const r = record({ headers: [...record().headers, ['traceparent', Buffer.from(TRACEPARENT)]] });
    expect(batchBody([entry(r)]).toString()).toBe(
      '{"records":[{"id":"orders-3-1207","topic":"orders","partition":3,"offset":"1207","timestamp":1764400000000,' +
        '"key":"b3JkZXItNw==","keyText":"order-7","headers":[["content-type","YXBwbGljYXRpb24vanNvbg=="],' +
        `["traceparent","${Buffer.from(TRACEPARENT).toString('base64')}"]],"contentType":"application/json",` +
        `"value":{"order": 7},"attempt":1,"traceparent":"${TRACEPARENT}"}]}`,
    );
  });

  it('is an empty list for no entries', () => {
    expect(JSON.parse(batchBody([]).toString())).toEqual({ records: [] });
  });

  it('sends a null key as null without keyText, a key that is not UTF-8 without keyText', () => {
    const [nullKey, binaryKey, emptyKey] = decoded([
      entry(record({ key: null })),
      entry(record({ key: Buffer.from([0xff, 0x00]) })),
      entry(record({ key: Buffer.alloc(0) })),
    ]);
    expect(nullKey).toMatchObject({ key: null });
    expect(nullKey).not.toHaveProperty('keyText');
    expect(binaryKey).toMatchObject({ key: '/wA=' });
    expect(binaryKey).not.toHaveProperty('keyText');
    expect(emptyKey).toMatchObject({ key: '', keyText: '' });
  });

  it('sends bytes that are not JSON, or not of a JSON content type, as valueBase64; a null value as a tombstone', () => {
    const json = Buffer.from('{"a":1}');
    const rows = decoded([
      entry(record({ value: Buffer.from('{"a":') })), // invalid JSON
      entry(record({ value: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json]) })), // a BOM
      entry(record({ value: Buffer.alloc(0) })), // empty is not JSON
      entry(record({ value: json, headers: [] })), // octet-stream by default
      entry(record({ value: json, headers: [['content-type', Buffer.from('text/plain')]] })),
      entry(record({ value: null })),
      entry(record({ value: json, headers: [] }), 1, 'application/vnd.courier+json'), // the route's default
    ]);
    expect(rows.map((row) => row.valueBase64 ?? null)).toEqual(['eyJhIjo=', '77u/eyJhIjoxfQ==', '', 'eyJhIjoxfQ==', 'eyJhIjoxfQ==', null, null]);
    expect(rows[5]).toMatchObject({ tombstone: true });
    expect(rows[5]).not.toHaveProperty('value');
    expect(rows[6]).toMatchObject({ value: { a: 1 }, contentType: 'application/vnd.courier+json' });
  });

  it('keeps every header in order, names that are not HTTP tokens and binary values included', () => {
    const headers: KafkaRecord['headers'] = [
      ['x', Buffer.from('1')],
      ['not a token "\\', Buffer.from([0, 255])],
      ['x', Buffer.from('2')],
      ['é', Buffer.alloc(0)],
    ];
    const [row] = decoded([entry(record({ headers }))]);
    expect(row!.headers).toEqual([
      ['x', 'MQ=='],
      ['not a token "\\', 'AP8='],
      ['x', 'Mg=='],
      ['é', ''],
    ]);
  });

  it('writes offsets beyond 2^53 as strings, and ids with characters JSON must escape', () => {
    // preparePush percent-encodes the " of a ce_id; the backslash stays and needs escaping here.
    const r = record({ offset: 2 ** 53 + 2, headers: [['ce_id', Buffer.from('a"b\\c')]] });
    const [row] = decoded([entry(r)]);
    expect(row).toMatchObject({ offset: '9007199254740994', id: 'a%22b\\c' });
  });

  it('escapes a tracestate with quotes and backslashes, which preparePush lets through', () => {
    const tracestate = 'a="x\\y",b=1';
    const r = record({ headers: [['tracestate', Buffer.from(tracestate)]] });
    expect(entry(r).identity.tracestate).toBe(tracestate);
    const [row] = decoded([entry(r)]);
    expect(row).toMatchObject({ tracestate });
  });

  const json = fc.json({ maxDepth: 3 }).map((text) => Buffer.from(text));
  const looseJson = fc.json({ maxDepth: 2 }).map((text) => Buffer.from(` \n${text}\t`));
  const almostJson = fc.json({ maxDepth: 2 }).map((text) => Buffer.from(text.slice(0, -1)));
  const text = fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => Buffer.from(s));
  const bytes = fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b));
  const bom = json.map((b) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]));
  const contentType = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/cloudevents+json',
    'text/plain',
    'application/octet-stream',
    'not a media type',
  );
  const header = fc.oneof(
    contentType.map((type): readonly [string, Buffer] => ['content-type', Buffer.from(type, 'latin1')]),
    fc.constant(['traceparent', Buffer.from(TRACEPARENT)] as const),
    fc.constantFrom('congo=t61rcWkgMzE', 'a="q\\\\",b=2', 'bad\ttracestate').map((value): readonly [string, Buffer] => ['tracestate', Buffer.from(value)]),
    fc.tuple(
      fc.constantFrom('ce_id', 'CE_ID', 'ce_source', 'Content-Type', 'TraceParent', 'x-Trace', 'not a token', '\u0000', 'ключ', '"'),
      fc.oneof(text, bytes),
    ),
    fc.tuple(fc.string({ maxLength: 8 }), bytes),
  );
  const kafkaRecord = fc.record({
    topic: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    partition: fc.nat({ max: 1000 }),
    offset: fc.maxSafeNat(),
    timestamp: fc.integer({ min: -1, max: 2 ** 42 }),
    key: fc.option(fc.oneof(text, bytes), { nil: null }),
    value: fc.option(fc.oneof(json, json, looseJson, almostJson, text, bytes, bom), { nil: null, freq: 6 }),
    headers: fc.array(header, { maxLength: 5 }),
    fetchedAt: fc.constant(0),
  });
  const defaultType = fc.constantFrom('application/octet-stream', 'application/json', 'application/problem+json');
  const batchEntry = fc
    .tuple(kafkaRecord, fc.integer({ min: 1, max: 1000 }), defaultType)
    .map(([r, attempt, defaultContentType]) => entry(r, attempt, defaultContentType));

  it('identify gives the id, content type and trace context of the A2 push (property)', () => {
    fc.assert(
      fc.property(kafkaRecord, defaultType, (r, defaultContentType) => {
        const identity = identify(r, defaultContentType);
        const prepared = preparePush(r, { signingKeys: [] }, defaultContentType);
        expect(identity.messageId).toBe(prepared.messageId);
        expect(identity.contentType).toBe(prepared.headers['content-type']);
        expect(identity.traceparent).toBe(prepared.headers.traceparent);
        expect(identity.tracestate).toBe(prepared.headers.tracestate);
      }),
      { numRuns: 500 },
    );
  });

  const ALWAYS = ['id', 'topic', 'partition', 'offset', 'timestamp', 'key', 'headers', 'contentType', 'attempt'];
  const SOMETIMES = ['keyText', 'value', 'valueBase64', 'tombstone', 'traceparent', 'tracestate'];

  it('decodes back to exactly the records it was made of (property)', () => {
    fc.assert(
      fc.property(fc.array(batchEntry, { maxLength: 8 }), (entries) => {
        const rows = decoded(entries);
        expect(rows).toHaveLength(entries.length);
        rows.forEach((row, i) => {
          // The identity is the A2 push's (the property above): the body says what the push says.
          const { record: r, attempt, identity } = entries[i]!;
          for (const field of ALWAYS) expect(row).toHaveProperty(field);
          for (const field of Object.keys(row)) expect([...ALWAYS, ...SOMETIMES]).toContain(field);
          expect(row.id).toBe(identity.messageId);
          expect(row.topic).toBe(r.topic);
          expect(row.partition).toBe(r.partition);
          expect(row.offset).toBe(String(r.offset));
          expect(row.timestamp).toBe(r.timestamp);
          expect(row.attempt).toBe(attempt);

          if (r.key === null) expect(row.key).toBeNull();
          else expect(Buffer.from(row.key as string, 'base64').equals(r.key)).toBe(true);
          const keyText = r.key === null ? undefined : strictUtf8(r.key);
          expect(row.keyText).toBe(keyText);
          expect('keyText' in row).toBe(keyText !== undefined);

          const headers = row.headers as [string, string][];
          expect(headers.map(([name]) => name)).toEqual(r.headers.map(([name]) => name));
          expect(headers.map(([, value]) => Buffer.from(value, 'base64').toString('hex'))).toEqual(r.headers.map(([, value]) => value.toString('hex')));

          const type = identity.contentType;
          expect(row.contentType).toBe(type);
          const present = SOMETIMES.slice(1, 4).filter((field) => field in row);
          if (r.value === null) {
            expect(present).toEqual(['tombstone']);
            expect(row.tombstone).toBe(true);
          } else if (referenceJsonMediaType(type) && referenceJson(r.value)) {
            expect(present).toEqual(['value']);
            expect(row.value).toEqual(JSON.parse(r.value.toString('utf8')));
          } else {
            expect(present).toEqual(['valueBase64']);
            expect(Buffer.from(row.valueBase64 as string, 'base64').equals(r.value)).toBe(true);
          }

          expect(row.traceparent).toBe(identity.traceparent);
          expect(row.tracestate).toBe(identity.tracestate);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('embeds a JSON value byte for byte, whitespace and number spelling kept', () => {
    const value = Buffer.from('{ "n" : 1.50e+3 ,\n "s": "\\u00e9" }');
    const body = batchBody([entry(record({ value }))]);
    expect(body.includes(value)).toBe(true);
    expect(JSON.parse(body.toString()).records[0].value).toEqual({ n: 1500, s: 'é' });
  });
});

describe('parseBatchAnswer', () => {
  const ids = new Set(['a', 'b', 'c', 'line\nbreak']);
  const answer = (body: unknown) => parseBatchAnswer(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), ids);
  const listed = (body: unknown) => {
    const result = answer(body);
    if (result.kind !== 'listed') throw new Error(`expected a listing, got ${JSON.stringify(result)}`);
    return Object.fromEntries(result.failures);
  };
  const reasonOf = (body: unknown) => {
    const result = answer(body);
    if (result.kind !== 'invalid') throw new Error(`expected invalid, got ${JSON.stringify(result)}`);
    return result.reason;
  };

  it.each([
    ['no body', undefined],
    ['an empty body', ''],
    ['whitespace', ' \r\n\t '],
    ['text that is not JSON', 'OK'],
    ['an HTML page', '<html><body>Accepted</body></html>'],
    ['JSON without failures', '{"status":"ok"}'],
    ['null', 'null'],
    ['an array', '[]'],
    ['an array of failures', '[{"id":"a","status":500}]'],
    ['a number', '200'],
    ['a string', '"failures"'],
    ['an empty listing', '{"failures": []}'],
    ['only 2xx listings', '{"failures": [{"id":"a","status":200},{"id":"b","status":299}]}'],
  ])('%s acknowledges every record', (_, body) => {
    expect(parseBatchAnswer(body === undefined ? undefined : Buffer.from(body), ids)).toEqual({ kind: 'all' });
  });

  it('lists failures by id with their status, Retry-After and reason; extra members are ignored', () => {
    expect(
      listed({
        failures: [
          { id: 'a', status: 503, retryAfterMs: 1000, reason: 'busy' },
          { id: 'b', status: 422, reason: 'bad order', detail: { x: 1 } },
          { id: 'line\nbreak', status: 500, retryAfterMs: 0.5 },
        ],
        processed: 1,
      }),
    ).toEqual({
      a: { status: 503, retryAfterMs: 1000, reason: 'busy' },
      b: { status: 422, reason: 'bad order' },
      'line\nbreak': { status: 500, retryAfterMs: 0.5 },
    });
  });

  it('leaves out a record listed with a 2xx status', () => {
    expect(
      listed({
        failures: [
          { id: 'a', status: 204 },
          { id: 'b', status: 500 },
        ],
      }),
    ).toEqual({ b: { status: 500 } });
  });

  it('lets the last listing of an id win', () => {
    expect(
      listed({
        failures: [
          { id: 'a', status: 503 },
          { id: 'a', status: 400, reason: 'later' },
        ],
      }),
    ).toEqual({ a: { status: 400, reason: 'later' } });
    expect(
      listed({
        failures: [
          { id: 'a', status: 200 },
          { id: 'a', status: 500 },
        ],
      }),
    ).toEqual({ a: { status: 500 } });
    expect(
      answer({
        failures: [
          { id: 'a', status: 500 },
          { id: 'a', status: 200 },
        ],
      }),
    ).toEqual({ kind: 'all' });
  });

  it('keeps a reason up to REASON_MAX_CHARS characters, never half a surrogate pair', () => {
    expect(listed({ failures: [{ id: 'a', status: 500, reason: 'x'.repeat(5000) }] }).a!.reason).toBe('x'.repeat(REASON_MAX_CHARS));
    const exact = 'y'.repeat(REASON_MAX_CHARS);
    expect(listed({ failures: [{ id: 'a', status: 500, reason: exact }] }).a!.reason).toBe(exact);
    const split = `${'x'.repeat(REASON_MAX_CHARS - 1)}😀tail`;
    expect(listed({ failures: [{ id: 'a', status: 500, reason: split }] }).a!.reason).toBe('x'.repeat(REASON_MAX_CHARS - 1));
  });

  it('reads an answer that starts with a UTF-8 byte order mark', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"failures":[{"id":"c","status":500}]}')]);
    expect(parseBatchAnswer(body, ids)).toEqual({ kind: 'listed', failures: new Map([['c', { status: 500 }]]) });
  });

  it.each([
    [{ failures: {} }, 'failures must be an array, got {}'],
    [{ failures: null }, 'failures must be an array, got null'],
    [{ failures: 'a' }, 'failures must be an array, got "a"'],
    [{ failures: [{ id: 'a', status: 500 }, 1] }, 'failures[1] must be an object, got 1'],
    [{ failures: [null] }, 'failures[0] must be an object, got null'],
    [{ failures: [['a', 500]] }, 'failures[0] must be an object, got ["a",500]'],
    [{ failures: [{ status: 500 }] }, 'failures[0].id must be a string, got nothing'],
    [{ failures: [{ id: 7, status: 500 }] }, 'failures[0].id must be a string, got 7'],
    [{ failures: [{ id: 'zz', status: 500 }] }, 'failures[0].id "zz" is not a record of this batch'],
    [
      {
        failures: [
          { id: 'a', status: 500 },
          { id: 'b', status: 500 },
          { id: 'c', status: 'x' },
        ],
      },
      'failures[2].status must be an integer HTTP status, got "x"',
    ],
    [{ failures: [{ id: 'a' }] }, 'failures[0].status must be an integer HTTP status, got nothing'],
    [{ failures: [{ id: 'a', status: '503' }] }, 'failures[0].status must be an integer HTTP status, got "503"'],
    [{ failures: [{ id: 'a', status: 503.5 }] }, 'failures[0].status must be an integer HTTP status, got 503.5'],
    [{ failures: [{ id: 'a', status: 99 }] }, 'failures[0].status must be an integer HTTP status, got 99'],
    [{ failures: [{ id: 'a', status: 600 }] }, 'failures[0].status must be an integer HTTP status, got 600'],
    [{ failures: [{ id: 'a', status: 503, retryAfterMs: -1 }] }, 'failures[0].retryAfterMs must be a number of milliseconds ≥ 0, got -1'],
    [{ failures: [{ id: 'a', status: 503, retryAfterMs: '1000' }] }, 'failures[0].retryAfterMs must be a number of milliseconds ≥ 0, got "1000"'],
    [{ failures: [{ id: 'a', status: 503, retryAfterMs: null }] }, 'failures[0].retryAfterMs must be a number of milliseconds ≥ 0, got null'],
    [{ failures: [{ id: 'a', status: 500, reason: 42 }] }, 'failures[0].reason must be a string, got 42'],
    [{ failures: [{ id: 'a', status: 500, reason: null }] }, 'failures[0].reason must be a string, got null'],
  ])('%j is invalid: %s', (body, reason) => {
    expect(reasonOf(body)).toBe(reason);
  });

  it('reads a number too large for a double as Infinity, which is no wait', () => {
    expect(reasonOf('{"failures":[{"id":"a","status":503,"retryAfterMs":1e999}]}')).toBe(
      'failures[0].retryAfterMs must be a number of milliseconds ≥ 0, got Infinity',
    );
  });

  it('names the problem on one short line, whatever the app sent', () => {
    const reason = reasonOf({ failures: [{ id: `x\n${'y'.repeat(500)}`, status: 500 }] });
    expect(reason).not.toMatch(/[\r\n]/);
    expect(reason.length).toBeLessThan(120);
  });

  it('calls an answer cut at BATCH_ANSWER_MAX_BYTES invalid when it does not parse, and reads it when it does', () => {
    const listing = '{"failures":[{"id":"a","status":500}]}';
    const cut = Buffer.from(`{"failures":[${'{"id":"a","status":500},'.repeat(BATCH_ANSWER_MAX_BYTES / 20)}`).subarray(0, BATCH_ANSWER_MAX_BYTES);
    expect(parseBatchAnswer(cut, ids)).toEqual({ kind: 'invalid', reason: `answer longer than ${BATCH_ANSWER_MAX_BYTES} bytes` });
    const page = Buffer.alloc(BATCH_ANSWER_MAX_BYTES, 'x');
    expect(parseBatchAnswer(page, ids).kind).toBe('invalid');
    const padded = Buffer.from(listing.padEnd(BATCH_ANSWER_MAX_BYTES, ' '));
    expect(parseBatchAnswer(padded, ids)).toEqual({ kind: 'listed', failures: new Map([['a', { status: 500 }]]) });
    // Short of the limit, text that is not JSON is a framework's default answer, unless it starts
    // like an object: then it may have meant to list failures.
    expect(parseBatchAnswer(Buffer.from('Accepted'), ids)).toEqual({ kind: 'all' });
    expect(parseBatchAnswer(Buffer.from(` ${listing.slice(0, -2)}`), ids)).toEqual({
      kind: 'invalid',
      reason: 'answer is not valid JSON although it starts like an object',
    });
  });
});
