// The benchmark's target app: plain node:http, answers every POST with 204, after --latency-ms
// (0: at once). It counts what it receives and, when asked, records each record's latency
// (receipt time − the produce time the record carries, both CLOCK_MONOTONIC).
//
// Usage: node bench/apps/sink.mjs [--latency-ms N] [--h2c]
// stdout (JSON lines): {"event":"listening","port"} once; {"event":"first","ns"} at the first
// POST after each reset.
// The latency is also taken from the kafka-timestamp header (Date.now() − record timestamp, ms):
// on a LogAppendTime topic that is the broker's append time, so producer batching is left out.
// It also counts requests being held (open, maxOpen): the records a client has in flight.
// A batch request (header courier-batch-size, DESIGN A6) counts as its records; with latency
// recording on, its whole body is read and each record's value gives its produce time.
// Control: POST /__reset[?record=1]  ·  GET /__stats[?samples=1]
// For daprd: GET /dapr/subscribe answers [] (subscriptions are declarative), GET /dapr/config {}.
import { createServer } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import { parseArgs } from 'node:util';
import { emit, nowNs, stampOf } from '../lib.mjs';

const { values: opt } = parseArgs({
  options: { 'latency-ms': { type: 'string', default: '0' }, port: { type: 'string', default: '0' }, h2c: { type: 'boolean', default: false } },
});
const latencyMs = Number(opt['latency-ms']);

let count = 0;
let requests = 0;
let firstNs = 0n;
let lastNs = 0n;
let serviceNsTotal = 0n;
let open = 0;
let maxOpen = 0;
let record = false;
let stamps = [];
let latencies = [];
let fromAppend = [];

function reset(recordLatency) {
  count = 0;
  requests = 0;
  firstNs = 0n;
  lastNs = 0n;
  serviceNsTotal = 0n;
  maxOpen = open;
  record = recordLatency;
  stamps = [];
  latencies = [];
  fromAppend = [];
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(req, res) {
  const receivedNs = nowNs();
  const receivedMs = Date.now();
  if (req.method === 'POST' && !req.url.startsWith('/__')) {
    if (count === 0) {
      firstNs = receivedNs;
      emit('first', { ns: String(receivedNs) });
    }
    const batchSize = Number(req.headers['courier-batch-size'] ?? 0);
    count += batchSize || 1;
    requests++;
    lastNs = receivedNs;
    if (++open > maxOpen) maxOpen = open;
    res.on('close', () => open--);
    let head;
    const chunks = record && batchSize > 0 ? [] : undefined;
    req.on('data', (chunk) => {
      head ??= chunk;
      chunks?.push(chunk);
    });
    req.on('end', () => {
      if (chunks) {
        for (const r of JSON.parse(Buffer.concat(chunks).toString()).records) {
          const stamp = r.valueBase64 === undefined ? undefined : stampOf(Buffer.from(r.valueBase64, 'base64'));
          if (stamp === undefined) continue;
          stamps.push(stamp);
          latencies.push(Number(receivedNs - stamp) / 1e6);
          fromAppend.push(r.timestamp > 0 ? receivedMs - r.timestamp : null);
        }
      } else if (record && head) {
        const stamp = stampOf(head);
        if (stamp !== undefined) {
          stamps.push(stamp);
          latencies.push(Number(receivedNs - stamp) / 1e6);
          // With LogAppendTime topics, the record timestamp is when the broker appended it (ms).
          const timestamp = Number(req.headers['kafka-timestamp']);
          fromAppend.push(Number.isFinite(timestamp) && timestamp > 0 ? receivedMs - timestamp : null);
        }
      }
      const answer = () => {
        serviceNsTotal += nowNs() - receivedNs;
        res.writeHead(204);
        res.end();
      };
      if (latencyMs > 0) setTimeout(answer, latencyMs);
      else answer();
    });
    return;
  }
  req.resume();
  const url = new URL(req.url, 'http://sink');
  if (req.method === 'POST' && url.pathname === '/__reset') {
    reset(url.searchParams.get('record') === '1');
    json(res, 200, { ok: true });
  } else if (req.method === 'GET' && url.pathname === '/__stats') {
    const out = {
      count,
      requests,
      firstNs: String(firstNs),
      lastNs: String(lastNs),
      meanServiceMs: requests > 0 ? Number(serviceNsTotal / BigInt(requests)) / 1e6 : null,
      samples: latencies.length,
      open,
      maxOpen,
    };
    if (url.searchParams.get('samples') === '1') {
      let base = stamps[0] ?? 0n;
      for (const stamp of stamps) if (stamp < base) base = stamp;
      out.baseNs = String(base);
      out.at = stamps.map((s) => Number(s - base) / 1e6);
      out.latencyMs = latencies;
      out.fromAppendMs = fromAppend;
    }
    json(res, 200, out);
  } else if (req.method === 'GET' && url.pathname === '/dapr/subscribe') {
    json(res, 200, []);
  } else if (req.method === 'GET' && url.pathname === '/dapr/config') {
    json(res, 200, {});
  } else {
    res.writeHead(404);
    res.end();
  }
}

const server = createServer(handle);
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
if (opt.h2c) {
  // --h2c: POSTs also over HTTP/2 cleartext (prior knowledge) on a second port (COURIER_APP_HTTP2);
  // the control paths stay on the HTTP/1 port.
  const h2 = createH2cServer(handle);
  h2.setTimeout(0);
  h2.listen(0, '127.0.0.1', () =>
    server.listen(Number(opt.port), '127.0.0.1', () => emit('listening', { port: server.address().port, h2Port: h2.address().port })),
  );
} else server.listen(Number(opt.port), '127.0.0.1', () => emit('listening', { port: server.address().port }));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
