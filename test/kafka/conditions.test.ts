import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KafkaConditions } from '../../src/kafka/conditions.js';

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const clock = { now: 1_000_000 };
  const conditions = new KafkaConditions(logger, 'kafka:9092', () => clock.now);
  return { lines, clock, conditions };
}

const REFUSED = {
  severity: 3,
  fac: 'FAIL',
  message: '[thrd:kafka:9092/bootstrap]: kafka:9092/bootstrap: Connect to ipv4#10.0.0.7:9092 failed: Connection refused (after 0ms in state CONNECT)',
};
const BAD_PASSWORD = {
  severity: 3,
  fac: 'FAIL',
  message:
    '[thrd:sasl_ssl://kafka:9092/bootstrap]: sasl_ssl://kafka:9092/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 305ms in state AUTH_REQ)',
};

describe('KafkaConditions', () => {
  it('a refused OAUTHBEARER token gets the fix for its mechanism, not the password one', () => {
    const logger = pino({ level: 'silent' });
    const auth = 'check the token source';
    const conditions = new KafkaConditions(logger, 'kafka:9092', () => 0, { auth });
    conditions.clientError('consumer', { code: -169, message: 'authentication failure' });
    expect(conditions.reasons()).toEqual([
      { code: 'kafka_auth_failed', message: `consumer: Kafka at kafka:9092 refused the credentials: authentication failure. Fix: ${auth}` },
    ]);
  });

  it('an unreachable cluster whose address is the likely mistake gets that hint as its fix', () => {
    const logger = pino({ level: 'silent' });
    const hint = 'localhost:9092 points at this pod itself inside Kubernetes: use the Kafka service name';
    const conditions = new KafkaConditions(logger, 'localhost:9092', () => 0, { unreachable: hint });
    conditions.clientLog('consumer', REFUSED);
    expect(conditions.reasons()[0]?.message).toMatch(new RegExp(`Connection refused \\(after 0ms in state CONNECT\\)\\. Fix: ${hint}$`));
  });

  it("routes librdkafka's lines into the log at a mapped level, and names the problem with the address, how long and the fix", () => {
    const { lines, clock, conditions } = setup();
    conditions.clientLog('consumer', { severity: 7, fac: 'INIT', message: '[thrd:app]: librdkafka v2.15.1 initialized' });
    conditions.clientLog('consumer', REFUSED);
    expect(lines[0]).toMatchObject({
      level: 20,
      kafka: { client: 'consumer', facility: 'INIT' },
      msg: 'librdkafka: [thrd:app]: librdkafka v2.15.1 initialized',
    });
    expect(lines[1]).toMatchObject({ level: 40, kafka: { facility: 'FAIL' } });
    expect(lines[2]).toMatchObject({ level: 50, kafka: { client: 'consumer', code: 'kafka_unreachable' } });
    expect(lines[2]?.msg).toMatch(/^consumer cannot reach Kafka at kafka:9092: Connect to ipv4#10\.0\.0\.7:9092 failed: Connection refused/);
    clock.now += 12_000;
    conditions.clientLog('consumer', REFUSED);
    const [reason] = conditions.reasons();
    expect(reason?.code).toBe('kafka_unreachable');
    expect(reason?.message).toMatch(/at kafka:9092 \(for 12 s\): .*Fix: check KAFKA_BOOTSTRAP_SERVERS/);
  });

  it('logs a lasting problem again at most every 30 s', () => {
    const { lines, clock, conditions } = setup();
    for (let i = 0; i < 10; i++) {
      conditions.clientLog('DLQ producer', REFUSED);
      clock.now += 5_000;
    }
    expect(lines.filter((line) => line.level === 50)).toHaveLength(2);
  });

  it('a refused password is reported as such, not as unreachable, though the connection drops too', () => {
    const { conditions } = setup();
    conditions.clientLog('consumer', REFUSED);
    conditions.clientLog('consumer', BAD_PASSWORD);
    conditions.clientLog('consumer', REFUSED);
    expect(conditions.reasons().map((reason) => reason.code)).toEqual(['kafka_auth_failed']);
  });

  it('a client that works again clears its problems; problems not seen for 30 s expire', () => {
    const { clock, conditions, lines } = setup();
    conditions.clientLog('consumer', REFUSED);
    conditions.clientError('DLQ producer', { code: 31, message: 'Broker: Cluster authorization failed' });
    conditions.healthy('consumer');
    expect(conditions.reasons().map((reason) => reason.code)).toEqual(['kafka_not_authorized']);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'consumer: kafka_unreachable is over' });
    clock.now += 31_000;
    expect(conditions.reasons()).toEqual([]);
  });

  it("a working client does not clear one resource's problem: records of another topic say nothing of a missing one", () => {
    const { conditions } = setup();
    conditions.checked('consumer', 'topic_missing', [{ code: 'topic_missing', detail: 'not in metadata', resource: 'topic b', fix: 'create topic b' }]);
    conditions.healthy('consumer');
    expect(conditions.reasons().map((reason) => reason.code)).toEqual(['topic_missing']);
  });
});

describe('KafkaConditions.checked', () => {
  it('reports what a check found missing and clears what exists now', () => {
    const { conditions, lines } = setup();
    const missing = (topic: string) => ({
      code: 'topic_missing' as const,
      detail: 'not in metadata',
      resource: `topic ${topic}`,
      fix: `create topic ${topic}`,
    });
    conditions.checked('consumer', 'topic_missing', [missing('a'), missing('b')]);
    expect(conditions.reasons().map((reason) => reason.message)).toEqual([
      'consumer: topic a does not exist. Fix: create topic a',
      'consumer: topic b does not exist. Fix: create topic b',
    ]);
    conditions.checked('consumer', 'topic_missing', [missing('b')]);
    expect(conditions.reasons()).toEqual([{ code: 'topic_missing', message: 'consumer: topic b does not exist. Fix: create topic b' }]);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'topic a: topic_missing is over' });
  });
});

describe('KafkaConditions keeps the detailed words', () => {
  it('a terse error event after the detailed log line does not replace it', () => {
    const { conditions } = setup();
    conditions.clientLog('consumer', BAD_PASSWORD);
    conditions.clientError('consumer', { code: -1, message: 'authentication failure' });
    expect(conditions.reasons()[0]?.message).toContain('invalid credentials with SASL mechanism SCRAM-SHA-512');
  });
});
