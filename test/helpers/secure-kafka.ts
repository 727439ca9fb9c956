import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * A secured single-node broker for integration tests (scripts/kafka.sh start --secure): SASL_SSL with
 * SCRAM, mTLS, OAUTHBEARER with unsecured JWTs, and ACLs, next to a PLAINTEXT listener whose
 * principal (User:ANONYMOUS) is a super user, for setup: topics, ACLs, reading back.
 */

const root = resolve(import.meta.dirname, '../..');

/** The broker's secure.json (`scripts/kafka.sh secure-info --name NAME`). */
export interface SecureBrokerInfo {
  name: string;
  /** host:port of each listener. */
  plaintext: string;
  saslSsl: string;
  ssl: string;
  oauth: string;
  /** Absolute PEM paths: the CA that signed the broker and client certificates, and an unrelated CA. */
  caPem: string;
  otherCaPem: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** The principal of the client certificate on the SSL listener, e.g. User:courier-client. */
  sslPrincipal: string;
  saslMechanisms: Array<'SCRAM-SHA-512' | 'SCRAM-SHA-256'>;
  /** SCRAM users (both mechanisms): courier (no ACLs until granted) and admin (a super user). */
  users: Record<'courier' | 'admin', { password: string }>;
  oauthListenerProtocol: 'SASL_PLAINTEXT';
}

/** Runs scripts/kafka.sh; resolves with its stdout, rejects with its stderr. */
function kafkaSh(args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', ['scripts/kafka.sh', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolvePromise(stdout) : reject(new Error(`scripts/kafka.sh ${args.join(' ')} exited with ${code}:\n${stderr}${stdout}`)),
    );
  });
}

export async function startSecureBroker(name: string): Promise<SecureBrokerInfo> {
  await kafkaSh(['start', '--name', name, '--secure']);
  return JSON.parse(await kafkaSh(['secure-info', '--name', name])) as SecureBrokerInfo;
}

export async function stopSecureBroker(name: string): Promise<void> {
  await kafkaSh(['stop', '--name', name]);
}

/**
 * Adds ACLs with Kafka's AclCommand over the PLAINTEXT listener: `args` are its options after `--add`,
 * e.g. ['--allow-principal', 'User:courier', '--operation', 'Read', '--topic', 'orders'] or the
 * shorthands ['--allow-principal', P, '--producer', '--consumer', '--idempotent', '--topic', T, '--group', G].
 * Each call starts a JVM (about 2 s): put several principals, topics and groups in one call.
 */
export async function grantAcl(info: SecureBrokerInfo, args: string[]): Promise<void> {
  await kafkaSh(['acls', '--name', info.name, '--add', ...args]);
}

/** Adds a SCRAM user (both mechanisms) with no ACLs: a principal nothing was granted to yet. */
export async function addScramUser(info: SecureBrokerInfo, user: string, password: string): Promise<void> {
  await kafkaSh(['scram', '--name', info.name, '--user', user, '--password', password]);
}

/** librdkafka properties for SCRAM over the SASL_SSL listener (user courier unless told). */
export function scramProperties(
  info: SecureBrokerInfo,
  mechanism: 'SCRAM-SHA-512' | 'SCRAM-SHA-256',
  user: { username: string; password: string } = { username: 'courier', password: info.users.courier.password },
): Record<string, string> {
  return {
    'bootstrap.servers': info.saslSsl,
    'security.protocol': 'sasl_ssl',
    'sasl.mechanisms': mechanism,
    'sasl.username': user.username,
    'sasl.password': user.password,
    'ssl.ca.location': info.caPem,
  };
}

/** librdkafka properties for mTLS over the SSL listener with the generated client certificate. */
export function mtlsProperties(info: SecureBrokerInfo): Record<string, string> {
  return {
    'bootstrap.servers': info.ssl,
    'security.protocol': 'ssl',
    'ssl.ca.location': info.caPem,
    'ssl.certificate.location': info.clientCertPem,
    'ssl.key.location': info.clientKeyPem,
  };
}

/** librdkafka properties for OAUTHBEARER on the OAUTH listener; add an `oauthbearer_token_refresh_cb`. */
export function oauthProperties(info: SecureBrokerInfo): Record<string, string> {
  return { 'bootstrap.servers': info.oauth, 'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'OAUTHBEARER' };
}

/**
 * An unsigned JWT (`alg: none`) as Kafka's unsecured OAUTHBEARER validator accepts it: `sub` becomes
 * the principal User:<sub>. `issuedAtSeconds` defaults to now (whole seconds, as JWTs count).
 */
export function unsecuredJwt({ sub, lifetimeSeconds, issuedAtSeconds }: { sub: string; lifetimeSeconds: number; issuedAtSeconds?: number }): string {
  const iat = issuedAtSeconds ?? Math.floor(Date.now() / 1000);
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  // An unsecured JWS has an empty signature: header.payload.
  return `${part({ alg: 'none' })}.${part({ sub, iat, exp: iat + lifetimeSeconds })}.`;
}

/**
 * What an `oauthbearer_token_refresh_cb` resolves with: an unsecured JWT for `sub` valid for
 * `lifetimeSeconds`, and the `lifetime` librdkafka is told (ms since the epoch): the JWT's `exp`, or
 * `refreshAfterMs` from now when given. librdkafka refreshes at 80 % of `lifetime` (checked by a 1 s
 * timer) and re-authenticates at 90 % of the session the broker grants, which ends at `exp`, with
 * the token it has then. Under about 10 s the 10 % between the two is less than that timer's second:
 * re-authenticating with the old token, the client is disconnected once. A test of quick refreshes
 * therefore tells librdkafka a short lifetime for a token that lives longer.
 */
export function oauthBearerToken({ sub, lifetimeSeconds, refreshAfterMs }: { sub: string; lifetimeSeconds: number; refreshAfterMs?: number }): {
  tokenValue: string;
  lifetime: number;
  principal: string;
  /** The JWT's `exp` in ms (librdkafka ignores this field). */
  expiresAtMs: number;
} {
  const iat = Math.floor(Date.now() / 1000);
  const expiresAtMs = (iat + lifetimeSeconds) * 1000;
  const lifetime = refreshAfterMs === undefined ? expiresAtMs : Date.now() + refreshAfterMs;
  return { tokenValue: unsecuredJwt({ sub, lifetimeSeconds, issuedAtSeconds: iat }), lifetime, principal: sub, expiresAtMs };
}
