// A minimal app behind Courier: plain node:http, no dependencies. Run: PORT=3000 node examples/webhook-app.mjs
// Courier POSTs each Kafka record here; the answer decides its fate:
//   2xx → acknowledged (offset committed) · 5xx/429/408 → retried with backoff · other 4xx → dead-lettered at once.
// With batch delivery (COURIER_DELIVERY=batch) one JSON request carries many records ({"records": [...]}, header
// courier-batch-size); the app answers 200 and lists the records that failed, each with its own status
// ({"failures": [{"id", "status", "reason"}]}); every record it does not list is acknowledged.
import { createServer } from 'node:http';

// Counts records (a batch counts each of its records), except `received`: requests.
const stats = { received: 0, batches: 0, records: 0, acknowledged: 0, retryRequested: 0, rejected: 0 };

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

// One record, whichever way it came: 200, or the status and reason of a failure.
function handle(offset, attempt, value) {
  stats.records++;
  // A transient failure, deterministic so the demo is repeatable: ~5% of first attempts. Courier retries these.
  if (offset % 20 === 7 && attempt === 1) {
    stats.retryRequested++;
    return { status: 503, reason: 'try again later' };
  }
  // A record this app can never handle: 422 sends it to the dead-letter topic (<topic>.dlq) without retrying.
  if (value?.poison === true) {
    stats.rejected++;
    return { status: 422, reason: 'cannot process this record' };
  }
  // Real work goes here (idempotent: the same ce-id / record id may arrive again after a crash or rebalance).
  stats.acknowledged++;
  return { status: 200 };
}

function parsed(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { poison: true };
  }
}

const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return answer(res, 200, stats);
  if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });

  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8');
  stats.received++;

  if (req.headers['courier-batch-size'] !== undefined) {
    // A batch: each record carries its id (deduplicate on it), coordinates, `attempt`, and its value as `value`
    // (parsed JSON, for a JSON content type), `valueBase64` (other bytes) or `tombstone: true` (neither).
    let records;
    try {
      ({ records } = JSON.parse(body));
    } catch {
      records = undefined;
    }
    // Not a batch after all: a 4xx for the whole request (Courier splits it and dead-letters records one by one).
    if (!Array.isArray(records)) return answer(res, 400, { error: 'expected {"records": [...]}' });
    stats.batches++;
    const failures = [];
    for (const record of records) {
      const value = 'value' in record ? record.value : parsed(Buffer.from(record.valueBase64 ?? '', 'base64').toString('utf8'));
      if (process.env.DEMO_VERBOSE) console.log(record.id, `attempt ${record.attempt}`, JSON.stringify(value));
      const { status, reason } = handle(Number(record.offset), record.attempt, value);
      if (status !== 200) failures.push({ id: record.id, status, reason });
    }
    // 200 for the request; the failures list decides each listed record's fate.
    return answer(res, 200, { failures });
  }

  // One record: the body is its value, bytes unchanged. Also: kafka-topic, kafka-partition, kafka-key (percent-encoded).
  const offset = Number(req.headers['kafka-offset']);
  const attempt = Number(req.headers['courier-attempt']); // 1, 2, … ; ce-id stays the same: use it to deduplicate
  if (process.env.DEMO_VERBOSE) console.log(req.headers['ce-id'], `attempt ${attempt}`, body);
  const { status, reason } = handle(offset, attempt, parsed(body));
  answer(res, status, status === 200 ? { ok: true } : { error: reason });
}).listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', function () {
  console.log(`webhook app listening on http://127.0.0.1:${this.address().port}`);
});

// As a container's PID 1, node has no default action for SIGTERM: without this, `docker stop` and
// a pod's termination wait out the grace period and kill the app. Courier, a native sidecar, is
// stopped after the app: a push that finds the app gone pauses its partition, nothing is lost.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)));
