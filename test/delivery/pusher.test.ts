import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { APP_RESPONSE_MAX_BYTES } from '../../src/delivery/outcome.js';
import { Pusher } from '../../src/delivery/push.js';
import { until } from '../helpers/fakes.js';

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

let server: Server | undefined;
let pusher: Pusher | undefined;

async function app(handler: Handler): Promise<URL> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?x=1`);
}

afterEach(async () => {
  await pusher?.abortAll();
  pusher = undefined;
  server?.closeAllConnections();
  if (server) await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('Pusher', () => {
  it('POSTs the body and headers to the path with its query, and reports the status', async () => {
    let seen: { method?: string; url?: string; header?: string | string[]; body?: string } = {};
    const url = await app((req, body, res) => {
      seen = { method: req.method, url: req.url, header: req.headers['kafka-topic'], body: body.toString() };
      res.writeHead(204).end();
    });
    pusher = new Pusher({ connections: 4 });
    const result = await pusher.push(url, { 'kafka-topic': 'orders' }, Buffer.from('hello'), 5000);
    expect(result).toEqual({ kind: 'response', status: 204, retryAfter: undefined });
    expect(seen).toEqual({ method: 'POST', url: '/hook?x=1', header: 'orders', body: 'hello' });
  });

  it('sends an empty body for a null value', async () => {
    let length: string | undefined;
    const url = await app((req, _body, res) => {
      length = req.headers['content-length'];
      res.writeHead(200).end('ok');
    });
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, null, 5000)).toMatchObject({ kind: 'response', status: 200 });
    expect(length).toBe('0');
  });

  it('reports Retry-After with the status', async () => {
    const url = await app((_req, _body, res) => res.writeHead(503, { 'retry-after': '7' }).end('busy'));
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 5000)).toEqual({ kind: 'response', status: 503, retryAfter: '7', body: Buffer.from('busy') });
  });

  it('keeps one connection for consecutive pushes (keep-alive, answer bodies drained)', async () => {
    const ports = new Set<number>();
    const url = await app((req, _body, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.writeHead(200).end('a'.repeat(1000));
    });
    pusher = new Pusher({ connections: 1 });
    for (let i = 0; i < 5; i++) expect(await pusher.push(url, {}, Buffer.from(String(i)), 5000)).toMatchObject({ status: 200 });
    expect(ports.size).toBe(1);
  });

  it('reports the status of an answer whose body is too long to drain, and drops that socket', async () => {
    const ports: number[] = [];
    const url = await app((req, _body, res) => {
      ports.push(req.socket.remotePort ?? 0);
      res.writeHead(422);
      res.end(Buffer.alloc(1024 * 1024, 0x61));
    });
    pusher = new Pusher({ connections: 1 });
    const first = await pusher.push(url, {}, Buffer.from('x'), 5000);
    expect(first).toMatchObject({ kind: 'response', status: 422 });
    // The first KiB is kept even though the rest is never read.
    expect(first.kind === 'response' && first.body).toEqual(Buffer.alloc(APP_RESPONSE_MAX_BYTES, 0x61));
    expect(await pusher.push(url, {}, Buffer.from('y'), 5000)).toMatchObject({ kind: 'response', status: 422 });
    expect(ports).toHaveLength(2);
    expect(ports[0]).not.toBe(ports[1]);
  });

  it('keeps the body of a 4xx answer for the DLQ', async () => {
    const url = await app((_req, _body, res) => res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"missing field amount"}'));
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 5000)).toEqual({
      kind: 'response',
      status: 422,
      retryAfter: undefined,
      body: Buffer.from('{"error":"missing field amount"}'),
    });
  });

  it('keeps the body of a 5xx answer with its Retry-After, and leaves body out when the answer has none', async () => {
    const answers: Array<[number, string]> = [
      [503, 'overloaded, try later'],
      [500, ''],
    ];
    const url = await app((_req, _body, res) => {
      const [status, text] = answers.shift()!;
      res.writeHead(status, { 'retry-after': '3' }).end(text);
    });
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 5000)).toEqual({
      kind: 'response',
      status: 503,
      retryAfter: '3',
      body: Buffer.from('overloaded, try later'),
    });
    const empty = await pusher.push(url, {}, Buffer.from('y'), 5000);
    expect(empty).toEqual({ kind: 'response', status: 500, retryAfter: '3' });
    expect('body' in empty).toBe(false);
  });

  it('keeps only the first KiB of a longer body written in pieces, and still drains the rest to keep the socket', async () => {
    const ports = new Set<number>();
    const url = await app((req, _body, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.writeHead(400);
      res.write('a'.repeat(600));
      res.write('b'.repeat(600));
      res.end('c'.repeat(10_000));
    });
    pusher = new Pusher({ connections: 1 });
    for (let i = 0; i < 3; i++) {
      const result = await pusher.push(url, {}, Buffer.from(String(i)), 5000);
      expect(result).toMatchObject({ kind: 'response', status: 400 });
      expect(result.kind === 'response' && result.body?.toString()).toBe('a'.repeat(600) + 'b'.repeat(APP_RESPONSE_MAX_BYTES - 600));
    }
    expect(ports.size).toBe(1);
  });

  it('keeps nothing of a 2xx body (the hot path copies no answer bytes)', async () => {
    const url = await app((_req, _body, res) => res.writeHead(200).end('{"ok":true}'.repeat(200)));
    pusher = new Pusher({ connections: 1 });
    const result = await pusher.push(url, {}, Buffer.from('x'), 5000);
    expect(result).toEqual({ kind: 'response', status: 200, retryAfter: undefined });
    expect('body' in result).toBe(false);
  });

  it('reports a timeout when no answer comes within the attempt timeout', async () => {
    const url = await app(() => {
      // never answers
    });
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 200)).toEqual({ kind: 'timeout' });
  });

  it('reports unreachable when nothing listens', async () => {
    const url = await app((_req, _body, res) => res.end());
    await new Promise((resolve) => server?.close(resolve));
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 5000)).toEqual({ kind: 'unreachable', code: 'ECONNREFUSED' });
  });

  it('reports a lost connection when the app drops the socket mid-request', async () => {
    const url = await app((req) => req.socket.destroy());
    pusher = new Pusher({ connections: 1 });
    expect(await pusher.push(url, {}, Buffer.from('x'), 5000)).toMatchObject({ kind: 'connection-lost' });
  });

  it('abortAll ends a running push as a lost connection, and later pushes do not hang', async () => {
    let arrived = false;
    const url = await app(() => {
      arrived = true;
    });
    pusher = new Pusher({ connections: 1 });
    const running = pusher.push(url, {}, Buffer.from('x'), 60_000);
    await until(() => arrived, 5000, 'the request to arrive');
    await pusher.abortAll();
    expect(await running).toMatchObject({ kind: 'connection-lost' });
    expect(await pusher.push(url, {}, Buffer.from('y'), 60_000)).toMatchObject({ kind: 'connection-lost' });
  });
});

describe('Pusher over HTTP/2 (COURIER_APP_HTTP2)', () => {
  let h2: Http2Server | undefined;
  afterEach(async () => {
    await pusher?.abortAll();
    pusher = undefined;
    await new Promise((resolve) => (h2 ? h2.close(resolve) : resolve(undefined)));
    h2 = undefined;
  });

  /** A cleartext HTTP/2 app (prior knowledge), as Node's http2 or Go's h2c handler serve it. */
  async function h2app(handler: (headers: Record<string, unknown>, body: Buffer, respond: (status: number, body?: string) => void) => void) {
    const sessions = { count: 0 };
    h2 = createHttp2Server();
    h2.on('session', () => sessions.count++);
    h2.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () =>
        handler(headers, Buffer.concat(chunks), (status, body) => {
          stream.respond({ ':status': status, ...(body ? { 'content-type': 'application/json' } : {}) });
          stream.end(body);
        }),
      );
    });
    await new Promise<void>((resolve) => h2?.listen(0, '127.0.0.1', resolve));
    return { url: new URL(`http://127.0.0.1:${(h2.address() as AddressInfo).port}/hook`), sessions };
  }

  it('pushes over h2c with the same headers and body, and reads the answer the same way', async () => {
    const seen: Array<{ path: unknown; method: unknown; topic: unknown; body: string }> = [];
    const { url } = await h2app((headers, body, respond) => {
      seen.push({ path: headers[':path'], method: headers[':method'], topic: headers['kafka-topic'], body: body.toString() });
      respond(body.toString() === 'bad' ? 422 : 200, body.toString() === 'bad' ? '{"error":"no"}' : undefined);
    });
    pusher = new Pusher({ connections: 256, http2: true });
    expect(await pusher.push(url, { 'kafka-topic': 'orders' }, Buffer.from('hello'), 5000)).toEqual({ kind: 'response', status: 200, retryAfter: undefined });
    const rejected = await pusher.push(url, { 'kafka-topic': 'orders' }, Buffer.from('bad'), 5000);
    expect(rejected).toMatchObject({ kind: 'response', status: 422 });
    expect(rejected.kind === 'response' && rejected.body?.toString()).toBe('{"error":"no"}');
    expect(seen).toEqual([
      { path: '/hook', method: 'POST', topic: 'orders', body: 'hello' },
      { path: '/hook', method: 'POST', topic: 'orders', body: 'bad' },
    ]);
  });

  it('carries 300 pushes in flight on a few connections, not a socket each', async () => {
    const waiting: Array<() => void> = [];
    const { url, sessions } = await h2app((_headers, _body, respond) => waiting.push(() => respond(204)));
    pusher = new Pusher({ connections: 300, http2: true });
    const pushes = Array.from({ length: 300 }, () => pusher?.push(url, {}, Buffer.from('x'), 10_000));
    await until(() => waiting.length === 300, 5000, 'all 300 streams open at the app');
    expect(sessions.count).toBeLessThanOrEqual(3);
    for (const answer of waiting) answer();
    expect((await Promise.all(pushes)).every((result) => result?.kind === 'response' && result.status === 204)).toBe(true);
  });
});
