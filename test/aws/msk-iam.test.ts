import { describe, expect, it } from 'vitest';
import { MSK_TOKEN_SECONDS, MskIamTokenProvider, mskIamToken, regionOfMskBootstrap } from '../../src/aws/msk-iam.js';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SIGNED_AT = Date.parse('2026-11-30T04:05:06Z');

/*
 * The expected tokens were made by AWS's own signer, aws-msk-iam-sasl-signer-python 1.0.2 (botocore
 * 1.44.8), with the same credentials, region and time and the user agent "courier/test":
 *   MSKAuthTokenProvider.__construct_auth_token("eu-west-1", Credentials(key, secret[, token]))
 * with botocore.auth.get_current_datetime fixed to 2026-11-30T04:05:06Z.
 */
const PYTHON_SIGNER_TOKEN_WITH_SESSION =
  'aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI2MTEzMCUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEzMFQwNDA1MDZaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TZWN1cml0eS1Ub2tlbj1zZXNzaW9uJTJGdG9rZW4lMkJ3aXRoJTNEY2hhcnMmWC1BbXotU2lnbmF0dXJlPTlmNGRkMWE2YTNjZWZhY2UwN2UxNjQ1NDY5MzM4ODY5Y2IyODgwM2M4MTQ5ODVmOTE3YmM2ODMwODBhZmNiZmQmVXNlci1BZ2VudD1jb3VyaWVyJTJGdGVzdA';
const PYTHON_SIGNER_TOKEN_LONG_LIVED =
  'aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI2MTEzMCUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEzMFQwNDA1MDZaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9NzkwN2NhNGIzOTQ2ZGNiY2VjM2FhOWIyODc1MGFhNzNmZGQ4Mzg1ZDE4NjJmZTcxMzNmZWJiYmQzOTYwODJjNCZVc2VyLUFnZW50PWNvdXJpZXIlMkZ0ZXN0';

describe('mskIamToken', () => {
  it("is, byte for byte, the token AWS's signer makes from temporary credentials", () => {
    const token = mskIamToken({ ...CREDENTIALS, sessionToken: 'session/token+with=chars' }, 'eu-west-1', SIGNED_AT, 'courier/test');
    expect(token.value).toBe(PYTHON_SIGNER_TOKEN_WITH_SESSION);
    expect(token.url).toBe(
      'https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261130T040506Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=session%2Ftoken%2Bwith%3Dchars&X-Amz-Signature=9f4dd1a6a3ceface07e1645469338869cb28803c814985f917bc683080afcbfd&User-Agent=courier%2Ftest',
    );
  });

  it("is, byte for byte, the token AWS's signer makes from long-lived keys", () => {
    expect(mskIamToken(CREDENTIALS, 'eu-west-1', SIGNED_AT, 'courier/test').value).toBe(PYTHON_SIGNER_TOKEN_LONG_LIVED);
  });

  it('is base64url without padding, and expires 15 minutes after its signing second', () => {
    const token = mskIamToken(CREDENTIALS, 'us-east-1', SIGNED_AT + 999, 'courier/test');
    expect(token.value).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(token.value, 'base64url').toString('utf8')).toBe(token.url);
    expect(token.expiresAtMs).toBe(SIGNED_AT + MSK_TOKEN_SECONDS * 1000);
    expect(new URL(token.url).hostname).toBe('kafka.us-east-1.amazonaws.com');
  });

  it('expires with the credentials that signed it when they expire first', () => {
    const expiresAtMs = SIGNED_AT + 60_000;
    expect(mskIamToken({ ...CREDENTIALS, sessionToken: 't', expiresAtMs }, 'us-east-1', SIGNED_AT, 'x').expiresAtMs).toBe(expiresAtMs);
  });
});

describe('MskIamTokenProvider', () => {
  it('signs each token with the credentials of the moment', async () => {
    const issued = [
      { ...CREDENTIALS, sessionToken: 'first' },
      { ...CREDENTIALS, sessionToken: 'second' },
    ];
    const provider = new MskIamTokenProvider({ credentials: async () => issued.shift() ?? CREDENTIALS }, 'eu-west-1', 'courier/test', () => SIGNED_AT);
    const first = await provider.token();
    const second = await provider.token();
    expect(new URL(Buffer.from(first.value, 'base64url').toString()).searchParams.get('X-Amz-Security-Token')).toBe('first');
    expect(new URL(Buffer.from(second.value, 'base64url').toString()).searchParams.get('X-Amz-Security-Token')).toBe('second');
    expect(first.expiresAtMs).toBe(SIGNED_AT + 900_000);
  });
});

describe('regionOfMskBootstrap', () => {
  it.each([
    ['b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098', 'eu-west-1'],
    ['boot-abc.c1.kafka-serverless.us-east-2.amazonaws.com:9098', 'us-east-2'],
    ['b-1.x.y.c3.kafka.cn-north-1.amazonaws.com.cn:9098', 'cn-north-1'],
    ['kafka:9092', undefined],
    ['b-1.kafka.example.com:9098', undefined],
  ])('%s → %s', (bootstrap, region) => {
    expect(regionOfMskBootstrap(bootstrap)).toBe(region);
  });
});
