import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KafkaConditions } from '../../src/kafka/conditions.js';
import { FileTokenProvider, jwtClaims, type KafkaToken, KafkaTokens } from '../../src/kafka/token.js';

function jwt(claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('jwtClaims', () => {
  it('reads exp and sub from the payload without verifying the signature', () => {
    expect(jwtClaims(jwt({ sub: 'courier', exp: 1_800_000_000 }))).toEqual({ sub: 'courier', exp: 1_800_000_000 });
    expect(jwtClaims(jwt({ exp: 5 }))).toEqual({ exp: 5 });
  });
  it.each([['not-a-jwt'], [jwt({ sub: 'no-exp' })], [jwt({ exp: '1800000000' })], ['a.!!!.c']])('refuses %s', (token) => {
    expect(jwtClaims(token)).toBeUndefined();
  });
});

describe('FileTokenProvider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'courier-token-'));

  it('reads the file at every call: a rotated token is the next one handed out', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, `${jwt({ sub: 'one', exp: 1_900_000_000 })}\n`);
    const provider = new FileTokenProvider(path);
    await expect(provider.token()).resolves.toEqual({ value: jwt({ sub: 'one', exp: 1_900_000_000 }), expiresAtMs: 1_900_000_000_000, principal: 'one' });
    writeFileSync(path, jwt({ sub: 'two', exp: 1_900_000_600 }));
    await expect(provider.token()).resolves.toMatchObject({ principal: 'two', expiresAtMs: 1_900_000_600_000 });
  });

  it('says what is wrong with the file, and how to fix it', async () => {
    const missing = (await new FileTokenProvider(join(dir, 'absent')).token().catch((error: unknown) => error)) as Error & { fix: string };
    expect(missing.message).toBe(`cannot read ${join(dir, 'absent')}: ENOENT`);
    expect(missing.fix).toContain('COURIER_KAFKA_TOKEN_FILE');
    const path = join(dir, 'opaque');
    writeFileSync(path, 'opaque-token');
    await expect(new FileTokenProvider(path).token()).rejects.toThrow(`${path} does not hold a JWT with a numeric exp claim`);
  });

  it('an expired token in the file is refused, naming the file and who should have renewed it', async () => {
    const path = join(dir, 'expired');
    writeFileSync(path, jwt({ sub: 'late', exp: 1_700_000_000 }));
    const error = (await new FileTokenProvider(path, () => 1_700_000_000_001).token().catch((e: unknown) => e)) as Error & { fix: string };
    expect(error.message).toBe(`the token in ${path} expired at 2023-11-14T22:13:20.000Z`);
    expect(error.fix).toContain('the kubelet, for a projected serviceAccountToken');
  });
});

describe('KafkaTokens', () => {
  const NOW = 1_800_000_000_000;

  function setup(tokens: Array<KafkaToken | Error>) {
    const { logger, lines } = logCapture();
    let now = NOW;
    const conditions = new KafkaConditions(logger, 'kafka:9098', () => now);
    const obtained: Array<[string, number]> = [];
    const kafkaTokens = new KafkaTokens(
      {
        name: 'test-provider',
        token: async () => {
          const next = tokens.shift();
          if (!next || next instanceof Error) throw next ?? new Error('no more tokens');
          return next;
        },
      },
      { logger, conditions, onToken: (client, token) => obtained.push([client, token.expiresAtMs]), now: () => now },
    );
    return { kafkaTokens, conditions, lines, obtained, advance: (ms: number) => (now += ms) };
  }

  it('hands librdkafka the token, its lifetime in ms and its principal, and reports each one for the gauge', async () => {
    const { kafkaTokens, obtained } = setup([{ value: 'v1', expiresAtMs: NOW + 60_000, principal: 'p', extensions: { traceId: 'abc' } }]);
    await expect(kafkaTokens.callbackFor('consumer')('')).resolves.toEqual({
      tokenValue: 'v1',
      lifetime: NOW + 60_000,
      principal: 'p',
      extensions: { traceId: 'abc' },
    });
    expect(obtained).toEqual([['consumer', NOW + 60_000]]);
  });

  it('a client with no valid token is not ready, named with the provider, the cause and its fix; the next token clears it', async () => {
    const { kafkaTokens, conditions, lines } = setup([
      Object.assign(new Error('STS refused AssumeRoleWithWebIdentity for arn:r: AccessDenied'), { fix: 'check the trust policy' }),
      { value: 'v', expiresAtMs: NOW + 60_000, principal: '' },
    ]);
    const refresh = kafkaTokens.callbackFor('DLQ producer');
    await expect(refresh('')).rejects.toThrow('AccessDenied');
    expect(conditions.reasons()).toEqual([
      {
        code: 'kafka_token_failed',
        message:
          'DLQ producer: no valid OAUTHBEARER token: test-provider: STS refused AssumeRoleWithWebIdentity for arn:r: AccessDenied. Fix: check the trust policy',
      },
    ]);
    expect(lines.some((line) => line.level === 50 && String(line.msg).startsWith('DLQ producer: no valid OAUTHBEARER token'))).toBe(true);
    await refresh('');
    expect(conditions.reasons()).toEqual([]);
  });

  it('a failed refresh while the current token is valid is a warning, not a readiness reason; once it expired it is one', async () => {
    const { kafkaTokens, conditions, lines, advance } = setup([
      { value: 'v', expiresAtMs: NOW + 60_000, principal: '' },
      new Error('agent down'),
      new Error('agent still down'),
    ]);
    const refresh = kafkaTokens.callbackFor('consumer');
    await refresh('');
    advance(48_000); // librdkafka refreshes at 80 % of the lifetime
    await expect(refresh('')).rejects.toThrow('agent down');
    expect(conditions.reasons()).toEqual([]);
    const warning = lines.find((line) => line.level === 40);
    expect(warning?.msg).toBe(
      `consumer: refreshing the OAUTHBEARER token failed; the current one works until ${new Date(NOW + 60_000).toISOString()} and librdkafka asks again in 10 s`,
    );
    advance(13_000);
    await expect(refresh('')).rejects.toThrow('agent still down');
    expect(conditions.reasons().map((reason) => reason.code)).toEqual(['kafka_token_failed']);
  });

  it('refuses a token that has already expired, so librdkafka is never handed one', async () => {
    const { kafkaTokens, conditions } = setup([{ value: 'old', expiresAtMs: NOW - 1, principal: '' }]);
    await expect(kafkaTokens.callbackFor('consumer')('')).rejects.toThrow(`the test-provider token expired at ${new Date(NOW - 1).toISOString()}`);
    expect(conditions.reasons()[0]?.code).toBe('kafka_token_failed');
  });
});
