import { MEDIA_TYPE } from '../media-type.js';
import { flag, headerToken, httpUrl, int, type Kind, matching, oneOf, port, signingSecrets, statusList, text, tierList, topicList } from './kinds.js';

/**
 * Every COURIER_* setting, declared once: loading, validation, per-route overrides, `--help` and the
 * README table all come from here. The variable names and file keys are a contract (DESIGN.md A1).
 */

export const ORDERINGS = ['partition', 'key', 'unordered'] as const;
export const KAFKA_TOKEN_PROVIDERS = ['aws-msk-iam', 'file'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type Ordering = (typeof ORDERINGS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Setting<T = unknown> {
  /** The file key, and the Config field of the same name when `lands` is not set. */
  readonly key: string;
  readonly env: `COURIER_${string}`;
  readonly kind: Kind<T>;
  readonly default?: T;
  /** The fix when it is missing, for a setting Courier cannot run without. */
  readonly required?: string;
  /** What `--help` and the README say when there is no default and it is not always required. */
  readonly whenUnset?: string;
  /** May be overridden per route in the file (`routes[].<key>`); the value lands in each RouteConfig. */
  readonly perRoute?: true;
  /** Where the value lands when it is not a Config field of the same name. */
  readonly lands?: 'routes' | 'limits' | 'signingKeys' | 'kafkaToken';
  /** Redacted from logs; may come from a mounted file named by `<env>_FILE`. */
  readonly secret?: true;
  /** One line of `--help`. */
  readonly help: string;
  /** The README's meaning cell (markdown), when it says more than `help`. */
  readonly doc?: string;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const SETTINGS = [
  {
    key: 'groupId',
    env: 'COURIER_GROUP_ID',
    kind: text(),
    required: 'set it to the consumer group, e.g. COURIER_GROUP_ID=order-service-processor',
    help: 'consumer group id',
  },
  {
    key: 'topics',
    env: 'COURIER_TOPICS',
    kind: topicList(),
    whenUnset: 'required unless the file defines routes',
    lands: 'routes',
    help: 'comma-separated topics (the file may give a list)',
  },
  {
    key: 'targetUrl',
    env: 'COURIER_TARGET_URL',
    kind: httpUrl(),
    whenUnset: 'required unless the file defines routes',
    lands: 'routes',
    help: 'URL the records of COURIER_TOPICS are POSTed to',
  },
  {
    key: 'ordering',
    env: 'COURIER_ORDERING',
    kind: oneOf(ORDERINGS, 'an ordering mode'),
    default: 'partition',
    help: 'one record in flight per partition (partition), in order per key with keys in parallel (key), or no order (unordered)',
    doc: '`partition`: one record in flight per partition · `key`: in order per key, keys in parallel (a null key has no order to keep) · `unordered`',
  },
  {
    key: 'maxInFlight',
    env: 'COURIER_MAX_IN_FLIGHT',
    kind: int(1, 100_000),
    default: 256,
    help: 'pushes in flight across all partitions (a record, or a batch in batch delivery)',
  },
  {
    key: 'workers',
    env: 'COURIER_WORKERS',
    kind: int(1, 64),
    whenUnset: "the container's CPU limit (cgroup `cpu.max`, rounded down, at least 1), else 1",
    help: 'consumer processes in the same group inside the container, behind one API and one /metrics (COURIER_MAX_IN_FLIGHT and rate limits are shared out among them)',
    doc:
      'consumer processes in the same group inside the container: the group protocol spreads the partitions, one API and one `/metrics` aggregate them, a crashed worker is restarted. ' +
      "`COURIER_MAX_IN_FLIGHT` and each route's `rateLimit` are shared out among them, so the app sees the same limits",
  },
  {
    key: 'partitionBuffer',
    env: 'COURIER_PARTITION_BUFFER',
    kind: int(1, 1_000_000),
    default: 2000,
    help: 'fetched records waiting per partition before that partition is paused',
  },
  {
    key: 'partitionBufferBytes',
    env: 'COURIER_PARTITION_BUFFER_BYTES',
    kind: int(1024, GiB),
    default: 16 * MiB,
    help: 'bytes of fetched record values and keys waiting per partition before that partition is paused',
    doc: 'bytes of fetched record values and keys waiting per partition before that partition is paused: memory stays bounded however far the app falls behind',
  },
  {
    key: 'bufferBytes',
    env: 'COURIER_BUFFER_BYTES',
    kind: int(256 * 1024, GiB),
    default: 16 * MiB,
    help: 'bytes of fetched records waiting in Courier across all partitions: each partition pauses at its share; librdkafka prefetches a quarter of it',
    doc:
      'bytes of fetched record values and keys waiting in Courier, across all partitions: each partition is paused at its share (this ÷ partitions owned, at least 1 MiB; `COURIER_PARTITION_BUFFER_BYTES` caps it too). ' +
      "librdkafka's prefetch (`queued.max.messages.kbytes`) and one fetch (`fetch.max.bytes`) are a quarter of it each, unless `KAFKA_*` sets them: together they bound what records take in memory (README: sizing)",
  },
  {
    key: 'appHttp2',
    env: 'COURIER_APP_HTTP2',
    kind: flag(),
    default: false,
    help: 'push over HTTP/2: cleartext with prior knowledge (h2c) for http:// URLs, ALPN for https://; pushes in flight share a few connections',
    doc: 'push over HTTP/2: cleartext with prior knowledge (h2c) for `http://` URLs (the app must accept it: Node `http2.createServer`, Go `h2c.NewHandler`, …), ALPN for `https://`; pushes in flight share one connection per 100 instead of a socket each',
  },
  {
    key: 'maxRecordBytes',
    env: 'COURIER_MAX_RECORD_BYTES',
    kind: int(0, GiB),
    default: MiB,
    lands: 'limits',
    help: 'a larger record value is never pushed: DLQ as record_too_large',
    doc: 'a larger record value is never pushed: DLQ with `error_type=record_too_large`',
  },
  {
    key: 'maxHeaders',
    env: 'COURIER_MAX_HEADERS',
    kind: int(0, 10_000),
    default: 100,
    lands: 'limits',
    help: 'a record with more headers is never pushed: DLQ as too_many_headers',
    doc: 'a record with more headers is never pushed: DLQ with `error_type=too_many_headers`',
  },
  {
    key: 'maxHeaderBytes',
    env: 'COURIER_MAX_HEADER_BYTES',
    kind: int(0, MiB),
    default: 8192,
    lands: 'limits',
    help: 'a record whose headers take more bytes as HTTP headers is never pushed: DLQ as headers_too_large',
    doc:
      'a record whose `kafka-header-*` lines (names plus percent-encoded values) take more bytes is never pushed: DLQ with `error_type=headers_too_large` ' +
      '(most HTTP servers refuse more than 8–16 KiB of headers)',
  },
  {
    key: 'maxAttempts',
    env: 'COURIER_MAX_ATTEMPTS',
    kind: int(1, 1000),
    default: 8,
    perRoute: true,
    help: 'attempts per record before the DLQ, first included (only failures count: 408, 5xx, timeouts, dropped connections)',
    doc: 'attempts per record before the DLQ, first included; only failures count (408, 5xx, timeouts, dropped connections), never overload, an outage, a wrong URL or an app that is down',
  },
  {
    key: 'retryInitialMs',
    env: 'COURIER_RETRY_INITIAL_MS',
    kind: int(1),
    default: 1000,
    perRoute: true,
    help: 'first backoff ceiling (exponential backoff, the wait between half the ceiling and the ceiling)',
    doc: 'first backoff ceiling: exponential backoff capped by `COURIER_RETRY_MAX_MS`, each wait between half the ceiling and the ceiling (equal jitter)',
  },
  {
    key: 'retryMaxMs',
    env: 'COURIER_RETRY_MAX_MS',
    kind: int(1),
    default: 20_000,
    perRoute: true,
    help: 'backoff cap; a Retry-After on a failure is honoured up to it',
    doc: 'backoff cap; a `Retry-After` on a failure (e.g. 500) is honoured up to the cap',
  },
  {
    key: 'requestTimeoutMs',
    env: 'COURIER_REQUEST_TIMEOUT_MS',
    kind: int(1),
    default: 15_000,
    perRoute: true,
    help: 'time one attempt may take',
  },
  {
    key: 'retryAfterMaxMs',
    env: 'COURIER_RETRY_AFTER_MAX_MS',
    kind: int(0, 86_400_000),
    default: 3_600_000,
    perRoute: true,
    help: 'longest Retry-After honoured on an overload answer (429, 503 with Retry-After)',
    doc: 'longest `Retry-After` honoured on an overload answer (429; 503 with `Retry-After`): the record waits, it is never an attempt',
  },
  {
    key: 'outageAfterMs',
    env: 'COURIER_OUTAGE_AFTER_MS',
    kind: int(1000, 86_400_000),
    default: 30_000,
    perRoute: true,
    help: 'every record of a route failing, none succeeding, for this long: the route is held (app_failing), failures stop costing attempts',
    doc: 'every record of a route failing and none succeeding for this long: the route is held (`/readyz` `app_failing`), one probe record at a time, and failures stop costing attempts until the first success',
  },
  {
    key: 'defaultContentType',
    env: 'COURIER_DEFAULT_CONTENT_TYPE',
    kind: matching(MEDIA_TYPE, 'media type', 'a media type', 'write e.g. application/json or text/plain; charset=utf-8'),
    default: 'application/octet-stream',
    perRoute: true,
    help: 'content-type of pushes whose record has no valid content-type header',
    doc: '`content-type` of pushes whose record has no valid `content-type` header (JSON frameworks answer 415 or 422 to `application/octet-stream`)',
  },
  {
    key: 'tombstones',
    env: 'COURIER_TOMBSTONES',
    kind: oneOf(['deliver', 'skip'] as const, 'a tombstone mode'),
    default: 'deliver',
    perRoute: true,
    help: 'records with a null value: deliver (empty body, kafka-tombstone: true) or skip (acknowledged without a push, counted)',
    doc: 'records with a null value (tombstones): `deliver` (empty body, header `kafka-tombstone: true`) or `skip` (acknowledged without a push, counted in `courier_tombstones_skipped_total`)',
  },
  {
    key: 'delivery',
    env: 'COURIER_DELIVERY',
    kind: oneOf(['record', 'batch'] as const, 'a delivery mode'),
    default: 'record',
    perRoute: true,
    help: 'record: one request per record; batch: many records per JSON request, answered per record',
    doc: '`record`: one request per record; `batch`: many records per JSON request, with per-record answers (see "Batch delivery")',
  },
  {
    key: 'batchMaxRecords',
    env: 'COURIER_BATCH_MAX_RECORDS',
    kind: int(1, 10_000),
    default: 100,
    perRoute: true,
    help: 'batch delivery: most records in one request',
  },
  {
    key: 'batchMaxBytes',
    env: 'COURIER_BATCH_MAX_BYTES',
    kind: int(1, 100 * 1024 * 1024),
    default: 1024 * 1024,
    perRoute: true,
    help: 'batch delivery: most bytes of record values and keys in one request (a larger record goes alone)',
  },
  {
    key: 'batchLingerMs',
    env: 'COURIER_BATCH_LINGER_MS',
    kind: int(0, 60_000),
    default: 5,
    perRoute: true,
    help: 'batch delivery: how long a batch that is not full waits for more records, from its oldest record',
  },
  {
    key: 'rateLimit',
    env: 'COURIER_RATE_LIMIT',
    kind: int(0, 1_000_000),
    default: 0,
    perRoute: true,
    help: 'pushes started per second at most: records, or batches of a batch route (0: no limit)',
    doc: 'pushes started per second at most (records, or batches of a batch route), on top of the adaptive concurrency (0: no limit)',
  },
  {
    key: 'ackStatuses',
    env: 'COURIER_ACK_STATUSES',
    kind: statusList(300, 599),
    default: [] as readonly number[],
    perRoute: true,
    help: 'statuses that acknowledge a record besides 2xx, e.g. 409 for an idempotent handler',
    doc: 'statuses that acknowledge a record besides 2xx, e.g. `409` for an idempotent handler that saw the record before',
  },
  {
    key: 'dlqTopic',
    env: 'COURIER_DLQ_TOPIC',
    kind: text('topic name, {topic} replaced'),
    default: '{topic}.dlq',
    perRoute: true,
    help: 'dead-letter topic template',
  },
  {
    key: 'retryTiers',
    env: 'COURIER_RETRY_TIERS',
    kind: tierList(),
    default: [] as readonly { label: string; delayMs: number }[],
    perRoute: true,
    help: 'retry tiers after the in-memory attempts, e.g. 30s,5m,1h: the record waits in a retry topic, its partition moves on (empty: DLQ at once)',
    doc:
      "retry tiers after the in-memory attempts, e.g. `30s,5m,1h`: a record that still fails is written to its tier's retry topic and its partition moves on; " +
      'Courier reads the tier back when the delay is over, gives it `COURIER_MAX_ATTEMPTS` again, then the next tier, then the DLQ. Trades a key\'s order for progress (see "Retry tiers"). Empty: the DLQ follows the in-memory attempts',
  },
  {
    key: 'retryTopic',
    env: 'COURIER_RETRY_TOPIC',
    kind: text('topic name, {topic} and {delay} replaced'),
    default: '{topic}.retry-{delay}',
    perRoute: true,
    help: 'retry tier topic template ({delay} as written in COURIER_RETRY_TIERS, e.g. orders.retry-5m)',
  },
  {
    key: 'commitIntervalMs',
    env: 'COURIER_COMMIT_INTERVAL_MS',
    kind: int(10, 3_600_000),
    default: 1000,
    help: 'commit cadence',
    doc: 'commit cadence: on this interval, or after `COURIER_COMMIT_EVERY` completed records, whichever comes first; only partitions that moved',
  },
  {
    key: 'commitEvery',
    env: 'COURIER_COMMIT_EVERY',
    kind: int(1),
    default: 1000,
    help: 'also commit after this many completed records',
  },
  {
    key: 'shutdownGraceMs',
    env: 'COURIER_SHUTDOWN_GRACE_MS',
    kind: int(0, 3_600_000),
    default: 20_000,
    help: 'time in-flight pushes, and records waiting below one already acknowledged, get on SIGTERM and on a partition revoke',
  },
  {
    key: 'host',
    env: 'COURIER_HOST',
    kind: text('IP address or host name'),
    default: '0.0.0.0',
    help: "address Courier's own API listens on",
  },
  {
    key: 'port',
    env: 'COURIER_PORT',
    kind: port(),
    default: 8080,
    help: "port of Courier's own API (health, metrics, lag, status)",
  },
  {
    key: 'adminToken',
    env: 'COURIER_ADMIN_TOKEN',
    kind: headerToken(),
    secret: true,
    help: 'bearer token of the admin endpoints (POST /v1/pause, /v1/resume); unset: they are off',
    doc: 'bearer token of the admin endpoints (`POST /v1/pause`, `POST /v1/resume`); unset: they are off',
  },
  {
    key: 'appToken',
    env: 'COURIER_APP_TOKEN',
    kind: headerToken(),
    secret: true,
    help: 'sent to the app as Authorization: Bearer <token>',
    doc: 'sent to the app as `Authorization: Bearer <token>`',
  },
  {
    key: 'signingSecret',
    env: 'COURIER_SIGNING_SECRET',
    kind: signingSecrets(),
    secret: true,
    lands: 'signingKeys',
    help: 'Standard Webhooks signing secrets; during a rotation each signs, the first first',
    doc: 'Standard Webhooks signatures; during a rotation each secret signs, the first first, so the app verifies with whichever key it holds',
  },
  {
    key: 'logLevel',
    env: 'COURIER_LOG_LEVEL',
    kind: oneOf(LOG_LEVELS, 'a log level'),
    default: 'info',
    help: 'JSON log lines (pino)',
  },
  {
    key: 'instanceId',
    env: 'COURIER_INSTANCE_ID',
    kind: matching(
      /^[a-zA-Z0-9._-]{1,249}$/,
      'letters, digits, . _ -',
      'a valid group.instance.id',
      'use letters, digits, ".", "_" and "-", e.g. the pod name',
    ),
    help: 'static group membership id (group.instance.id), e.g. the pod name: a restart within the session timeout causes no rebalance',
    doc: 'static group membership (`group.instance.id`), e.g. the pod name: a restart within `session.timeout.ms` causes no rebalance',
  },
  {
    key: 'kafkaTokenProvider',
    env: 'COURIER_KAFKA_TOKEN_PROVIDER',
    kind: oneOf(KAFKA_TOKEN_PROVIDERS, 'a Kafka token provider'),
    whenUnset: 'librdkafka authenticates by itself (SCRAM, PLAIN, mTLS, or OIDC with KAFKA_SASL_OAUTHBEARER_METHOD=oidc)',
    lands: 'kafkaToken',
    help: "OAUTHBEARER tokens Courier makes (with KAFKA_SASL_MECHANISM=OAUTHBEARER): aws-msk-iam (Amazon MSK IAM, the pod's AWS credentials) or file (a JWT in COURIER_KAFKA_TOKEN_FILE)",
    doc: "OAUTHBEARER tokens Courier makes, with `KAFKA_SASL_MECHANISM=OAUTHBEARER`: `aws-msk-iam` (Amazon MSK IAM access control, signed with the pod's AWS credentials: IRSA, EKS Pod Identity or `AWS_ACCESS_KEY_ID`) or `file` (a JWT in `COURIER_KAFKA_TOKEN_FILE`, read again at each refresh)",
  },
  {
    key: 'kafkaTokenFile',
    env: 'COURIER_KAFKA_TOKEN_FILE',
    kind: text('path'),
    whenUnset: 'required with COURIER_KAFKA_TOKEN_PROVIDER=file',
    lands: 'kafkaToken',
    help: 'the JWT file for COURIER_KAFKA_TOKEN_PROVIDER=file, e.g. a projected service account token; it expires at its exp',
    doc: "the JWT file for `COURIER_KAFKA_TOKEN_PROVIDER=file`, e.g. a projected `serviceAccountToken` with the broker's audience; it is read again before its `exp`",
  },
] as const satisfies readonly Setting[];

/** Read before the settings above, and not a setting itself: it names where the file settings are. */
export const CONFIG_FILE_VARIABLE = {
  env: 'COURIER_CONFIG',
  help: 'optional YAML/JSON file with the settings above (by file key), `kafka` (librdkafka properties) and `routes`',
} as const;

type Declared = (typeof SETTINGS)[number];
export type SettingKey = Declared['key'];

/** The type a declaration's kind yields; undefined is possible only when there is no default and it is not required. */
type ValueOf<S> = S extends { kind: Kind<infer T> } ? (S extends { default: unknown } | { required: string } ? T : T | undefined) : never;
type LandsIn<S> = S extends { perRoute: true } ? 'routes' : S extends { lands: infer Where } ? Where : 'config';

/** The loaded value of every setting, by key. */
export type SettingValues = { -readonly [S in Declared as S['key']]: ValueOf<S> };
/** The settings whose value lands in `where`, by key (the Config field, a `limits` field, …). */
export type SettingsLandingIn<Where extends string> = { readonly [S in Declared as LandsIn<S> extends Where ? S['key'] : never]: ValueOf<S> };
/** Settings a route of the file may override, by key. */
export type RouteSettings = { readonly [S in Declared as S extends { perRoute: true } ? S['key'] : never]: ValueOf<S> };

export type Defaults = { readonly [S in Declared as S extends { default: unknown } ? S['key'] : never]: ValueOf<S> };
export const DEFAULTS: Defaults = Object.freeze(
  Object.fromEntries(SETTINGS.filter((setting) => 'default' in setting).map((setting) => [setting.key, setting.default])),
) as Defaults;

/** Every setting, typed loosely, for the generic loops. */
export const DECLARATIONS: readonly Setting[] = SETTINGS;
export const ROUTE_SETTINGS: readonly Setting[] = DECLARATIONS.filter((setting) => setting.perRoute);

/** The variable of a setting, for messages that name it. */
export const ENV = Object.freeze(Object.fromEntries(SETTINGS.map((setting) => [setting.key, setting.env]))) as { readonly [K in SettingKey]: string };
