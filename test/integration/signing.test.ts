import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, inject, it } from 'vitest';
import type { Receipt } from '../helpers/app.js';
import { produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const secretOf = (key: Buffer) => `whsec_${key.toString('base64')}`;

function verifies(secret: string, receipt: Receipt): boolean {
  const headers = Object.fromEntries(Object.entries(receipt.headers).map(([name, value]) => [name, String(value)]));
  try {
    new Webhook(secret).verify(receipt.body.toString('utf8'), headers);
    return true;
  } catch {
    return false;
  }
}

describe('signed pushes (Standard Webhooks) against a real broker', () => {
  it('verify with the standardwebhooks library on either side of a rotation, with the app token sent', async () => {
    const next = secretOf(randomBytes(32));
    const previous = secretOf(randomBytes(32));
    // The app still holds the previous secret while Courier already lists the next one first.
    let verified = 0;
    const { topic, courier, committedAtEnd } = await scenario({
      partitions: 2,
      env: { COURIER_SIGNING_SECRET: `${next} ${previous}`, COURIER_APP_TOKEN: 'app-token-1' },
      handler: (receipt) => {
        if (!verifies(previous, receipt) || !verifies(next, receipt) || receipt.headers.authorization !== 'Bearer app-token-1') return { status: 401 };
        verified++;
        return { status: 200 };
      },
    });
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }), partition: i % 2 })),
    );
    courier().start();
    await waitFor('all committed', committedAtEnd);
    expect(verified).toBe(20);
  });

  it('an app that refuses Courier (401) holds the records and says app_refused; nothing is dead-lettered; fixed, they flow', async () => {
    const courierSecret = secretOf(randomBytes(32));
    let appSecret = secretOf(randomBytes(32)); // misconfigured: not Courier's
    const { topic, dlqTopic, app, courier, committed, committedAtEnd } = await scenario({
      partitions: 1,
      env: { COURIER_SIGNING_SECRET: courierSecret, COURIER_MAX_ATTEMPTS: '2' },
      handler: (receipt) => ({ status: verifies(appSecret, receipt) ? 200 : 401 }),
    });
    // JSON bodies: the library's verify() also parses the payload.
    await produce(bootstrap, topic, [{ value: '{"a":1}' }, { value: '{"b":2}' }]);
    const instance = courier().start();
    const refused = await waitFor('readyz app_refused', async () => {
      const answer = await instance.api('/readyz');
      return answer.body.reasons?.some((r: { code: string }) => r.code === 'app_refused') ? answer : undefined;
    });
    expect(refused.status).toBe(503);
    await waitFor('several refused pushes (more than COURIER_MAX_ATTEMPTS)', () => app.receipts.length >= 4);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
    expect([...(await committed()).values()].every((offset) => offset <= 0)).toBe(true);
    const metrics = await fetch(`${await instance.apiUrl()}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/^courier_app_refused 1$/m);

    appSecret = courierSecret; // the operator fixes the app's secret
    await waitFor('all committed', committedAtEnd);
    await waitFor('ready again', async () => (await instance.api('/readyz')).status === 200);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
  });
});
