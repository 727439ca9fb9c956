import { describe, expect, it } from 'vitest';
import { bootstrapHint, CONSUMER_DEFAULTS, type Config, type ConfigSources, kafkaEnvToProperty, loadConfig } from '../src/config/index.js';
import { ConfigError, type ConfigProblem } from '../src/errors.js';

const BASE = { COURIER_GROUP_ID: 'orders-processor', COURIER_TOPICS: 'orders', COURIER_TARGET_URL: 'http://localhost:3000/events' };
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const noFile = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

function load(env: Record<string, string | undefined>, readFile: ConfigSources['readFile'] = noFile): Config {
  return loadConfig({ env, readFile });
}

/** The problems of the ConfigError that loading must throw. */
function problemsOf(env: Record<string, string | undefined>, readFile: ConfigSources['readFile'] = noFile): readonly ConfigProblem[] {
  try {
    load(env, readFile);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.code).toBe('CONFIG_INVALID');
    for (const p of configError.problems) {
      expect(p.problem.length).toBeGreaterThan(0);
      expect(p.fix.length).toBeGreaterThan(0);
    }
    return configError.problems;
  }
  return expect.fail('expected loadConfig to throw a ConfigError');
}

const settingsOf = (problems: readonly ConfigProblem[]) => problems.map((p) => p.setting);

describe('loadConfig: minimal environment and defaults', () => {
  it('builds one route from COURIER_TOPICS × COURIER_TARGET_URL with defaults', () => {
    const config = load(BASE);
    expect(config.groupId).toBe('orders-processor');
    expect(config.routes).toEqual([
      {
        topic: 'orders',
        targetUrl: 'http://localhost:3000/events',
        maxAttempts: 5,
        retryInitialMs: 200,
        retryMaxMs: 30_000,
        requestTimeoutMs: 30_000,
        dlqTopic: 'orders.dlq',
      },
    ]);
    expect(config.ordering).toBe('partition');
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.logLevel).toBe('info');
    expect(config.bootstrapServers).toBe('localhost:9092');
    expect(config.adminToken).toBeUndefined();
    expect(config.appToken).toBeUndefined();
    expect(config.signingKeys).toEqual([]);
    expect(config.runningInKubernetes).toBe(false);
  });

  it('splits and trims a comma-separated topic list into one route per topic', () => {
    const config = load({ ...BASE, COURIER_TOPICS: ' orders , payments,,refunds ' });
    expect(config.routes.map((r) => [r.topic, r.dlqTopic])).toEqual([
      ['orders', 'orders.dlq'],
      ['payments', 'payments.dlq'],
      ['refunds', 'refunds.dlq'],
    ]);
  });

  it('reads the numeric and enum settings', () => {
    const config = load({
      ...BASE,
      COURIER_ORDERING: 'key',
      COURIER_MAX_IN_FLIGHT: '32',
      COURIER_MAX_ATTEMPTS: '3',
      COURIER_RETRY_INITIAL_MS: '50',
      COURIER_RETRY_MAX_MS: '5000',
      COURIER_REQUEST_TIMEOUT_MS: '2000',
      COURIER_HOST: '127.0.0.1',
      COURIER_PORT: '9090',
      COURIER_LOG_LEVEL: 'debug',
      COURIER_ADMIN_TOKEN: 'admin-token',
      COURIER_APP_TOKEN: 'app-token',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
    });
    expect(config).toMatchObject({
      ordering: 'key',
      maxInFlight: 32,
      host: '127.0.0.1',
      port: 9090,
      logLevel: 'debug',
      adminToken: 'admin-token',
      appToken: 'app-token',
      runningInKubernetes: true,
    });
    expect(config.routes[0]).toMatchObject({ maxAttempts: 3, retryInitialMs: 50, retryMaxMs: 5000, requestTimeoutMs: 2000 });
  });
});

describe('loadConfig: every problem at once, each with its fix', () => {
  it('reports several bad variables in one ConfigError naming each setting', () => {
    const problems = problemsOf({
      COURIER_TOPICS: 'orders',
      COURIER_TARGET_URL: 'ftp://example.com/x',
      COURIER_ORDERING: 'random',
      COURIER_MAX_IN_FLIGHT: 'lots',
      COURIER_LOG_LEVEL: 'loud',
      COURIER_PORT: '70000',
    });
    expect(settingsOf(problems)).toEqual(
      expect.arrayContaining(['COURIER_GROUP_ID', 'COURIER_TARGET_URL', 'COURIER_ORDERING', 'COURIER_MAX_IN_FLIGHT', 'COURIER_LOG_LEVEL', 'COURIER_PORT']),
    );
    expect(problems.length).toBeGreaterThanOrEqual(6);
  });

  it('puts one line per problem, with its fix, in the error message', () => {
    try {
      load({ COURIER_ORDERING: 'random', COURIER_MAX_ATTEMPTS: '0' });
      expect.fail('should throw');
    } catch (error) {
      const configError = error as ConfigError;
      const lines = configError.message.split('\n');
      expect(lines[0]).toContain(`${configError.problems.length} problems`);
      expect(lines).toHaveLength(configError.problems.length + 1);
      for (const [i, p] of configError.problems.entries()) {
        expect(lines[i + 1]).toContain(p.setting);
        expect(lines[i + 1]).toContain(`Fix: ${p.fix}`);
      }
    }
  });

  it('requires COURIER_GROUP_ID and a topic with an empty environment', () => {
    expect(settingsOf(problemsOf({}))).toEqual(expect.arrayContaining(['COURIER_GROUP_ID', 'COURIER_TOPICS']));
  });

  it('requires COURIER_TARGET_URL when COURIER_TOPICS is set', () => {
    expect(settingsOf(problemsOf({ COURIER_GROUP_ID: 'g', COURIER_TOPICS: 'orders' }))).toEqual(['COURIER_TARGET_URL']);
  });

  it('requires COURIER_TOPICS when COURIER_TARGET_URL is set', () => {
    expect(settingsOf(problemsOf({ COURIER_GROUP_ID: 'g', COURIER_TARGET_URL: 'http://app/x' }))).toEqual(['COURIER_TOPICS']);
  });

  it('treats an empty variable as unset', () => {
    expect(settingsOf(problemsOf({ ...BASE, COURIER_GROUP_ID: '' }))).toEqual(['COURIER_GROUP_ID']);
    expect(load({ ...BASE, COURIER_PORT: '' }).port).toBe(8080);
  });

  it.each([
    ['COURIER_MAX_IN_FLIGHT', '0'],
    ['COURIER_MAX_IN_FLIGHT', '-1'],
    ['COURIER_MAX_IN_FLIGHT', '1.5'],
    ['COURIER_MAX_ATTEMPTS', '0'],
    ['COURIER_REQUEST_TIMEOUT_MS', 'ten'],
    ['COURIER_PORT', '65536'],
    ['COURIER_RETRY_MAX_MS', '0'],
  ])('rejects %s=%s', (name, value) => {
    expect(settingsOf(problemsOf({ ...BASE, [name]: value }))).toContain(name);
  });

  it.each([
    ['ftp://app/x', 'not http or https'],
    ['localhost:3000', 'not http or https'],
    ['not a url', 'not a URL'],
    ['http://user:pw@app/x', 'credentials'],
    ['http://app/x#frag', 'fragment'],
  ])('rejects COURIER_TARGET_URL=%s (%s)', (url, what) => {
    const problems = problemsOf({ ...BASE, COURIER_TARGET_URL: url });
    expect(settingsOf(problems)).toEqual(['COURIER_TARGET_URL']);
    expect(problems[0]!.problem).toContain(what);
  });

  it('rejects an invalid topic name', () => {
    expect(problemsOf({ ...BASE, COURIER_TOPICS: 'orders,bad topic!' })[0]!.problem).toContain('not a valid Kafka topic name');
  });

  it('rejects an initial retry delay above the maximum', () => {
    expect(settingsOf(problemsOf({ ...BASE, COURIER_RETRY_INITIAL_MS: '5000', COURIER_RETRY_MAX_MS: '1000' }))).toContain('COURIER_RETRY_INITIAL_MS');
  });

  it('rejects admin and app tokens that cannot go in an HTTP header', () => {
    const problems = problemsOf({ ...BASE, COURIER_ADMIN_TOKEN: 'has space', COURIER_APP_TOKEN: 'caf\u00e9' });
    expect(settingsOf(problems)).toEqual(['COURIER_ADMIN_TOKEN', 'COURIER_APP_TOKEN']);
  });

  it('puts the hints about unknown variables in the error too: a misspelt name is often the cause', () => {
    let error: ConfigError | undefined;
    try {
      load({ COURIER_GROUP_ID: 'g', COURIER_TOPIC: 'orders', COURIER_TARGET_URL: 'http://app/x' });
    } catch (thrown) {
      error = thrown as ConfigError;
    }
    expect(settingsOf(error!.problems)).toEqual(['COURIER_TOPICS']);
    expect(error!.notes).toEqual(['ignoring unknown variable COURIER_TOPIC (did you mean COURIER_TOPICS?)']);
    const lines = error!.message.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^ {2}- COURIER_TOPICS: /);
    expect(lines[2]).toBe('  note: ignoring unknown variable COURIER_TOPIC (did you mean COURIER_TOPICS?)');
  });

  it('warns (does not fail) about an unknown COURIER_ variable and suggests the close name', () => {
    const config = load({ ...BASE, COURIER_MAX_INFLIGHT: '10' });
    expect(config.warnings.some((w) => w.includes('COURIER_MAX_INFLIGHT') && w.includes('COURIER_MAX_IN_FLIGHT'))).toBe(true);
    expect(config.maxInFlight).toBe(256);
  });
});

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

describe('loadConfig: retry budget vs max.poll.interval.ms', () => {
  it('rejects a retry budget that does not fit in max.poll.interval.ms', () => {
    // 10 × 30000 + 9 × 30000 = 570000 ≥ 300000
    const problems = problemsOf({ ...BASE, COURIER_MAX_ATTEMPTS: '10' });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.setting).toContain('retry budget');
    expect(problems[0]!.problem).toContain('570000');
    expect(problems[0]!.problem).toContain('300000');
  });

  it('accepts the same budget when KAFKA_MAX_POLL_INTERVAL_MS is raised', () => {
    expect(load({ ...BASE, COURIER_MAX_ATTEMPTS: '10', KAFKA_MAX_POLL_INTERVAL_MS: '600000' }).consumer['max.poll.interval.ms']).toBe('600000');
  });

  it('rejects a budget exactly equal to max.poll.interval.ms (5 × 30000 + 4 × 30000 = 270000)', () => {
    expect(problemsOf({ ...BASE, KAFKA_MAX_POLL_INTERVAL_MS: '270000' })[0]!.setting).toContain('retry budget');
    expect(load({ ...BASE, KAFKA_MAX_POLL_INTERVAL_MS: '270001' }).routes).toHaveLength(1);
  });

  it('rejects a non-numeric max.poll.interval.ms', () => {
    expect(settingsOf(problemsOf({ ...BASE, KAFKA_MAX_POLL_INTERVAL_MS: 'soon' }))).toContain('KAFKA_MAX_POLL_INTERVAL_MS');
  });
});

describe('loadConfig: dead-letter topic', () => {
  it('applies the {topic} template', () => {
    const config = load({ ...BASE, COURIER_TOPICS: 'orders,payments', COURIER_DLQ_TOPIC: 'dead.{topic}.letters' });
    expect(config.routes.map((r) => r.dlqTopic)).toEqual(['dead.orders.letters', 'dead.payments.letters']);
  });

  it('accepts a fixed DLQ topic shared by all routes', () => {
    expect(load({ ...BASE, COURIER_TOPICS: 'a,b', COURIER_DLQ_TOPIC: 'all-dead' }).routes.map((r) => r.dlqTopic)).toEqual(['all-dead', 'all-dead']);
  });

  it('rejects a DLQ topic equal to the consumed topic', () => {
    const problems = problemsOf({ ...BASE, COURIER_DLQ_TOPIC: '{topic}' });
    expect(settingsOf(problems)).toEqual(['COURIER_DLQ_TOPIC']);
    expect(problems[0]!.problem).toContain('also consumes');
  });

  it('rejects a DLQ topic that is another consumed topic', () => {
    expect(settingsOf(problemsOf({ ...BASE, COURIER_TOPICS: 'orders,orders.dlq' }))).toContain('COURIER_DLQ_TOPIC');
  });

  it('rejects a template that gives an invalid topic name', () => {
    expect(problemsOf({ ...BASE, COURIER_DLQ_TOPIC: '{topic}/dlq' })[0]!.problem).toContain('not a valid topic name');
  });
});

describe('loadConfig: COURIER_CONFIG file', () => {
  const yaml = `
groupId: file-group
ordering: key
maxAttempts: 4
kafka:
  security.protocol: SASL_SSL
  session.timeout.ms: 20000
routes:
  - topic: orders
    url: http://app:3000/orders
    maxAttempts: 2
    retryMaxMs: 1000
    dlqTopic: dead.{topic}
  - topic: payments
    url: http://app:3000/payments
`;
  const reader = (files: Record<string, string>) => (path: string) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };

  it('reads routes with per-route overrides and top-level settings from YAML', () => {
    const config = load({ COURIER_CONFIG: '/etc/courier.yaml' }, reader({ '/etc/courier.yaml': yaml }));
    expect(config.groupId).toBe('file-group');
    expect(config.ordering).toBe('key');
    expect(config.routes).toEqual([
      {
        topic: 'orders',
        targetUrl: 'http://app:3000/orders',
        maxAttempts: 2,
        retryInitialMs: 200,
        retryMaxMs: 1000,
        requestTimeoutMs: 30_000,
        dlqTopic: 'dead.orders',
      },
      {
        topic: 'payments',
        targetUrl: 'http://app:3000/payments',
        maxAttempts: 4,
        retryInitialMs: 200,
        retryMaxMs: 30_000,
        requestTimeoutMs: 30_000,
        dlqTopic: 'payments.dlq',
      },
    ]);
    expect(config.consumer['security.protocol']).toBe('SASL_SSL');
    expect(config.consumer['session.timeout.ms']).toBe('20000');
    expect(config.producer['security.protocol']).toBe('SASL_SSL');
  });

  it('reads the same settings from JSON', () => {
    const json = JSON.stringify({ groupId: 'json-group', routes: [{ topic: 'orders', url: 'http://app/o' }] });
    expect(load({ COURIER_CONFIG: 'c.json' }, reader({ 'c.json': json })).groupId).toBe('json-group');
  });

  it('lets the environment win over the file', () => {
    const config = load(
      {
        COURIER_CONFIG: '/etc/courier.yaml',
        COURIER_GROUP_ID: 'env-group',
        COURIER_ORDERING: 'unordered',
        KAFKA_SECURITY_PROTOCOL: 'SSL',
        KAFKA_SESSION_TIMEOUT_MS: '60000',
      },
      reader({ '/etc/courier.yaml': yaml }),
    );
    expect(config.groupId).toBe('env-group');
    expect(config.ordering).toBe('unordered');
    expect(config.consumer['security.protocol']).toBe('SSL');
    expect(config.consumer['session.timeout.ms']).toBe('60000');
    expect(config.routes).toHaveLength(2);
  });

  it('lets COURIER_TOPICS × COURIER_TARGET_URL replace the file route of the same topic', () => {
    const config = load(
      { COURIER_CONFIG: '/etc/courier.yaml', COURIER_TOPICS: 'orders', COURIER_TARGET_URL: 'http://env-app/orders' },
      reader({ '/etc/courier.yaml': yaml }),
    );
    const orders = config.routes.find((r) => r.topic === 'orders')!;
    expect(orders.targetUrl).toBe('http://env-app/orders');
    expect(orders.dlqTopic).toBe('orders.dlq');
    expect(config.routes.find((r) => r.topic === 'payments')!.targetUrl).toBe('http://app:3000/payments');
  });

  it('rejects unknown keys at the top level and in routes, naming the file', () => {
    const text = 'groupID: x\ngroupId: g\nroutes:\n  - topic: orders\n    uri: http://app/x\n';
    const settings = settingsOf(problemsOf({ COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': text })));
    expect(settings).toEqual(expect.arrayContaining(['c.yaml: groupID', 'c.yaml: routes[0].uri', 'c.yaml: routes[0].url']));
  });

  it('reports an unreadable file as a COURIER_CONFIG problem along with the others', () => {
    const problems = problemsOf({ COURIER_CONFIG: '/missing.yaml', COURIER_ORDERING: 'bogus' }, reader({}));
    expect(settingsOf(problems)).toEqual(expect.arrayContaining(['COURIER_CONFIG', 'COURIER_ORDERING', 'COURIER_GROUP_ID']));
    expect(problems.find((p) => p.setting === 'COURIER_CONFIG')!.problem).toContain('/missing.yaml');
  });

  it('reports a file that is not a mapping, and invalid YAML', () => {
    expect(settingsOf(problemsOf({ ...BASE, COURIER_CONFIG: 'list.yaml' }, reader({ 'list.yaml': '- a\n- b\n' })))).toEqual(['COURIER_CONFIG']);
    expect(settingsOf(problemsOf({ ...BASE, COURIER_CONFIG: 'bad.yaml' }, reader({ 'bad.yaml': 'a: [unclosed\n' })))).toEqual(['COURIER_CONFIG']);
  });

  it('translates the Java spelling fetch.max.wait.ms in the file kafka section too (librdkafka rejects it)', () => {
    const text = 'kafka:\n  fetch.max.wait.ms: 100\n';
    const config = load({ ...BASE, COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': text }));
    expect(config.consumer['fetch.wait.max.ms']).toBe('100');
    expect(config.consumer['fetch.max.wait.ms']).toBeUndefined();
  });

  it('rejects a Courier-owned property in the file kafka section', () => {
    const text = 'kafka:\n  enable.auto.commit: true\n';
    expect(settingsOf(problemsOf({ ...BASE, COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': text })))).toEqual(['kafka.enable.auto.commit']);
  });

  it('rejects a route retry budget that does not fit in max.poll.interval.ms', () => {
    const text = 'groupId: g\nroutes:\n  - topic: orders\n    url: http://app/x\n    maxAttempts: 20\n';
    expect(settingsOf(problemsOf({ COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': text })))[0]).toContain('retry budget');
  });

  it('does not read any file without COURIER_CONFIG', () => {
    expect(() => load(BASE, noFile)).not.toThrow();
  });
});

describe('loadConfig: Kubernetes service-link variables', () => {
  it('rejects COURIER_PORT=tcp://… (a service named courier) with the fix', () => {
    const problems = problemsOf({ ...BASE, COURIER_PORT: 'tcp://10.0.0.7:8080' });
    expect(settingsOf(problems)).toEqual(['COURIER_PORT']);
    expect(problems[0]!.problem).toContain('service link');
    expect(problems[0]!.fix).toContain('enableServiceLinks');
  });

  it('ignores KAFKA_PORT=tcp://… and KAFKA_SERVICE_HOST with warnings, not as librdkafka properties', () => {
    const config = load({
      ...BASE,
      KAFKA_PORT: 'tcp://10.0.0.9:9092',
      KAFKA_PORT_9092_TCP: 'tcp://10.0.0.9:9092',
      KAFKA_PORT_9092_TCP_ADDR: '10.0.0.9',
      KAFKA_SERVICE_HOST: '10.0.0.9',
      KAFKA_SERVICE_PORT: '9092',
    });
    for (const property of ['port', 'service.host', 'service.port', 'port.9092.tcp', 'port.9092.tcp.addr']) {
      expect(config.consumer[property]).toBeUndefined();
      expect(config.producer[property]).toBeUndefined();
    }
    for (const name of ['KAFKA_PORT', 'KAFKA_SERVICE_HOST', 'KAFKA_SERVICE_PORT', 'KAFKA_PORT_9092_TCP_ADDR']) {
      expect(config.warnings.some((w) => w.includes(name) && w.includes('service link'))).toBe(true);
    }
    expect(config.bootstrapServers).toBe('localhost:9092');
  });

  it('ignores COURIER_SERVICE_HOST and COURIER_PORT_8080_TCP with warnings', () => {
    const config = load({ ...BASE, COURIER_SERVICE_HOST: '10.0.0.7', COURIER_PORT_8080_TCP: 'tcp://10.0.0.7:8080' });
    expect(config.warnings.some((w) => w.includes('COURIER_SERVICE_HOST') && w.includes('service link'))).toBe(true);
    expect(config.warnings.some((w) => w.includes('COURIER_PORT_8080_TCP'))).toBe(true);
    expect(config.port).toBe(8080);
  });
});

describe('loadConfig: signing secret', () => {
  it('decodes whsec_ secrets; several (space-separated) for rotation, the first signs', () => {
    const second = `whsec_${Buffer.from('second-key').toString('base64')}`;
    const config = load({ ...BASE, COURIER_SIGNING_SECRET: ` ${SECRET}  ${second} ` });
    expect(config.signingKeys).toHaveLength(2);
    expect(config.signingKeys[0]!.equals(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'))).toBe(true);
    expect(config.signingKeys[1]!.toString()).toBe('second-key');
  });

  it.each(['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_!!!!', 'whsec_abc def', 'WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_MfKQ9r8-GKYq'])(
    'rejects the signing secret %j',
    (secret) => {
      const problems = problemsOf({ ...BASE, COURIER_SIGNING_SECRET: secret });
      expect(settingsOf(problems)).toContain('COURIER_SIGNING_SECRET');
      expect(problems[0]!.fix).toContain('whsec_');
    },
  );
});

describe('loadConfig: result', () => {
  it('is deeply frozen', () => {
    const config = load({ ...BASE, COURIER_SIGNING_SECRET: SECRET });
    for (const part of [config, config.routes, config.routes[0], config.consumer, config.producer, config.warnings, config.signingKeys]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (config as { groupId: string }).groupId = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (config.routes[0] as { targetUrl: string }).targetUrl = 'http://evil/';
    }).toThrow(TypeError);
    expect(() => {
      (config.consumer as Record<string, string>)['enable.auto.commit'] = 'true';
    }).toThrow(TypeError);
    expect(() => (config.routes as unknown[]).push({})).toThrow(TypeError);
  });

  it('does not share or freeze CONSUMER_DEFAULTS through the result', () => {
    const config = load({ ...BASE, KAFKA_SESSION_TIMEOUT_MS: '10000' });
    expect(config.consumer).not.toBe(CONSUMER_DEFAULTS);
    expect(CONSUMER_DEFAULTS['session.timeout.ms']).toBe('45000');
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
