import { type Static, Type } from '@sinclair/typebox';

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
      'not_subscribed | not_joined | app_down | app_refused | app_failing | app_misrouted | dlq_blocked | max_poll_exceeded | consumer_failed | stopping',
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
  [Type.Literal('admin'), Type.Literal('app_down'), Type.Literal('app_refused'), Type.Literal('dlq_blocked'), Type.Literal('backpressure')],
  { description: 'admin: an operator paused it · app_down · app_refused: 401/403 from the app · dlq_blocked: a DLQ write fails · backpressure' },
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

const TopicPartitionRef = Type.Object({ topic: Type.String(), partition: Type.Integer({ minimum: 0 }) });

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

export const PauseRequest = Type.Object(
  {
    topic: Type.String({ minLength: 1, maxLength: 249 }),
    partitions: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0, maximum: 1_000_000 }), {
        maxItems: 1000,
        description: 'omitted: every partition of the topic this instance owns',
      }),
    ),
  },
  { additionalProperties: false },
);
export type PauseRequestBody = Static<typeof PauseRequest>;

export const PauseResult = Type.Object({
  changed: Type.Array(TopicPartitionRef, { description: 'partitions whose state this request changed' }),
  notAssigned: Type.Array(TopicPartitionRef, { description: 'requested partitions this instance does not own (nothing done for them)' }),
});
export type PauseResultBody = Static<typeof PauseResult>;

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

/** What the app receives (DESIGN.md A2), as an OpenAPI `webhooks` entry. */
export const WEBHOOKS = {
  record: {
    post: {
      summary: 'One Kafka record, pushed to the app',
      description:
        'Courier POSTs every record to the target URL. The answer decides what happens: 2xx acknowledges (the offset may be committed); ' +
        '408, 429, 5xx, a timeout or a connection dropped after the request was sent are retried with backoff (Retry-After honoured, capped) and dead-lettered after COURIER_MAX_ATTEMPTS; ' +
        '401/403 mean the app refuses Courier itself: the record is held, never dead-lettered; 3xx and other 4xx dead-letter the record at once. ' +
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
        '401': { description: 'refuses Courier (token or signature): records are held and Courier reports app_refused in /readyz; never dead-lettered' },
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
} as const;
