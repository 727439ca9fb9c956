import { describe, expect, inject, it } from 'vitest';
import type { Answer, Receipt } from '../helpers/app.js';
import { headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

/**
 * DESIGN A2 v2 on the real broker: answers that say something about the app (overload, outage,
 * wrong URL) never cost a healthy record its place outside the DLQ; answers about one record still do.
 */
const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

/** Courier's own defaults for attempts and backoff (courierEnv makes them fast for other tests). */
const DEFAULT_RETRY = { COURIER_RETRY_INITIAL_MS: '1000', COURIER_RETRY_MAX_MS: '20000' };

const records = (count: number, prefix = 'r') => Array.from({ length: count }, (_, i) => ({ key: `${prefix}${i}`, value: `${prefix}-${i}` }));
const keyOf = (r: Receipt) => String(r.headers['kafka-key']);
const deliveredKeys = (receipts: readonly Receipt[]) => new Set(receipts.filter((r) => r.answer && r.answer.status >= 200 && r.answer.status < 300).map(keyOf));

describe('overload: 429 with Retry-After', () => {
  it('waits at least Retry-After, never dead-letters, and the concurrency limit falls then recovers', async () => {
    const started = Date.now();
    let requests = 0;
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 4,
      // For 20 s, every other request is refused as overload; then everything is accepted.
      handler: (): Answer => (Date.now() - started < 20_000 && requests++ % 2 === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 }),
      env: { COURIER_ORDERING: 'unordered', COURIER_MAX_IN_FLIGHT: '32' },
    });
    await produce(bootstrap, topic, records(400));
    const c = await courier().start().ready();
    // After the overload window, more work: the limit grows back only as records succeed.
    const more = new Promise((resolve) => setTimeout(resolve, 21_000)).then(() => produce(bootstrap, topic, records(400, 'late')));
    const limits: number[] = [];
    const sampler = setInterval(async () => {
      const { body } = await c.api('/v1/assignment').catch(() => ({ body: undefined }));
      const limit = body?.routes?.[0]?.concurrencyLimit;
      if (typeof limit === 'number') limits.push(limit);
    }, 200);
    try {
      await more;
      await waitFor('every record delivered and committed', committedAtEnd, 90_000);
    } finally {
      clearInterval(sampler);
    }
    expect(deliveredKeys(app.receipts).size).toBe(800);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
    // Waits: a record refused at t is not pushed again before t + 2 s.
    const byKey = new Map<string, Receipt[]>();
    for (const r of app.receipts) byKey.set(keyOf(r), [...(byKey.get(keyOf(r)) ?? []), r]);
    let refusedAndRetried = 0;
    for (const pushes of byKey.values()) {
      for (let i = 1; i < pushes.length; i++) {
        const previous = pushes[i - 1] as Receipt;
        if (previous.answer?.status !== 429) continue;
        refusedAndRetried++;
        expect((pushes[i] as Receipt).at - (previous.answeredAt ?? previous.at)).toBeGreaterThanOrEqual(1_900);
      }
    }
    expect(refusedAndRetried).toBeGreaterThan(50);
    const lowest = Math.min(...limits);
    expect(lowest).toBeLessThan(32);
    expect(Math.max(...limits.slice(limits.lastIndexOf(lowest)))).toBeGreaterThan(lowest);
    const metrics = await fetch(`${await c.apiUrl()}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(new RegExp(`courier_overload_total\\{topic="${topic}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`courier_route_concurrency_limit\\{topic="${topic}"\\} \\d+`));
  }, 150_000);
});

describe('misroute: a wrong path, a redirect, a content type the app refuses', () => {
  it.each<[string, Answer]>([
    ['404 to everything (wrong path)', { status: 404, body: 'Cannot POST /events' }],
    ['307 to a trailing slash', { status: 307, headers: { location: '/events/' } }],
    ['415 (unexpected content type)', { status: 415 }],
  ])('%s: held with app_misrouted, nothing dead-lettered, nothing committed', async (_what, answer) => {
    const { topic, dlqTopic, app, courier, committed } = await scenario({ partitions: 2, handler: () => answer });
    await produce(bootstrap, topic, records(20));
    const c = await courier().start().ready();
    const readiness = await waitFor('readyz app_misrouted', async () => {
      const { status, body } = await c.api('/readyz');
      return status === 503 && body.reasons.find((r: { code: string }) => r.code === 'app_misrouted');
    });
    expect(readiness.message).toContain(`HTTP ${answer.status}`);
    if (answer.headers?.location) expect(readiness.message).toContain('/events/');
    const route = (await c.api('/v1/assignment')).body.routes[0];
    expect(route).toMatchObject({ state: 'app_misrouted', status: answer.status, concurrencyLimit: 1 });
    // Held: a probe at a time, never following the redirect, never the DLQ.
    await waitFor('a few probes', () => app.receipts.length >= 3);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
    expect([...(await committed()).values()].every((offset) => offset <= 0)).toBe(true);
    expect(app.receipts.every((r) => r.headers['kafka-topic'] === topic)).toBe(true);
  });

  it('while the rest succeed, 1 record in 100 answered 404 goes to the DLQ with the app’s answer', async () => {
    const gone = new Set(['r17', 'r58', 'r91']);
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 2,
      handler: (r) =>
        gone.has(keyOf(r)) ? { status: 404, headers: { 'content-type': 'application/json' }, body: '{"error":"no such order"}' } : { status: 200 },
      env: { COURIER_ORDERING: 'unordered' },
    });
    await produce(bootstrap, topic, records(100));
    await courier().start().ready();
    // "While the rest succeed": a 404 is the record's own only once another record succeeded after it
    // (DESIGN A2). A 404 answered after every other record was would be a misroute, so records keep
    // coming until the three are dead-lettered, whatever order the 100 are answered in.
    let ticks = 0;
    const ticking = setInterval(() => void produce(bootstrap, topic, records(1, `tick${ticks++}-`)).catch(() => undefined), 250);
    try {
      await waitFor('the three 404s dead-lettered', async () => (await readAll(bootstrap, dlqTopic)).length >= 3, 60_000);
    } finally {
      clearInterval(ticking);
    }
    await waitFor('every record delivered or dead-lettered and committed', committedAtEnd, 60_000);
    const dead = await readAll(bootstrap, dlqTopic);
    expect(new Set(dead.map((d) => d.key?.toString()))).toEqual(gone);
    for (const d of dead) {
      expect(headerOf(d, 'error_type')).toBe('rejected_by_app');
      expect(headerOf(d, 'http_status')).toBe('404');
      expect(headerOf(d, 'app_response')).toBe('{"error":"no such order"}');
    }
    expect([...deliveredKeys(app.receipts)].filter((key) => key.startsWith('r')).length).toBe(97);
  });
});

describe('ackStatuses', () => {
  it('acknowledges a 409 from an idempotent handler when the route lists it', async () => {
    const { topic, dlqTopic, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: () => ({ status: 409 }),
      env: { COURIER_ACK_STATUSES: '409' },
    });
    await produce(bootstrap, topic, records(10));
    await courier().start().ready();
    await waitFor('every record acknowledged and committed', committedAtEnd, 30_000);
    expect(await readAll(bootstrap, dlqTopic)).toEqual([]);
  });
});

describe('an ordinary incident with the default settings', () => {
  it('loses no record to the DLQ through 2 minutes of 503, 502 or dropped connections, and a poison record among successes still reaches it', async () => {
    const OUTAGE_MS = 120_000;
    const start = Date.now();
    const failing = (answer: Answer) => (): Answer => (Date.now() - start < OUTAGE_MS ? answer : { status: 200 });
    const outages = await Promise.all(
      [{ status: 503 }, { status: 502 }, { status: 0, drop: true }].map(async (answer) => {
        const s = await scenario({ partitions: 2, handler: failing(answer), env: DEFAULT_RETRY });
        await produce(bootstrap, s.topic, records(30));
        return { ...s, process: await s.courier().start().ready() };
      }),
    );
    // A poison record among successes (records keep coming), with the same defaults: it must still reach the DLQ.
    const poison = await scenario({ partitions: 2, handler: (r) => ({ status: keyOf(r) === 'r5' ? 500 : 200 }), env: DEFAULT_RETRY });
    await produce(bootstrap, poison.topic, records(30));
    const poisonStarted = Date.now();
    await poison.courier().start().ready();
    let traffic = true;
    const trickle = (async () => {
      for (let i = 0; traffic; i++) {
        await produce(bootstrap, poison.topic, [{ key: `t${i}`, value: `t-${i}` }]);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();

    for (const outage of outages) {
      await waitFor(
        'readyz app_failing during the outage',
        async () => {
          const { body } = await outage.process.api('/readyz');
          return body.reasons.some((r: { code: string }) => r.code === 'app_failing');
        },
        60_000,
      );
    }
    await waitFor('the poison record in the DLQ', async () => (await readAll(bootstrap, poison.dlqTopic)).length === 1, 150_000).finally(() => {
      traffic = false;
    });
    await trickle;
    const poisonSeconds = (Date.now() - poisonStarted) / 1000;
    const [dead] = await readAll(bootstrap, poison.dlqTopic);
    expect(dead?.key?.toString()).toBe('r5');
    expect(dead && headerOf(dead, 'error_type')).toBe('retries_exhausted');
    expect(dead && headerOf(dead, 'attempts')).toBe('8');
    expect(poisonSeconds).toBeLessThan(300);

    for (const outage of outages) {
      await waitFor('every record delivered and committed after the outage', outage.committedAtEnd, OUTAGE_MS + 90_000);
      expect(await readAll(bootstrap, outage.dlqTopic)).toEqual([]);
      expect(deliveredKeys(outage.app.receipts).size).toBe(30);
      expect((await outage.process.api('/readyz')).status).toBe(200);
    }
    console.log(`[answers] poison record dead-lettered after ${poisonSeconds.toFixed(1)} s; outages of ${OUTAGE_MS / 1000} s lost nothing`);
  }, 330_000);
});
