import { describe, expect, it } from 'vitest';
import { bootstrapHint, CONSUMER_DEFAULTS, kafkaEnvToProperty } from '../../src/config/index.js';
import { BASE, load, problemsOf, settingsOf } from './helpers.js';

describe('kafkaEnvToProperty (Confluent image convention)', () => {
  it.each([
    ['KAFKA_SESSION_TIMEOUT_MS', 'session.timeout.ms'],
    ['KAFKA_BOOTSTRAP_SERVERS', 'bootstrap.servers'],
    ['KAFKA_SECURITY_PROTOCOL', 'security.protocol'],
    ['KAFKA_SASL_MECHANISMS', 'sasl.mechanisms'],
    ['KAFKA_SSL_CA_LOCATION', 'ssl.ca.location'],
    ['KAFKA_FOO__BAR', 'foo_bar'],
    ['KAFKA_FOO___BAR', 'foo-bar'],
    ['KAFKA_A_B__C___D', 'a.b_c-d'],
  ])('%s → %s', (name, property) => {
    expect(kafkaEnvToProperty(name)).toBe(property);
  });
});

describe('loadConfig: librdkafka properties', () => {
  it('seeds the consumer with the production defaults', () => {
    const { consumer } = load(BASE);
    expect(consumer).toMatchObject({
      'auto.offset.reset': 'earliest',
      'enable.auto.commit': 'false',
      'enable.auto.offset.store': 'false',
      'session.timeout.ms': '45000',
      'heartbeat.interval.ms': '15000',
      'max.poll.interval.ms': '300000',
      'fetch.min.bytes': '1',
      'fetch.wait.max.ms': '500',
      'max.partition.fetch.bytes': '1048576',
      'partition.assignment.strategy': 'cooperative-sticky',
      'bootstrap.servers': 'localhost:9092',
      'group.id': 'orders-processor',
    });
    // librdkafka rejects the Java client's spelling.
    expect(consumer['fetch.max.wait.ms']).toBeUndefined();
    for (const [name, value] of Object.entries(CONSUMER_DEFAULTS)) expect(consumer[name]).toBe(value);
  });

  it('passes KAFKA_* variables to the consumer, overriding defaults', () => {
    const { consumer } = load({
      ...BASE,
      KAFKA_BOOTSTRAP_SERVERS: 'kafka-0:9092,kafka-1:9092',
      KAFKA_SESSION_TIMEOUT_MS: '30000',
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_AUTO_OFFSET_RESET: 'latest',
      KAFKA_CLIENT___RACK: 'x',
    });
    expect(consumer['bootstrap.servers']).toBe('kafka-0:9092,kafka-1:9092');
    expect(consumer['session.timeout.ms']).toBe('30000');
    expect(consumer['security.protocol']).toBe('SASL_SSL');
    expect(consumer['auto.offset.reset']).toBe('latest');
    expect(consumer['client-rack']).toBe('x');
  });

  it('translates KAFKA_FETCH_MAX_WAIT_MS to fetch.wait.max.ms with a warning', () => {
    const config = load({ ...BASE, KAFKA_FETCH_MAX_WAIT_MS: '100' });
    expect(config.consumer['fetch.wait.max.ms']).toBe('100');
    expect(config.consumer['fetch.max.wait.ms']).toBeUndefined();
    expect(config.warnings.some((w) => w.includes('KAFKA_FETCH_MAX_WAIT_MS') && w.includes('fetch.wait.max.ms'))).toBe(true);
  });

  it.each(['KAFKA_ENABLE_AUTO_COMMIT', 'KAFKA_GROUP_ID', 'KAFKA_ENABLE_AUTO_OFFSET_STORE', 'KAFKA_ACKS', 'KAFKA_ENABLE_IDEMPOTENCE'])(
    'rejects the Courier-owned property %s',
    (name) => {
      const problems = problemsOf({ ...BASE, [name]: 'true' });
      expect(settingsOf(problems)).toEqual([name]);
      expect(problems[0]!.problem).toContain('managed by Courier');
    },
  );

  it('reports several Courier-owned properties at once', () => {
    expect(settingsOf(problemsOf({ ...BASE, KAFKA_ENABLE_AUTO_COMMIT: 'true', KAFKA_GROUP_ID: 'other' }))).toEqual(
      expect.arrayContaining(['KAFKA_ENABLE_AUTO_COMMIT', 'KAFKA_GROUP_ID']),
    );
  });

  it('rejects a KAFKA_ name that cannot be a property', () => {
    expect(settingsOf(problemsOf({ ...BASE, KAFKA_SESSION__: '1' }))).toEqual(['KAFKA_SESSION__']);
  });

  it.each(['kafka', 'kafka:', 'kafka:9092,', ' :9092', 'kafka:abc'])('rejects KAFKA_BOOTSTRAP_SERVERS=%j', (value) => {
    expect(settingsOf(problemsOf({ ...BASE, KAFKA_BOOTSTRAP_SERVERS: value }))).toContain('KAFKA_BOOTSTRAP_SERVERS');
  });

  it('gives the producer acks=all and idempotence, shared properties, and no consumer-only ones', () => {
    const { producer } = load({
      ...BASE,
      KAFKA_BOOTSTRAP_SERVERS: 'kafka:9092',
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SESSION_TIMEOUT_MS: '30000',
      KAFKA_FETCH_MIN_BYTES: '10',
      KAFKA_MAX_POLL_INTERVAL_MS: '600000',
      KAFKA_ISOLATION_LEVEL: 'read_committed',
    });
    expect(producer.acks).toBe('all');
    expect(producer['enable.idempotence']).toBe('true');
    expect(producer['bootstrap.servers']).toBe('kafka:9092');
    expect(producer['security.protocol']).toBe('SASL_SSL');
    for (const name of Object.keys(producer)) {
      expect(name).not.toMatch(
        /^(group\.|fetch\.|session\.|heartbeat\.|max\.poll\.|auto\.offset\.|enable\.auto\.|partition\.assignment|isolation\.level|max\.partition\.fetch)/,
      );
    }
  });
});

describe('bootstrapHint', () => {
  it.each(['localhost:9092', '127.0.0.1:9092', '[::1]:9092', 'kafka:9092,LOCALHOST:9093'])('inside Kubernetes, warns that %s is the pod itself', (servers) => {
    const hint = bootstrapHint(servers, true);
    expect(hint).toContain(servers);
    expect(hint).toContain('service');
  });

  it.each(['kafka.kafka.svc.cluster.local:9092', 'kafka.ns.svc:9092', 'a:9092,kafka-bootstrap.ns.svc.cluster.local:9092'])(
    'outside Kubernetes, warns that %s only resolves in the cluster',
    (servers) => {
      const hint = bootstrapHint(servers, false);
      expect(hint).toContain(servers);
      expect(hint).toContain('only inside Kubernetes');
    },
  );

  it.each([
    ['localhost:9092', false],
    ['kafka.kafka.svc.cluster.local:9092', true],
    ['kafka-bootstrap:9092', true],
    ['broker.example.com:9092', false],
  ] as const)('gives no hint for %s when runningInKubernetes=%s', (servers, inK8s) => {
    expect(bootstrapHint(servers, inK8s)).toBeUndefined();
  });
});

describe('loadConfig: librdkafka prefetch from COURIER_BUFFER_BYTES', () => {
  it("sizes librdkafka's prefetch queue and one fetch at a quarter of the budget (16 MiB by default)", () => {
    expect(load(BASE).bufferBytes).toBe(16 * 1024 * 1024);
    expect(load(BASE).consumer).toMatchObject({
      'queued.min.messages': '1000',
      'queued.max.messages.kbytes': '4096',
      'fetch.max.bytes': '4194304',
      // A full small prefetch must not stop a partition's fetches for librdkafka's default second.
      'fetch.queue.backoff.ms': '10',
    });
    expect(load({ ...BASE, COURIER_BUFFER_BYTES: String(64 * 1024 * 1024) }).consumer).toMatchObject({
      'queued.max.messages.kbytes': '16384',
      'fetch.max.bytes': '16777216',
    });
    // Never below 1 MiB: a fetch must hold the largest default record batch.
    expect(load({ ...BASE, COURIER_BUFFER_BYTES: String(1024 * 1024) }).consumer).toMatchObject({
      'queued.max.messages.kbytes': '1024',
      'fetch.max.bytes': '1048576',
    });
  });

  it('lets KAFKA_* set them instead, and refuses a budget below 256 KiB', () => {
    const { consumer } = load({ ...BASE, KAFKA_QUEUED_MAX_MESSAGES_KBYTES: '65536', KAFKA_FETCH_MAX_BYTES: '52428800', KAFKA_QUEUED_MIN_MESSAGES: '100000' });
    expect(consumer).toMatchObject({ 'queued.max.messages.kbytes': '65536', 'fetch.max.bytes': '52428800', 'queued.min.messages': '100000' });
    expect(settingsOf(problemsOf({ ...BASE, COURIER_BUFFER_BYTES: '1000' }))).toEqual(['COURIER_BUFFER_BYTES']);
  });
});
