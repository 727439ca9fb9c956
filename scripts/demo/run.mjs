// Usage: node scripts/demo/run.mjs --bootstrap ADDR --topic T --group G --app URL --courier-pid PID --log FILE [--count N] [--timeout-s S]
// Produces N keyed JSON records, shows progress about once a second until the group's committed offsets reach
// the end offsets of every partition, then prints a summary read back from Kafka itself.
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
  },
});
for (const name of ['bootstrap', 'topic', 'group', 'app', 'courier-pid', 'log']) {
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
    const answered = stats ? stats.acknowledged + stats.rejected : 0;
    const rate = lastPrint ? String(Math.round(((answered - lastAnswered) * 1000) / (now - lastPrint))) : '–';
    lastLine =
      `[${String(Math.round((now - t0) / 1000)).padStart(3)} s] delivered ${stats?.acknowledged ?? '?'}/${N}` +
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
const stats = await appStats();
const seconds = (tDone - t0) / 1000;

console.log('\n=== Summary (read back from Kafka) ===');
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
if (stats) {
  console.log(
    `  received ${stats.received} requests · acknowledged (200) ${stats.acknowledged} · 503 retries requested ${stats.retryRequested} · rejected (422) ${stats.rejected}`,
  );
  const duplicates = stats.acknowledged - (N - expectedPoison);
  check(stats.acknowledged >= N - expectedPoison, `acknowledged ${stats.acknowledged} >= ${N - expectedPoison} non-poison records (none lost)`);
  check(stats.rejected === expectedPoison, `422s ${stats.rejected} == ${expectedPoison} poison records`);
  check(stats.retryRequested >= expected503, `503s answered ${stats.retryRequested} >= ${expected503} first attempts on offsets ≡ 7 (mod 20)`);
  if (duplicates > 0) console.log(`  note: ${duplicates} duplicate deliveries (allowed: at-least-once)`);
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
