import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

describe('delivery against a real broker', () => {
  it('delivers 1,000 records over 4 partitions once each, in order per partition, and commits the end offsets', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 4 });
    const records = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 37}`, value: JSON.stringify({ seq: i }), partition: i % 4 }));
    await produce(bootstrap, topic, records);
    const courierProcess = courier().start();
    await courierProcess.ready();
    await waitFor('every record delivered', () => app.receipts.length >= 1000);
    await waitFor('committed offsets to reach the end offsets', () => committedAtEnd());

    expect(app.receipts).toHaveLength(1000);
    const seen = new Set(app.receipts.map((r) => `${r.partition}/${r.offset}`));
    expect(seen.size).toBe(1000);
    for (let partition = 0; partition < 4; partition++) {
      const offsets = app.receipts.filter((r) => r.partition === partition).map((r) => r.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      expect(offsets).toHaveLength(250);
    }
    const sequences = app.receipts.map((r) => JSON.parse(r.body.toString()).seq as number).sort((a, b) => a - b);
    expect(sequences).toEqual(records.map((_, i) => i));
    expect(await readAll(bootstrap, `${topic}.dlq`)).toEqual([]);
  });

  it('retries 500, 500, then delivers on the 200 with courier-attempt 3 and nothing in the DLQ', async () => {
    const answers = [500, 500, 200];
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 1, handler: () => ({ status: answers.shift() ?? 200 }) });
    await produce(bootstrap, topic, [{ key: 'a', value: 'retry me' }]);
    courier().start();
    await waitFor('committed offset 1', () => committedAtEnd());
    expect(app.receipts.map((r) => [r.attempt, r.answer?.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    // The idempotency key stays the same across attempts.
    expect(new Set(app.receipts.map((r) => r.headers['ce-id'])).size).toBe(1);
    expect(await readAll(bootstrap, `${topic}.dlq`)).toEqual([]);
  });

  it('dead-letters a 400 at once with every A3 header, and commits the source offset', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 1, handler: (r) => ({ status: r.body.toString() === 'bad' ? 400 : 200 }) });
    await produce(bootstrap, topic, [
      { key: 'k1', value: 'bad', headers: { trace: 'abc' } },
      { key: 'k2', value: 'good' },
    ]);
    courier().start();
    await waitFor('committed offsets at the end', () => committedAtEnd());
    expect(app.receipts.filter((r) => r.body.toString() === 'bad')).toHaveLength(1);
    const [dead, ...rest] = await readAll(bootstrap, `${topic}.dlq`);
    expect(rest).toEqual([]);
    expect(dead?.key?.toString()).toBe('k1');
    expect(dead?.value?.toString()).toBe('bad');
    expect(headerOf(dead!, 'trace')).toBe('abc');
    expect(headerOf(dead!, 'original_topic')).toBe(topic);
    expect(headerOf(dead!, 'original_partition')).toBe('0');
    expect(headerOf(dead!, 'original_offset')).toBe('0');
    expect(headerOf(dead!, 'error_type')).toBe('rejected_by_app');
    expect(headerOf(dead!, 'error_message')).toBe('app answered HTTP 400');
    expect(headerOf(dead!, 'app_response')).toBeUndefined();
    expect(headerOf(dead!, 'http_status')).toBe('400');
    expect(headerOf(dead!, 'attempts')).toBe('1');
    expect(new Date(headerOf(dead!, 'failed_at') ?? '').toISOString()).toBe(headerOf(dead!, 'failed_at'));
  });

  it("dead-letters a 400 with the app's JSON reason in app_response and error_message, secrets redacted", async () => {
    const token = 'integration-app-token-7d1e';
    const reason = '{"error":"missing field amount"}';
    const { topic, courier, committedAtEnd } = await scenario({
      partitions: 1,
      env: { COURIER_APP_TOKEN: token },
      handler: (r) => {
        const value = r.body.toString();
        if (value === 'bad') return { status: 400, headers: { 'content-type': 'application/json' }, body: reason };
        // An app that echoes the request's credentials in its error must not put them in the DLQ.
        if (value === 'leaky') return { status: 422, body: `{"error":"rejected","authorization":"${r.headers.authorization}"}` };
        return { status: 200, body: 'ignored' };
      },
    });
    await produce(bootstrap, topic, [
      { key: 'k1', value: 'bad' },
      { key: 'k2', value: 'leaky' },
      { key: 'k3', value: 'good' },
    ]);
    courier().start();
    await waitFor('committed offsets at the end', () => committedAtEnd());
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead.map((r) => r.value?.toString())).toEqual(['bad', 'leaky']);
    const [bad, leaky] = dead;
    expect(headerOf(bad!, 'error_type')).toBe('rejected_by_app');
    expect(headerOf(bad!, 'http_status')).toBe('400');
    expect(headerOf(bad!, 'app_response')).toBe(reason);
    expect(headerOf(bad!, 'error_message')).toBe(`app answered HTTP 400: ${reason}`);
    expect(headerOf(leaky!, 'app_response')).toBe('{"error":"rejected","authorization":"Bearer [REDACTED]"}');
    expect(headerOf(leaky!, 'error_message')).toContain('Bearer [REDACTED]');
    for (const record of dead) for (const [, value] of record.headers) expect(value.toString('latin1')).not.toContain(token);
  });

  it('dead-letters an always-503 record after COURIER_MAX_ATTEMPTS', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({
      partitions: 1,
      handler: (r) => ({ status: 503, body: `down for maintenance (attempt ${r.attempt})` }),
      env: { COURIER_MAX_ATTEMPTS: '4' },
    });
    await produce(bootstrap, topic, [{ key: 'p', value: 'poison' }]);
    courier().start();
    await waitFor('committed offset after the DLQ write', () => committedAtEnd());
    expect(app.receipts.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    const dead = await readAll(bootstrap, `${topic}.dlq`);
    expect(dead).toHaveLength(1);
    expect(headerOf(dead[0]!, 'error_type')).toBe('retries_exhausted');
    expect(headerOf(dead[0]!, 'http_status')).toBe('503');
    expect(headerOf(dead[0]!, 'attempts')).toBe('4');
    // The last answer's body, not an earlier one's.
    expect(headerOf(dead[0]!, 'app_response')).toBe('down for maintenance (attempt 4)');
    expect(headerOf(dead[0]!, 'error_message')).toBe('4 attempts failed; last: app answered HTTP 503: down for maintenance (attempt 4)');
  });
});

describe('COURIER_APP_HTTP2', () => {
  it('delivers over cleartext HTTP/2 (prior knowledge) on a few connections, dead-letters the same way', async () => {
    const seen: Array<{ offset: number; body: string }> = [];
    const sessions: Http2Session[] = [];
    const app = createHttp2Server();
    app.on('session', (session) => sessions.push(session));
    const carrying = new Set<Http2Session | undefined>();
    app.on('stream', (stream, headers) => {
      carrying.add(stream.session);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ offset: Number(headers['kafka-offset']), body });
        stream.respond({ ':status': body === 'bad' ? 422 : 204 });
        stream.end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const { topic, dlqTopic, courier, committedAtEnd } = await scenario({ partitions: 2, env: { COURIER_ORDERING: 'unordered' } });
      await produce(bootstrap, topic, [...Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })), { key: 'b', value: 'bad' }]);
      courier({ COURIER_APP_HTTP2: 'true', COURIER_TARGET_URL: `http://127.0.0.1:${(app.address() as AddressInfo).port}/events` }).start();
      await waitFor('everything committed', committedAtEnd);
      expect(new Set(seen.map((s) => s.body)).size).toBe(51);
      // A connection per 100 pushes in flight (COURIER_MAX_INFLIGHT 256: at most 3), not a socket
      // each; the app gate's probes are bare TCP connects and carry nothing.
      expect(carrying.size).toBeGreaterThanOrEqual(1);
      expect(carrying.size).toBeLessThanOrEqual(3);
      expect((await readAll(bootstrap, dlqTopic)).map((r) => r.value?.toString())).toEqual(['bad']);
    } finally {
      // Courier keeps its connection open: the server closes only once its sessions are gone.
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => app.close(resolve));
    }
  });
});
