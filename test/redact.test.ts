import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { createRedactor, isSecretProperty, REDACTED } from '../src/redact.js';

const base = { COURIER_GROUP_ID: 'g', COURIER_TOPICS: 'orders', COURIER_TARGET_URL: 'http://127.0.0.1:3000/x' };

describe('redaction', () => {
  it('replaces every occurrence of every secret, longest first', () => {
    const redact = createRedactor(['s3cret-token', 's3cret-token-and-more', 'abc']);
    expect(redact('a s3cret-token-and-more b s3cret-token c')).toBe(`a ${REDACTED} b ${REDACTED} c`);
    expect(redact('abc stays: too short to be a secret')).toBe('abc stays: too short to be a secret');
  });

  it.each([
    ['sasl.password', true],
    ['ssl.key.password', true],
    ['sasl.oauthbearer.client.secret', true],
    ['ssl.key.pem', true],
    ['bootstrap.servers', false],
    ['sasl.username', false],
  ])('treats librdkafka property %s as secret: %s', (name, secret) => {
    expect(isSecretProperty(name)).toBe(secret);
  });
});

describe('secrets from files (*_FILE)', () => {
  const files: Record<string, string> = { '/run/secrets/app': 'app-token-value\n', '/run/secrets/sasl': 'sasl-pass-value\n' };
  const readFile = (path: string) => {
    const content = files[path];
    if (content === undefined) throw new Error(`ENOENT: no such file ${path}`);
    return content;
  };

  it('reads COURIER_APP_TOKEN_FILE and KAFKA_SASL_PASSWORD_FILE, trimming the final newline, and lists them as secrets', () => {
    const config = loadConfig({ env: { ...base, COURIER_APP_TOKEN_FILE: '/run/secrets/app', KAFKA_SASL_PASSWORD_FILE: '/run/secrets/sasl' }, readFile });
    expect(config.appToken).toBe('app-token-value');
    expect(config.consumer['sasl.password']).toBe('sasl-pass-value');
    expect(config.producer['sasl.password']).toBe('sasl-pass-value');
    expect(config.secrets).toEqual(expect.arrayContaining(['app-token-value', 'sasl-pass-value']));
    expect(config.warnings).toEqual([]);
  });

  it('reports a missing file and a variable set both ways, together', () => {
    expect(() =>
      loadConfig({
        env: { ...base, COURIER_ADMIN_TOKEN_FILE: '/run/secrets/missing', COURIER_APP_TOKEN: 'x', COURIER_APP_TOKEN_FILE: '/run/secrets/app' },
        readFile,
      }),
    ).toThrow(
      expect.objectContaining({
        problems: [expect.objectContaining({ setting: 'COURIER_ADMIN_TOKEN_FILE' }), expect.objectContaining({ setting: 'COURIER_APP_TOKEN_FILE' })],
      }),
    );
  });
});
