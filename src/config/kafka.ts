import { isSecretProperty } from '../redact.js';
import { int, type Report } from './kinds.js';
import { checkSecurity } from './security.js';

/**
 * librdkafka properties: CONSUMER_DEFAULTS ← the file's `kafka` map ← KAFKA_* variables (the
 * environment wins), then the properties Courier owns on top.
 */

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
  // librdkafka's prefetch, per partition: its default 100,000 records let 16 partitions of 1 KiB
  // records hold up to queued.max.messages.kbytes (64 MiB) in the client. Twice the consume batch
  // keeps a batch ready; the byte bounds come from COURIER_BUFFER_BYTES (prefetchProperties).
  'queued.min.messages': '1000',
  // With a small prefetch the queue is often full, and librdkafka then waits this long before it
  // fetches that partition again: its 1000 ms default capped Courier at one prefetch a second
  // (measured: 3,500 records/s with a 4 MiB prefetch, 19,000 with 10 ms; bench/README.md).
  'fetch.queue.backoff.ms': '10',
  'partition.assignment.strategy': 'cooperative-sticky',
  // librdkafka's 5 min: a topic created after Courier started would be joined minutes later.
  'topic.metadata.refresh.interval.ms': '10000',
});

export const DEFAULT_BOOTSTRAP_SERVERS = 'localhost:9092';

/** The KAFKA_* variables, for `--help` and the README (they are read as properties, not as settings). */
export const KAFKA_VARIABLES = [
  { env: 'KAFKA_BOOTSTRAP_SERVERS', fileKey: 'kafka.bootstrap.servers', default: DEFAULT_BOOTSTRAP_SERVERS, accepts: 'host:port,…', help: 'brokers' },
  {
    env: 'KAFKA_*',
    fileKey: 'kafka.<property>',
    help: 'any librdkafka property: KAFKA_SESSION_TIMEOUT_MS=45000 → session.timeout.ms',
    doc: "any librdkafka property, Confluent's convention: drop `KAFKA_`, lowercase, `_`→`.`, `__`→`_`, `___`→`-`",
  },
] as const;

/** Kubernetes injects `<SERVICE>_PORT=tcp://…` and friends for every service in the namespace. */
const SERVICE_LINK = /^(KAFKA|COURIER)_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

export function isServiceLink(name: string): boolean {
  return SERVICE_LINK.test(name);
}

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

export interface KafkaInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The file's `kafka` value, unchecked; undefined without one. */
  readonly fileKafka: unknown;
  readonly configPath: string | undefined;
  readonly groupId: string;
  readonly instanceId: string | undefined;
  /** COURIER_BUFFER_BYTES: librdkafka's prefetch is sized from it (undefined when invalid: reported already). */
  readonly bufferBytes: number | undefined;
  /** Reads a file the properties name (PEM files), to check it before librdkafka retries it for ever. */
  readonly readFile: (path: string) => string;
}

export interface KafkaProperties {
  readonly bootstrapServers: string;
  readonly consumer: Record<string, string>;
  readonly producer: Record<string, string>;
  /** Undefined when the value is invalid (already reported). */
  readonly maxPollIntervalMs: number | undefined;
  /** Values of properties that are secrets, for redaction. */
  readonly secrets: readonly string[];
}

export function kafkaProperties(input: KafkaInput, report: Report, warnings: string[]): KafkaProperties {
  const { passThrough, setBy } = passThroughProperties(input, report, warnings);
  for (const [property, fix] of Object.entries(OWNED_KAFKA_PROPERTIES)) {
    if (passThrough[property] !== undefined) report(setBy[property] ?? `kafka.${property}`, 'is managed by Courier', fix);
  }
  checkSecurity(passThrough, setBy, input.readFile, report);

  const bootstrapServers = (passThrough['bootstrap.servers'] ?? DEFAULT_BOOTSTRAP_SERVERS).trim();
  const hostPort = (server: string) => /^[^\s:,]+:\d{1,5}$/.test(server.trim()) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(server.trim());
  if (!bootstrapServers.split(',').every(hostPort)) {
    report(
      setBy['bootstrap.servers'] ?? 'KAFKA_BOOTSTRAP_SERVERS',
      `"${bootstrapServers}" is not a list of host:port`,
      'write e.g. KAFKA_BOOTSTRAP_SERVERS=kafka-bootstrap:9092',
    );
  }

  const { groupId, instanceId } = input;
  const consumer: Record<string, string> = {
    ...CONSUMER_DEFAULTS,
    ...prefetchProperties(input.bufferBytes),
    'client.id': instanceId ? `courier-${instanceId}` : 'courier',
    ...passThrough,
  };
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

  const maxPollInterval = int(1, 86_400_000).parse(consumer['max.poll.interval.ms'], 'max.poll.interval.ms');
  let maxPollIntervalMs: number | undefined;
  if ('problem' in maxPollInterval) report(setBy['max.poll.interval.ms'] ?? 'KAFKA_MAX_POLL_INTERVAL_MS', maxPollInterval.problem, maxPollInterval.fix);
  else maxPollIntervalMs = maxPollInterval.value;

  const secrets = Object.entries(passThrough)
    .filter(([name]) => isSecretProperty(name))
    .map(([, value]) => value);
  return { bootstrapServers, consumer, producer, maxPollIntervalMs, secrets };
}

/**
 * librdkafka's own buffers, from Courier's budget for waiting records: its prefetch queue
 * (`queued.max.messages.kbytes`, default 64 MiB) and one fetch response (`fetch.max.bytes`, default
 * 50 MiB) each a quarter of it, at least 1 MiB. Measured (bench/README.md): a 4 MiB prefetch keeps
 * Courier's rate; the defaults only cost memory. KAFKA_* variables still win.
 */
export function prefetchProperties(bufferBytes: number | undefined): Record<string, string> {
  if (bufferBytes === undefined) return {};
  const quarter = Math.max(1024 * 1024, Math.floor(bufferBytes / 4));
  return { 'queued.max.messages.kbytes': String(Math.floor(quarter / 1024)), 'fetch.max.bytes': String(quarter) };
}

/** The file's `kafka` map, then KAFKA_* variables over it; `setBy` names the variable that set a property. */
function passThroughProperties({ env, fileKafka, configPath }: KafkaInput, report: Report, warnings: string[]) {
  const passThrough: Record<string, string> = {};
  const setBy: Record<string, string> = {};
  if (fileKafka !== undefined) {
    if (typeof fileKafka !== 'object' || fileKafka === null || Array.isArray(fileKafka)) {
      report(`${configPath}: kafka`, 'must be a mapping of librdkafka properties', 'write e.g. kafka: { "security.protocol": "SASL_SSL" }');
    } else {
      for (const [name, value] of Object.entries(fileKafka)) {
        if (typeof value === 'object' && value !== null) {
          report(`${configPath}: kafka.${name}`, 'must be a string, number or boolean', 'write the librdkafka value as text');
          continue;
        }
        const alias = JAVA_ALIASES[name];
        if (alias) warnings.push(`${configPath}: kafka.${name}: librdkafka calls it "${alias}"; using that`);
        passThrough[alias ?? name] = String(value);
      }
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('KAFKA_') || value === undefined) continue;
    if (isServiceLink(name)) {
      warnings.push(`ignoring ${name}: it looks like a Kubernetes service link, not a librdkafka property`);
      continue;
    }
    const property = kafkaEnvToProperty(name);
    if (!/^[a-z0-9]+([._-][a-z0-9]+)*$/.test(property)) {
      report(
        name,
        `does not name a librdkafka property ("${property}")`,
        'spell it as KAFKA_ + the property in upper case with _ for ., e.g. KAFKA_SESSION_TIMEOUT_MS',
      );
      continue;
    }
    const alias = JAVA_ALIASES[property];
    if (alias) warnings.push(`${name}: librdkafka calls ${property} "${alias}"; using that`);
    passThrough[alias ?? property] = value;
    setBy[alias ?? property] = name;
  }
  return { passThrough, setBy };
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
