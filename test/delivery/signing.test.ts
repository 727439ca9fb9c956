import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { attemptHeaders, type PushSettings, preparePush } from '../../src/delivery/push.js';
import type { KafkaRecord } from '../../src/record.js';

// Courier's signatures checked by an independent verifier: the `standardwebhooks` package.

const secret = (bytes: Buffer) => `whsec_${bytes.toString('base64')}`;
const record: KafkaRecord = { topic: 'orders', partition: 1, offset: 7, timestamp: 0, key: null, value: Buffer.from('{"id":1}'), headers: [], fetchedAt: 0 };

function signedPush(keys: Buffer[], body: Buffer | null = record.value, nowSeconds = Math.floor(Date.now() / 1000)) {
  const settings: PushSettings = { signingKeys: keys };
  const headers = attemptHeaders(preparePush(record, settings), body, 1, settings, nowSeconds);
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));
}

describe('Standard Webhooks signatures', () => {
  const key = randomBytes(32);

  it('verify with the standardwebhooks library', () => {
    const headers = signedPush([key]);
    expect(new Webhook(secret(key)).verify(String(record.value), headers)).toEqual({ id: 1 });
  });

  it('fail for a tampered body', () => {
    const headers = signedPush([key]);
    expect(() => new Webhook(secret(key)).verify('{"id":2}', headers)).toThrow();
  });

  it('fail for a timestamp older than the tolerance', () => {
    const headers = signedPush([key], record.value, Math.floor(Date.now() / 1000) - 3600);
    expect(() => new Webhook(secret(key)).verify(String(record.value), headers)).toThrow(/timestamp/i);
  });

  it('fail with another secret', () => {
    expect(() => new Webhook(secret(randomBytes(32))).verify(String(record.value), signedPush([key]))).toThrow();
  });

  it('verify with either key while two are configured (rotation)', () => {
    const next = randomBytes(32);
    const headers = signedPush([next, key]);
    expect(new Webhook(secret(next)).verify(String(record.value), headers)).toEqual({ id: 1 });
    expect(new Webhook(secret(key)).verify(String(record.value), headers)).toEqual({ id: 1 });
  });

  it('keep webhook-id stable across attempts (the idempotency key)', () => {
    const settings: PushSettings = { signingKeys: [key] };
    const prepared = preparePush(record, settings);
    const ids = [1, 2, 3].map((attempt) => attemptHeaders(prepared, record.value, attempt, settings, 100)['webhook-id']);
    expect(new Set(ids)).toEqual(new Set(['orders-1-7']));
  });
});
