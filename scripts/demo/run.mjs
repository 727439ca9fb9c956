// Usage: node scripts/demo/run.mjs --bootstrap ADDR --topic T --group G --app URL --courier-pid PID --log FILE [--count N] [--timeout-s S]
//                                   [--delivery record|batch --courier-api URL]
// Produces N keyed JSON records, shows progress about once a second until the group's committed offsets reach
// the end offsets of every partition, then prints a summary read back from Kafka itself. With --delivery batch
// (Courier runs with COURIER_DELIVERY=batch) the summary also shows the requests made for the records and the mean
// batch size, from the app's counts and from Courier's courier_batch_size histogram (GET <courier-api>/metrics).
// Exit 0 when every check passes, 1 when a check fails, 2 on timeout or when Courier exits early.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { committedOffsets, endOffsets, groupOffsetReader, kafka, readAll, sum, withAdmin } from '../lib/kafka.mjs';

const { values: opt } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    app: { type: 'string' },
    'courier-pid': { type: 'string' },
    log: { type: 'string' },
    count: { type: 'string', default: '5000' },
    'timeout-s': { type: 'string', default: '120' },
    delivery: { type: 'string', default: 'record' },
    'courier-api': { type: 'string' },
  },
});
const batch = opt.delivery === 'batch';
if (!['record', 'batch'].includes(opt.delivery)) {
  console.error(`run.mjs: --delivery must be record or batch, got ${opt.delivery}`);
  process.exit(2);
}
for (const name of ['bootstrap', 'topic', 'group', 'app', 'courier-pid', 'log', ...(batch ? ['courier-api'] : [])]) {
  if (!opt[name]) {
    console.error(`run.mjs: --${name} is required`);
    process.exit(2);
  }
}
const N = Number(opt.count);
const dlqTopic = `${opt.topic}.dlq`;
const isPoison = (i) => i % 1000 === 999;
const expectedPoison = Array.from({ length: N }, (_, i) => i).filter(isPoison).length;
const tty = process.stdout.isTTY;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Running, not a zombie (demo.sh has not reaped it yet when it exits).
function courierAlive() {
  try {
    const stat = readFileSync(`/proc/${opt['courier-pid']}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Courier's courier_batch_size histogram for the topic: { sum, count } of records per push, or null. */
async function batchSizes() {
  try {
    const res = await fetch(`${opt['courier-api']}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const read = (suffix) => {
      const line = text.split('\n').find((l) => l.startsWith(`courier_batch_size_${suffix}{`) && l.includes(`topic="${opt.topic}"`));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const [sum, count] = [read('sum'), read('count')];
    return sum === undefined || count === undefined ? null : { sum, count };
  } catch {
    return null;
  }
}

async function appStats() {
  try {
    const res = await fetch(`${opt.app}/stats`, { signal: AbortSignal.timeout(2000) });
    return await res.json();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- produce ----
const producer = kafka(opt.bootstrap).producer({ 'linger.ms': 5, 'enable.idempotence': true });
await producer.connect();
const t0 = Date.now();
for (let i = 0; i < N; i += 500) {
  const messages = [];
  for (let j = i; j < Math.min(N, i + 500); j++) {
    messages.push({
      key: `order-${j}`,
      value: JSON.stringify({ order: j, amount: (j * 37) % 1000, poison: isPoison(j) }),
      headers: { source: 'courier-demo' },
    });
  }
  await producer.send({ topic: opt.topic, messages });
}
await producer.disconnect();
console.log(`demo: produced ${N} records to ${opt.topic} in ${Date.now() - t0} ms (${expectedPoison} of them poison)`);

// ---------------------------------------------------------------- watch ----
const admin = kafka(opt.bootstrap).admin();
await admin.connect();
const offsets = await groupOffsetReader(opt.bootstrap, opt.group);
const deadline = t0 + Number(opt['timeout-s']) * 1000;
let ends = new Map();
let committed = new Map();
let tDone = 0;
let lastPrint = 0;
let lastAnswered = 0;
let lastLine = '';
let failure = '';

while (!tDone) {
  const now = Date.now();
  if (now > deadline) {
    failure = `timed out after ${opt['timeout-s']} s: committed offsets did not reach the end offsets`;
    break;
  }
  if (!courierAlive()) {
    failure = 'Courier exited before committing everything';
    break;
  }
  try {
    [ends, committed] = await Promise.all([endOffsets(admin, opt.topic), offsets.committed(opt.topic)]);
  } catch (error) {
    console.error(`demo: offset query failed (${error.message}); retrying`);
  }
  const complete = ends.size > 0 && sum(ends) === N && [...ends].every(([p, end]) => committed.get(p) === end);
  if (complete) tDone = Date.now();
  if (complete || now - lastPrint >= 1000) {
    const [stats, dlqEnds] = await Promise.all([appStats(), endOffsets(admin, dlqTopic).catch(() => new Map())]);
    // Batch delivery sends records again behind a retried one (partition order): count progress by commits there.
    const answered = batch ? sum(committed) : stats ? stats.acknowledged + stats.rejected : 0;
    const rate = lastPrint ? String(Math.round(((answered - lastAnswered) * 1000) / (now - lastPrint))) : '–';
    const at = `[${String(Math.round((now - t0) / 1000)).padStart(3)} s]`;
    lastLine = batch
      ? `${at} committed ${sum(committed)}/${sum(ends)} · ${stats?.received ?? '?'} requests · acknowledged ${stats?.acknowledged ?? '?'} (sent again included)` +
        ` · retries ${stats?.retryRequested ?? '?'} · DLQ ${sum(dlqEnds)} · ${rate} rec/s committed`
      : `${at} delivered ${stats?.acknowledged ?? '?'}/${N}` +
        ` · committed ${sum(committed)}/${sum(ends)}` +
        ` · retries ${stats?.retryRequested ?? '?'} · DLQ ${sum(dlqEnds)} · ${rate} rec/s`;
    process.stdout.write(tty ? `\r\x1b[K${lastLine}` : `${lastLine}\n`);
    lastPrint = now;
    lastAnswered = answered;
  }
  if (!complete) await sleep(200);
}
if (tty) process.stdout.write('\n');
await admin.disconnect();
await offsets.close();

if (failure) {
  console.log(`\ndemo: FAILED: ${failure}`);
  console.log(`  end offsets:       ${JSON.stringify(Object.fromEntries(ends))}`);
  console.log(`  committed offsets: ${JSON.stringify(Object.fromEntries(committed))}`);
  process.exit(2);
}

// ---------------------------------------------------------------- summary (from Kafka) ----
const checks = [];
const check = (ok, text) => checks.push({ ok, text });

const [finalEnds, finalCommitted] = await Promise.all([
  withAdmin(opt.bootstrap, (a) => endOffsets(a, opt.topic)),
  committedOffsets(opt.bootstrap, opt.group, opt.topic),
]);
const dlq = await readAll(opt.bootstrap, dlqTopic);
const [stats, sizes] = await Promise.all([appStats(), batch ? batchSizes() : null]);
const seconds = (tDone - t0) / 1000;

console.log(`\n=== Summary (read back from Kafka)${batch ? ', batch delivery' : ''} ===`);
console.log(`produced (end offsets)   ${sum(finalEnds)} records in ${opt.topic}`);
console.log('partition   end offset   committed   equal');
for (const [p, end] of [...finalEnds].sort((a, b) => a[0] - b[0])) {
  const c = finalCommitted.get(p) ?? -1;
  console.log(`${String(p).padStart(9)}   ${String(end).padStart(10)}   ${String(c).padStart(9)}   ${c === end ? 'yes' : 'NO'}`);
}
check(sum(finalEnds) === N, `end offsets total ${sum(finalEnds)} == produced ${N}`);
check(
  [...finalEnds].every(([p, end]) => finalCommitted.get(p) === end),
  'committed offset == end offset on every partition',
);

console.log(`\nDLQ ${dlqTopic}: ${dlq.length} record(s)`);
for (const r of dlq) {
  const h = r.headers;
  console.log(
    `  ${h.original_topic}-${h.original_partition}@${h.original_offset}  key=${r.key}  error_type=${h.error_type}  http_status=${h.http_status}` +
      `  attempts=${h.attempts}  value=${r.value}`,
  );
}
const dlqAllPoison = dlq.every((r) => JSON.parse(r.value ?? 'null')?.poison === true && r.headers.http_status === '422');
check(dlq.length === expectedPoison, `DLQ holds ${dlq.length} records == ${expectedPoison} poison records produced`);
check(dlqAllPoison, 'every DLQ record is a poison record answered 422');
const dlqIds = new Set(dlq.map((r) => `${r.headers.original_partition}@${r.headers.original_offset}`));
check(dlqIds.size === dlq.length, 'no record dead-lettered twice');

// Each first attempt on an offset ≡ 7 (mod 20) got a 503 from the app.
const expected503 = [...finalEnds.values()].reduce((a, end) => a + Math.floor((end + 12) / 20), 0);
console.log('\nApp side (GET /stats)');
if (stats && !batch) {
  console.log(
    `  received ${stats.received} requests · acknowledged (200) ${stats.acknowledged} · 503 retries requested ${stats.retryRequested} · rejected (422) ${stats.rejected}`,
  );
  const duplicates = stats.acknowledged - (N - expectedPoison);
  check(stats.acknowledged >= N - expectedPoison, `acknowledged ${stats.acknowledged} >= ${N - expectedPoison} non-poison records (none lost)`);
  check(stats.rejected === expectedPoison, `422s ${stats.rejected} == ${expectedPoison} poison records`);
  check(stats.retryRequested >= expected503, `503s answered ${stats.retryRequested} >= ${expected503} first attempts on offsets ≡ 7 (mod 20)`);
  if (duplicates > 0) console.log(`  note: ${duplicates} duplicate deliveries (allowed: at-least-once)`);
} else if (stats) {
  // Batch delivery: the app answers each request 200 and lists the records that failed (503 or 422) by id.
  console.log(
    `  received ${stats.received} requests carrying ${stats.records} records · acknowledged ${stats.acknowledged}` +
      ` · listed 503 (retry) ${stats.retryRequested} · listed 422 (rejected) ${stats.rejected}`,
  );
  const duplicates = stats.acknowledged - (N - expectedPoison);
  check(stats.acknowledged >= N - expectedPoison, `acknowledged ${stats.acknowledged} >= ${N - expectedPoison} non-poison records (none lost)`);
  // A poison record behind a retried record of its batch comes again (partition order) and is listed 422 again.
  check(stats.rejected >= expectedPoison, `422s listed ${stats.rejected} >= ${expectedPoison} poison records (the DLQ check above counts each once)`);
  check(stats.retryRequested >= expected503, `503s listed ${stats.retryRequested} >= ${expected503} first attempts on offsets ≡ 7 (mod 20)`);
  if (duplicates > 0) {
    console.log(
      `  note: ${duplicates} records acknowledged again: in partition order a record listed for retry takes the later records of its batch with it (allowed: at-least-once)`,
    );
  }

  console.log('\nBatches');
  console.log(`  requests          ${stats.received} for ${N} records produced (${(N / stats.received).toFixed(1)} records produced per request)`);
  console.log(`  records sent      ${stats.records} (${stats.records - N} of them again: retries and the records that follow them)`);
  console.log(`  mean batch size   app: ${(stats.records / stats.batches).toFixed(1)} records (${stats.records} / ${stats.batches} batches)`);
  if (sizes) {
    console.log(`                    Courier: ${(sizes.sum / sizes.count).toFixed(1)} records (courier_batch_size_sum ${sizes.sum} / _count ${sizes.count})`);
  }
  check(stats.batches === stats.received, `every request was a batch (${stats.batches} of ${stats.received} carried courier-batch-size)`);
  check(stats.received < N, `fewer requests (${stats.received}) than records produced (${N})`);
  check(
    sizes !== null && sizes.count === stats.batches && sizes.sum === stats.records,
    `Courier's courier_batch_size (count ${sizes?.count ?? '?'}, sum ${sizes?.sum ?? '?'}) == the app's batches ${stats.batches} and records ${stats.records}`,
  );
} else {
  check(false, 'app /stats answered');
}

// Courier's warn/error/fatal log lines, grouped by message ("record dead-lettered" is expected here).
let notable = null;
try {
  notable = new Map();
  const names = { 40: 'warn', 50: 'error', 60: 'fatal' };
  for (const line of readFileSync(opt.log, 'utf8').split('\n')) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // not a JSON log line
    }
    const key = names[entry.level] && `${names[entry.level]} "${entry.msg}"`;
    if (key) notable.set(key, (notable.get(key) ?? 0) + 1);
  }
} catch {
  // no log file
}
console.log(`\nThroughput: ${N} records from first produce to all committed in ${seconds.toFixed(2)} s = ${Math.round(N / seconds)} records/s`);
if (notable) {
  const text = [...notable].map(([key, n]) => `${n} × ${key}`).join(', ') || 'none';
  console.log(`Courier log warnings/errors: ${text} (${opt.log})`);
}

console.log('\nChecks');
for (const { ok, text } of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${text}`);
process.exit(checks.every((c) => c.ok) ? 0 : 1);
