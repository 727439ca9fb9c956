import { describe, expect, it } from 'vitest';
import { CONSUMER_DEFAULTS } from '../../src/config/index.js';
import type { ConfigError } from '../../src/errors.js';
import { BASE, configErrorOf, load, problemsOf, ROUTE_DEFAULTS, SECRET, settingsOf } from './helpers.js';

describe('loadConfig: minimal environment and defaults', () => {
  it('builds one route from COURIER_TOPICS × COURIER_TARGET_URL with defaults', () => {
    const config = load(BASE);
    expect(config.groupId).toBe('orders-processor');
    expect(config.routes).toEqual([
      {
        topic: 'orders',
        targetUrl: 'http://localhost:3000/events',
        ...ROUTE_DEFAULTS,
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
    const error = configErrorOf({ COURIER_GROUP_ID: 'g', COURIER_TOPIC: 'orders', COURIER_TARGET_URL: 'http://app/x' });
    expect(settingsOf(error.problems)).toEqual(['COURIER_TOPICS']);
    expect(error.notes).toEqual(['ignoring unknown variable COURIER_TOPIC (did you mean COURIER_TOPICS?)']);
    const lines = error.message.split('\n');
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

describe('loadConfig: COURIER_APP_HTTP2', () => {
  it('is off by default, true or false when set, and refuses anything else with the fix', () => {
    expect(load(BASE).appHttp2).toBe(false);
    expect(load({ ...BASE, COURIER_APP_HTTP2: 'true' }).appHttp2).toBe(true);
    expect(load({ ...BASE, COURIER_APP_HTTP2: ' FALSE ' }).appHttp2).toBe(false);
    const problems = problemsOf({ ...BASE, COURIER_APP_HTTP2: 'yes' });
    expect(problems.map((p) => [p.setting, p.problem, p.fix])).toEqual([['COURIER_APP_HTTP2', '"yes" is not true or false', 'write true or false']]);
  });
});
