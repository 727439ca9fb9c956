import { parse as parseYaml } from 'yaml';
import { ConfigError, type ConfigProblem, errorMessage } from './errors.js';
import { isSecretProperty } from './redact.js';

/**
 * Configuration, read once: environment first (12-factor), optional YAML/JSON file for more
 * (`COURIER_CONFIG`), environment wins. Every problem is collected and reported at once, each with
 * its fix; the result is deeply frozen. Nothing here touches `process`: main passes env and a
 * file reader in.
 */

export type Ordering = 'partition' | 'key' | 'unordered';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface RouteConfig {
  readonly topic: string;
  readonly targetUrl: string;
  readonly maxAttempts: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly requestTimeoutMs: number;
  /** The DLQ topic for this route, template already applied. */
  readonly dlqTopic: string;
}

export interface Config {
  readonly groupId: string;
  readonly routes: readonly RouteConfig[];
  readonly ordering: Ordering;
  readonly maxInFlight: number;
  /** Fetched-but-not-dispatched records per partition before that partition is paused. */
  readonly partitionBuffer: number;
  /** Bytes of fetched-but-not-dispatched record values and keys per partition before it is paused. */
  readonly partitionBufferBytes: number;
  /** What is never pushed (dead-lettered instead). */
  readonly limits: { readonly maxRecordBytes: number; readonly maxHeaders: number; readonly maxHeaderBytes: number };
  readonly commitIntervalMs: number;
  readonly commitEveryRecords: number;
  readonly shutdownGraceMs: number;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string | undefined;
  readonly appToken: string | undefined;
  /** Decoded Standard Webhooks keys; the first signs. */
  readonly signingKeys: readonly Buffer[];
  readonly logLevel: LogLevel;
  readonly bootstrapServers: string;
  /** librdkafka properties for the consumer (defaults, then KAFKA_* pass-through, then Courier's own). */
  readonly consumer: Readonly<Record<string, string>>;
  /** librdkafka properties for the DLQ producer. */
  readonly producer: Readonly<Record<string, string>>;
  readonly runningInKubernetes: boolean;
  /** Static membership id, when set. */
  readonly instanceId: string | undefined;
  /** Every secret value configured (tokens, signing secrets, secret librdkafka properties), for redaction. */
  readonly secrets: readonly string[];
  /** Things worth a log line that are not errors (ignored service-link variables, unknown names). */
  readonly warnings: readonly string[];
}

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the file named by COURIER_CONFIG; throws when it cannot. */
  readonly readFile: (path: string) => string;
}

/** The seed guide's production table, plus what Courier's own commit discipline requires. */
export const CONSUMER_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  'auto.offset.reset': 'earliest',
  'enable.auto.commit': 'false',
  'enable.auto.offset.store': 'false',
  'session.timeout.ms': '45000',
  'heartbeat.interval.ms': '15000',
  'max.poll.interval.ms': '300000',
  'fetch.min.bytes': '1',
  // The seed guide writes the Java client's `fetch.max.wait.ms`; librdkafka spells it this way.
  'fetch.wait.max.ms': '500',
  'max.partition.fetch.bytes': '1048576',
  'partition.assignment.strategy': 'cooperative-sticky',
});

export const DEFAULTS = Object.freeze({
  bootstrapServers: 'localhost:9092',
  ordering: 'partition' as Ordering,
  maxInFlight: 256,
  partitionBuffer: 2000,
  partitionBufferBytes: 16 * 1024 * 1024,
  maxRecordBytes: 1_048_576,
  maxHeaders: 100,
  maxHeaderBytes: 8192,
  maxAttempts: 5,
  retryInitialMs: 200,
  retryMaxMs: 30_000,
  requestTimeoutMs: 30_000,
  dlqTopic: '{topic}.dlq',
  commitIntervalMs: 1000,
  commitEveryRecords: 1000,
  shutdownGraceMs: 20_000,
  host: '0.0.0.0',
  port: 8080,
  logLevel: 'info' as LogLevel,
});

/** Every COURIER_* variable Courier reads, with its file key and a one-line description (for --help). */
export const SETTINGS = [
  ['COURIER_GROUP_ID', 'groupId', 'consumer group id (required)'],
  ['COURIER_TOPICS', 'topics', 'comma-separated topics (required unless the file defines routes)'],
  ['COURIER_TARGET_URL', 'targetUrl', 'URL records are POSTed to (required unless the file defines routes)'],
  ['COURIER_ORDERING', 'ordering', 'partition (default) | key | unordered'],
  ['COURIER_MAX_IN_FLIGHT', 'maxInFlight', `records in flight across all partitions (default ${DEFAULTS.maxInFlight})`],
  ['COURIER_PARTITION_BUFFER', 'partitionBuffer', `records buffered per partition before it is paused (default ${DEFAULTS.partitionBuffer})`],
  [
    'COURIER_PARTITION_BUFFER_BYTES',
    'partitionBufferBytes',
    `bytes of records buffered per partition before it is paused (default ${DEFAULTS.partitionBufferBytes})`,
  ],
  ['COURIER_MAX_RECORD_BYTES', 'maxRecordBytes', `larger record values go to the DLQ as record_too_large (default ${DEFAULTS.maxRecordBytes})`],
  ['COURIER_MAX_HEADERS', 'maxHeaders', `records with more headers go to the DLQ as too_many_headers (default ${DEFAULTS.maxHeaders})`],
  [
    'COURIER_MAX_HEADER_BYTES',
    'maxHeaderBytes',
    `records whose headers take more bytes as HTTP headers go to the DLQ as headers_too_large (default ${DEFAULTS.maxHeaderBytes})`,
  ],
  ['COURIER_MAX_ATTEMPTS', 'maxAttempts', `attempts per record before the DLQ, first included (default ${DEFAULTS.maxAttempts})`],
  ['COURIER_RETRY_INITIAL_MS', 'retryInitialMs', `first backoff ceiling (default ${DEFAULTS.retryInitialMs})`],
  ['COURIER_RETRY_MAX_MS', 'retryMaxMs', `backoff cap, also caps Retry-After (default ${DEFAULTS.retryMaxMs})`],
  ['COURIER_REQUEST_TIMEOUT_MS', 'requestTimeoutMs', `per attempt (default ${DEFAULTS.requestTimeoutMs})`],
  ['COURIER_DLQ_TOPIC', 'dlqTopic', `dead-letter topic template (default ${DEFAULTS.dlqTopic})`],
  ['COURIER_COMMIT_INTERVAL_MS', 'commitIntervalMs', `commit cadence (default ${DEFAULTS.commitIntervalMs})`],
  ['COURIER_COMMIT_EVERY', 'commitEvery', `also commit after this many completed records (default ${DEFAULTS.commitEveryRecords})`],
  ['COURIER_SHUTDOWN_GRACE_MS', 'shutdownGraceMs', `time in-flight pushes get on SIGTERM (default ${DEFAULTS.shutdownGraceMs})`],
  ['COURIER_HOST', 'host', `address of Courier's API (default ${DEFAULTS.host})`],
  ['COURIER_PORT', 'port', `port of Courier's API (default ${DEFAULTS.port})`],
  ['COURIER_ADMIN_TOKEN', 'adminToken', 'bearer token for admin endpoints; unset: they are off'],
  ['COURIER_APP_TOKEN', 'appToken', 'sent to the app as Authorization: Bearer <token>'],
  ['COURIER_SIGNING_SECRET', 'signingSecret', 'whsec_… (space-separated for rotation): Standard Webhooks signatures'],
  ['COURIER_LOG_LEVEL', 'logLevel', 'fatal | error | warn | info (default) | debug | trace | silent'],
  [
    'COURIER_INSTANCE_ID',
    'instanceId',
    'static group membership id (group.instance.id), e.g. the pod name: a restart within the session timeout causes no rebalance',
  ],
  ['COURIER_CONFIG', '', 'optional YAML/JSON file with the settings above (camelCase keys), `kafka` and `routes`'],
] as const;

const FILE_KEYS = new Set<string>([...SETTINGS.map(([, key]) => key).filter(Boolean), 'kafka', 'routes']);
const ROUTE_KEYS = new Set(['topic', 'url', 'maxAttempts', 'retryInitialMs', 'retryMaxMs', 'requestTimeoutMs', 'dlqTopic']);
const ENV_NAMES = new Set<string>(SETTINGS.map(([name]) => name));
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const ORDERINGS: readonly Ordering[] = ['partition', 'key', 'unordered'];
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Kubernetes injects `<SERVICE>_PORT=tcp://…` and friends for every service in the namespace. */
const SERVICE_LINK = /^(KAFKA|COURIER)_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

/** Java-client names that librdkafka spells differently (it rejects the Java spelling). */
const JAVA_ALIASES: Readonly<Record<string, string>> = {
  'fetch.max.wait.ms': 'fetch.wait.max.ms',
};

/** Courier owns these: letting the pass-through change them would break the delivery promise. */
const OWNED_KAFKA_PROPERTIES: Readonly<Record<string, string>> = {
  'group.id': 'set COURIER_GROUP_ID instead',
  'group.instance.id': 'set COURIER_INSTANCE_ID instead',
  'enable.auto.commit': 'remove it: Courier commits offsets itself, only after the app acknowledged',
  'enable.auto.offset.store': 'remove it: Courier stores and commits offsets itself',
  'enable.idempotence': 'remove it: the DLQ producer is always idempotent',
  acks: 'remove it: the DLQ producer always uses acks=all',
};

/** Consumer-only librdkafka properties, kept away from the producer to avoid its warnings. */
const CONSUMER_ONLY = [
  'group.',
  'session.timeout.ms',
  'heartbeat.interval.ms',
  'max.poll.interval.ms',
  'auto.offset.reset',
  'auto.commit.interval.ms',
  'fetch.',
  'max.partition.fetch.bytes',
  'partition.assignment.strategy',
  'isolation.level',
  'check.crcs',
  'queued.',
  'enable.partition.eof',
  'coordinator.query.interval.ms',
];

/** Confluent's image convention: drop KAFKA_, lowercase, `___` → `-`, `__` → `_`, `_` → `.`. */
export function kafkaEnvToProperty(name: string): string {
  return name
    .slice('KAFKA_'.length)
    .toLowerCase()
    .replace(/___/g, '\u0001')
    .replace(/__/g, '\u0002')
    .replace(/_/g, '.')
    .replace(/\u0001/g, '-')
    .replace(/\u0002/g, '_');
}

type FileData = Record<string, unknown>;

/** Secrets that may come from a mounted file instead: `<NAME>_FILE=/path` (and any KAFKA_*_FILE). */
const FILE_VARIANTS = new Set(['COURIER_ADMIN_TOKEN', 'COURIER_APP_TOKEN', 'COURIER_SIGNING_SECRET']);

export function loadConfig(sources: ConfigSources): Config {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const problem = (setting: string, what: string, fix: string) => problems.push({ setting, problem: what, fix });

  // Kubernetes Secrets mounted as files: COURIER_APP_TOKEN_FILE, KAFKA_SASL_PASSWORD_FILE, …
  const env: Record<string, string | undefined> = { ...sources.env };
  for (const [name, path] of Object.entries(sources.env)) {
    if (!name.endsWith('_FILE') || path === undefined) continue;
    const base = name.slice(0, -'_FILE'.length);
    if (!FILE_VARIANTS.has(base) && !base.startsWith('KAFKA_')) continue;
    delete env[name];
    if (sources.env[base] !== undefined && sources.env[base] !== '') {
      problem(name, `both ${base} and ${name} are set`, `keep one: ${name} (a mounted secret file) or ${base}`);
      continue;
    }
    try {
      env[base] = sources.readFile(path).replace(/\r?\n$/, '');
    } catch (error) {
      problem(name, `cannot read ${path}: ${errorMessage(error).split('\n')[0]}`, 'mount the secret file there, or unset the variable');
    }
  }

  let file: FileData = {};
  const configPath = env.COURIER_CONFIG?.trim();
  if (configPath) {
    try {
      const parsed: unknown = parseYaml(sources.readFile(configPath));
      if (parsed === null || parsed === undefined) file = {};
      else if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        problem('COURIER_CONFIG', `${configPath} does not hold a mapping of settings`, 'write the file as a YAML/JSON object, e.g. `groupId: my-service`');
      } else file = parsed as FileData;
    } catch (error) {
      problem(
        'COURIER_CONFIG',
        `cannot read ${configPath}: ${errorMessage(error).split('\n')[0]}`,
        'point COURIER_CONFIG at a readable YAML or JSON file, or unset it',
      );
    }
    for (const key of Object.keys(file)) {
      if (!FILE_KEYS.has(key)) {
        problem(`${configPath}: ${key}`, 'unknown key', `remove it or use one of: ${[...FILE_KEYS].join(', ')}`);
      }
    }
  }

  for (const name of Object.keys(env)) {
    if (name.startsWith('COURIER_') && !ENV_NAMES.has(name)) {
      if (SERVICE_LINK.test(name)) warnings.push(`ignoring ${name}: it looks like a Kubernetes service link (set enableServiceLinks: false to drop it)`);
      else warnings.push(`ignoring unknown variable ${name}${suggest(name, [...ENV_NAMES])}`);
    }
  }

  /** Env (by name) or file (by key), with where it came from for error messages. */
  const raw = (envName: string, fileKey: string): { value: unknown; from: string } | undefined => {
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, from: envName };
    if (fileKey && file[fileKey] !== undefined) return { value: file[fileKey], from: `${configPath}: ${fileKey}` };
    return undefined;
  };

  const str = (envName: string, fileKey: string): { value: string; from: string } | undefined => {
    const found = raw(envName, fileKey);
    if (!found) return undefined;
    if (typeof found.value === 'string') return { value: found.value.trim(), from: found.from };
    if (typeof found.value === 'number' || typeof found.value === 'boolean') return { value: String(found.value), from: found.from };
    problem(found.from, 'must be a string', `write it as text, e.g. ${fileKey}: "value"`);
    return undefined;
  };

  const int = (envName: string, fileKey: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const found = raw(envName, fileKey);
    if (!found) return fallback;
    return checkInt(found.value, found.from, min, max, problem) ?? fallback;
  };

  // Kubernetes service links: COURIER_PORT=tcp://10.0.0.7:8080 when a Service is named "courier".
  const portRaw = env.COURIER_PORT;
  if (portRaw?.startsWith('tcp://')) {
    problem(
      'COURIER_PORT',
      `"${portRaw}" is a Kubernetes service link, not a port`,
      'set COURIER_PORT to a number explicitly, or enableServiceLinks: false in the pod spec',
    );
  }

  const groupId = str('COURIER_GROUP_ID', 'groupId')?.value ?? '';
  if (!groupId) problem('COURIER_GROUP_ID', 'is required', 'set it to the consumer group, e.g. COURIER_GROUP_ID=order-service-processor');

  const orderingRaw = str('COURIER_ORDERING', 'ordering');
  let ordering = DEFAULTS.ordering;
  if (orderingRaw) {
    if ((ORDERINGS as readonly string[]).includes(orderingRaw.value)) ordering = orderingRaw.value as Ordering;
    else problem(orderingRaw.from, `"${orderingRaw.value}" is not an ordering mode`, `use one of ${ORDERINGS.join(', ')}`);
  }

  const maxInFlight = int('COURIER_MAX_IN_FLIGHT', 'maxInFlight', DEFAULTS.maxInFlight, 1, 100_000);
  const partitionBuffer = int('COURIER_PARTITION_BUFFER', 'partitionBuffer', DEFAULTS.partitionBuffer, 1, 1_000_000);
  const partitionBufferBytes = int('COURIER_PARTITION_BUFFER_BYTES', 'partitionBufferBytes', DEFAULTS.partitionBufferBytes, 1024, 1024 * 1024 * 1024);
  const maxRecordBytes = int('COURIER_MAX_RECORD_BYTES', 'maxRecordBytes', DEFAULTS.maxRecordBytes, 0, 1024 * 1024 * 1024);
  const maxHeaders = int('COURIER_MAX_HEADERS', 'maxHeaders', DEFAULTS.maxHeaders, 0, 10_000);
  const maxHeaderBytes = int('COURIER_MAX_HEADER_BYTES', 'maxHeaderBytes', DEFAULTS.maxHeaderBytes, 0, 1024 * 1024);
  const maxAttempts = int('COURIER_MAX_ATTEMPTS', 'maxAttempts', DEFAULTS.maxAttempts, 1, 1000);
  const retryInitialMs = int('COURIER_RETRY_INITIAL_MS', 'retryInitialMs', DEFAULTS.retryInitialMs, 1);
  const retryMaxMs = int('COURIER_RETRY_MAX_MS', 'retryMaxMs', DEFAULTS.retryMaxMs, 1);
  const requestTimeoutMs = int('COURIER_REQUEST_TIMEOUT_MS', 'requestTimeoutMs', DEFAULTS.requestTimeoutMs, 1);
  const commitIntervalMs = int('COURIER_COMMIT_INTERVAL_MS', 'commitIntervalMs', DEFAULTS.commitIntervalMs, 10, 3_600_000);
  const commitEveryRecords = int('COURIER_COMMIT_EVERY', 'commitEvery', DEFAULTS.commitEveryRecords, 1);
  const shutdownGraceMs = int('COURIER_SHUTDOWN_GRACE_MS', 'shutdownGraceMs', DEFAULTS.shutdownGraceMs, 0, 3_600_000);
  const port = portRaw?.startsWith('tcp://') ? DEFAULTS.port : int('COURIER_PORT', 'port', DEFAULTS.port, 0, 65_535);
  const host = str('COURIER_HOST', 'host')?.value || DEFAULTS.host;
  const adminToken = str('COURIER_ADMIN_TOKEN', 'adminToken')?.value || undefined;
  const appToken = str('COURIER_APP_TOKEN', 'appToken')?.value || undefined;
  for (const [name, token] of [
    ['COURIER_ADMIN_TOKEN', adminToken],
    ['COURIER_APP_TOKEN', appToken],
  ] as const) {
    if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
      problem(name, 'contains spaces or characters that cannot go in an HTTP header', 'use printable ASCII without spaces (e.g. `openssl rand -hex 32`)');
    }
  }

  const signingKeys: Buffer[] = [];
  const secretRaw = str('COURIER_SIGNING_SECRET', 'signingSecret');
  if (secretRaw) {
    for (const secret of secretRaw.value.split(/\s+/).filter(Boolean)) {
      const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.alloc(0);
      if (key.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret.slice(6))) {
        problem(secretRaw.from, 'each secret must be whsec_ followed by base64 key bytes', 'generate one with `echo whsec_$(openssl rand -base64 32)`');
      } else signingKeys.push(key);
    }
  }

  const logLevelRaw = str('COURIER_LOG_LEVEL', 'logLevel');
  let logLevel = DEFAULTS.logLevel;
  if (logLevelRaw) {
    if ((LOG_LEVELS as readonly string[]).includes(logLevelRaw.value)) logLevel = logLevelRaw.value as LogLevel;
    else problem(logLevelRaw.from, `"${logLevelRaw.value}" is not a log level`, `use one of ${LOG_LEVELS.join(', ')}`);
  }

  if (retryInitialMs > retryMaxMs) {
    problem('COURIER_RETRY_INITIAL_MS', `${retryInitialMs} is above COURIER_RETRY_MAX_MS (${retryMaxMs})`, 'make the initial delay at most the maximum');
  }

  // librdkafka properties: defaults ← file `kafka` ← KAFKA_* env (env wins).
  const passThrough: Record<string, string> = {};
  const fileKafka = file.kafka;
  if (fileKafka !== undefined) {
    if (typeof fileKafka !== 'object' || fileKafka === null || Array.isArray(fileKafka)) {
      problem(`${configPath}: kafka`, 'must be a mapping of librdkafka properties', 'write e.g. kafka: { "security.protocol": "SASL_SSL" }');
    } else {
      for (const [name, value] of Object.entries(fileKafka)) {
        if (typeof value === 'object' && value !== null)
          problem(`${configPath}: kafka.${name}`, 'must be a string, number or boolean', 'write the librdkafka value as text');
        else {
          const alias = JAVA_ALIASES[name];
          if (alias) warnings.push(`${configPath}: kafka.${name}: librdkafka calls it "${alias}"; using that`);
          passThrough[alias ?? name] = String(value);
        }
      }
    }
  }
  const kafkaEnvNames: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('KAFKA_') || value === undefined) continue;
    if (SERVICE_LINK.test(name)) {
      warnings.push(`ignoring ${name}: it looks like a Kubernetes service link, not a librdkafka property`);
      continue;
    }
    const property = kafkaEnvToProperty(name);
    if (!/^[a-z0-9]+([._-][a-z0-9]+)*$/.test(property)) {
      problem(
        name,
        `does not name a librdkafka property ("${property}")`,
        'spell it as KAFKA_ + the property in upper case with _ for ., e.g. KAFKA_SESSION_TIMEOUT_MS',
      );
      continue;
    }
    const alias = JAVA_ALIASES[property];
    if (alias) warnings.push(`${name}: librdkafka calls ${property} "${alias}"; using that`);
    passThrough[alias ?? property] = value;
    kafkaEnvNames[alias ?? property] = name;
  }
  for (const [property, fix] of Object.entries(OWNED_KAFKA_PROPERTIES)) {
    if (passThrough[property] !== undefined) problem(kafkaEnvNames[property] ?? `kafka.${property}`, 'is managed by Courier', fix);
  }

  const bootstrapServers = (passThrough['bootstrap.servers'] ?? DEFAULTS.bootstrapServers).trim();
  if (!bootstrapServers || bootstrapServers.split(',').some((s) => !/^[^\s:,]+:\d{1,5}$/.test(s.trim()) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(s.trim()))) {
    problem(
      kafkaEnvNames['bootstrap.servers'] ?? 'KAFKA_BOOTSTRAP_SERVERS',
      `"${bootstrapServers}" is not a list of host:port`,
      'write e.g. KAFKA_BOOTSTRAP_SERVERS=kafka-bootstrap:9092',
    );
  }

  const instanceId = str('COURIER_INSTANCE_ID', 'instanceId')?.value || undefined;
  if (instanceId !== undefined && !/^[a-zA-Z0-9._-]{1,249}$/.test(instanceId)) {
    problem('COURIER_INSTANCE_ID', `"${instanceId}" is not a valid group.instance.id`, 'use letters, digits, ".", "_" and "-", e.g. the pod name');
  }
  const consumer: Record<string, string> = { ...CONSUMER_DEFAULTS, 'client.id': instanceId ? `courier-${instanceId}` : 'courier', ...passThrough };
  for (const property of Object.keys(OWNED_KAFKA_PROPERTIES)) delete consumer[property];
  Object.assign(consumer, {
    'bootstrap.servers': bootstrapServers,
    'group.id': groupId,
    'enable.auto.commit': 'false',
    'enable.auto.offset.store': 'false',
    'enable.partition.eof': 'false',
    ...(instanceId ? { 'group.instance.id': instanceId } : {}),
  });
  const producer: Record<string, string> = { 'client.id': 'courier-dlq' };
  for (const [name, value] of Object.entries(passThrough)) {
    if (!CONSUMER_ONLY.some((prefix) => (prefix.endsWith('.') ? name.startsWith(prefix) : name === prefix))) producer[name] = value;
  }
  for (const property of Object.keys(OWNED_KAFKA_PROPERTIES)) delete producer[property];
  Object.assign(producer, { 'bootstrap.servers': bootstrapServers, acks: 'all', 'enable.idempotence': 'true' });

  const maxPollIntervalMs = checkInt(
    consumer['max.poll.interval.ms'],
    kafkaEnvNames['max.poll.interval.ms'] ?? 'KAFKA_MAX_POLL_INTERVAL_MS',
    1,
    86_400_000,
    problem,
  );

  // Routes: the file's `routes`, then COURIER_TOPICS × COURIER_TARGET_URL (which win per topic).
  const dlqTemplate = str('COURIER_DLQ_TOPIC', 'dlqTopic')?.value || DEFAULTS.dlqTopic;
  const routeDefaults = { maxAttempts, retryInitialMs, retryMaxMs, requestTimeoutMs, dlqTopic: dlqTemplate };
  const byTopic = new Map<string, { route: Omit<RouteConfig, 'dlqTopic'> & { dlqTemplate: string }; from: string }>();

  const fileRoutes = file.routes;
  if (fileRoutes !== undefined) {
    if (!Array.isArray(fileRoutes)) {
      problem(`${configPath}: routes`, 'must be a list', 'write routes as a list of { topic, url } entries');
    } else {
      fileRoutes.forEach((entry: unknown, index) => {
        const from = `${configPath}: routes[${index}]`;
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
          problem(from, 'must be a mapping', 'write e.g. { topic: orders, url: "http://localhost:3000/orders" }');
          return;
        }
        const r = entry as Record<string, unknown>;
        for (const key of Object.keys(r)) if (!ROUTE_KEYS.has(key)) problem(`${from}.${key}`, 'unknown key', `use one of: ${[...ROUTE_KEYS].join(', ')}`);
        const topic = typeof r.topic === 'string' ? r.topic.trim() : '';
        const url = typeof r.url === 'string' ? r.url.trim() : '';
        if (!topic) problem(`${from}.topic`, 'is required', 'name the topic this route consumes');
        if (!url) problem(`${from}.url`, 'is required', 'give the URL records of this topic are POSTed to');
        const routeInt = (key: string, fallback: number, min: number) =>
          r[key] === undefined ? fallback : (checkInt(r[key], `${from}.${key}`, min, Number.MAX_SAFE_INTEGER, problem) ?? fallback);
        if (topic) {
          byTopic.set(topic, {
            from,
            route: {
              topic,
              targetUrl: url,
              maxAttempts: routeInt('maxAttempts', maxAttempts, 1),
              retryInitialMs: routeInt('retryInitialMs', retryInitialMs, 1),
              retryMaxMs: routeInt('retryMaxMs', retryMaxMs, 1),
              requestTimeoutMs: routeInt('requestTimeoutMs', requestTimeoutMs, 1),
              dlqTemplate: typeof r.dlqTopic === 'string' && r.dlqTopic.trim() ? r.dlqTopic.trim() : routeDefaults.dlqTopic,
            },
          });
        }
      });
    }
  }

  const topicsRaw = raw('COURIER_TOPICS', 'topics');
  let topics: string[] = [];
  if (topicsRaw) {
    if (typeof topicsRaw.value === 'string')
      topics = topicsRaw.value
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
    else if (Array.isArray(topicsRaw.value) && topicsRaw.value.every((t) => typeof t === 'string'))
      topics = topicsRaw.value.map((t: string) => t.trim()).filter(Boolean);
    else problem(topicsRaw.from, 'must be a comma-separated string or a list of topic names', 'write e.g. COURIER_TOPICS=orders,payments');
  }
  const targetUrl = str('COURIER_TARGET_URL', 'targetUrl');
  if (topics.length > 0 && !targetUrl)
    problem('COURIER_TARGET_URL', 'is required when COURIER_TOPICS is set', 'set it to the app endpoint, e.g. COURIER_TARGET_URL=http://localhost:3000/events');
  if (targetUrl && topics.length === 0 && byTopic.size === 0)
    problem('COURIER_TOPICS', 'is required when COURIER_TARGET_URL is set', 'set it to the topics to consume, e.g. COURIER_TOPICS=orders');
  const targetUrlProblem = targetUrl ? checkUrl(targetUrl.value) : undefined;
  if (targetUrl && targetUrlProblem) problem(targetUrl.from, targetUrlProblem, 'give an absolute http:// or https:// URL, e.g. http://localhost:3000/events');
  if (targetUrl) {
    for (const topic of topics) {
      byTopic.set(topic, {
        from: topicsRaw?.from ?? 'COURIER_TOPICS',
        route: { topic, targetUrl: targetUrl.value, ...routeDefaults, dlqTemplate: routeDefaults.dlqTopic },
      });
    }
  }
  if (byTopic.size === 0 && !targetUrl && topics.length === 0) {
    problem('COURIER_TOPICS', 'no topic to consume', 'set COURIER_TOPICS and COURIER_TARGET_URL, or define routes in the COURIER_CONFIG file');
  }

  const routes: RouteConfig[] = [];
  for (const [topic, { route, from }] of byTopic) {
    if (!TOPIC_NAME.test(topic)) problem(from, `"${topic}" is not a valid Kafka topic name`, 'use letters, digits, ".", "_" and "-" (at most 249)');
    const urlProblem = route.targetUrl === targetUrl?.value ? undefined : checkUrl(route.targetUrl);
    if (urlProblem) problem(`${from}.url`, urlProblem, 'give an absolute http:// or https:// URL, e.g. http://localhost:3000/events');
    if (route.retryInitialMs > route.retryMaxMs)
      problem(`${from}`, `retryInitialMs ${route.retryInitialMs} is above retryMaxMs ${route.retryMaxMs}`, 'make the initial delay at most the maximum');
    const dlqTopic = route.dlqTemplate.replaceAll('{topic}', topic);
    if (!TOPIC_NAME.test(dlqTopic))
      problem(
        from === 'COURIER_TOPICS' ? 'COURIER_DLQ_TOPIC' : `${from}.dlqTopic`,
        `gives "${dlqTopic}", not a valid topic name`,
        'use a template such as {topic}.dlq',
      );
    else if (byTopic.has(dlqTopic))
      problem(
        from === 'COURIER_TOPICS' ? 'COURIER_DLQ_TOPIC' : `${from}.dlqTopic`,
        `dead-letters ${topic} into ${dlqTopic}, which Courier also consumes`,
        'choose a DLQ topic that is not consumed, e.g. {topic}.dlq',
      );
    if (maxPollIntervalMs !== undefined) {
      const budget = route.maxAttempts * route.requestTimeoutMs + (route.maxAttempts - 1) * route.retryMaxMs;
      if (budget >= maxPollIntervalMs) {
        problem(
          `${from} (retry budget)`,
          `${route.maxAttempts} attempts × ${route.requestTimeoutMs} ms + ${route.maxAttempts - 1} waits × ${route.retryMaxMs} ms = ${budget} ms, not inside max.poll.interval.ms ${maxPollIntervalMs}`,
          'lower COURIER_MAX_ATTEMPTS, COURIER_REQUEST_TIMEOUT_MS or COURIER_RETRY_MAX_MS, or raise KAFKA_MAX_POLL_INTERVAL_MS',
        );
      }
    }
    const { dlqTemplate: _template, ...rest } = route;
    routes.push({ ...rest, dlqTopic });
  }

  // The warnings go with the problems: an unknown variable is often the cause ("did you mean …").
  if (problems.length > 0) throw new ConfigError(problems, warnings);

  const secrets = [
    adminToken,
    appToken,
    ...(secretRaw ? secretRaw.value.split(/\s+/) : []),
    ...Object.entries(passThrough)
      .filter(([name]) => isSecretProperty(name))
      .map(([, value]) => value),
  ].filter((value): value is string => value !== undefined && value !== '');

  return deepFreeze({
    groupId,
    routes,
    ordering,
    maxInFlight,
    partitionBuffer,
    partitionBufferBytes,
    limits: { maxRecordBytes, maxHeaders, maxHeaderBytes },
    commitIntervalMs,
    commitEveryRecords,
    shutdownGraceMs,
    host,
    port,
    adminToken,
    appToken,
    signingKeys,
    logLevel,
    bootstrapServers,
    consumer,
    producer,
    runningInKubernetes: Boolean(env.KUBERNETES_SERVICE_HOST),
    instanceId,
    secrets,
    warnings,
  });
}

/**
 * The seed guide's "common mistakes": a hint for when the broker cannot be reached, or undefined.
 */
export function bootstrapHint(bootstrapServers: string, runningInKubernetes: boolean): string | undefined {
  const hosts = bootstrapServers.split(',').map((s) =>
    s
      .trim()
      .replace(/:\d+$/, '')
      .replace(/^\[|\]$/g, '')
      .toLowerCase(),
  );
  if (runningInKubernetes && hosts.some((h) => h === 'localhost' || h.startsWith('127.') || h === '::1')) {
    return `${bootstrapServers} points at this pod itself inside Kubernetes: use the Kafka service name (same namespace: <service>:9092; other namespace: <service>.<namespace>.svc.cluster.local:9092)`;
  }
  if (!runningInKubernetes && hosts.some((h) => h.endsWith('.svc.cluster.local') || h.endsWith('.svc'))) {
    return `${bootstrapServers} is a cluster DNS name, which resolves only inside Kubernetes: from outside use a NodePort or port-forward address (e.g. localhost:30092)`;
  }
  return undefined;
}

function checkInt(value: unknown, from: string, min: number, max: number, problem: (setting: string, what: string, fix: string) => void): number | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  if (text === undefined || !/^\d+$/.test(text)) {
    problem(from, `"${String(value)}" is not a whole number`, `write a whole number between ${min} and ${max}`);
    return undefined;
  }
  const n = Number(text);
  if (n < min || n > max) {
    problem(from, `${n} is out of range`, `write a whole number between ${min} and ${max}`);
    return undefined;
  }
  return n;
}

function checkUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${value}" is not http or https`;
  if (url.username || url.password) return 'credentials in the URL would be sent in clear; use COURIER_APP_TOKEN';
  if (url.hash) return `"${value}" has a #fragment, which is never sent`;
  return undefined;
}

function suggest(name: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best ? ` (did you mean ${best}?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
