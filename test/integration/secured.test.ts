import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { TestApp } from '../helpers/app.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { committedOffsets, createTopics, produce, readAll, uniqueName } from '../helpers/kafka.js';
import { addScramUser, grantAcl, type SecureBrokerInfo, startSecureBroker, stopSecureBroker, unsecuredJwt } from '../helpers/secure-kafka.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Courier against a secured broker (scripts/kafka.sh start --secure): SASL_SSL with SCRAM, mTLS,
 * ACLs. Setup and checks go through the broker's PLAINTEXT listener, whose principal is a super user.
 */
let broker: SecureBrokerInfo;
const name = uniqueName('sec-courier');
beforeAll(async () => {
  broker = await startSecureBroker(name);
}, 120_000);
afterAll(async () => {
  await stopSecureBroker(name);
});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A topic and its DLQ topic, a test app (422 for a value "poison"), and Courier over SCRAM-SHA-512,
 * or over what `auth` says instead (its own bootstrap, protocol and mechanism).
 */
async function setup(kafka: Record<string, string> = {}, auth?: Record<string, string>) {
  const topic = uniqueName('secured');
  const groupId = uniqueName('secured-group');
  await createTopics(broker.plaintext, [
    { topic, partitions: 1 },
    { topic: `${topic}.dlq`, partitions: 1 },
  ]);
  const app = new TestApp((receipt) => (receipt.body.toString() === 'poison' ? { status: 422, body: '{"error":"poison"}' } : { status: 200 }));
  await app.listen();
  cleanups.push(() => app.close());
  const courier = new CourierProcess(
    courierEnv(broker.saslSsl, {
      COURIER_GROUP_ID: groupId,
      COURIER_TOPICS: topic,
      COURIER_TARGET_URL: app.url,
      ...(auth ?? {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'courier',
        KAFKA_SASL_PASSWORD: broker.users.courier.password,
        KAFKA_SSL_CA_LOCATION: broker.caPem,
      }),
      ...kafka,
    }),
  );
  cleanups.push(() => courier.kill());
  // A failure says what Courier saw: its log (info and up, librdkafka's lines included).
  onTestFailed(() => {
    console.log(
      `[secured] Courier's log:\n${courier.logs
        .filter((line) => line.level >= 30 || String(line.msg).startsWith('librdkafka'))
        .map((line) => `${String(line.time)} ${line.level} ${line.msg}`)
        .join('\n')}`,
    );
  });
  return { topic, dlqTopic: `${topic}.dlq`, groupId, app, courier };
}

/** The ACLs the README lists for Courier: read the topic and group, write the DLQ, idempotent write. */
async function grantCourier(topic: string, groupId: string, options: { dlq?: boolean; principal?: string } = {}) {
  const principal = options.principal ?? 'User:courier';
  await grantAcl(broker, ['--allow-principal', principal, '--consumer', '--topic', topic, '--group', groupId]);
  if (options.dlq !== false) await grantAcl(broker, ['--allow-principal', principal, '--producer', '--idempotent', '--topic', `${topic}.dlq`]);
}

type Reason = { code: string; message: string };
async function readiness(courier: CourierProcess): Promise<Reason[]> {
  return ((await courier.api('/readyz')).body.reasons ?? []) as Reason[];
}

function secretNowhere(courier: CourierProcess, secret: string) {
  expect(courier.dump()).not.toContain(secret);
}

describe('Courier on a secured cluster (SASL_SSL, ACLs; real broker)', () => {
  it('delivers, dead-letters and commits over SCRAM-SHA-512 with the ACLs the README lists, and never prints the password', async () => {
    const { topic, dlqTopic, groupId, app, courier } = await setup();
    await grantCourier(topic, groupId);
    await produce(broker.plaintext, topic, [
      { value: 'one', partition: 0 },
      { value: 'poison', partition: 0 },
      { value: 'three', partition: 0 },
    ]);
    courier.start();
    await waitFor('every record committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 3);
    expect(app.receipts.map((receipt) => receipt.body.toString())).toEqual(['one', 'poison', 'three']);
    const dead = await readAll(broker.plaintext, dlqTopic);
    expect(dead.map((record) => record.value?.toString())).toEqual(['poison']);
    const lag = await courier.api('/v1/lag');
    expect(lag.status).toBe(200);
    secretNowhere(courier, broker.users.courier.password);
    expect(JSON.stringify(lag.body)).not.toContain(broker.users.courier.password);
  });

  it('a wrong password is kafka_auth_failed, with librdkafka’s words and the fix, not "cannot reach"', async () => {
    const wrong = 'not-the-Password-42';
    const { courier } = await setup({ KAFKA_SASL_PASSWORD: wrong });
    courier.start();
    const reason = await waitFor('kafka_auth_failed in /readyz', async () => (await readiness(courier)).find((r) => r.code === 'kafka_auth_failed'), 30_000);
    expect(reason.message).toMatch(/refused the credentials.*Fix: check KAFKA_SASL_USERNAME/);
    expect((await readiness(courier)).map((r) => r.code)).not.toContain('kafka_unreachable');
    expect(courier.hasLog((line) => line.level === 50 && (line.kafka as { code?: string } | undefined)?.code === 'kafka_auth_failed')).toBe(true);
    secretNowhere(courier, wrong);
  });

  it('a CA that did not sign the broker certificate is kafka_tls_failed, naming KAFKA_SSL_CA_LOCATION', async () => {
    const { courier } = await setup({ KAFKA_SSL_CA_LOCATION: broker.otherCaPem });
    courier.start();
    const reason = await waitFor('kafka_tls_failed in /readyz', async () => (await readiness(courier)).find((r) => r.code === 'kafka_tls_failed'), 30_000);
    expect(reason.message).toMatch(/certificate verify failed.*Fix: set KAFKA_SSL_CA_LOCATION/);
  });

  it('a principal without READ on the topic is kafka_not_authorized, naming the topic and the ACL', async () => {
    const { topic, courier } = await setup();
    // DLQ writes allowed, the source topic and group not.
    await grantAcl(broker, ['--allow-principal', 'User:courier', '--producer', '--idempotent', '--topic', `${topic}.dlq`]);
    courier.start();
    const reason = await waitFor(
      'kafka_not_authorized in /readyz',
      async () => (await readiness(courier)).find((r) => r.code === 'kafka_not_authorized'),
      30_000,
    );
    expect(reason.message).toMatch(/not authorized on (topic|group)/);
    expect(reason.message).toMatch(/Fix: grant the principal READ/);
  });

  it('a DLQ producer refused by ACL holds the record, then recovers within 30 s of the grant, without a restart', async () => {
    // A principal of its own: WRITE on any topic implies IDEMPOTENT_WRITE (KIP-679), and the other
    // tests grant User:courier WRITE on their DLQ topics.
    const user = uniqueName('dlq-user');
    const password = `pw-${uniqueName('secret')}`;
    await addScramUser(broker, user, password);
    const { topic, dlqTopic, groupId, courier } = await setup({ KAFKA_SASL_USERNAME: user, KAFKA_SASL_PASSWORD: password });
    await grantCourier(topic, groupId, { dlq: false, principal: `User:${user}` });
    await produce(broker.plaintext, topic, [
      { value: 'poison', partition: 0 },
      { value: 'after', partition: 0 },
    ]);
    courier.start();
    await waitFor(
      'the DLQ write refused',
      async () => (await readiness(courier)).some((r) => r.code === 'dlq_blocked' || r.code === 'kafka_not_authorized'),
      30_000,
    );
    // Nothing is committed past the record that could not be dead-lettered.
    expect((await committedOffsets(broker.plaintext, groupId, topic)).get(0) ?? -1).toBeLessThanOrEqual(0);
    const grantedAt = Date.now();
    await grantAcl(broker, ['--allow-principal', `User:${user}`, '--producer', '--idempotent', '--topic', dlqTopic]);
    await waitFor(
      'the poison record dead-lettered and both committed',
      async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 2,
      60_000,
    );
    console.log(`[secured] DLQ recovered ${((Date.now() - grantedAt) / 1000).toFixed(1)} s after the grant`);
    expect(Date.now() - grantedAt).toBeLessThan(30_000 + 5_000);
    expect((await readAll(broker.plaintext, dlqTopic)).map((record) => record.value?.toString())).toEqual(['poison']);
    // Without IDEMPOTENT_WRITE (or WRITE on any topic) the idempotent producer failed fatally: it was replaced.
    expect(courier.hasLog((line) => line.msg.startsWith('DLQ producer failed fatally'))).toBe(true);
    expect(courier.hasLog((line) => line.msg === 'DLQ producer replaced after a fatal error')).toBe(true);
  });
});

describe('Courier with other authentication (SCRAM-SHA-256, mTLS; real broker)', () => {
  it('delivers and commits over SCRAM-SHA-256', async () => {
    const { topic, groupId, app, courier } = await setup({ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256' });
    await grantCourier(topic, groupId);
    await produce(broker.plaintext, topic, [{ value: 'sha-256', partition: 0 }]);
    courier.start();
    await waitFor('the record committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 1);
    expect(app.receipts.map((receipt) => receipt.body.toString())).toEqual(['sha-256']);
  });

  it('delivers, dead-letters and commits over mTLS as the certificate principal', async () => {
    const { topic, dlqTopic, groupId, app, courier } = await setup(
      {},
      {
        KAFKA_BOOTSTRAP_SERVERS: broker.ssl,
        KAFKA_SECURITY_PROTOCOL: 'SSL',
        KAFKA_SSL_CA_LOCATION: broker.caPem,
        KAFKA_SSL_CERTIFICATE_LOCATION: broker.clientCertPem,
        KAFKA_SSL_KEY_LOCATION: broker.clientKeyPem,
      },
    );
    await grantCourier(topic, groupId, { principal: broker.sslPrincipal });
    await produce(broker.plaintext, topic, [
      { value: 'one', partition: 0 },
      { value: 'poison', partition: 0 },
    ]);
    courier.start();
    await waitFor('both records committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 2);
    expect(app.receipts.map((receipt) => receipt.body.toString())).toEqual(['one', 'poison']);
    expect((await readAll(broker.plaintext, dlqTopic)).map((record) => record.value?.toString())).toEqual(['poison']);
  });
});

describe('Courier over OAUTHBEARER (the broker validates unsecured JWTs; real broker)', () => {
  const tokens = mkdtempSync(join(tmpdir(), 'courier-oauth-'));
  /** Replaces the token file at once, as the kubelet does (a rename: never half a token). */
  function writeToken(path: string, sub: string, lifetimeSeconds: number): number {
    const issuedAt = Math.floor(Date.now() / 1000);
    writeFileSync(`${path}.new`, unsecuredJwt({ sub, lifetimeSeconds, issuedAtSeconds: issuedAt }));
    renameSync(`${path}.new`, path);
    return issuedAt + lifetimeSeconds;
  }
  const OAUTH = (extra: Record<string, string>) => ({
    KAFKA_BOOTSTRAP_SERVERS: broker.oauth,
    KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
    KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
    ...extra,
  });
  async function tokenExpiry(courier: CourierProcess, client: string): Promise<number | undefined> {
    const text = (await courier.api('/metrics')).body as string;
    const found = new RegExp(`courier_kafka_token_expiry_timestamp_seconds\\{client="${client}"\\} (\\d+)`).exec(text);
    return found ? Number(found[1]) : undefined;
  }

  it('COURIER_KAFKA_TOKEN_PROVIDER=file: the token is the broker principal; a stale file is a warning, then kafka_token_failed once the token expired; a fresh file clears it without a restart', async () => {
    const sub = uniqueName('oauth-user');
    const path = join(tokens, `${sub}.jwt`);
    const firstExp = writeToken(path, sub, 20);
    const { topic, groupId, app, courier } = await setup({}, OAUTH({ COURIER_KAFKA_TOKEN_PROVIDER: 'file', COURIER_KAFKA_TOKEN_FILE: path }));
    // Only User:<sub> may read: delivery proves the broker authenticated the token's subject.
    await grantCourier(topic, groupId, { principal: `User:${sub}` });
    await produce(broker.plaintext, topic, [{ value: 'first', partition: 0 }]);
    courier.start();
    await waitFor('the first record committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 1, 30_000);
    expect(await tokenExpiry(courier, 'consumer')).toBe(firstExp);

    // Whatever renews the file stops: librdkafka asks at 80 % of the token's life (16 s) and gets an
    // expired one. While the current token is valid that is a warning, not a readiness reason.
    writeToken(path, sub, -60);
    await waitFor(
      'the warning that the refresh failed',
      () =>
        courier.hasLog(
          (line) => line.level === 40 && String(line.msg).startsWith('consumer: refreshing the OAUTHBEARER token failed; the current one works until'),
        ),
      30_000,
    );
    expect((await readiness(courier)).map((r) => r.code)).not.toContain('kafka_token_failed');
    // Once it expired, the next refresh (every 10 s) makes it one, naming the file and the fix.
    const reason = await waitFor('kafka_token_failed in /readyz', async () => (await readiness(courier)).find((r) => r.code === 'kafka_token_failed'), 30_000);
    expect(reason.message).toMatch(
      new RegExp(
        `^(consumer|DLQ producer|lag reader): no valid OAUTHBEARER token: file: the token in ${path} expired at .*Fix: whatever writes COURIER_KAFKA_TOKEN_FILE`,
      ),
    );

    const secondExp = writeToken(path, sub, 600);
    await waitFor('the consumer holds the fresh token', async () => (await tokenExpiry(courier, 'consumer')) === secondExp, 30_000);
    await waitFor('the DLQ producer holds the fresh token', async () => (await tokenExpiry(courier, 'DLQ producer')) === secondExp, 30_000);
    await waitFor('kafka_token_failed cleared', async () => !(await readiness(courier)).some((r) => r.code === 'kafka_token_failed'), 30_000);
    expect(Date.now() / 1000).toBeGreaterThan(firstExp);
    await produce(broker.plaintext, topic, [{ value: 'after-expiry', partition: 0 }]);
    await waitFor('the later record committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 2, 30_000);
    expect(app.receipts.map((receipt) => receipt.body.toString())).toEqual(['first', 'after-expiry']);
  });

  it('KAFKA_SASL_OAUTHBEARER_METHOD=oidc: Courier gets the token from the endpoint with the client credentials, the broker accepts it, the secret is never printed', async () => {
    const sub = uniqueName('oidc-client');
    const clientSecret = `oidc-${uniqueName('secret')}`;
    const grants: Array<{ authorization: string | undefined; body: string }> = [];
    const endpoint = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        grants.push({ authorization: request.headers.authorization, body });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ access_token: unsecuredJwt({ sub, lifetimeSeconds: 600 }), token_type: 'bearer', expires_in: 600 }));
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => endpoint.close(resolve)));
    const { topic, groupId, app, courier } = await setup(
      {},
      OAUTH({
        KAFKA_SASL_OAUTHBEARER_METHOD: 'oidc',
        KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'courier',
        KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: clientSecret,
        KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/token`,
      }),
    );
    await grantCourier(topic, groupId, { principal: `User:${sub}` });
    await produce(broker.plaintext, topic, [{ value: 'via-oidc', partition: 0 }]);
    courier.start();
    await waitFor('the record committed', async () => (await committedOffsets(broker.plaintext, groupId, topic)).get(0) === 1, 30_000);
    expect(app.receipts.map((receipt) => receipt.body.toString())).toEqual(['via-oidc']);
    expect(grants[0]?.authorization).toBe(`Basic ${Buffer.from(`courier:${clientSecret}`).toString('base64')}`);
    expect(grants[0]?.body).toContain('grant_type=client_credentials');
    secretNowhere(courier, clientSecret);
  });
});
