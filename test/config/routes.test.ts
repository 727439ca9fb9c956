import { describe, expect, it } from 'vitest';
import { ROUTE_KEYS } from '../../src/config/index.js';
import { BASE, load, problemsOf, reader, settingsOf } from './helpers.js';

describe('loadConfig: retry budget vs max.poll.interval.ms', () => {
  it('rejects a retry budget that does not fit in max.poll.interval.ms', () => {
    // 10 × 15000 + 9 × 20000 = 330000 ≥ 300000
    const problems = problemsOf({ ...BASE, COURIER_MAX_ATTEMPTS: '10' });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.setting).toContain('retry budget');
    expect(problems[0]!.problem).toContain('330000');
    expect(problems[0]!.problem).toContain('300000');
  });

  it('accepts the same budget when KAFKA_MAX_POLL_INTERVAL_MS is raised', () => {
    expect(load({ ...BASE, COURIER_MAX_ATTEMPTS: '10', KAFKA_MAX_POLL_INTERVAL_MS: '600000' }).consumer['max.poll.interval.ms']).toBe('600000');
  });

  it('rejects a budget exactly equal to max.poll.interval.ms (the defaults: 8 × 15000 + 7 × 20000 = 260000)', () => {
    expect(problemsOf({ ...BASE, KAFKA_MAX_POLL_INTERVAL_MS: '260000' })[0]!.setting).toContain('retry budget');
    expect(load({ ...BASE, KAFKA_MAX_POLL_INTERVAL_MS: '260001' }).routes).toHaveLength(1);
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

describe('loadConfig: retry tiers', () => {
  it('resolves each tier to its topic, in the order given', () => {
    const [route] = load({ ...BASE, COURIER_RETRY_TIERS: '30s, 5m,1h,250ms' }).routes;
    expect(route?.tiers).toEqual([
      { label: '30s', delayMs: 30_000, topic: 'orders.retry-30s' },
      { label: '5m', delayMs: 300_000, topic: 'orders.retry-5m' },
      { label: '1h', delayMs: 3_600_000, topic: 'orders.retry-1h' },
      { label: '250ms', delayMs: 250, topic: 'orders.retry-250ms' },
    ]);
  });

  it('takes a route of its own from the file, with its own template', () => {
    const file =
      'routes:\n  - { topic: a, url: "http://app/a", retryTiers: [10s, 2m], retryTopic: "retry.{topic}.{delay}" }\n  - { topic: b, url: "http://app/b" }\n';
    const config = load({ COURIER_GROUP_ID: 'g', COURIER_CONFIG: 'c.yaml' }, reader({ 'c.yaml': file }));
    expect(config.routes.map((r) => r.tiers.map((t) => t.topic))).toEqual([['retry.a.10s', 'retry.a.2m'], []]);
  });

  it.each([
    ['5 minutes', 'not a delay'],
    ['0s', 'not a delay'],
    ['8d', 'not a delay'],
    ['5m,5m', 'given twice'],
    ['1s,2s,3s,4s,5s,6s,7s,8s,9s,10s,11s', '11 tiers'],
  ])('refuses COURIER_RETRY_TIERS=%s', (tiers, problem) => {
    const problems = problemsOf({ ...BASE, COURIER_RETRY_TIERS: tiers });
    expect(settingsOf(problems)).toEqual(['COURIER_RETRY_TIERS']);
    expect(problems[0]?.problem).toContain(problem);
    expect(problems[0]?.fix).toContain('30s,5m,1h');
  });

  it('refuses a template that gives every tier the same topic, a source topic or a DLQ topic', () => {
    expect(problemsOf({ ...BASE, COURIER_RETRY_TIERS: '1s,2s', COURIER_RETRY_TOPIC: '{topic}.retry' })[0]?.problem).toContain(
      'writes to orders.retry, which orders (retry tier 1s) writes to as well',
    );
    expect(problemsOf({ ...BASE, COURIER_TOPICS: 'orders,orders.retry-1s', COURIER_RETRY_TIERS: '1s' }).map((p) => p.problem)).toContainEqual(
      expect.stringContaining('also consumes as a source'),
    );
    expect(problemsOf({ ...BASE, COURIER_RETRY_TIERS: '1s', COURIER_RETRY_TOPIC: '{topic}.dlq' })[0]?.problem).toContain('is a DLQ topic');
    expect(problemsOf({ ...BASE, COURIER_RETRY_TIERS: '1s', COURIER_RETRY_TOPIC: '{topic}/{delay}' })[0]?.problem).toContain('not a valid topic name');
  });
});

describe('loadConfig: per-route settings in the file', () => {
  const withRoute = (fields: string) => reader({ 'c.yaml': `groupId: g\nroutes:\n  - topic: orders\n    url: http://app/x\n${fields}` });

  it('allows topic, url and the settings declared per route', () => {
    expect(ROUTE_KEYS).toEqual([
      'topic',
      'url',
      'maxAttempts',
      'retryInitialMs',
      'retryMaxMs',
      'requestTimeoutMs',
      'retryAfterMaxMs',
      'outageAfterMs',
      'defaultContentType',
      'tombstones',
      'delivery',
      'batchMaxRecords',
      'batchMaxBytes',
      'batchLingerMs',
      'rateLimit',
      'ackStatuses',
      'dlqTopic',
      'retryTiers',
      'retryTopic',
    ]);
  });

  it('rejects routes[].maxAttempts over 1000 exactly as COURIER_MAX_ATTEMPTS, at the route', () => {
    const fromVariable = problemsOf({ ...BASE, COURIER_MAX_ATTEMPTS: '5000' });
    const fromRoute = problemsOf({ COURIER_CONFIG: 'c.yaml' }, withRoute('    maxAttempts: 5000\n'));
    const same = { problem: '5000 is out of range', fix: 'write a whole number between 1 and 1000' };
    expect(fromVariable).toEqual([{ setting: 'COURIER_MAX_ATTEMPTS', ...same }]);
    expect(fromRoute).toEqual([{ setting: 'c.yaml: routes[0].maxAttempts', ...same }]);
  });

  it.each([
    ['maxAttempts', 'COURIER_MAX_ATTEMPTS', '0'],
    ['retryInitialMs', 'COURIER_RETRY_INITIAL_MS', 'soon'],
    ['retryMaxMs', 'COURIER_RETRY_MAX_MS', '-5'],
    ['requestTimeoutMs', 'COURIER_REQUEST_TIMEOUT_MS', '1.5'],
  ])('rejects routes[].%s like %s (%s)', (key, variable, value) => {
    const [fromVariable] = problemsOf({ ...BASE, [variable]: value });
    const [fromRoute] = problemsOf({ COURIER_CONFIG: 'c.yaml' }, withRoute(`    ${key}: "${value}"\n`));
    expect(fromRoute).toEqual({ ...fromVariable, setting: `c.yaml: routes[0].${key}` });
  });

  it('rejects a route dlqTopic that is not text instead of ignoring it', () => {
    expect(settingsOf(problemsOf({ COURIER_CONFIG: 'c.yaml' }, withRoute('    dlqTopic: [a, b]\n')))).toEqual(['c.yaml: routes[0].dlqTopic']);
  });

  it('takes the top-level value for what a route does not set, and the route value over it', () => {
    const [route] = load({ COURIER_CONFIG: 'c.yaml', COURIER_MAX_ATTEMPTS: '3', COURIER_RETRY_MAX_MS: '1500' }, withRoute('    retryMaxMs: 2000\n')).routes;
    expect(route).toMatchObject({ maxAttempts: 3, retryMaxMs: 2000 });
  });
});

describe('loadConfig: answers v2 settings, from the environment and per route', () => {
  it('reads ackStatuses, defaultContentType, tombstones, rateLimit, outageAfterMs and retryAfterMaxMs, and refuses bad values with their fix', () => {
    const [route] = load({
      ...BASE,
      COURIER_ACK_STATUSES: '409, 410',
      COURIER_DEFAULT_CONTENT_TYPE: 'application/json',
      COURIER_TOMBSTONES: 'skip',
      COURIER_RATE_LIMIT: '50',
      COURIER_OUTAGE_AFTER_MS: '60000',
      COURIER_RETRY_AFTER_MAX_MS: '600000',
    }).routes;
    expect(route).toMatchObject({
      ackStatuses: [409, 410],
      defaultContentType: 'application/json',
      tombstones: 'skip',
      rateLimit: 50,
      outageAfterMs: 60_000,
      retryAfterMaxMs: 600_000,
    });
    const problems = settingsOf(
      problemsOf({ ...BASE, COURIER_ACK_STATUSES: '200', COURIER_DEFAULT_CONTENT_TYPE: 'json', COURIER_TOMBSTONES: 'drop', COURIER_OUTAGE_AFTER_MS: '10' }),
    );
    expect(problems).toEqual(expect.arrayContaining(['COURIER_ACK_STATUSES', 'COURIER_DEFAULT_CONTENT_TYPE', 'COURIER_TOMBSTONES', 'COURIER_OUTAGE_AFTER_MS']));
    const file = reader({ 'c.yaml': 'groupId: g\nroutes:\n  - topic: orders\n    url: http://app/x\n    ackStatuses: [409]\n    tombstones: skip\n' });
    const [fromFile] = load({ COURIER_CONFIG: 'c.yaml' }, file).routes;
    expect(fromFile).toMatchObject({ ackStatuses: [409], tombstones: 'skip' });
  });
});

describe('loadConfig: retry waits against the outage window', () => {
  it('warns when a record could run out of attempts before an outage holds the route, and not with the defaults', () => {
    expect(load(BASE).warnings).toEqual([]);
    const warnings = load({ ...BASE, COURIER_MAX_ATTEMPTS: '3', COURIER_RETRY_INITIAL_MS: '100', COURIER_RETRY_MAX_MS: '1000' }).warnings;
    expect(warnings).toHaveLength(1);
    // 2 waits of at least 50 and 100 ms.
    expect(warnings[0]).toContain('as little as 150 ms, less than the outage window 30000 ms');
  });

  it('counts retry tiers: the DLQ comes only after the last one', () => {
    const short = { ...BASE, COURIER_MAX_ATTEMPTS: '3', COURIER_RETRY_INITIAL_MS: '100', COURIER_RETRY_MAX_MS: '1000' };
    // 3 stays × 150 ms + 10 s + 15 s = 25.45 s: still below 30 s.
    expect(load({ ...short, COURIER_RETRY_TIERS: '10s,15s' }).warnings[0]).toContain('retry waits and tiers can take as little as 25450 ms');
    expect(load({ ...short, COURIER_RETRY_TIERS: '1m' }).warnings).toEqual([]);
  });
});
