import { X509Certificate } from 'node:crypto';
import type { Report } from './kinds.js';

/** librdkafka's SASL mechanisms (CONFIGURATION.md, `sasl.mechanisms`). */
const SASL_MECHANISMS = ['GSSAPI', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'];
const SECURITY_PROTOCOLS = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'];

/** PEM files librdkafka reads at start: a missing or unreadable one is retried for ever, never fixed. */
const PEM_FILES: ReadonlyArray<{ property: string; holds: 'certificate' | 'key' }> = [
  { property: 'ssl.ca.location', holds: 'certificate' },
  { property: 'ssl.certificate.location', holds: 'certificate' },
  { property: 'ssl.key.location', holds: 'key' },
];

/**
 * What can be checked about security settings without a broker, so configuration that can never
 * work exits 78 with its fix instead of being retried for ever: the SASL mechanism and security
 * protocol are ones librdkafka knows, the PEM files exist and hold what their property needs, and
 * a Java client's `sasl.jaas.config` is answered with librdkafka's equivalent.
 */
export function checkSecurity(
  properties: Readonly<Record<string, string>>,
  setBy: Readonly<Record<string, string>>,
  readFile: (path: string) => string,
  report: Report,
): void {
  const where = (property: string) => setBy[property] ?? `kafka.${property}`;

  const protocol = properties['security.protocol'];
  if (protocol !== undefined && !SECURITY_PROTOCOLS.includes(protocol.toLowerCase())) {
    report(where('security.protocol'), `"${protocol}" is not a security protocol librdkafka knows`, 'use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL');
  }

  for (const property of ['sasl.mechanism', 'sasl.mechanisms']) {
    const mechanism = properties[property];
    if (mechanism === undefined || SASL_MECHANISMS.includes(mechanism)) continue;
    const close = SASL_MECHANISMS.find((known) => known.replace(/-/g, '') === mechanism.toUpperCase().replace(/[-_]/g, ''));
    report(
      where(property),
      `"${mechanism}" is not a SASL mechanism librdkafka supports`,
      close ? `write ${close}` : `use one of ${SASL_MECHANISMS.join(', ')}`,
    );
  }

  const jaas = properties['sasl.jaas.config'];
  if (jaas !== undefined) {
    // Never quote the value: it holds a password.
    const username = /username\s*=\s*"([^"]*)"/.exec(jaas)?.[1];
    const fix = /OAuthBearerLoginModule/.test(jaas)
      ? 'remove it and set KAFKA_SASL_MECHANISM=OAUTHBEARER with KAFKA_SASL_OAUTHBEARER_METHOD=oidc, KAFKA_SASL_OAUTHBEARER_CLIENT_ID, KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET and KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL'
      : `remove it and set KAFKA_SASL_USERNAME${username ? `=${username}` : ''} and KAFKA_SASL_PASSWORD (librdkafka's names for the JAAS login module's username and password), with KAFKA_SASL_MECHANISM`;
    report(where('sasl.jaas.config'), 'is a Java client setting librdkafka does not read', fix);
  }

  for (const { property, holds } of PEM_FILES) {
    const path = properties[property];
    if (path === undefined || path === 'probe') continue; // `probe`: librdkafka searches the system's CA locations
    let text: string;
    try {
      text = readFile(path);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
      report(where(property), `the file ${path} ${reason}`, `mount the ${holds === 'key' ? 'private key' : 'certificate'} file there, or fix the path`);
      continue;
    }
    const problem = holds === 'key' ? keyProblem(text) : certificateProblem(text);
    if (problem)
      report(where(property), `the file ${path} ${problem}`, `point ${property} at a PEM file with the ${holds === 'key' ? 'private key' : 'certificate(s)'}`);
  }
}

function certificateProblem(text: string): string | undefined {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return 'holds a certificate that does not parse';
    }
  }
  return undefined;
}

function keyProblem(text: string): string | undefined {
  return /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(text) ? undefined : 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)';
}
