// The CPU cost of batch delivery's pure parts (src/delivery/batch.ts, DESIGN A6), per record:
// batchBody on batches of 100 records with 1 KiB values (JSON or binary, with or without keys
// and headers), parseBatchAnswer on an empty answer and on one listing 5 failures, and the two
// ways of deciding that a value is JSON that were weighed for batchBody (a byte-level validator
// after isUtf8, against isUtf8 + JSON.parse). No Kafka, no HTTP.
//
//   npx tsc -p tsconfig.json && node bench/batch-body.mjs [--rounds R] [--ms MS]
// stdout: a table, then {"event":"done",…} with every figure. Each figure is the median of R
// rounds of about MS ms each, after an uncounted warm-up round; CPU time is process.cpuUsage().
import { isUtf8 } from 'node:buffer';
import { parseArgs } from 'node:util';
import { batchBody, isJsonText, parseBatchAnswer } from '../dist/delivery/batch.js';
import { identify, preparePush } from '../dist/delivery/push.js';
import { emit, RECORD_BYTES, round } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    ms: { type: 'string', default: '300' },
  },
});
const ROUNDS = Number(opt.rounds);
const ROUND_MS = Number(opt.ms);
const BATCH = 100;
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const SETTINGS = { signingKeys: [] };

// Values of RECORD_BYTES (1 KiB), give or take a few bytes: three JSON shapes and random bytes.
function objectValue(i) {
  const items = [];
  const value = { order: i, customer: { id: `c-${i}`, name: 'Zoë Ångström', email: 'zoe@example.com' }, status: 'paid', note: 'line1\nline2 "quoted"', items };
  for (let j = 0; JSON.stringify(value).length < RECORD_BYTES - 100; j++) {
    items.push({ sku: `SKU-${i}-${j}`, qty: (j % 5) + 1, price: 19.99 + j, tags: ['a', 'b'], gift: j % 2 === 0, ref: null });
  }
  return Buffer.from(JSON.stringify(value));
}
const textValue = (i) => Buffer.from(JSON.stringify({ i, text: `${'lorem ipsum dolor sit amet '.repeat(40)}`.slice(0, RECORD_BYTES - 20) }));
const numbersValue = (i) => Buffer.from(JSON.stringify(Array.from({ length: 120 }, (_, k) => round(k * 1.37 + i, 2))));
let seed = 42;
function binaryValue() {
  const bytes = Buffer.allocUnsafe(RECORD_BYTES);
  for (let k = 0; k < bytes.length; k++) bytes[k] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  return bytes;
}

/** A batch of 100 records of one topic, 4 partitions, as the pusher would hand it over. */
function batchOf(value, { keys, headers, contentType }) {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, i) => {
    const recordHeaders = headers
      ? [
          ['content-type', Buffer.from(contentType)],
          ['traceparent', Buffer.from(TRACEPARENT)],
          ['x-request-id', Buffer.from(`req-${i}`)],
        ]
      : [];
    const record = {
      topic: 'orders',
      partition: i % 4,
      offset: 1_000_000 + i,
      timestamp: now,
      key: keys ? Buffer.from(`order-${i % 64}`) : null,
      value: value(i),
      headers: recordHeaders,
      fetchedAt: now,
    };
    // Without headers the route's default content type decides.
    return { record, identity: identify(record, contentType), attempt: 1 };
  });
}

/** Median CPU and wall µs per call of fn over ROUNDS rounds of about ROUND_MS ms. */
function measure(fn) {
  let calls = 1;
  for (let start = performance.now(); performance.now() - start < ROUND_MS / 4; calls *= 2) for (let k = 0; k < calls; k++) fn(); // warm-up and sizing
  const cpu = [];
  const wall = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    for (let k = 0; k < calls; k++) fn();
    const used = process.cpuUsage(cpuStart);
    wall.push(((performance.now() - wallStart) * 1000) / calls);
    cpu.push((used.user + used.system) / calls);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { cpuUs: median(cpu), wallUs: median(wall) };
}

const rows = [];
function row(part, name, perRecordOf, fn, extra = {}) {
  const { cpuUs, wallUs } = measure(fn);
  rows.push({ part, case: name, cpuUsPerRecord: round(cpuUs / perRecordOf, 3), cpuUsPerCall: round(cpuUs, 2), wallUsPerCall: round(wallUs, 2), ...extra });
}

// batchBody
const bodyCases = [
  ['JSON objects, key + 3 headers', objectValue, { keys: true, headers: true, contentType: 'application/json' }],
  ['JSON objects, no key, no headers', objectValue, { keys: false, headers: false, contentType: 'application/json' }],
  ['JSON text, key + 3 headers', textValue, { keys: true, headers: true, contentType: 'application/json' }],
  ['binary, key + 3 headers', binaryValue, { keys: true, headers: true, contentType: 'application/octet-stream' }],
  ['binary, no key, no headers', binaryValue, { keys: false, headers: false, contentType: 'application/octet-stream' }],
  ['binary, JSON content type (validator refuses)', binaryValue, { keys: true, headers: true, contentType: 'application/json' }],
];
for (const [name, value, shape] of bodyCases) {
  const entries = batchOf(value, shape);
  const bodyBytes = batchBody(entries).length;
  row('batchBody', name, BATCH, () => batchBody(entries), { bodyKiB: round(bodyBytes / 1024, 1) });
}

// parseBatchAnswer
const ids = new Set(batchOf(objectValue, { keys: true, headers: false, contentType: 'application/json' }).map((entry) => entry.identity.messageId));
const idList = [...ids];
const fiveFailures = Buffer.from(
  JSON.stringify({
    failures: idList
      .slice(0, 5)
      .map((id, k) => ({ id, status: k < 3 ? 503 : 422, ...(k < 3 ? { retryAfterMs: 1000 } : { reason: `order ${id} has no customer` }) })),
  }),
);
row('parseBatchAnswer', 'empty body', BATCH, () => parseBatchAnswer(Buffer.alloc(0), ids));
row('parseBatchAnswer', '{"failures":[]}', BATCH, () => parseBatchAnswer(Buffer.from('{"failures":[]}'), ids));
row('parseBatchAnswer', '5 failures listed', BATCH, () => parseBatchAnswer(fiveFailures, ids), { answerBytes: fiveFailures.length });

// The JSON check of one 1 KiB value, both ways.
const viaParse = (bytes) => {
  if (!isUtf8(bytes)) return false;
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
};
for (const [shape, make] of [
  ['objects', objectValue],
  ['text', textValue],
  ['numbers', numbersValue],
]) {
  const values = Array.from({ length: 64 }, (_, i) => make(i));
  const bytes = Math.round(values.reduce((sum, value) => sum + value.length, 0) / values.length);
  for (const [name, check] of [
    ['isJsonText (isUtf8 + scan)', isJsonText],
    ['isUtf8 + JSON.parse', viaParse],
  ]) {
    let k = 0;
    row('JSON check', `${shape} ${bytes} B: ${name}`, 1, () => {
      if (!check(values[k++ & 63])) throw new Error(`${name} refused a ${shape} value`);
    });
  }
}

// preparePush, for scale: batch mode runs it for every record too.
{
  const entries = batchOf(objectValue, { keys: true, headers: true, contentType: 'application/json' });
  let k = 0;
  row('preparePush (scale)', 'key + 3 headers', 1, () => preparePush(entries[k++ % BATCH].record, SETTINGS, 'application/json'));
  row('identify (batch mode)', 'key + 3 headers', 1, () => identify(entries[k++ % BATCH].record, 'application/json'));
}

console.log('| part | case | CPU µs / record | CPU µs / call | wall µs / call |\n|---|---|--:|--:|--:|');
for (const r of rows) console.log(`| ${r.part} | ${r.case} | ${r.cpuUsPerRecord} | ${r.cpuUsPerCall} | ${r.wallUsPerCall} |`);
emit('done', { batch: BATCH, valueBytes: RECORD_BYTES, rounds: ROUNDS, roundMs: ROUND_MS, node: process.version, rows });
