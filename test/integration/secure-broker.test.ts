import rdkafka, { type LibrdKafkaError } from '@confluentinc/kafka-javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committedOffsets, createTopics, uniqueName } from '../helpers/kafka.js';
import {
  grantAcl,
  mtlsProperties,
  oauthBearerToken,
  oauthProperties,
  type SecureBrokerInfo,
  scramProperties,
  startSecureBroker,
  stopSecureBroker,
} from '../helpers/secure-kafka.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Smoke test of `scripts/kafka.sh start --secure` with the raw librdkafka binding: each listener and
 * mechanism carries records, and each kind of refusal is seen as librdkafka reports it. The exact
 * lines are printed, so that what Courier has to recognise is on record.
 */

type Client = rdkafka.Producer | rdkafka.KafkaConsumer;
type Properties = Record<string, unknown>;

interface LogLine {
  severity: number;
  fac: string;
  message: string;
}

function report(label: string, what: string): void {
  console.log(`[secure-broker] ${label}: ${what}`);
}

/** A client's warnings and errors (log severity ≤ 4) and error events, as they arrive. */
class Observed {
  readonly lines: LogLine[] = [];
  readonly errors: LibrdKafkaError[] = [];

  constructor(client: Client) {
    // Both clients emit these events; the union of their typed `on` overloads is not callable.
    const emitter = client as rdkafka.Producer;
    emitter.on('event.log', (line: LogLine) => {
      if (line.severity <= 4) this.lines.push(line);
    });
    emitter.on('event.error', (error) => this.errors.push(error));
  }

  /** The first line matching `pattern` within `timeoutMs`, or undefined. */
  async line(pattern: RegExp, timeoutMs = 5_000): Promise<LogLine | undefined> {
    return waitFor(`a librdkafka log line matching ${pattern}`, () => this.lines.find((line) => pattern.test(line.message)), timeoutMs, 50).catch(
      () => undefined,
    );
  }

  toString(): string {
    return JSON.stringify({ lines: this.lines, errors: this.errors.map((e) => e.message) }, null, 1);
  }
}

/** Settles with the connect error, or undefined once connected (with the cluster's metadata). */
function connect(client: Client, timeoutMs: number): Promise<LibrdKafkaError | undefined> {
  return new Promise((resolve) => client.connect({ timeout: timeoutMs }, (error) => resolve(error ?? undefined)));
}

async function connected(client: Client, observed: Observed): Promise<void> {
  const error = await connect(client, 15_000);
  if (error) throw new Error(`connect failed: ${error.message}; librdkafka said ${observed}`);
}

/** Disconnects; a client whose connect already failed has been disconnected by the binding. */
function disconnect(client: Client): Promise<void> {
  return new Promise((resolve) => {
    try {
      client.disconnect(() => resolve());
    } catch {
      resolve();
    }
  });
}

function newProducer(properties: Properties) {
  // Idempotent, as Courier's DLQ producer is; a failed delivery is reported within the test's time.
  const producer = new rdkafka.Producer({ ...properties, 'enable.idempotence': true, 'message.timeout.ms': 20_000, dr_cb: true } as never);
  return { producer, observed: new Observed(producer) };
}

/** Produces one record to partition 0; resolves with its offset once the broker has it. */
function deliver(producer: rdkafka.Producer, topic: string, value: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const opaque = Symbol(value);
    const onReport = (error: LibrdKafkaError, report: rdkafka.DeliveryReport) => {
      if (report.opaque !== opaque) return;
      producer.off('delivery-report', onReport);
      if (error) reject(error);
      else resolve(report.offset);
    };
    producer.on('delivery-report', onReport);
    producer.produce(topic, 0, Buffer.from(value), null, null, opaque);
  });
}

function consumeBatch(consumer: rdkafka.KafkaConsumer): Promise<rdkafka.Message[]> {
  return new Promise((resolve, reject) => consumer.consume(100, (error, messages) => (error ? reject(error) : resolve(messages))));
}

/** Reads partition 0 from the start until `value`, then commits it in the group (which needs group READ). */
async function consumeAndCommit(properties: Properties, topic: string, groupId: string, value: string): Promise<rdkafka.Message> {
  const consumer = new rdkafka.KafkaConsumer({ ...properties, 'group.id': groupId, 'enable.auto.commit': false } as never, {});
  const observed = new Observed(consumer);
  await connected(consumer, observed);
  try {
    consumer.assign([{ topic, partition: 0, offset: 0 }]);
    const message = await waitFor(
      `record ${value} in ${topic}`,
      async () => (await consumeBatch(consumer)).find((m) => m.value?.toString('utf8') === value),
      20_000,
      0,
    );
    consumer.commitMessageSync(message);
    return message;
  } finally {
    await disconnect(consumer);
  }
}

const NAME = uniqueName('sec-smoke');
const topics = {
  scram: uniqueName('sec-scram'),
  mtls: uniqueName('sec-mtls'),
  oauth: uniqueName('sec-oauth'),
  denied: uniqueName('sec-denied'),
};
const groups = {
  scram512: uniqueName('sec-scram512'),
  scram256: uniqueName('sec-scram256'),
  mtls: uniqueName('sec-mtls'),
  oauth: uniqueName('sec-oauth'),
  denied: uniqueName('sec-denied'),
};
// OAUTHBEARER principals are whatever `sub` the token names: one with ACLs, one with none.
const OAUTH_SUB = 'courier-oauth';
const OAUTH_SUB_WITHOUT_ACLS = 'courier-no-acls';

describe('secured broker (scripts/kafka.sh start --secure) with librdkafka', () => {
  let info: SecureBrokerInfo;

  beforeAll(async () => {
    info = await startSecureBroker(NAME);
    await createTopics(
      info.plaintext,
      Object.values(topics).map((topic) => ({ topic, partitions: 1 })),
    );
    // One AclCommand JVM (about 2 s) per distinct set of operations, in parallel.
    await Promise.all([
      // courier (SCRAM) and the OAUTHBEARER principal: produce and consume; courier also READs the
      // group of the "no topic READ" test.
      grantAcl(info, [
        ...['--allow-principal', 'User:courier', '--allow-principal', `User:${OAUTH_SUB}`, '--producer', '--consumer', '--idempotent'],
        ...['--topic', topics.scram, '--topic', topics.oauth],
        ...['--group', groups.scram512, '--group', groups.scram256, '--group', groups.oauth, '--group', groups.denied],
      ]),
      // No --idempotent: WRITE on a topic is enough for an idempotent producer since Kafka 3.0 (KIP-679).
      grantAcl(info, ['--allow-principal', info.sslPrincipal, '--producer', '--consumer', '--topic', topics.mtls, '--group', groups.mtls]),
      // DESCRIBE without READ: the topic is visible, fetching it is refused.
      grantAcl(info, ['--allow-principal', 'User:courier', '--operation', 'Describe', '--topic', topics.denied]),
    ]);
  });

  // Also cleans up after a start that failed half-way (stopping a broker that is not there is fine).
  afterAll(async () => {
    await stopSecureBroker(NAME);
  });

  async function roundTrip(properties: Properties, topic: string, groupId: string): Promise<void> {
    const value = uniqueName('value');
    const { producer, observed } = newProducer(properties);
    await connected(producer, observed);
    producer.setPollInterval(50);
    let offset: number;
    try {
      offset = await deliver(producer, topic, value);
    } finally {
      await disconnect(producer);
    }
    const message = await consumeAndCommit(properties, topic, groupId, value);
    expect(message.offset).toBe(offset);
    expect(await committedOffsets(info.plaintext, groupId, topic)).toEqual(new Map([[0, offset + 1]]));
  }

  it('SCRAM-SHA-512 over SASL_SSL produces, consumes and commits', async () => {
    await roundTrip(scramProperties(info, 'SCRAM-SHA-512'), topics.scram, groups.scram512);
  });

  it('SCRAM-SHA-256 over SASL_SSL produces, consumes and commits', async () => {
    await roundTrip(scramProperties(info, 'SCRAM-SHA-256'), topics.scram, groups.scram256);
  });

  it('mTLS over SSL produces (idempotent, without IDEMPOTENT_WRITE), consumes and commits as the certificate principal', async () => {
    expect(info.sslPrincipal).toBe('User:courier-client');
    await roundTrip(mtlsProperties(info), topics.mtls, groups.mtls);
  });

  it('OAUTHBEARER with an unsecured JWT produces and consumes, and the refreshed token outlives the first', async () => {
    const tokens: Array<ReturnType<typeof oauthBearerToken>> = [];
    const properties = {
      ...oauthProperties(info),
      // JWTs live 5 s and librdkafka is told 2 s: it refreshes (at 80 %, on a 1 s timer) before it
      // re-authenticates (at 90 % of the broker's session, which ends at exp), so always with a fresh token.
      oauthbearer_token_refresh_cb: async () => {
        const token = oauthBearerToken({ sub: OAUTH_SUB, lifetimeSeconds: 5, refreshAfterMs: 2_000 });
        tokens.push(token);
        return token;
      },
    };
    const { producer, observed } = newProducer(properties);
    await connected(producer, observed);
    producer.setPollInterval(50);
    const values = [uniqueName('first-token'), uniqueName('after-first-token-expired')];
    let offsets: number[];
    try {
      const first = await deliver(producer, topics.oauth, values[0]);
      expect(tokens.length).toBeGreaterThanOrEqual(1);
      // The broker ends a session at its token's exp: producing after that needs a refreshed token.
      const firstExpiry = tokens[0].expiresAtMs;
      await waitFor('the first token to expire, after a refresh', () => Date.now() > firstExpiry + 500 && tokens.length >= 2, 15_000);
      const second = await deliver(producer, topics.oauth, values[1]);
      offsets = [first, second];
    } finally {
      await disconnect(producer);
    }
    report('OAUTHBEARER', `token refresh callback called ${tokens.length} times; librdkafka warnings/errors: ${observed}`);
    // Re-authentication went smoothly: no connection was refused or dropped. (A first idempotent
    // producer may warn that the transaction coordinator is still loading; that is not about auth.)
    expect(
      observed.lines.filter((line) => /SASL authentication|SASL OAUTHBEARER|invalid_token|Authentication failure|Disconnected/i.test(line.message)),
    ).toEqual([]);
    expect(observed.errors).toEqual([]);
    const message = await consumeAndCommit(properties, topics.oauth, groups.oauth, values[1]);
    expect(message.offset).toBe(offsets[1]);
  });

  // Refusals while connecting: the connect callback says only "broker transport failure"; the cause is
  // in the log, and in the error events its flush serves when disconnecting.
  async function refusedConnect(properties: Properties, pattern: RegExp, label: string) {
    const { producer, observed } = newProducer(properties);
    const connecting = connect(producer, 3_000);
    const line = await observed.line(pattern);
    const disconnected = disconnect(producer);
    const connectError = await connecting;
    await disconnected;
    expect(line, `no log line matching ${pattern}; librdkafka said ${observed}`).toBeDefined();
    report(label, `log (severity ${line?.severity}, ${line?.fac}): ${line?.message}`);
    report(label, `connect error: ${connectError?.code} ${connectError?.message}`);
    report(label, `error events: ${JSON.stringify(observed.errors.map((e) => ({ code: e.code, origin: e.origin, message: e.message })))}`);
    return { line: line!, connectError, errors: observed.errors };
  }

  it('a wrong SCRAM password is refused: SASL authentication error … invalid credentials', async () => {
    const { line, connectError, errors } = await refusedConnect(
      scramProperties(info, 'SCRAM-SHA-512', { username: 'courier', password: 'not-the-password' }),
      /SASL authentication error/,
      'wrong password',
    );
    expect(line.message).toMatch(
      /SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512/,
    );
    expect(connectError?.code).toBe(rdkafka.CODES.ERRORS.ERR__TRANSPORT);
    // The binding hands error events over as Error objects: no code (-1), librdkafka's text lower-cased.
    expect(errors.map((e) => e.message)).toContain('authentication failure');
  });

  it('a broker certificate from an unknown CA is refused: certificate verify failed', async () => {
    const { line, connectError, errors } = await refusedConnect(
      { ...scramProperties(info, 'SCRAM-SHA-512'), 'ssl.ca.location': info.otherCaPem },
      /certificate verify failed/,
      'wrong CA',
    );
    // Seen in three forms: "SSL handshake failed: [<openssl source file:line:function> ]error:0A000086:SSL
    // routines::certificate verify failed: broker certificate could not be verified, verify that
    // ssl.ca.location is correctly configured …", or just "error:0A000086:SSL routines::certificate verify failed".
    expect(line.message).toMatch(/error:0A000086:SSL routines::certificate verify failed/);
    expect(connectError?.code).toBe(rdkafka.CODES.ERRORS.ERR__TRANSPORT);
    expect(errors.map((e) => e.message)).toContain('ssl error');
  });

  it('consuming a topic without READ on it fails with TOPIC_AUTHORIZATION_FAILED', async () => {
    const consumer = new rdkafka.KafkaConsumer(
      { ...scramProperties(info, 'SCRAM-SHA-256'), 'group.id': groups.denied, 'enable.auto.commit': false } as never,
      {},
    );
    const observed = new Observed(consumer);
    await connected(consumer, observed);
    let refusal: LibrdKafkaError;
    try {
      consumer.assign([{ topic: topics.denied, partition: 0, offset: 0 }]);
      refusal = await waitFor(
        'a consume error',
        () =>
          consumeBatch(consumer).then(
            () => undefined,
            (error: LibrdKafkaError) => error,
          ),
        10_000,
        0,
      );
    } finally {
      await disconnect(consumer);
    }
    report('missing topic READ', `consume error: ${refusal.code} ${refusal.message} (origin ${refusal.origin})`);
    report('missing topic READ', `librdkafka warnings/errors: ${observed}`);
    expect(refusal.code).toBe(rdkafka.CODES.ERRORS.ERR_TOPIC_AUTHORIZATION_FAILED);
    expect(refusal.message).toBe('Broker: Topic authorization failed');
  });

  it('an idempotent producer without IDEMPOTENT_WRITE (nor WRITE on any topic) fails fatally: Cluster authorization failed', async () => {
    const { producer, observed } = newProducer({
      ...oauthProperties(info),
      oauthbearer_token_refresh_cb: async () => oauthBearerToken({ sub: OAUTH_SUB_WITHOUT_ACLS, lifetimeSeconds: 60 }),
    });
    await connected(producer, observed);
    producer.setPollInterval(50);
    let produceError: LibrdKafkaError | undefined;
    try {
      const line = await observed.line(/Fatal error/);
      expect(line, `no fatal error; librdkafka said ${observed}`).toBeDefined();
      await waitFor('the fatal error event', () => observed.errors.length > 0, 5_000);
      try {
        producer.produce(topics.oauth, 0, Buffer.from('refused'));
      } catch (error) {
        produceError = error as LibrdKafkaError;
      }
      report('missing IDEMPOTENT_WRITE', `log (severity ${line?.severity}, ${line?.fac}): ${line?.message}`);
      report(
        'missing IDEMPOTENT_WRITE',
        `error events: ${JSON.stringify(observed.errors.map((e) => ({ code: e.code, origin: e.origin, message: e.message })))}`,
      );
      report('missing IDEMPOTENT_WRITE', `produce() then throws: ${produceError?.code} ${produceError?.message}`);
      expect(line?.fac).toBe('FATAL');
      expect(line?.message).toMatch(
        /Fatal error: Broker: Cluster authorization failed: Failed to acquire idempotence PID from broker .*: Broker: Cluster authorization failed/,
      );
      expect(observed.errors.map((e) => e.message)).toContain('cluster authorization failed');
      expect(produceError?.code).toBe(rdkafka.CODES.ERRORS.ERR__FATAL);
    } finally {
      await disconnect(producer);
    }
  });
});
