import { type Static, Type } from '@sinclair/typebox';
import { TopicPartitionRef } from './admin-schemas.js';

export * from './admin-schemas.js';

/**
 * The API's schemas (TypeBox = JSON Schema): fastify validates requests and serializes answers
 * with them, and @fastify/swagger turns them into the OpenAPI document under openapi/.
 */

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'stable error code', examples: ['not_found'] }),
    message: Type.String(),
  },
  { additionalProperties: false },
);

export const Health = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('failed')]), error: Type.Optional(Type.String()) });

const ReadinessReason = Type.Object({
  code: Type.String({
    description:
      'not_subscribed | not_joined | kafka_unreachable | kafka_auth_failed | kafka_tls_failed | kafka_not_authorized | kafka_token_failed | topic_missing | dlq_topic_missing | retry_topic_missing | app_down | app_refused | app_failing | app_misrouted | dlq_blocked | retry_blocked | max_poll_exceeded | consumer_failed | worker_down | stopping',
  }),
  message: Type.String(),
});
export type ReadinessReason = Static<typeof ReadinessReason>;

export const Readiness = Type.Object({ ready: Type.Boolean(), reasons: Type.Array(ReadinessReason) });
export type ReadinessReport = Static<typeof Readiness>;

export const PartitionLag = Type.Object({
  topic: Type.String(),
  partition: Type.Integer({ minimum: 0 }),
  committedOffset: Type.Union([Type.Integer(), Type.Null()], {
    description: "the group's committed offset; null when nothing is committed yet (lag then counts from the low watermark)",
  }),
  highWatermark: Type.Integer(),
  lag: Type.Integer({ minimum: 0, description: 'highWatermark − committedOffset' }),
  lagSeconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
    description:
      'how old the backlog is, in seconds: now − the Kafka timestamp of the oldest record Courier fetched and has not acknowledged or dead-lettered ' +
      '(the lowest such offset) or, when it holds none, of the next record after the committed offset, read from the broker. ' +
      '0 when no record waits; null when that timestamp is unknown (the broker did not answer in time, or the record has none)',
  }),
  oldestUnackedAgeMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
    description:
      'how long Courier has held its oldest unacknowledged record: now − when it was fetched (so a backlog Courier has not fetched yet does not count). ' +
      'null when Courier holds no unacknowledged record of the partition',
  }),
});

export type PartitionLag = Static<typeof PartitionLag>;

export const Lag = Type.Object({
  partitions: Type.Array(PartitionLag),
  totalLag: Type.Integer({ minimum: 0 }),
  refreshedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type LagReport = Static<typeof Lag>;

export const PauseReason = Type.Union(
  [
    Type.Literal('admin'),
    Type.Literal('app_down'),
    Type.Literal('app_refused'),
    Type.Literal('dlq_blocked'),
    Type.Literal('retry_blocked'),
    Type.Literal('retry_wait'),
    Type.Literal('backpressure'),
  ],
  {
    description:
      'admin: an operator paused it · app_down · app_refused: 401/403 from the app · dlq_blocked: a DLQ write fails · retry_blocked: a retry-tier write fails · ' +
      'retry_wait: a retry tier partition whose next record is not due yet · backpressure',
  },
);
export type PauseReason = Static<typeof PauseReason>;

export const PartitionStatus = Type.Object({
  topic: Type.String(),
  partition: Type.Integer({ minimum: 0 }),
  state: Type.Union([Type.Literal('active'), Type.Literal('paused'), Type.Literal('draining')]),
  inFlight: Type.Integer({ minimum: 0 }),
  queued: Type.Integer({ minimum: 0, description: 'fetched records waiting for their turn' }),
  oldestInFlightMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  pausedReason: Type.Union([PauseReason, Type.Null()]),
  pausedReasons: Type.Array(PauseReason),
});
export type PartitionStatus = Static<typeof PartitionStatus>;

export const RouteStatus = Type.Object({
  topic: Type.String(),
  url: Type.String({ description: 'where the route POSTs' }),
  state: Type.Union([Type.Literal('ok'), Type.Literal('app_failing'), Type.Literal('app_misrouted')], {
    description:
      'app_failing: every record fails, none succeeds (outage): held, failures cost no attempts · app_misrouted: 3xx/404/405/415 and no 2xx since: held, never DLQ',
  }),
  concurrencyLimit: Type.Integer({
    minimum: 1,
    description:
      'adaptive limit of pushes at once: halves on overload answers, falls in proportion when latency rises to over twice its long-term average, grows back on success; 1 while held',
  }),
  pushing: Type.Integer({ minimum: 0, description: 'requests out now' }),
  started: Type.Integer({ minimum: 0, description: 'records started and not settled (pushing or waiting)' }),
  since: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'when the route became app_failing or app_misrouted' }),
  status: Type.Union([Type.Integer(), Type.Null()], { description: 'app_misrouted: the last misroute status' }),
  location: Type.Union([Type.String(), Type.Null()], { description: 'app_misrouted: where a 3xx pointed (never followed)' }),
});
export type RouteStatus = Static<typeof RouteStatus>;

export const Assignment = Type.Object({ partitions: Type.Array(PartitionStatus), routes: Type.Array(RouteStatus) });

const RebalanceType = Type.Union([Type.Literal('assign'), Type.Literal('revoke'), Type.Literal('lost')]);
export type RebalanceType = Static<typeof RebalanceType>;

export const RebalanceEvent = Type.Object({
  at: Type.String({ format: 'date-time' }),
  type: RebalanceType,
  partitions: Type.Array(TopicPartitionRef),
});
export type RebalanceEvent = Static<typeof RebalanceEvent>;

export const Rebalances = Type.Object({
  events: Type.Array(RebalanceEvent),
  counts: Type.Object({ assign: Type.Integer({ minimum: 0 }), revoke: Type.Integer({ minimum: 0 }), lost: Type.Integer({ minimum: 0 }) }),
});
export type RebalancesReport = Static<typeof Rebalances>;

/** [header, description, always present] */
const PUSH_HEADERS: ReadonlyArray<readonly [string, string, boolean]> = [
  [
    'content-type',
    "the record's content-type header if it is a valid media type, else the route's defaultContentType (application/octet-stream unless set)",
    true,
  ],
  ['ce-specversion', 'CloudEvents spec version, 1.0', true],
  ['ce-id', "CloudEvents id: the record's ce_id header, else <topic>-<partition>-<offset>. Stable across attempts: the idempotency key", true],
  ['ce-source', "CloudEvents source: the record's ce_source header, else /kafka/<topic>", true],
  ['ce-type', "CloudEvents type: the record's ce_type header, else dev.courier.kafka.record", true],
  ['ce-time', "CloudEvents time: the record's ce_time header, else the record timestamp", false],
  ['kafka-topic', 'source topic', true],
  ['kafka-partition', 'source partition', true],
  ['kafka-offset', 'record offset', true],
  ['kafka-timestamp', 'record timestamp, milliseconds since the epoch', true],
  ['kafka-key', 'record key, percent-encoded bytes; absent for a null key', false],
  [
    'kafka-tombstone',
    'true when the record value is null (a tombstone; the body is empty); absent otherwise. COURIER_TOMBSTONES=skip acknowledges tombstones without a push',
    false,
  ],
  ['courier-attempt', 'attempt number, 1 for the first', true],
  ['traceparent', 'copied from the record when well-formed', false],
  ['tracestate', 'copied from the record when well-formed', false],
  ['authorization', 'Bearer <COURIER_APP_TOKEN>, when configured', false],
  ['webhook-id', 'Standard Webhooks message id, equal to ce-id (the idempotency key), with COURIER_SIGNING_SECRET', false],
  ['webhook-timestamp', 'Standard Webhooks timestamp (seconds), with COURIER_SIGNING_SECRET', false],
  ['webhook-signature', 'v1,<base64 HMAC-SHA256 of "id.timestamp.body">, with COURIER_SIGNING_SECRET', false],
];

/** 401 to a record or a batch (DESIGN.md A2). */
const REFUSED = 'refuses Courier (token or signature): records are held and Courier reports app_refused in /readyz; never dead-lettered';

/** A JSON Schema 2020-12 tuple (TypeBox's Type.Tuple writes the draft-07 form, `items` as an array). */
function pair(first: object, second: object, description: string) {
  return Type.Unsafe<[string, string]>({ type: 'array', prefixItems: [first, second], items: false, minItems: 2, maxItems: 2, description });
}

/** One record of a batch request (DESIGN.md A6). */
export const BatchRecord = Type.Object(
  {
    id: Type.String({
      description:
        "always. The record's id, as ce-id in record delivery: its ce_id header, else <topic>-<partition>-<offset>. Stable across attempts: the idempotency key, and how the answer names the record " +
        "(records that carry the same ce_id, a producer's duplicates, share it and the answer's verdict)",
      examples: ['orders-3-1207'],
    }),
    topic: Type.String({ description: 'always. Source topic' }),
    partition: Type.Integer({ minimum: 0, description: 'always. Source partition (every record of a batch comes from the same one)' }),
    offset: Type.String({ pattern: '^[0-9]+$', description: 'always. Record offset, as a string: offsets can exceed 2^53', examples: ['1207'] }),
    timestamp: Type.Integer({ description: 'always. Record timestamp, milliseconds since the epoch' }),
    key: Type.Union([Type.String({ contentEncoding: 'base64' }), Type.Null()], { description: 'always. Record key, base64; null for a null key' }),
    keyText: Type.Optional(Type.String({ description: 'the key as text, when it is valid UTF-8' })),
    headers: Type.Array(pair(Type.String(), Type.String({ contentEncoding: 'base64' }), '[name, base64 value]'), {
      description: 'always. Every record header as [name, base64 value], in record order (a repeated name repeats); [] when there are none',
    }),
    contentType: Type.String({
      description:
        "always. The record's content-type header if it is a valid media type, else the route's defaultContentType (application/octet-stream unless set), as in record delivery",
    }),
    value: Type.Optional(
      Type.Unknown({
        description:
          'the value as parsed JSON, when contentType is JSON (application/json or any *+json type) and the value is valid UTF-8 JSON (which may be null). ' +
          'Exactly one of value, valueBase64 and tombstone is present',
      }),
    ),
    valueBase64: Type.Optional(
      Type.String({
        contentEncoding: 'base64',
        description: 'the value bytes, base64, when they are not carried as value (not a JSON content type, or not valid JSON)',
      }),
    ),
    tombstone: Type.Optional(
      Type.Literal(true, {
        description:
          'the value is null (a tombstone, a delete on a compacted topic): neither value nor valueBase64. COURIER_TOMBSTONES=skip acknowledges tombstones without pushing them',
      }),
    ),
    attempt: Type.Integer({
      minimum: 1,
      description:
        'always. 1 on the first request that carries the record, one more on every later one (in a batch or alone, overloads included); only failures count against COURIER_MAX_ATTEMPTS',
    }),
    traceparent: Type.Optional(Type.String({ description: 'copied from the record headers when well-formed' })),
    tracestate: Type.Optional(Type.String({ description: 'copied from the record headers when well-formed' })),
  },
  {
    description: 'One Kafka record. Apps should ignore members they do not know',
    oneOf: [{ required: ['value'] }, { required: ['valueBase64'] }, { required: ['tombstone'] }],
  },
);

export const BatchRequest = Type.Object(
  { records: Type.Array(BatchRecord, { minItems: 1, description: 'the records in offset order; as many as courier-batch-size' }) },
  { description: 'always {"records": [...]}' },
);

export const BatchFailure = Type.Object({
  id: Type.String({ description: 'the id of a record of this batch' }),
  status: Type.Integer({
    minimum: 100,
    maximum: 599,
    description:
      "that record's own HTTP status, read by the record entry's table: 2xx (or one of the route's ackStatuses) acknowledges it; 429, or 503 with retryAfterMs, is overload " +
      '(never an attempt, never dead-lettered); 408, 5xx and 503 without retryAfterMs are a failure (an attempt: backoff, then COURIER_MAX_ATTEMPTS, then the DLQ with error_type retries_exhausted); ' +
      '401/403 hold it (app_refused); any other status (3xx and 4xx included: the batch itself was routed) dead-letters it at once (error_type rejected_by_app)',
  }),
  retryAfterMs: Type.Optional(
    Type.Number({
      minimum: 0,
      description: "the record's Retry-After in milliseconds, capped by COURIER_RETRY_AFTER_MAX_MS; only for 429 and 503, ignored with other statuses",
    }),
  ),
  reason: Type.Optional(
    Type.String({ description: "why; a dead-lettered record's DLQ record carries it (first 1024 characters) as app_response and in error_message" }),
  ),
});

export const BatchAnswer = Type.Object(
  {
    failures: Type.Optional(
      Type.Array(BatchFailure, {
        description: 'the records that were not acknowledged; every record of the batch not listed here is. Later entries for the same id replace earlier ones',
      }),
    ),
  },
  {
    description:
      'Optional: an empty body, {} or {"failures": []} acknowledges every record. A listing that breaks this schema (failures not an array; an entry whose id is not a record of this batch, ' +
      'whose status is not an integer 100–599, whose retryAfterMs is negative or whose reason is not a string), a body that starts with { and is not JSON, ' +
      'or one of 256 KiB or more that does not parse, ' +
      'is a failure of the whole batch (as 5XX): Courier never guesses which records a broken listing meant',
  },
);

/** [header, description, always present] */
const BATCH_HEADERS: ReadonlyArray<readonly [string, string, boolean]> = [
  ['content-type', 'application/json', true],
  ['courier-batch-size', 'the number of records in the body (at most COURIER_BATCH_MAX_RECORDS)', true],
  ['authorization', 'Bearer <COURIER_APP_TOKEN>, when configured', false],
  [
    'webhook-id',
    "Standard Webhooks message id: the id of the batch's first record, with COURIER_SIGNING_SECRET. Not an idempotency key for the batch " +
      "(a retried half starts with the same record): deduplicate by the records' ids",
    false,
  ],
  ['webhook-timestamp', 'Standard Webhooks timestamp (seconds), with COURIER_SIGNING_SECRET', false],
  ['webhook-signature', 'v1,<base64 HMAC-SHA256 of "id.timestamp.body">, over the whole body, with COURIER_SIGNING_SECRET', false],
];

/** What the app receives (DESIGN.md A2, A6), as OpenAPI `webhooks` entries. */
export const WEBHOOKS = {
  record: {
    post: {
      summary: 'One Kafka record, pushed to the app',
      description:
        'Courier POSTs every record to the target URL. The answer decides what happens: 2xx acknowledges (the offset may be committed); ' +
        '429 (and 503 with Retry-After) is overload: the record waits, it is never an attempt and never dead-lettered; ' +
        '408, 5xx, a timeout or a connection dropped after the request was sent are failures: retried with backoff and dead-lettered after COURIER_MAX_ATTEMPTS, unless the whole route fails (an outage: held, no attempts counted); ' +
        '401/403 mean the app refuses Courier itself: the record is held, never dead-lettered; 3xx, 404, 405 and 415 hold the route as misrouted while nothing of it succeeds, else they dead-letter the record at once, as any other 4xx does. ' +
        'Connection refused or a DNS failure mean the app is down: Courier holds the records and probes; that is never an attempt and never a DLQ write.',
      parameters: PUSH_HEADERS.map(([name, description, required]) => ({ name, in: 'header', required, description, schema: { type: 'string' } })),
      requestBody: {
        description:
          'The record value, unchanged (empty for a null value). Every record header also arrives as kafka-header-<name> (lowercased name, percent-encoded value); ' +
          'names that are not HTTP tokens are left out. Record ce_* headers become the ce-* attributes.',
        content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
      },
      responses: {
        '2XX': { description: 'acknowledged: the offset may be committed' },
        '401': { description: REFUSED },
        '403': { description: 'as 401' },
        '408': { description: 'a failure: an attempt, retried with backoff; after COURIER_MAX_ATTEMPTS dead-lettered (error_type retries_exhausted)' },
        '429': {
          description:
            'overload, never an attempt: the record waits Retry-After (seconds or HTTP-date, up to COURIER_RETRY_AFTER_MAX_MS) or the backoff, and the route pushes fewer records at once (adaptive); never dead-lettered for overload',
        },
        '503': { description: 'with Retry-After: overload, as 429; without: a failure, as 5XX' },
        '404': {
          description:
            'misrouted while the route has had no 2xx since (held, app_misrouted in /readyz, never dead-lettered); rejected as 4XX while other records succeed',
        },
        '405': { description: 'as 404' },
        '415': { description: 'as 404' },
        '4XX': {
          description:
            'any other 4xx: dead-lettered at once (error_type rejected_by_app). The first 1 KiB of the answer body goes with the DLQ record: ' +
            'header app_response (UTF-8 text, else base64: and the base64 of the bytes; configured secrets replaced by [REDACTED]), quoted in error_message',
        },
        '3XX': { description: 'never followed: as 404 (misrouted while nothing of the route succeeds, else dead-lettered with the answer body as for 4XX)' },
        '5XX': {
          description:
            'a failure: an attempt, retried with backoff; after COURIER_MAX_ATTEMPTS dead-lettered (error_type retries_exhausted), with the last answer body as for 4XX. ' +
            'When every record of a route fails and none succeeds for COURIER_OUTAGE_AFTER_MS, the route is held (app_failing in /readyz) and failures stop costing attempts',
        },
      },
    },
  },
  batch: {
    post: {
      summary: 'Many Kafka records in one JSON request (batch delivery)',
      description:
        "With delivery: batch (COURIER_DELIVERY=batch, or a route's delivery), Courier POSTs records of one partition in batches: up to COURIER_BATCH_MAX_RECORDS records and " +
        'COURIER_BATCH_MAX_BYTES of values and keys (a larger record goes alone), waiting up to COURIER_BATCH_LINGER_MS for a batch to fill. ' +
        "A 2xx answer speaks per record: it acknowledges every record it does not list under failures, and each listed record gets what its own status means in the record entry's table. " +
        "A status in the route's ackStatuses acknowledges every record (its body is not read). " +
        'Any other answer concerns the whole batch: overload (429, 503 with Retry-After), refused (401/403), misrouted, an outage and an app that is down (connection refused, DNS) apply to every record as in record delivery. ' +
        'A failure (408, 5xx, timeout, dropped connection) or rejection (other 4xx) of a batch of n > 1 records dead-letters nothing: the next tries send halves of ⌈n/2⌉ and ⌊n/2⌋ records ' +
        '(a rejection at once, a failure after the backoff), and so on, so that only a record that fails or is rejected alone is dead-lettered (a failure once its attempts reach COURIER_MAX_ATTEMPTS). ' +
        'Tries made while a record shared a batch raise its attempt (the body member) but cost it nothing against COURIER_MAX_ATTEMPTS and never dead-letter it: only failures it meets alone, or is listed with, count. ' +
        'Order: with COURIER_ORDERING=partition each partition has one batch in flight, and a record that must be retried holds every later record of the batch: they are sent again after it, whatever the answer listed for them. ' +
        "With key, a retried record's later records of the same key in the batch are sent again after it; with unordered only what must be retried is sent again. " +
        'So a record may arrive again after the app processed it: deduplicate by id.',
      parameters: BATCH_HEADERS.map(([name, description, required]) => ({ name, in: 'header', required, description, schema: { type: 'string' } })),
      requestBody: {
        required: true,
        description: 'The records, each with its coordinates, key, headers and value (parsed JSON for a JSON content type, else base64)',
        content: { 'application/json': { schema: BatchRequest } },
      },
      responses: {
        '2XX': {
          description:
            'per record: every record not listed under failures is acknowledged (its offset may be committed); each listed record as its status says. ' +
            'A body that is empty, not JSON (not starting with {) or JSON without failures acknowledges every record',
          content: { 'application/json': { schema: BatchAnswer } },
        },
        '401': { description: `the whole batch: ${REFUSED}` },
        '403': { description: 'as 401' },
        '408': { description: 'the whole batch: a failure, as 5XX' },
        '429': {
          description:
            'the whole batch: overload, never an attempt: every record waits Retry-After (seconds or HTTP-date, up to COURIER_RETRY_AFTER_MAX_MS) or the backoff, ' +
            'and the route makes fewer pushes at once (adaptive); never dead-lettered for overload',
        },
        '503': { description: 'with Retry-After: overload, as 429; without: a failure, as 5XX' },
        '404': {
          description:
            'the whole batch: misrouted while the route has had no 2xx since (held, app_misrouted in /readyz, never dead-lettered); rejected as 4XX while other pushes succeed',
        },
        '405': { description: 'as 404' },
        '415': { description: 'as 404' },
        '4XX': {
          description:
            'any other 4xx (413 included): the whole batch is rejected. A batch of n > 1 dead-letters nothing and is sent again at once as halves of ⌈n/2⌉ and ⌊n/2⌋ records; ' +
            'a record rejected alone is dead-lettered (error_type rejected_by_app) with the first 1 KiB of the answer body as app_response, as in record delivery',
        },
        '3XX': { description: 'never followed: as 404 (misrouted while nothing of the route succeeds, else rejected as 4XX)' },
        '5XX': {
          description:
            'the whole batch failed. A batch of n > 1 dead-letters nothing, costs no record an attempt and is sent again after the backoff as halves of ⌈n/2⌉ and ⌊n/2⌋ records; ' +
            'a record that fails alone is retried with backoff and dead-lettered (error_type retries_exhausted, the last answer body as app_response) once its attempts reach COURIER_MAX_ATTEMPTS. ' +
            'When every push of a route fails and none succeeds for COURIER_OUTAGE_AFTER_MS, the route is held (app_failing in /readyz) and failures stop costing attempts',
        },
      },
    },
  },
} as const;
