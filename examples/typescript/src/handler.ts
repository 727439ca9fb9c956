// A Courier webhook handler in TypeScript with fastify; node:crypto for the signature.
//
// Courier POSTs each Kafka record here (contract: docs/handlers.md). This handler:
//   - verifies the Standard Webhooks signature when WEBHOOK_SECRET (whsec_...) is set: 401 otherwise;
//   - reads the CloudEvents attributes (ce-*), the Kafka coordinates (kafka-*) and the percent-decoded key;
//   - treats ce-id as the idempotency key: a duplicate is acknowledged (200) without processing it again;
//   - answers 422 for a record it will never accept (JSON body {"poison": true}): Courier dead-letters it;
//   - answers 429 with Retry-After: 1 while MAX_CONCURRENCY pushes are in progress: Courier sends the record
//     again a second later, counts no attempt (never the DLQ) and sends fewer pushes at once.
// With COURIER_DELIVERY=batch Courier POSTs many records in one JSON request instead, to the same URL,
// with a courier-batch-size header: this handler answers those too (handleBatch), record by record in
// array order, with the same signature check, poison rule, ce-id store and MAX_CONCURRENCY, and lists
// the records that failed in a 200 answer {"failures": [...]}.
// It writes one JSON line per outcome to stdout (per record for a batch).
//
//   npm ci && npm run build && PORT=3000 WEBHOOK_SECRET=whsec_... npm start
//
// Env: PORT (0 picks a free port), HOST (default 127.0.0.1: Courier runs beside the app), WEBHOOK_SECRET,
// MAX_CONCURRENCY (requests processed at once; one more gets the 429; default 16),
// PROCESSING_DELAY_MS (simulated work; the tests use it to hold requests and reach the limit).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';

const TOLERANCE_SECONDS = 5 * 60; // Standard Webhooks: reject timestamps further than this from now
const secret = process.env.WEBHOOK_SECRET ?? '';
const signingKey = secret ? Buffer.from(secret.replace(/^whsec_/, ''), 'base64') : undefined;
const maxConcurrency = Number(process.env.MAX_CONCURRENCY ?? 16);
const processingDelayMs = Number(process.env.PROCESSING_DELAY_MS ?? 0);

let inProgress = 0; // a plain counter: one thread, and nothing awaits between the check and the increment
// ce-id -> 'processing' | 'done'. In memory for the example: a real app keeps this where its effects
// live, e.g. a unique constraint on ce-id in the same database transaction as the work it does.
const seen = new Map<string, 'processing' | 'done'>();

function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function intHeader(request: FastifyRequest, name: string): number | null {
  const value = header(request, name);
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

/** Standard Webhooks: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>. */
/** 429 with Retry-After: overload to Courier, for a record or a whole batch (it comes again in 1 s). */
function overloaded(reply: FastifyReply) {
  return reply
    .code(429)
    .header('retry-after', '1')
    .send({ error: `over the limit (MAX_CONCURRENCY=${maxConcurrency})` });
}

function signatureValid(request: FastifyRequest, key: Buffer, body: Buffer): boolean {
  const id = header(request, 'webhook-id');
  const timestamp = header(request, 'webhook-timestamp');
  const signatures = header(request, 'webhook-signature');
  if (!id || !signatures || !timestamp || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  // Over the raw bytes: the `standardwebhooks` npm package turns a Buffer into a UTF-8 string first,
  // and a Kafka record value need not be UTF-8.
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  return signatures.split(' ').some((candidate) => {
    // several during a secret rotation
    const [version, value = ''] = candidate.split(',', 2);
    const signature = Buffer.from(value, 'base64');
    return version === 'v1' && signature.length === expected.length && timingSafeEqual(signature, expected);
  });
}

/**
 * kafka-key is percent-encoded bytes. decodeURIComponent would not do: it decodes to UTF-8 text and
 * throws on bytes that are not UTF-8; a key can be any bytes.
 */
function percentDecode(encoded: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const hex = encoded.slice(i + 1, i + 3);
    if (encoded[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/** This app's own rule for a record it can never handle. */
function isPoison(body: Buffer): boolean {
  try {
    return isPoisonValue(JSON.parse(body.toString('utf8')));
  } catch {
    return false; // not JSON: this example treats the value as opaque bytes
  }
}

/** The same rule on a value already parsed (a batch carries JSON values parsed). */
function isPoisonValue(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { poison?: unknown }).poison === true;
}

// bodyLimit: at least COURIER_MAX_RECORD_BYTES (default 1 MiB), or fastify's 413 dead-letters large records;
// and a batch carries values in base64 (a third larger) with keys, headers and fields: 4 MiB leaves room
// for COURIER_BATCH_MAX_BYTES (default 1 MiB of values and keys).
const app = Fastify({ logger: false, bodyLimit: 4 * 1_048_576 });

// The signature covers the exact body bytes, and a record value can be anything: take every body raw,
// whatever its content-type (fastify would otherwise parse JSON and answer 415 to other types).
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

app.post('/*', async (request, reply) => {
  const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0); // the record value, unchanged
  if (header(request, 'courier-batch-size') !== undefined) return handleBatch(request, reply, body); // COURIER_DELIVERY=batch
  const ceId = header(request, 'ce-id') ?? ''; // the idempotency key: stable across attempts
  const record = {
    ce_id: ceId,
    topic: header(request, 'kafka-topic') ?? null,
    partition: intHeader(request, 'kafka-partition'),
    offset: intHeader(request, 'kafka-offset'),
  };
  if (signingKey && !signatureValid(request, signingKey, body)) {
    emit('bad_signature', record); // unverified values, for the log only
    // Courier holds the record and reports app_refused: never dead-lettered.
    return reply.code(401).send({ error: 'invalid signature' });
  }
  if (inProgress >= maxConcurrency) {
    // Over the limit: say so rather than queue or fail. 429 is overload to Courier (so is 503, but only
    // with Retry-After): no attempt, no DLQ, fewer pushes. The record comes again in 1 s.
    emit('overloaded', record);
    return overloaded(reply);
  }
  inProgress++;
  try {
    if (isPoison(body)) {
      emit('rejected', { ...record, status: 422 });
      return reply.code(422).send({ error: 'cannot process this record' }); // dead-lettered at once
    }
    const state = seen.get(ceId);
    if (state === 'done') {
      emit('duplicate', record);
      return reply.code(200).send({ duplicate: true }); // acknowledged, not processed again
    }
    if (state === 'processing') {
      // Another delivery of this event is being processed right now. Not 409: any other 4xx dead-letters.
      emit('in_progress', record);
      return reply.code(503).header('retry-after', '1').send({ error: 'in progress' });
    }
    seen.set(ceId, 'processing'); // claimed before the first await: two deliveries of one event may race
    try {
      await processRecord(request, record, body);
    } catch (error) {
      seen.delete(ceId); // not done: a retry must process it
      emit('failed', { ...record, error: String(error) });
      return reply.code(500).send({ error: 'failed' }); // Courier retries
    }
    seen.set(ceId, 'done');
    return reply.code(200).send({ ok: true });
  } finally {
    inProgress--;
  }
});

/** The real work goes here. It runs once per ce-id. */
async function processRecord(request: FastifyRequest, record: Record<string, unknown>, body: Buffer): Promise<void> {
  const encodedKey = header(request, 'kafka-key'); // percent-encoded bytes; absent for a null key
  const key = encodedKey === undefined ? null : percentDecode(encodedKey);
  await sleep(processingDelayMs);
  emit('processed', {
    ...record,
    ce_source: header(request, 'ce-source') ?? null,
    ce_type: header(request, 'ce-type') ?? null,
    key: key?.toString('hex') ?? null,
    bytes: body.length,
    attempt: intHeader(request, 'courier-attempt'),
  });
}

/** One record of a batch body. Offsets are strings: they can exceed 2^53. */
interface BatchRecord {
  id: string; // the record's ce-id: the idempotency key (webhook-id only names the batch)
  topic: string;
  partition: number;
  offset: string;
  key: string | null; // base64; null for a null key
  value?: unknown; // the parsed JSON (content type application/json or *+json)
  valueBase64?: string; // any other value; neither for a tombstone
  attempt: number;
}

/** A record listed in the answer; a record not listed is acknowledged. */
interface BatchFailure {
  id: string;
  status: number;
  retryAfterMs?: number;
  reason?: string;
}

/** A batch: {"records": [...]} in one request, answered 200 with the records that failed listed by id. */
async function handleBatch(request: FastifyRequest, reply: FastifyReply, body: Buffer) {
  const batch = { ce_id: header(request, 'webhook-id') ?? '', batch: intHeader(request, 'courier-batch-size') };
  if (signingKey && !signatureValid(request, signingKey, body)) {
    // The signature covers the whole body. One line: a body is not parsed before it is verified.
    emit('bad_signature', batch);
    return reply.code(401).send({ error: 'invalid signature' }); // Courier holds the batch, never dead-letters it
  }
  let records: BatchRecord[];
  try {
    records = batchRecords(body);
  } catch (error) {
    emit('rejected', { ...batch, status: 400, error: String(error) });
    return reply.code(400).send({ error: 'not a batch' }); // Courier splits it until the record at fault is alone
  }

  if (inProgress >= maxConcurrency) {
    // A batch takes one slot, as a single record does. The whole batch comes again in 1 s.
    for (const item of records) emit('overloaded', coordinates(item, records.length));
    return overloaded(reply);
  }
  inProgress++;
  try {
    const failures: BatchFailure[] = [];
    // Keys with a record listed for a retry: their later records wait for it (see batchRecord).
    const held = new Set<string>();
    for (const item of records) {
      // In array order, one after the other: the partition's offset order.
      const failure = await batchRecord(item, records.length, held);
      if (failure) failures.push(failure);
    }
    // A record not listed is acknowledged; {"failures": []} (or an empty body) acknowledges them all.
    return reply.code(200).send({ failures });
  } finally {
    inProgress--;
  }
}

/** One record of a batch, as the route handles one record: undefined when it is done, else its failure. */
async function batchRecord(item: BatchRecord, size: number, held: Set<string>): Promise<BatchFailure | undefined> {
  const record = coordinates(item, size);
  // Its key's order: a later record of a key whose earlier record comes again must not overtake it.
  const lane = JSON.stringify([item.topic, item.partition, item.key]);
  if (held.has(lane)) {
    emit('held', record);
    // Listed, not processed: a record left out of the listing would be acknowledged. 503 with
    // retryAfterMs is overload to Courier: it comes again after the record it waits for, at no attempt.
    return { id: item.id, status: 503, retryAfterMs: 1000, reason: 'held behind an earlier record of its key' };
  }

  const poison =
    'value' in item
      ? isPoisonValue(item.value) // JSON (application/json or *+json): parsed already
      : isPoison(Buffer.from(item.valueBase64 ?? '', 'base64')); // any other bytes; neither for a tombstone
  if (poison) {
    emit('rejected', { ...record, status: 422 });
    // The reason goes to the DLQ record (error_message, app_response): say why, briefly.
    return { id: item.id, status: 422, reason: 'cannot process this record' };
  }

  const state = seen.get(item.id); // the same store as for single records
  if (state === 'done') {
    emit('duplicate', record);
    return undefined; // acknowledged, not processed again
  }
  if (state === 'processing') {
    // Another delivery of this event is being processed right now.
    emit('in_progress', record);
    held.add(lane);
    return { id: item.id, status: 503, retryAfterMs: 1000, reason: 'in progress' };
  }
  seen.set(item.id, 'processing'); // claimed before the first await: two deliveries of one event may race
  try {
    await processBatchRecord(item, record);
  } catch (error) {
    seen.delete(item.id); // not done: a retry must process it
    emit('failed', { ...record, error: String(error) });
    held.add(lane);
    return { id: item.id, status: 500, reason: 'failed' }; // Courier retries it (an attempt)
  }
  seen.set(item.id, 'done');
  return undefined;
}

/** The real work for a record of a batch goes here, as in processRecord. It runs once per id. */
async function processBatchRecord(item: BatchRecord, record: Record<string, unknown>): Promise<void> {
  const key = item.key === null ? null : Buffer.from(item.key, 'base64');
  // The value: item.value (parsed JSON: its bytes are not kept), the bytes of valueBase64, or none (a tombstone).
  const bytes = 'value' in item ? null : Buffer.from(item.valueBase64 ?? '', 'base64').length;
  await sleep(processingDelayMs);
  emit('processed', { ...record, key: key?.toString('hex') ?? null, bytes, attempt: item.attempt });
}

/** The body's records: objects with an id, or an exception. */
function batchRecords(body: Buffer): BatchRecord[] {
  const records: unknown = JSON.parse(body.toString('utf8'))?.records;
  if (!Array.isArray(records) || !records.every((item) => typeof item?.id === 'string')) {
    throw new Error('records must be an array of objects with an id');
  }
  return records as BatchRecord[];
}

/** A batch record's fields for the event lines: those of a single record, plus the batch's size. */
function coordinates(item: BatchRecord, size: number) {
  return {
    ce_id: item.id,
    topic: item.topic,
    partition: item.partition,
    offset: /^\d+$/.test(item.offset) ? Number(item.offset) : null,
    batch: size,
  };
}

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) });
const address = app.server.address();
emit('listening', { port: typeof address === 'object' && address ? address.port : null, verifying: signingKey !== undefined });
