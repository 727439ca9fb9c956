import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyInstance } from 'fastify';
import parsePrometheus from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildServer, type Operations } from '../../src/api/server.js';
import { batchBody, parseBatchAnswer } from '../../src/delivery/batch.js';
import { identify } from '../../src/delivery/push.js';
import { createMetrics } from '../../src/metrics.js';
import type { KafkaRecord } from '../../src/record.js';
import { deadLetterEntry } from '../helpers/dead-letters.js';

const root = resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string }).version;

function operations(overrides: Partial<Operations> = {}): Operations & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    failure: () => undefined,
    notReadyReasons: () => [],
    lag: async () => ({
      partitions: [
        { topic: 'orders', partition: 0, committedOffset: 40, highWatermark: 100, lag: 60, lagSeconds: 12.5, oldestUnackedAgeMs: 3400 },
        { topic: 'orders', partition: 1, committedOffset: null, highWatermark: 7, lag: 7, lagSeconds: null, oldestUnackedAgeMs: null },
      ],
      totalLag: 67,
      refreshedAt: '2026-11-26T00:00:00.000Z',
    }),
    assignment: () => [
      { topic: 'orders', partition: 0, state: 'active', inFlight: 1, queued: 3, oldestInFlightMs: 12, pausedReason: null, pausedReasons: [] },
      { topic: 'orders', partition: 1, state: 'paused', inFlight: 0, queued: 0, oldestInFlightMs: null, pausedReason: 'admin', pausedReasons: ['admin'] },
    ],
    routes: () => [
      {
        topic: 'orders',
        url: 'http://app:3000/orders',
        state: 'app_misrouted',
        concurrencyLimit: 1,
        pushing: 1,
        started: 2,
        since: '2026-11-26T00:00:00.000Z',
        status: 307,
        location: 'http://app:3000/orders/',
      },
    ],
    rebalances: () => ({
      events: [{ at: '2026-11-26T00:00:00.000Z', type: 'assign', partitions: [{ topic: 'orders', partition: 0 }] }],
      counts: { assign: 1, revoke: 0, lost: 0 },
    }),
    adminPause: (topic, partitions, pause) => {
      calls.push([topic, partitions, pause]);
      return topic === 'orders' ? { changed: [{ topic, partition: 0 }], notAssigned: [] } : null;
    },
    seek: async (request) => {
      calls.push(['seek', request]);
      if (request.topic !== 'orders') return { unknownTopic: true };
      if (request.partition !== 0) return { notAssigned: [{ topic: 'orders', partition: request.partition }] };
      return { previous: 40, now: request.offset ?? 12 };
    },
    redrive: async (request) => {
      calls.push(['redrive', request]);
      return request.topic === 'orders' ? { matched: 3, redriven: 2, skipped: 1, dryRun: request.dryRun ?? false } : { unknownTopic: true };
    },
    deadLetters: async (query) => {
      calls.push(['dlq', query]);
      if (query.topic !== 'orders') return { unknownTopic: true };
      return {
        dlqTopic: 'orders.dlq',
        records: [deadLetterEntry()],
      };
    },
    ...overrides,
  };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function server(ops: Operations = operations(), options: { adminToken?: string; registry?: Registry } = { adminToken: 'sekrit' }) {
  app = await buildServer({ operations: ops, registry: options.registry ?? new Registry(), adminToken: options.adminToken, version });
  await app.ready();
  return app;
}

/** Validates an answer against the response schema the OpenAPI document gives for it. */
function matchesDocument(document: Record<string, any>, path: string, method: string, status: number, body: unknown): string[] {
  const schema = document.paths[path][method].responses[String(status)].content['application/json'].schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', { validate: (value: string) => !Number.isNaN(Date.parse(value)) });
  const validate = ajv.compile(schema);
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

describe('health', () => {
  it('/healthz is 200 while alive and 503 with the error after a fatal consumer failure', async () => {
    expect((await (await server()).inject('/healthz')).json()).toEqual({ status: 'ok' });
    await app?.close();
    const failed = await (await server(operations({ failure: () => 'broker authentication failed' }))).inject('/healthz');
    expect(failed.statusCode).toBe(503);
    expect(failed.json()).toEqual({ status: 'failed', error: 'broker authentication failed' });
  });

  it('/readyz is 200 without reasons and 503 listing them', async () => {
    const ready = await (await server()).inject('/readyz');
    expect([ready.statusCode, ready.json()]).toEqual([200, { ready: true, reasons: [] }]);
    await app?.close();
    const reasons = [{ code: 'app_down', message: 'nothing answers at http://127.0.0.1:3000' }];
    const notReady = await (await server(operations({ notReadyReasons: () => reasons }))).inject('/readyz');
    expect([notReady.statusCode, notReady.json()]).toEqual([503, { ready: false, reasons }]);
  });
});

describe('metrics', () => {
  it('serves every A5 metric as Prometheus text that a parser reads', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    metrics.recordsDelivered.inc({ topic: 'orders' }, 3);
    metrics.recordsDeadLettered.inc({ topic: 'orders', reason: 'rejected_by_app' });
    const response = await (await server(operations(), { adminToken: 'sekrit', registry })).inject('/metrics');
    expect(response.headers['content-type']).toContain('text/plain');
    const families = parsePrometheus(response.body);
    const names = new Set(families.map((family) => family.name));
    for (const name of [
      'courier_records_consumed_total',
      'courier_records_delivered_total',
      'courier_records_dead_lettered_total',
      'courier_delivery_attempts_total',
      'courier_delivery_duration_seconds',
      'courier_record_processing_seconds',
      'courier_consumer_lag',
      'courier_lag_seconds',
      'courier_oldest_unacked_age_seconds',
      'courier_rebalances_total',
      'courier_commits_total',
      'courier_in_flight',
      'courier_poll_latency_seconds',
      'courier_app_up',
      'process_cpu_seconds_total',
    ]) {
      expect(names, name).toContain(name);
    }
    const delivered = families.find((family) => family.name === 'courier_records_delivered_total');
    expect(delivered?.metrics).toEqual([{ labels: { topic: 'orders' }, value: '3' }]);
  });
});

describe('operations routes', () => {
  it.each([
    [
      '/v1/lag',
      (body: any) => {
        expect(body.totalLag).toBe(67);
        expect(body.partitions.map((p: any) => [p.lagSeconds, p.oldestUnackedAgeMs])).toEqual([
          [12.5, 3400],
          [null, null],
        ]);
      },
    ],
    ['/v1/assignment', (body: any) => expect(body.partitions.map((p: any) => p.state)).toEqual(['active', 'paused'])],
    ['/v1/rebalances', (body: any) => expect(body.counts).toEqual({ assign: 1, revoke: 0, lost: 0 })],
  ])('%s answers what the operations report, matching its documented schema', async (path, check) => {
    const api = await server();
    const response = await api.inject(path);
    expect(response.statusCode).toBe(200);
    check(response.json());
    expect(matchesDocument(api.swagger() as never, path, 'get', 200, response.json())).toEqual([]);
  });

  it('/readyz 503 and /healthz 503 answers match their schemas too', async () => {
    const api = await server(operations({ failure: () => 'fatal', notReadyReasons: () => [{ code: 'consumer_failed', message: 'fatal' }] }));
    for (const path of ['/readyz', '/healthz']) {
      const response = await api.inject(path);
      expect(response.statusCode).toBe(503);
      expect(matchesDocument(api.swagger() as never, path, 'get', 503, response.json())).toEqual([]);
    }
  });

  it('answers unknown routes with a JSON 404, and other methods on known paths with 405 and Allow', async () => {
    const api = await server();
    const response = await api.inject('/v1/nope');
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ error: 'not_found' });
    const wrongMethod = await api.inject({ method: 'DELETE', url: '/v1/lag', payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(wrongMethod.statusCode).toBe(405);
    expect(wrongMethod.headers.allow).toContain('GET');
    expect(wrongMethod.json()).toMatchObject({ error: 'method_not_allowed' });
  });

  it('answers an oversized admin body with a JSON 413', async () => {
    const response = await (await server()).inject({
      method: 'POST',
      url: '/v1/pause',
      payload: { topic: 'orders', partitions: Array.from({ length: 5000 }, (_, i) => i) },
      headers: { authorization: 'Bearer sekrit' },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error: 'payload_too_large' });
  });
});

describe('admin routes', () => {
  const body = { topic: 'orders', partitions: [0] };

  it('are off (404) when no admin token is configured', async () => {
    const ops = operations();
    const response = await (await server(ops, {})).inject({ method: 'POST', url: '/v1/pause', payload: body, headers: { authorization: 'Bearer anything' } });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ error: 'not_found' });
    expect(ops.calls).toEqual([]);
  });

  it.each([
    ['no authorization header', {}],
    ['a wrong token', { authorization: 'Bearer wrong' }],
    ['a token that is a prefix', { authorization: 'Bearer sekri' }],
    ['another scheme', { authorization: 'Basic c2Vrcml0' }],
  ])('answer 401 for %s and change nothing', async (_case, headers) => {
    const ops = operations();
    const response = await (await server(ops)).inject({ method: 'POST', url: '/v1/pause', payload: body, headers });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ error: 'unauthorized' });
    expect(ops.calls).toEqual([]);
  });

  it('pause and resume with the token, answering what changed', async () => {
    const ops = operations();
    const api = await server(ops);
    const headers = { authorization: 'Bearer sekrit' };
    const paused = await api.inject({ method: 'POST', url: '/v1/pause', payload: body, headers });
    expect([paused.statusCode, paused.json()]).toEqual([200, { changed: [{ topic: 'orders', partition: 0 }], notAssigned: [] }]);
    expect(matchesDocument(api.swagger() as never, '/v1/pause', 'post', 200, paused.json())).toEqual([]);
    await api.inject({ method: 'POST', url: '/v1/resume', payload: { topic: 'orders' }, headers });
    expect(ops.calls).toEqual([
      ['orders', [0], true],
      ['orders', undefined, false],
    ]);
  });

  it('answer 404 for a topic Courier does not consume and 400 for a malformed body, as JSON errors', async () => {
    const api = await server();
    const headers = { authorization: 'Bearer sekrit' };
    const unknown = await api.inject({ method: 'POST', url: '/v1/pause', payload: { topic: 'payments' }, headers });
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'unknown_topic']);
    for (const payload of [{}, { topic: 'orders', partitions: [-1] }, { topic: 'orders', extra: true }, 'not json']) {
      const bad = await api.inject({ method: 'POST', url: '/v1/pause', payload, headers: { ...headers, 'content-type': 'application/json' } });
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
      expect(Object.keys(bad.json()).sort()).toEqual(['error', 'message']);
    }
  });
});

describe('seek, DLQ list and redrive (admin)', () => {
  const headers = { authorization: 'Bearer sekrit' };

  it('seek answers previous and now, 409 notAssigned, 404 unknown topic, 400 without exactly one of offset and timestamp', async () => {
    const ops = operations();
    const api = await server(ops);
    const ok = await api.inject({ method: 'POST', url: '/v1/seek', payload: { topic: 'orders', partition: 0, offset: 12 }, headers });
    expect([ok.statusCode, ok.json()]).toEqual([200, { previous: 40, now: 12 }]);
    expect(matchesDocument(api.swagger() as never, '/v1/seek', 'post', 200, ok.json())).toEqual([]);
    const theirs = await api.inject({
      method: 'POST',
      url: '/v1/seek',
      payload: { topic: 'orders', partition: 3, timestamp: '2026-11-30T10:00:00Z' },
      headers,
    });
    expect(theirs.statusCode).toBe(409);
    expect(theirs.json()).toMatchObject({ error: 'notAssigned', partitions: [{ topic: 'orders', partition: 3 }] });
    expect(matchesDocument(api.swagger() as never, '/v1/seek', 'post', 409, theirs.json())).toEqual([]);
    const unknown = await api.inject({ method: 'POST', url: '/v1/seek', payload: { topic: 'payments', partition: 0, offset: 1 }, headers });
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'unknown_topic']);
    for (const payload of [
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 0, offset: 1, timestamp: 5 },
      { topic: 'orders', partition: 0, timestamp: 'yesterday' },
      { topic: 'orders', partition: -1, offset: 1 },
    ]) {
      const bad = await api.inject({ method: 'POST', url: '/v1/seek', payload, headers });
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
    }
    const calls = ops.calls.filter(([what]) => what === 'seek').map(([, request]) => (request as { partition: number }).partition);
    expect(calls).toEqual([0, 3, 0]);
  });

  it('seek answers 503 with the reason when the seek itself fails', async () => {
    const api = await server(operations({ seek: async () => Promise.reject(new Error('seek of orders-0 failed: timed out')) }));
    const failed = await api.inject({ method: 'POST', url: '/v1/seek', payload: { topic: 'orders', partition: 0, offset: 1 }, headers });
    expect([failed.statusCode, failed.json()]).toEqual([503, { error: 'seek_failed', message: 'seek of orders-0 failed: timed out' }]);
  });

  it('redrive and list need the token, and answer counts and records', async () => {
    const ops = operations();
    const api = await server(ops);
    expect((await api.inject({ method: 'POST', url: '/v1/dlq/redrive', payload: { topic: 'orders' } })).statusCode).toBe(401);
    expect((await api.inject({ method: 'GET', url: '/v1/dlq?topic=orders' })).statusCode).toBe(401);
    const redriven = await api.inject({ method: 'POST', url: '/v1/dlq/redrive', payload: { topic: 'orders', httpStatus: 422, dryRun: true }, headers });
    expect([redriven.statusCode, redriven.json()]).toEqual([200, { matched: 3, redriven: 2, skipped: 1, dryRun: true }]);
    expect(matchesDocument(api.swagger() as never, '/v1/dlq/redrive', 'post', 200, redriven.json())).toEqual([]);
    const listed = await api.inject({ method: 'GET', url: '/v1/dlq?topic=orders&httpStatus=422&limit=5', headers });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().records[0]).toMatchObject({ originalOffset: 77, httpStatus: 422 });
    expect(matchesDocument(api.swagger() as never, '/v1/dlq', 'get', 200, listed.json())).toEqual([]);
    expect(ops.calls.find(([what]) => what === 'dlq')?.[1]).toEqual({ topic: 'orders', httpStatus: 422, limit: 5 });
    expect((await api.inject({ method: 'POST', url: '/v1/dlq/redrive', payload: { topic: 'payments' }, headers })).statusCode).toBe(404);
    expect((await api.inject({ method: 'POST', url: '/v1/dlq/redrive', payload: { topic: 'orders', limit: 0 }, headers })).statusCode).toBe(400);
  });

  it('redrive and list answer 404 for a DLQ topic that does not exist, 400 for one that is not a topic name', async () => {
    const missing = Object.assign(new Error('topic orders.dead does not exist'), { code: 'TOPIC_NOT_FOUND' });
    const api = await server(operations({ redrive: async () => Promise.reject(missing), deadLetters: async () => Promise.reject(missing) }));
    const redrive = await api.inject({ method: 'POST', url: '/v1/dlq/redrive', payload: { topic: 'orders', dlqTopic: 'orders.dead' }, headers });
    expect([redrive.statusCode, redrive.json().error]).toEqual([404, 'unknown_dlq_topic']);
    const list = await api.inject({ method: 'GET', url: '/v1/dlq?topic=orders&dlqTopic=orders.dead', headers });
    expect([list.statusCode, list.json().error]).toEqual([404, 'unknown_dlq_topic']);
    expect((await api.inject({ method: 'GET', url: '/v1/dlq?topic=orders&dlqTopic=%C2%ADS', headers })).statusCode).toBe(400);
  });

  it('redrive answers 409 while another runs and 503 when a write fails', async () => {
    const busy = await (await server(operations({ redrive: async () => ({ busy: true }) }))).inject({
      method: 'POST',
      url: '/v1/dlq/redrive',
      payload: { topic: 'orders' },
      headers,
    });
    expect([busy.statusCode, busy.json().error]).toEqual([409, 'redrive_in_progress']);
    await app?.close();
    const failing = await (await server(operations({ redrive: async () => Promise.reject(new Error('writing orders.dlq-0-4 back to orders failed')) }))).inject(
      {
        method: 'POST',
        url: '/v1/dlq/redrive',
        payload: { topic: 'orders' },
        headers,
      },
    );
    expect([failing.statusCode, failing.json().error]).toEqual([503, 'redrive_failed']);
  });
});

describe('OpenAPI', () => {
  it('serves the committed document (regenerate with `npm run openapi`)', async () => {
    const served = (await (await server()).inject('/openapi.json')).json();
    const committed = JSON.parse(readFileSync(resolve(root, 'openapi/courier.json'), 'utf8'));
    expect(served).toEqual(committed);
  });

  it('is a valid OpenAPI 3.1 document that documents every route and the push to the app', async () => {
    const document = (await (await server()).inject('/openapi.json')).json();
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/healthz',
      '/metrics',
      '/openapi.json',
      '/readyz',
      '/v1/assignment',
      '/v1/dlq',
      '/v1/dlq/redrive',
      '/v1/lag',
      '/v1/pause',
      '/v1/rebalances',
      '/v1/resume',
      '/v1/seek',
    ]);
    const pushHeaders = document.webhooks.record.post.parameters.map((p: { name: string }) => p.name);
    expect(pushHeaders).toEqual(
      expect.arrayContaining(['ce-id', 'kafka-topic', 'kafka-partition', 'kafka-offset', 'kafka-key', 'courier-attempt', 'webhook-signature']),
    );
    expect(Object.keys(document.webhooks.record.post.responses)).toEqual(expect.arrayContaining(['2XX', '401', '429', '4XX', '5XX']));
    const batchHeaders = document.webhooks.batch.post.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required]);
    expect(batchHeaders).toEqual(
      expect.arrayContaining([
        ['content-type', true],
        ['courier-batch-size', true],
        ['webhook-id', false],
        ['webhook-signature', false],
      ]),
    );
    expect(Object.keys(document.webhooks.batch.post.responses)).toEqual(expect.arrayContaining(['2XX', '401', '429', '503', '4XX', '5XX']));
  });

  it('describes the batch request Courier sends and the answers it reads (DESIGN A6)', async () => {
    const document = (await (await server()).inject('/openapi.json')).json();
    const { post } = document.webhooks.batch;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const request = ajv.compile(post.requestBody.content['application/json'].schema);
    const answer = ajv.compile(post.responses['2XX'].content['application/json'].schema);
    const record = (overrides: Partial<KafkaRecord>): KafkaRecord => ({
      topic: 'orders',
      partition: 3,
      offset: 1207,
      timestamp: 1764400000000,
      key: Buffer.from('order-7'),
      value: Buffer.from('{"order":7}'),
      headers: [['content-type', Buffer.from('application/json')]],
      fetchedAt: 0,
      ...overrides,
    });
    const traced: KafkaRecord['headers'] = [
      ['traceparent', Buffer.from('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')],
      ['tracestate', Buffer.from('vendor=1')],
    ];
    const records = [
      record({}),
      record({ offset: 1208, key: null, value: Buffer.from('null') }),
      record({ offset: 1209, key: Buffer.from([0xff, 0x00]), value: Buffer.from([1, 2, 3]), headers: traced }),
      record({ offset: 1210, value: null, headers: [] }),
      record({ offset: 1211, value: Buffer.from('{not json'), headers: [['ce_id', Buffer.from('event-1')]] }),
    ];
    const body = JSON.parse(batchBody(records.map((r, i) => ({ record: r, identity: identify(r), attempt: i + 1 }))).toString());
    expect(request(body), JSON.stringify(request.errors)).toBe(true);
    // What the schema requires is what every record carries; the conditional members come and go.
    const members = (body.records as Record<string, unknown>[]).map((r) => Object.keys(r).sort());
    const required = post.requestBody.content['application/json'].schema.properties.records.items.required as string[];
    for (const keys of members) expect(keys).toEqual(expect.arrayContaining(required));
    expect(new Set(members.flat())).toEqual(new Set(Object.keys(post.requestBody.content['application/json'].schema.properties.records.items.properties)));
    // A record with two of value, valueBase64 and tombstone breaks the schema.
    expect(request({ records: [{ ...body.records[0], valueBase64: 'AQID' }] })).toBe(false);

    const ids = new Set(['orders-3-1207', 'orders-3-1208']);
    const answers: unknown[] = [
      {},
      { failures: [] },
      { failures: [{ id: 'orders-3-1207', status: 422, reason: 'unknown sku' }] },
      { failures: [{ id: 'orders-3-1208', status: 503, retryAfterMs: 1000 }] },
    ];
    for (const listed of answers) {
      expect(answer(listed), JSON.stringify(listed)).toBe(true);
      expect(parseBatchAnswer(Buffer.from(JSON.stringify(listed)), ids).kind).not.toBe('invalid');
    }
    // A listing that breaks the schema is what Courier refuses to guess about.
    const broken: unknown[] = [
      { failures: {} },
      { failures: ['orders-3-1207'] },
      { failures: [{ id: 'orders-3-1207' }] },
      { failures: [{ id: 'orders-3-1207', status: 42 }] },
      { failures: [{ id: 'orders-3-1207', status: 503, retryAfterMs: -1 }] },
      { failures: [{ id: 'orders-3-1207', status: 422, reason: 7 }] },
    ];
    for (const listed of broken) {
      expect(answer(listed), JSON.stringify(listed)).toBe(false);
      expect(parseBatchAnswer(Buffer.from(JSON.stringify(listed)), ids).kind).toBe('invalid');
    }
  });
});
