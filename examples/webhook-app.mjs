// A minimal app behind Courier: plain node:http, no dependencies. Run: PORT=3000 node examples/webhook-app.mjs
// Courier POSTs each Kafka record here; the answer decides its fate:
//   2xx → acknowledged (offset committed) · 5xx/429/408 → retried with backoff · other 4xx → dead-lettered at once.
import { createServer } from 'node:http';

const stats = { received: 0, acknowledged: 0, retryRequested: 0, rejected: 0 };

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return answer(res, 200, stats);
  if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });

  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8'); // the record value, bytes unchanged
  const offset = Number(req.headers['kafka-offset']); // also: kafka-topic, kafka-partition, kafka-key (percent-encoded)
  const attempt = req.headers['courier-attempt']; // '1', '2', … ; ce-id stays the same: use it to deduplicate
  stats.received++;
  if (process.env.DEMO_VERBOSE) console.log(req.headers['ce-id'], `attempt ${attempt}`, body);

  // A transient failure, deterministic so the demo is repeatable: ~5% of first attempts. Courier retries these.
  if (offset % 20 === 7 && attempt === '1') {
    stats.retryRequested++;
    return answer(res, 503, { error: 'try again later' });
  }
  // A record this app can never handle: 422 sends it to the dead-letter topic (<topic>.dlq) without retrying.
  let record;
  try {
    record = JSON.parse(body);
  } catch {
    record = { poison: true };
  }
  if (record?.poison === true) {
    stats.rejected++;
    return answer(res, 422, { error: 'cannot process this record' });
  }

  // Real work goes here (idempotent: the same ce-id may arrive again after a crash or rebalance).
  stats.acknowledged++;
  answer(res, 200, { ok: true });
}).listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', function () {
  console.log(`webhook app listening on http://127.0.0.1:${this.address().port}`);
});
