import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { committedOffsets, createTopics, endOffsets, headerOf, type ProducedRecord, produce, readAll, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The handler examples (examples/<lang>/, docs/handlers.md), each run as its own process behind the real
 * Courier and a real broker: signatures, idempotency by ce-id, binary keys, the poison record in the DLQ,
 * 429 with Retry-After over the example's MAX_CONCURRENCY (redelivered, never dead-lettered), a Courier
 * with the wrong secret refused, and committed offsets at the end. Each also answers batches
 * (COURIER_DELIVERY=batch, DESIGN A6: the courier-batch-size header on the same path) record by record:
 * by hand, then behind a second Courier in batch mode that runs beside the first. scripts/examples-setup.sh
 * installs any missing toolchain and builds the example first.
 */

const root = resolve(import.meta.dirname, '../..');
const bootstrap = inject('bootstrap');

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const wrongSecret = `whsec_${randomBytes(32).toString('base64')}`;

const EXAMPLES = [
  { lang: 'python', command: 'python3', args: ['examples/python/handler.py'] },
  { lang: 'go', command: 'examples/go/bin/handler', args: [] },
  { lang: 'java', command: 'java', args: ['-XX:TieredStopAtLevel=1', '-cp', 'examples/java/target/classes', 'dev.courier.examples.Handler'] },
  { lang: 'typescript', command: process.execPath, args: ['examples/typescript/dist/handler.js'] },
];

interface Event {
  event: string;
  ce_id?: string;
  topic?: string | null;
  partition?: number | null;
  offset?: number | null;
  key?: string | null;
  /** The value's size; null for a batch record whose value came parsed as JSON. */
  bytes?: number | null;
  /** Batch records only: how many records their request carried. */
  batch?: number | null;
  ce_type?: string;
  ce_source?: string;
  attempt?: number;
  status?: number;
  port?: number;
  verifying?: boolean;
}

/** An example handler as a child process; its stdout JSON lines are its events. */
class ExampleProcess {
  readonly events: Event[] = [];
  output = '';
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> | undefined;
  exitCode: number | null | undefined;

  constructor(
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
  ) {}

  async start(): Promise<string> {
    const child = spawn(this.command, this.args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolveExit) => child.on('exit', (code) => resolveExit((this.exitCode = code))));
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.output += `${line}\n`;
        try {
          this.events.push(JSON.parse(line) as Event);
        } catch {}
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    const listening = await waitFor(
      `${this.command} to listen`,
      () => {
        if (this.exitCode !== undefined) throw new Error(`exited (${this.exitCode}): ${this.output}`);
        return this.events.find((e) => e.event === 'listening');
      },
      30_000,
      50,
    );
    expect(listening.verifying).toBe(true);
    return `http://127.0.0.1:${listening.port}/events`;
  }

  of(event: string, topic?: string): Event[] {
    return this.events.filter((e) => e.event === event && (topic === undefined || e.topic === topic));
  }

  /** The events that match, once there are `count` of them: an answer can arrive before the lines written ahead of it. */
  async until(count: number, match: (e: Event) => boolean): Promise<Event[]> {
    const matching = () => this.events.filter(match);
    await waitFor(`${count} events from ${this.command}`, () => matching().length >= count, 10_000, 20);
    return matching();
  }

  async stop(): Promise<void> {
    if (!this.child || this.exitCode !== undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun();
      else reject(new Error(`${command} ${args.join(' ')} failed (${code ?? signal}):\n${output}`));
    });
  });
}

function sign(key: string, id: string, timestamp: number, body: Buffer): string {
  const hmac = createHmac('sha256', Buffer.from(key.slice('whsec_'.length), 'base64'));
  return `v1,${hmac.update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}

/** A push made by hand, as Courier would make it (or not quite). */
async function push(url: string, body: Buffer, options: { ceId: string; offset: number; key?: string; timestamp?: number; signature?: string | null }) {
  const webhookId = `direct-0-${options.offset}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'ce-specversion': '1.0',
    'ce-id': options.ceId,
    'ce-source': '/kafka/direct',
    'ce-type': 'dev.courier.kafka.record',
    'kafka-topic': 'direct',
    'kafka-partition': '0',
    'kafka-offset': String(options.offset),
    'kafka-timestamp': String(Date.now()),
    'courier-attempt': '1',
  };
  if (options.key !== undefined) headers['kafka-key'] = options.key;
  if (options.signature !== null) {
    headers['webhook-id'] = webhookId;
    headers['webhook-timestamp'] = String(timestamp);
    headers['webhook-signature'] = options.signature ?? sign(secret, webhookId, timestamp, body);
  }
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() };
}

const hex = (bytes: Buffer | null) => bytes?.toString('hex') ?? null;

/** One record of an A6 batch body, as Courier writes it; `{ json }` is a value of a JSON content type. */
function batchRecord(topic: string, id: string, offset: number, key: Buffer | null, value: { json: unknown } | Buffer | null) {
  return {
    id,
    topic,
    partition: 0,
    offset: String(offset),
    timestamp: Date.now(),
    key: key?.toString('base64') ?? null,
    headers: [],
    contentType: value === null || Buffer.isBuffer(value) ? 'application/octet-stream' : 'application/json',
    ...(value === null ? { tombstone: true } : Buffer.isBuffer(value) ? { valueBase64: value.toString('base64') } : { value: value.json }),
    attempt: 1,
  };
}

/** A batch made by hand, as Courier would make it: one signed JSON request with courier-batch-size. */
async function pushBatch(url: string, records: ReturnType<typeof batchRecord>[] | Buffer, signature?: string) {
  const body = Buffer.isBuffer(records) ? records : Buffer.from(JSON.stringify({ records }));
  const webhookId = Buffer.isBuffer(records) ? 'not-a-batch' : records[0]!.id;
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    'content-type': 'application/json',
    'courier-batch-size': String(Buffer.isBuffer(records) ? 1 : records.length),
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature ?? sign(secret, webhookId, timestamp, body),
  };
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() };
}

const binaryKeys = [
  Buffer.from([0x00]),
  Buffer.from([0xff]),
  Buffer.from('%'),
  Buffer.from('/'),
  Buffer.from([0xc3, 0x28]), // not UTF-8
  Buffer.from('a+b c%2F'),
  Buffer.from([0x00, 0xff, 0x25, 0x2f, 0x2b, 0x20, 0x80, 0xfe, 0x0a]),
];
const POISON_REASON = 'cannot process this record';

describe.each(EXAMPLES)('the $lang handler example', ({ lang, command, args }) => {
  let example: ExampleProcess;
  let url: string;
  const couriers: CourierProcess[] = [];

  beforeAll(async () => {
    await run('bash', ['scripts/examples-setup.sh', lang], 240_000);
    example = new ExampleProcess(command, args, { PORT: '0', WEBHOOK_SECRET: secret, MAX_CONCURRENCY: '2', PROCESSING_DELAY_MS: '20' });
    url = await example.start();
  }, 300_000);

  afterAll(async () => {
    for (const courier of couriers) await courier.kill();
    await example?.stop();
  });

  it('verifies Standard Webhooks signatures itself: 401 for missing, tampered, wrong-key, stale or future ones', async () => {
    const body = Buffer.from('{"hello":"world"}');
    const now = Math.floor(Date.now() / 1000);
    const id = (offset: number) => `direct-0-${offset}`;
    const refused = [
      await push(url, body, { ceId: 'direct-unsigned', offset: 1, signature: null }),
      await push(url, body, { ceId: 'direct-tampered', offset: 2, timestamp: now, signature: sign(secret, id(2), now, Buffer.from('{"hello":"moon"}')) }),
      await push(url, body, { ceId: 'direct-wrong-key', offset: 3, timestamp: now, signature: sign(wrongSecret, id(3), now, body) }),
      await push(url, body, { ceId: 'direct-stale', offset: 4, timestamp: now - 360, signature: sign(secret, id(4), now - 360, body) }),
      await push(url, body, { ceId: 'direct-future', offset: 5, timestamp: now + 360, signature: sign(secret, id(5), now + 360, body) }),
      await push(url, body, { ceId: 'direct-garbage', offset: 6, signature: 'v1,not base64!! v2,x nonsense' }),
    ];
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(example.of('bad_signature', 'direct').map((e) => e.ce_id)).toEqual([
      'direct-unsigned',
      'direct-tampered',
      'direct-wrong-key',
      'direct-stale',
      'direct-future',
      'direct-garbage',
    ]);

    // Accepted: during a secret rotation (several signatures, one valid), and over a body that is not UTF-8.
    const rotated = `${sign(wrongSecret, id(7), now, body)} ${sign(secret, id(7), now, body)}`;
    expect((await push(url, body, { ceId: 'direct-rotated', offset: 7, timestamp: now, signature: rotated })).status).toBe(200);
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]);
    expect((await push(url, binary, { ceId: 'direct-binary', offset: 8, key: '%00%FF%25%2F+' })).status).toBe(200);
    // The same ce-id again: acknowledged, not processed twice.
    expect((await push(url, binary, { ceId: 'direct-binary', offset: 9 })).status).toBe(200);
    // A record the app will never accept.
    expect((await push(url, Buffer.from('{"poison":true}'), { ceId: 'direct-poison', offset: 10 })).status).toBe(422);

    expect(example.of('processed', 'direct').map((e) => [e.ce_id, e.key, e.bytes])).toEqual([
      ['direct-rotated', null, body.length],
      ['direct-binary', '00ff252f2b', binary.length],
    ]);
    expect(example.of('duplicate', 'direct').map((e) => [e.ce_id, e.offset])).toEqual([['direct-binary', 9]]);
    expect(example.of('rejected', 'direct').map((e) => [e.ce_id, e.status])).toEqual([['direct-poison', 422]]);
  });

  it('answers a batch (courier-batch-size) on the same path: in array order, poison records listed as 422 with a reason, duplicates by id, 401 for a bad signature', async () => {
    const topic = 'direct-batch';
    // An id processed as a single record: the batch shares the ce-id store.
    expect((await push(url, Buffer.from('{}'), { ceId: 'batch-single', offset: 1 })).status).toBe(200);
    const orderKey = Buffer.from('order-1');
    const records = [
      batchRecord(topic, 'batch-json', 2, orderKey, { json: { order: 1 } }),
      batchRecord(topic, 'batch-binary', 3, Buffer.from([0x00, 0xff, 0x25, 0x2f, 0x2b]), Buffer.from([0xff, 0xfe, 0x00, 0x80])),
      batchRecord(topic, 'batch-tombstone', 4, null, null),
      batchRecord(topic, 'batch-poison-json', 5, null, { json: { poison: true } }),
      batchRecord(topic, 'batch-poison-bytes', 6, null, Buffer.from('{"poison":true}')),
      batchRecord(topic, 'batch-json', 7, orderKey, { json: { order: 1 } }), // the same id again, in the same batch
      batchRecord(topic, 'batch-single', 8, null, Buffer.from('{}')),
    ];

    // The signature covers the whole body; the body of a batch that fails the check is not read.
    const now = Math.floor(Date.now() / 1000);
    const tampered = await pushBatch(url, records, sign(secret, 'batch-json', now, Buffer.from('{"records":[]}')));
    expect(tampered.status).toBe(401);
    expect(await example.until(1, (e) => e.event === 'bad_signature' && e.ce_id === 'batch-json')).toEqual([
      { event: 'bad_signature', ce_id: 'batch-json', batch: 7 },
    ]);
    expect(example.events.filter((e) => e.topic === topic)).toEqual([]);

    const answer = await pushBatch(url, records);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      failures: [
        { id: 'batch-poison-json', status: 422, reason: POISON_REASON },
        { id: 'batch-poison-bytes', status: 422, reason: POISON_REASON },
      ],
    });
    expect((await example.until(7, (e) => e.topic === topic)).map((e) => [e.event, e.ce_id, e.offset])).toEqual([
      ['processed', 'batch-json', 2],
      ['processed', 'batch-binary', 3],
      ['processed', 'batch-tombstone', 4],
      ['rejected', 'batch-poison-json', 5],
      ['rejected', 'batch-poison-bytes', 6],
      ['duplicate', 'batch-json', 7],
      ['duplicate', 'batch-single', 8],
    ]);
    expect(example.of('processed', topic).map((e) => [e.key, e.bytes, e.batch, e.attempt, e.partition])).toEqual([
      [hex(orderKey), null, 7, 1, 0],
      ['00ff252f2b', 4, 7, 1, 0],
      [null, 0, 7, 1, 0],
    ]);
    expect(example.of('rejected', topic).map((e) => e.status)).toEqual([422, 422]);

    // A signed body that is not a batch: 400 (Courier would split it until the record at fault is alone).
    expect((await pushBatch(url, Buffer.from('{"records":5}'))).status).toBe(400);
    expect((await example.until(1, (e) => e.ce_id === 'not-a-batch')).map((e) => [e.event, e.status])).toEqual([['rejected', 400]]);
  });

  it('answers 429 with Retry-After: 1 over MAX_CONCURRENCY, without processing the record', async () => {
    // Its own instance: one slot, held long enough (PROCESSING_DELAY_MS) for a second request to find it taken.
    const limited = new ExampleProcess(command, args, { PORT: '0', WEBHOOK_SECRET: secret, MAX_CONCURRENCY: '1', PROCESSING_DELAY_MS: '1500' });
    try {
      const limitedUrl = await limited.start();
      const body = Buffer.from('{"order":1}');
      // Both at once: whichever takes the slot holds it 1.5 s, the other is over the limit.
      const answers = await Promise.all([push(limitedUrl, body, { ceId: 'limit-a', offset: 1 }), push(limitedUrl, body, { ceId: 'limit-b', offset: 2 })]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 429]);
      const refused = answers.find((a) => a.status === 429)!;
      expect(refused.retryAfter).toBe('1');
      expect(JSON.parse(refused.body)).toEqual({ error: 'over the limit (MAX_CONCURRENCY=1)' });
      const refusedId = answers[0]!.status === 429 ? 'limit-a' : 'limit-b';
      const acceptedId = refusedId === 'limit-a' ? 'limit-b' : 'limit-a';
      expect(limited.of('overloaded').map((e) => e.ce_id)).toEqual([refusedId]);
      expect(limited.of('processed').map((e) => e.ce_id)).toEqual([acceptedId]);
      // Not claimed as a duplicate: sent again once the slot is free, it is processed.
      expect((await push(limitedUrl, body, { ceId: refusedId, offset: 3 })).status).toBe(200);
      expect(limited.of('processed').map((e) => e.ce_id)).toEqual([acceptedId, refusedId]);
    } finally {
      await limited.stop();
    }
  }, 60_000);

  it('a batch behind a record in progress: it is listed 503 with retryAfterMs, later records of its key held, others processed; a batch over MAX_CONCURRENCY gets 429', async () => {
    // Two slots, each held 1 s per record (PROCESSING_DELAY_MS).
    const slow = new ExampleProcess(command, args, { PORT: '0', WEBHOOK_SECRET: secret, MAX_CONCURRENCY: '2', PROCESSING_DELAY_MS: '1000' });
    try {
      const slowUrl = await slow.start();
      const topic = 'direct-held';
      const body = Buffer.from('{"order":1}');
      expect((await push(slowUrl, body, { ceId: 'warm-up', offset: 0, signature: null })).status).toBe(401); // one-time costs (class loading, JIT) out of the 400 ms below
      // A single push claims held-x and takes a slot for 1 s; the batch meets held-x in progress.
      const single = push(slowUrl, body, { ceId: 'held-x', offset: 1 });
      await sleep(400);
      const k = Buffer.from('k');
      const records = [
        batchRecord(topic, 'held-x', 1, k, body),
        batchRecord(topic, 'held-y', 2, k, body), // same key: must not overtake held-x
        batchRecord(topic, 'held-z', 3, Buffer.from('j'), body),
      ];
      const first = pushBatch(slowUrl, records);
      // Handled below; settled here too, so that a failure before then is not also an unhandled rejection.
      for (const pending of [single, first]) pending.catch(() => undefined);
      await slow.until(1, (e) => e.event === 'in_progress' && e.topic === topic);

      // Both slots taken (held-x, and the batch processing held-z): a batch over the limit, refused whole.
      const over = await pushBatch(slowUrl, [batchRecord(topic, 'over-1', 4, k, body), batchRecord(topic, 'over-2', 5, null, body)]);
      expect([over.status, over.retryAfter, JSON.parse(over.body)]).toEqual([429, '1', { error: 'over the limit (MAX_CONCURRENCY=2)' }]);
      expect((await slow.until(2, (e) => e.event === 'overloaded')).map((e) => [e.ce_id, e.batch])).toEqual([
        ['over-1', 2],
        ['over-2', 2],
      ]);

      expect((await single).status).toBe(200);
      const answer = await first;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({
        failures: [
          { id: 'held-x', status: 503, retryAfterMs: 1000, reason: 'in progress' },
          { id: 'held-y', status: 503, retryAfterMs: 1000, reason: 'held behind an earlier record of its key' },
        ],
      });
      const lines = async (count: number) => (await slow.until(count, (e) => e.topic === topic && e.event !== 'overloaded')).map((e) => [e.event, e.ce_id]);
      expect(await lines(3)).toEqual([
        ['in_progress', 'held-x'],
        ['held', 'held-y'],
        ['processed', 'held-z'],
      ]);

      // Sent again, as Courier does: held-x was done by the single push (one ce-id store), now held-y's turn.
      const again = await pushBatch(slowUrl, records);
      expect([again.status, JSON.parse(again.body)]).toEqual([200, { failures: [] }]);
      expect((await lines(6)).slice(3)).toEqual([
        ['duplicate', 'held-x'],
        ['processed', 'held-y'],
        ['duplicate', 'held-z'],
      ]);
      expect((await slow.until(3, (e) => e.event === 'processed')).map((e) => e.ce_id)).toEqual(['held-x', 'held-z', 'held-y']);
    } finally {
      await slow.stop();
    }
  }, 60_000);

  it.concurrent('behind Courier: every record processed once by ce-id, binary keys byte-exact, the poison record dead-lettered, a wrong secret refused, offsets committed', async ({
    expect,
  }) => {
    const topic = uniqueName(`examples-${lang}`);
    const wrongTopic = uniqueName(`examples-${lang}-wrong-secret`);
    await createTopics(bootstrap, [
      { topic, partitions: 2 },
      { topic: `${topic}.dlq`, partitions: 1 },
      { topic: wrongTopic, partitions: 1 },
      { topic: `${wrongTopic}.dlq`, partitions: 1 },
    ]);
    const duplicateHeaders = { ce_id: 'order-42', ce_type: 'com.example.order.created', ce_source: '/shop' };
    const records: ProducedRecord[] = [
      ...Array.from({ length: 12 }, (_, i) => ({ key: `order-${i}`, value: JSON.stringify({ order: i }), partition: i % 2 })),
      ...binaryKeys.map((key, i) => ({ key, value: JSON.stringify({ binaryKey: i }), partition: i % 2 })),
      { key: null, value: Buffer.from([0xff, 0xfe, 0x00, 0x80]), partition: 0 }, // a value that is not UTF-8, no key
      { key: 'tombstone', value: null, partition: 1 },
      { key: 'poison', value: JSON.stringify({ poison: true }), partition: 0 },
      // One event produced twice (a producer retry, say): the same ce_id header, so the same ce-id.
      { key: 'order-42', value: JSON.stringify({ order: 42 }), headers: duplicateHeaders, partition: 0 },
      { key: 'order-42', value: JSON.stringify({ order: 42 }), headers: duplicateHeaders, partition: 1 },
    ];
    await produce(bootstrap, topic, records);
    await produce(bootstrap, wrongTopic, [{ key: 'k', value: JSON.stringify({ order: 'never' }) }]);

    const groupId = uniqueName('group');
    const wrongGroupId = uniqueName('group');
    const courier = new CourierProcess(
      courierEnv(bootstrap, {
        COURIER_GROUP_ID: groupId,
        COURIER_TOPICS: topic,
        COURIER_TARGET_URL: url,
        COURIER_SIGNING_SECRET: secret,
        // Several pushes at once, so that the example's MAX_CONCURRENCY=2 answers some with 429.
        COURIER_ORDERING: 'unordered',
        COURIER_MAX_IN_FLIGHT: '8',
        // A 429 costs no attempt: were it counted, the first one would send its record to the DLQ.
        COURIER_MAX_ATTEMPTS: '1',
        COURIER_REQUEST_TIMEOUT_MS: '10000',
      }),
    );
    const wrong = new CourierProcess(
      courierEnv(bootstrap, { COURIER_GROUP_ID: wrongGroupId, COURIER_TOPICS: wrongTopic, COURIER_TARGET_URL: url, COURIER_SIGNING_SECRET: wrongSecret }),
    );
    couriers.push(courier, wrong);
    courier.start();
    wrong.start();

    const committedAtEnd = async () => {
      const [done, ends] = await Promise.all([committedOffsets(bootstrap, groupId, topic), endOffsets(bootstrap, topic)]);
      return [...ends].every(([partition, end]) => done.get(partition) === end);
    };
    await waitFor('committed offsets to reach the end offsets', committedAtEnd, 60_000);
    await waitFor('the wrong secret to be refused', () => example.of('bad_signature', wrongTopic).length >= 1, 60_000);
    const readiness = await waitFor('Courier to report app_refused', async () => {
      const answer = await wrong.api('/readyz');
      return answer.status === 503 && answer.body.reasons.some((r: { code: string }) => r.code === 'app_refused') && answer;
    });
    expect(readiness.status).toBe(503);

    // From Kafka: the ce-id each record carries (its ce_id header, else <topic>-<partition>-<offset>).
    const stored = await readAll(bootstrap, topic);
    expect(stored).toHaveLength(records.length);
    const ceIdOf = (r: (typeof stored)[number]) => headerOf(r, 'ce_id') ?? `${topic}-${r.partition}-${r.offset}`;
    const poison = stored.find((r) => r.value?.toString() === '{"poison":true}')!;
    const at = new Map(stored.map((r) => [`${r.partition}/${r.offset}`, r]));

    // Every record processed exactly once by ce-id: the duplicate acknowledged, the poison record rejected.
    const processed = example.of('processed', topic);
    const processedIds = processed.map((e) => e.ce_id);
    expect(new Set(processedIds).size).toBe(processedIds.length);
    expect([...processedIds].sort()).toEqual([...new Set(stored.filter((r) => r !== poison).map(ceIdOf))].sort());
    expect(processed).toHaveLength(records.length - 2);
    // The second copy of order-42 was acknowledged as a duplicate (a push retried after a timeout would be one too).
    const duplicates = example.of('duplicate', topic).map((e) => e.ce_id);
    expect(duplicates).toContain('order-42');
    for (const id of duplicates) expect(processedIds).toContain(id);
    const rejected = example.of('rejected', topic);
    expect(rejected.length).toBeGreaterThan(0);
    for (const event of rejected) expect([event.partition, event.offset, event.status]).toEqual([poison.partition, poison.offset, 422]);

    // What the example read from the headers is what Kafka holds: coordinates, key bytes, value size, CloudEvents type.
    for (const event of processed) {
      const record = at.get(`${event.partition}/${event.offset}`)!;
      expect(record, JSON.stringify(event)).toBeDefined();
      expect(event.ce_id).toBe(ceIdOf(record));
      expect(event.key).toBe(hex(record.key));
      expect(event.bytes).toBe(record.value?.length ?? 0);
      expect(event.ce_type).toBe(event.ce_id === 'order-42' ? 'com.example.order.created' : 'dev.courier.kafka.record');
    }
    const processedKeys = new Set(processed.map((e) => e.key));
    for (const key of binaryKeys) expect(processedKeys, key.toString('hex')).toContain(key.toString('hex'));
    expect(processedKeys).toContain(null);

    // Records answered 429 + Retry-After came again and were processed (above: each once, none in the DLQ
    // below, though COURIER_MAX_ATTEMPTS=1), and Courier counted them as overload.
    const overloaded = example.of('overloaded', topic);
    expect(overloaded.length).toBeGreaterThan(0);
    for (const event of overloaded) expect([...processedIds, ceIdOf(poison)]).toContain(event.ce_id);
    const metrics = await fetch(`${await courier.apiUrl()}/metrics`).then((r) => r.text());
    const overloads = Number(new RegExp(`courier_overload_total\\{topic="${topic}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(overloads).toBeGreaterThanOrEqual(overloaded.length);

    // The poison record is in the DLQ, and nothing else.
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.value?.toString()).toBe('{"poison":true}');
    expect(headerOf(dead[0]!, 'original_topic')).toBe(topic);
    expect(headerOf(dead[0]!, 'original_partition')).toBe(String(poison.partition));
    expect(headerOf(dead[0]!, 'original_offset')).toBe(String(poison.offset));
    expect(headerOf(dead[0]!, 'error_type')).toBe('rejected_by_app');
    expect(headerOf(dead[0]!, 'http_status')).toBe('422');

    // The Courier with the wrong secret: refused, nothing processed, its record held (not committed, not dead-lettered).
    await wrong.stop();
    expect(example.of('processed', wrongTopic)).toEqual([]);
    expect((await committedOffsets(bootstrap, wrongGroupId, wrongTopic)).get(0) ?? -1).toBeLessThan(1);
    expect(await readAll(bootstrap, `${wrongTopic}.dlq`)).toEqual([]);
  });
  it.concurrent('in batch mode behind Courier (COURIER_DELIVERY=batch, the same URL): every record processed once by id, in order per key, both poison records dead-lettered with the reason, offsets committed', async ({
    expect,
  }) => {
    const topic = uniqueName(`examples-${lang}-batch`);
    await createTopics(bootstrap, [
      { topic, partitions: 2 },
      { topic: `${topic}.dlq`, partitions: 1 },
    ]);
    const json = { 'content-type': 'application/json' }; // a JSON content type: the batch carries the value parsed
    // Not order-42: the single-record run beside this one shares the example's ce-id store.
    const duplicateHeaders = { ce_id: 'batch-order-42', ce_type: 'com.example.order.created', ce_source: '/shop' };
    const records: ProducedRecord[] = [
      // Four keys, three records each, each key on one partition: the example must keep each key's order.
      ...Array.from({ length: 12 }, (_, i) => ({ key: `order-${i % 4}`, value: JSON.stringify({ order: i }), headers: json, partition: i % 2 })),
      // No content type: values in base64.
      ...binaryKeys.map((key, i) => ({ key, value: JSON.stringify({ binaryKey: i }), partition: i % 2 })),
      { key: null, value: Buffer.from([0xff, 0xfe, 0x00, 0x80]), partition: 0 },
      { key: 'tombstone', value: null, partition: 1 },
      // The same poison rule for a parsed value and for one in base64.
      { key: 'poison', value: JSON.stringify({ poison: true }), headers: json, partition: 0 },
      { key: 'poison', value: JSON.stringify({ poison: true }), partition: 1 },
      // One event produced twice: the same ce_id header, so the same id in the batch body.
      { key: 'order-42', value: JSON.stringify({ order: 42 }), headers: duplicateHeaders, partition: 0 },
      { key: 'order-42', value: JSON.stringify({ order: 42 }), headers: duplicateHeaders, partition: 1 },
    ];
    await produce(bootstrap, topic, records);

    const groupId = uniqueName('group');
    const courier = new CourierProcess(
      courierEnv(bootstrap, {
        COURIER_GROUP_ID: groupId,
        COURIER_TOPICS: topic,
        COURIER_TARGET_URL: url, // the same URL as the single-record Courier: the example tells batches by their header
        COURIER_SIGNING_SECRET: secret,
        COURIER_DELIVERY: 'batch',
        COURIER_BATCH_LINGER_MS: '100',
        // Overload (a whole batch answered 429, a record listed 503 with retryAfterMs) costs no attempt.
        COURIER_MAX_ATTEMPTS: '1',
        COURIER_REQUEST_TIMEOUT_MS: '10000',
      }),
    );
    couriers.push(courier);
    courier.start();
    await waitFor(
      'committed offsets to reach the end offsets',
      async () => {
        const [done, ends] = await Promise.all([committedOffsets(bootstrap, groupId, topic), endOffsets(bootstrap, topic)]);
        return [...ends].every(([partition, end]) => done.get(partition) === end);
      },
      60_000,
    );

    const stored = await readAll(bootstrap, topic);
    expect(stored).toHaveLength(records.length);
    const ceIdOf = (r: (typeof stored)[number]) => headerOf(r, 'ce_id') ?? `${topic}-${r.partition}-${r.offset}`;
    const poisons = stored.filter((r) => r.value?.toString() === '{"poison":true}');
    expect(poisons).toHaveLength(2);
    const at = new Map(stored.map((r) => [`${r.partition}/${r.offset}`, r]));

    // Every record processed exactly once by id, through the batch handler, in batches.
    const processed = example.of('processed', topic);
    const processedIds = processed.map((e) => e.ce_id);
    expect(new Set(processedIds).size).toBe(processedIds.length);
    expect([...processedIds].sort()).toEqual([...new Set(stored.filter((r) => !poisons.includes(r)).map(ceIdOf))].sort());
    expect(processed).toHaveLength(records.length - 3);
    for (const event of processed) {
      const record = at.get(`${event.partition}/${event.offset}`)!;
      expect(record, JSON.stringify(event)).toBeDefined();
      expect(event.ce_id).toBe(ceIdOf(record));
      expect(event.key).toBe(hex(record.key));
      // A JSON value arrives parsed (its size unknown to the app), any other value as its bytes.
      expect(event.bytes).toBe(headerOf(record, 'content-type') === 'application/json' ? null : (record.value?.length ?? 0));
      expect(event.batch).toBeGreaterThanOrEqual(1);
      expect(event.attempt).toBeGreaterThanOrEqual(1);
    }
    expect(Math.max(...processed.map((e) => e.batch ?? 0))).toBeGreaterThan(1);
    const processedKeys = new Set(processed.map((e) => e.key));
    for (const key of binaryKeys) expect(processedKeys, key.toString('hex')).toContain(key.toString('hex'));
    expect(processedKeys).toContain(null);
    // Records of a key processed in offset order.
    for (let k = 0; k < 4; k++) {
      const offsets = processed.filter((e) => e.key === hex(Buffer.from(`order-${k}`))).map((e) => e.offset ?? -1);
      expect(offsets).toHaveLength(3);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    expect(example.of('duplicate', topic).map((e) => e.ce_id)).toContain('batch-order-42');
    for (const id of example.of('duplicate', topic).map((e) => e.ce_id)) expect(processedIds).toContain(id);
    const poisonAt = poisons.map((r) => `${r.partition}/${r.offset}`).sort();
    const rejected = example.of('rejected', topic);
    expect([...new Set(rejected.map((e) => `${e.partition}/${e.offset}`))].sort()).toEqual(poisonAt);
    for (const event of rejected) expect(event.status).toBe(422);
    // Whatever was answered 429 (the whole batch) or listed for a retry came again and was settled.
    for (const event of [...example.of('overloaded', topic), ...example.of('in_progress', topic), ...example.of('held', topic)]) {
      expect([...processedIds, ...poisons.map(ceIdOf)]).toContain(event.ce_id);
    }

    // The two poison records are in the DLQ, with the reason the example listed, and nothing else.
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead.map((r) => `${headerOf(r, 'original_partition')}/${headerOf(r, 'original_offset')}`).sort()).toEqual(poisonAt);
    for (const record of dead) {
      expect(record.value?.toString()).toBe('{"poison":true}');
      expect(headerOf(record, 'original_topic')).toBe(topic);
      expect(headerOf(record, 'error_type')).toBe('rejected_by_app');
      expect(headerOf(record, 'http_status')).toBe('422');
      expect(headerOf(record, 'app_response')).toBe(POISON_REASON);
      expect(headerOf(record, 'error_message')).toContain(POISON_REASON);
    }
  });
});
