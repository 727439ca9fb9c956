import { describe, expect, it } from 'vitest';
import { BASE, load, noFile, problemsOf, ROUTE_DEFAULTS, reader, settingsOf } from './helpers.js';

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
  it('reads routes with per-route overrides and top-level settings from YAML', () => {
    const config = load({ COURIER_CONFIG: '/etc/courier.yaml' }, reader({ '/etc/courier.yaml': yaml }));
    expect(config.groupId).toBe('file-group');
    expect(config.ordering).toBe('key');
    expect(config.routes).toEqual([
      {
        topic: 'orders',
        targetUrl: 'http://app:3000/orders',
        ...ROUTE_DEFAULTS,
        maxAttempts: 2,
        retryMaxMs: 1000,
        dlqTopic: 'dead.orders',
      },
      {
        topic: 'payments',
        targetUrl: 'http://app:3000/payments',
        ...ROUTE_DEFAULTS,
        maxAttempts: 4,
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

  it('suggests the close key for an unknown one', () => {
    const text = 'groupID: g\nroutes:\n  - topic: orders\n    url: http://app/x\n    maxAtempts: 3\n';
    const problems = problemsOf({ ...BASE, COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': text }));
    expect(problems.find((p) => p.setting === 'c.yaml: groupID')!.fix).toMatch(/^did you mean groupId\? /);
    expect(problems.find((p) => p.setting === 'c.yaml: routes[0].maxAtempts')!.fix).toMatch(/^did you mean maxAttempts\? /);
  });

  it('reads commitEvery from the file into config.commitEvery (file key and Config field are one name)', () => {
    expect(load({ ...BASE, COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': 'commitEvery: 50\n' })).commitEvery).toBe(50);
    expect(load({ ...BASE, COURIER_COMMIT_EVERY: '70' }).commitEvery).toBe(70);
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
