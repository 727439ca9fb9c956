import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BASE, load, problemsOf, reader } from './helpers.js';

// A throwaway self-signed certificate (no key in the repository): a CA file that parses.
const CA = readFileSync(new URL('./fixtures/throwaway-ca.pem', import.meta.url), 'utf8');
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

describe('loadConfig: security settings that can never work exit 78 with their fix', () => {
  it('accepts readable PEM files, a known mechanism and protocol', () => {
    const files = reader({ '/etc/kafka/ca.pem': CA, '/etc/kafka/client.pem': CA, '/etc/kafka/client.key': KEY });
    const config = load(
      {
        ...BASE,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SSL_CA_LOCATION: '/etc/kafka/ca.pem',
        KAFKA_SSL_CERTIFICATE_LOCATION: '/etc/kafka/client.pem',
        KAFKA_SSL_KEY_LOCATION: '/etc/kafka/client.key',
      },
      files,
    );
    expect(config.consumer['ssl.ca.location']).toBe('/etc/kafka/ca.pem');
  });

  it('lists every problem at once: missing CA file, a key file without a key, a misspelt mechanism, an unknown protocol', () => {
    const problems = problemsOf(
      {
        ...BASE,
        KAFKA_SECURITY_PROTOCOL: 'SASL-SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA512',
        KAFKA_SSL_CA_LOCATION: '/etc/kafka/missing.pem',
        KAFKA_SSL_KEY_LOCATION: '/etc/kafka/client.key',
      },
      reader({ '/etc/kafka/client.key': CA }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        {
          setting: 'KAFKA_SECURITY_PROTOCOL',
          problem: '"SASL-SSL" is not a security protocol librdkafka knows',
          fix: 'use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL',
        },
        { setting: 'KAFKA_SASL_MECHANISM', problem: '"SCRAM-SHA512" is not a SASL mechanism librdkafka supports', fix: 'write SCRAM-SHA-512' },
        {
          setting: 'KAFKA_SSL_CA_LOCATION',
          problem: 'the file /etc/kafka/missing.pem does not exist',
          fix: 'mount the certificate file there, or fix the path',
        },
        {
          setting: 'KAFKA_SSL_KEY_LOCATION',
          problem: 'the file /etc/kafka/client.key holds no PEM private key (-----BEGIN PRIVATE KEY-----)',
          fix: 'point ssl.key.location at a PEM file with the private key',
        },
      ]),
    );
  });

  it('says what a certificate file that does not parse is', () => {
    const broken = CA.replace(/^(-----BEGIN CERTIFICATE-----\n)\S+/m, '$1AAAA');
    const problems = problemsOf({ ...BASE, KAFKA_SSL_CA_LOCATION: '/ca.pem' }, reader({ '/ca.pem': broken }));
    expect(problems).toContainEqual(
      expect.objectContaining({ setting: 'KAFKA_SSL_CA_LOCATION', problem: 'the file /ca.pem holds a certificate that does not parse' }),
    );
  });

  it("answers a Java client's sasl.jaas.config with librdkafka's settings, without quoting the password", () => {
    const jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="courier" password="s3cr3t-Pa55";';
    const problems = problemsOf({ ...BASE, KAFKA_SASL_JAAS_CONFIG: jaas });
    const problem = problems.find((p) => p.setting === 'KAFKA_SASL_JAAS_CONFIG');
    expect(problem?.fix).toMatch(/set KAFKA_SASL_USERNAME=courier and KAFKA_SASL_PASSWORD/);
    expect(JSON.stringify(problems)).not.toContain('s3cr3t-Pa55');
  });
});
