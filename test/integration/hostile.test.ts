import { afterEach, describe, expect, inject, it } from 'vitest';
import { TestApp } from '../helpers/app.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { committedOffsets, createTopics, endOffsets, headerOf, produce, readAll, uniqueName } from '../helpers/kafka.js';
import { RawApp } from '../helpers/raw-app.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const TOKEN_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;
const BIG = 10 * 1024 * 1024;

async function committedAtEnd(topic: string, groupId: string): Promise<boolean> {
  const [committed, ends] = await Promise.all([committedOffsets(bootstrap, groupId, topic), endOffsets(bootstrap, topic)]);
  return [...ends].every(([partition, end]) => committed.get(partition) === end);
}

describe('hostile records', () => {
  it('cannot add, replace or split an HTTP header; each is delivered or dead-lettered with a reason; Courier keeps running', async () => {
    const topic = uniqueName('hostile');
    const groupId = uniqueName('hostile-group');
    await createTopics(bootstrap, [
      { topic, partitions: 1, config: { 'max.message.bytes': String(BIG) } },
      { topic: `${topic}.dlq`, partitions: 1, config: { 'max.message.bytes': String(BIG) } },
    ]);
    const app = new RawApp();
    await app.listen();
    cleanups.push(() => app.close());

    const crlf = 'x\r\nInjected: yes\r\n\r\nPOST /smuggled HTTP/1.1';
    const thousandHeaders = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`h${i}`, 'v']));
    const records = [
      { key: 'value-crlf', value: 'a', headers: { note: crlf } },
      { key: 'name-crlf', value: 'b', headers: { 'X-Evil\r\nInjected': 'yes', 'bad name': 'x', 'nul\u0000name': 'y' } },
      { key: 'nul', value: 'c', headers: { note: Buffer.from([0x61, 0x00, 0x62]) } },
      { key: 'non-utf8', value: Buffer.from([0xff, 0xfe, 0x00, 0x80]), headers: { note: Buffer.from([0xc3, 0x28, 0xff]) } },
      { key: `key${crlf}`, value: 'd' },
      {
        key: 'content-type',
        value: 'e',
        headers: { 'content-type': `text/plain${crlf}`, traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01\r\nInjected: yes`, ce_id: crlf },
      },
      { key: 'override', value: 'f', headers: { authorization: 'Bearer stolen', host: 'evil.example', 'content-length': '0', 'transfer-encoding': 'chunked' } },
      { key: 'thousand', value: 'g', headers: thousandHeaders },
      { key: null, value: null },
      { key: 'huge-header', value: 'h', headers: { big: 'x'.repeat(64 * 1024) } },
      { key: 'five-mb', value: Buffer.alloc(5 * 1024 * 1024, 0x41) },
    ];
    await produce(bootstrap, topic, records, { 'message.max.bytes': BIG });

    const courier = new CourierProcess(
      courierEnv(bootstrap, {
        COURIER_GROUP_ID: groupId,
        COURIER_TOPICS: topic,
        COURIER_TARGET_URL: app.url,
        // Default Kafka settings: the DLQ producer must accept any record the consumer fetched.
      }),
    ).start();
    cleanups.push(() => courier.kill());
    await waitFor('every record delivered or dead-lettered and committed', () => committedAtEnd(topic, groupId), 90_000);

    // On the wire: each line a single well-formed header, nothing injected, nothing duplicated.
    for (const request of app.requests) {
      expect(request.requestLine).toBe('POST /raw HTTP/1.1');
      for (const line of request.headerLines) expect(line, JSON.stringify(line)).toMatch(TOKEN_LINE);
      const names = request.headerLines.map((line) => line.slice(0, line.indexOf(':')).toLowerCase());
      expect(names).not.toContain('injected');
      for (const single of ['host', 'content-length', 'content-type', 'authorization', 'ce-id', 'kafka-key']) {
        expect(names.filter((name) => name === single).length, single).toBeLessThanOrEqual(1);
      }
      expect(names).not.toContain('transfer-encoding');
      expect(names).not.toContain('authorization'); // no COURIER_APP_TOKEN: a record cannot set one
    }
    const delivered = app.requests.map((r) => r.headerLines.find((line) => line.startsWith('kafka-key: '))?.slice(11) ?? null);
    expect(delivered).toEqual(['value-crlf', 'name-crlf', 'nul', 'non-utf8', encodeURIComponent(`key${crlf}`), 'content-type', 'override', null]);
    const override = app.requests[6]?.headerLines ?? [];
    expect(override).toContain('kafka-header-authorization: Bearer%20stolen');
    expect(override.find((line) => line.startsWith('host: '))).toBe(`host: 127.0.0.1:${app.port}`);
    const nonUtf8 = app.requests[3];
    expect(nonUtf8?.body).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    expect(nonUtf8?.headerLines).toContain('kafka-header-note: %C3%28%FF');
    expect(app.requests[7]?.body.length).toBe(0);

    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead.map((d) => [d.key?.toString(), headerOf(d, 'error_type'), headerOf(d, 'attempts')])).toEqual([
      ['thousand', 'too_many_headers', '0'],
      ['huge-header', 'headers_too_large', '0'],
      ['five-mb', 'record_too_large', '0'],
    ]);
    expect(dead[2]?.value?.length).toBe(5 * 1024 * 1024);
    expect((await courier.api('/healthz')).status).toBe(200);
  });
});

describe('a record too large for its DLQ topic', () => {
  it('is dead-lettered without its value (dlq_value_omitted: too_large) and the commit moves on, with default settings', async () => {
    const topic = uniqueName('oversize');
    const groupId = uniqueName('oversize-group');
    await createTopics(bootstrap, [
      { topic, partitions: 1, config: { 'max.message.bytes': String(BIG) } },
      { topic: `${topic}.dlq`, partitions: 1, config: { 'max.message.bytes': String(1024 * 1024) } },
    ]);
    const app = new TestApp(() => ({ status: 200 }));
    await app.listen();
    cleanups.push(() => app.close());
    await produce(
      bootstrap,
      topic,
      [
        { key: 'before', value: 'a' },
        { key: 'six-mb', value: Buffer.alloc(6 * 1024 * 1024, 0x42), headers: { note: 'kept' } },
        { key: 'after', value: 'b' },
      ],
      { 'message.max.bytes': BIG },
    );
    const courier = new CourierProcess(courierEnv(bootstrap, { COURIER_GROUP_ID: groupId, COURIER_TOPICS: topic, COURIER_TARGET_URL: app.url })).start();
    cleanups.push(() => courier.kill());
    await waitFor('every record delivered or dead-lettered and committed', () => committedAtEnd(topic, groupId), 60_000);

    expect(app.receipts.map((r) => r.headers['kafka-key'])).toEqual(['before', 'after']);
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead).toHaveLength(1);
    const [only] = dead;
    if (!only) throw new Error('no DLQ record');
    expect(only.key?.toString()).toBe('six-mb');
    expect(only.value ?? null).toBeNull();
    expect(headerOf(only, 'error_type')).toBe('record_too_large');
    expect(headerOf(only, 'dlq_value_omitted')).toBe('too_large');
    expect(headerOf(only, 'note')).toBe('kept');
    expect(headerOf(only, 'original_offset')).toBe('1');
  });
});

describe('secrets', () => {
  it('never appear in logs, API answers or metrics', async () => {
    const marker = 'MARKER7f3a9c';
    const topic = uniqueName('secrets');
    await createTopics(bootstrap, [{ topic, partitions: 1 }]); // no DLQ topic: the DLQ-blocked path logs too
    const app = new TestApp((r) => ({ status: r.body.toString() === 'reject' ? 400 : 200 }));
    await app.listen();
    cleanups.push(() => app.close());
    const env = courierEnv(bootstrap, {
      COURIER_GROUP_ID: uniqueName('secrets-group'),
      COURIER_TOPICS: topic,
      COURIER_TARGET_URL: app.url,
      COURIER_ADMIN_TOKEN: `admin-${marker}`,
      COURIER_APP_TOKEN: `app-${marker}`,
      COURIER_SIGNING_SECRET: `whsec_${Buffer.from(`signing-${marker}`).toString('base64')} whsec_${Buffer.from(marker).toString('base64')}`,
      KAFKA_SASL_USERNAME: 'user',
      KAFKA_SASL_PASSWORD: `sasl-${marker}`,
      KAFKA_TOPIC_METADATA_PROPAGATION_MAX_MS: '1000',
      COURIER_LOG_LEVEL: 'trace',
    });
    const courier = new CourierProcess(env).start();
    cleanups.push(() => courier.kill());
    await produce(bootstrap, topic, [{ value: 'ok' }, { value: 'reject' }]);
    await waitFor('the rejected record to fail its DLQ write', () => courier.hasLog((l) => String(l.msg).startsWith('DLQ write failed')));
    expect(app.receipts[0]?.headers.authorization).toBe(`Bearer app-${marker}`); // the app does get its token

    const answers: string[] = [];
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/lag', '/v1/assignment', '/v1/rebalances', '/openapi.json', '/nope']) {
      answers.push(JSON.stringify((await courier.api(path)).body));
    }
    answers.push(JSON.stringify((await courier.api('/v1/pause', { method: 'POST', body: { topic }, token: `admin-${marker}` })).body));
    answers.push(JSON.stringify((await courier.api('/v1/pause', { method: 'POST', body: { topic }, token: `wrong-${marker}` })).body));
    await courier.stop();
    expect(courier.logs.some((l) => String(l.msg).startsWith('DLQ write failed'))).toBe(true);
    const everything = [courier.dump(), courier.stderr, ...answers].join('\n');
    expect(everything).not.toContain(marker);
    expect(everything).not.toContain(Buffer.from(marker).toString('base64'));
  });
});
