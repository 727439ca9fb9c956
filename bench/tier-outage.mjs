// Courier's retry tiers through an app outage (started by scripts/tier-outage.sh, which starts the
// broker): a steady producer, an in-process app that answers 503 to everything for N minutes, and
// Courier with retry tiers in partition mode. It checks that no record is lost or dead-lettered and
// that no source partition is held while the app is down. See bench/README.md ("Retry tiers through
// an outage") for the timeline and the verdict rules.
//
//   node bench/tier-outage.mjs --bootstrap HOST:PORT [--outage-minutes 10] [--tiers 1m,5m,15m] [--rate 20]
//
// Progress goes to stderr, the table to stdout, the figures to bench/results/tier-outage-<UTC date>.json
// (a run with other options: next to its logs);
// Courier's log and every 5 s sample to .bench/outage/<timestamp>/. Exit 0 on PASS, 1 on FAIL, 2 on bad options.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import rdkafka from '@confluentinc/kafka-javascript';
import { readAll } from '../scripts/lib/kafka.mjs';
import { percentile, round, sleep, withAdmin } from './lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    'outage-minutes': { type: 'string', default: '10' },
    tiers: { type: 'string', default: '1m,5m,15m' },
    rate: { type: 'string', default: '20' },
    'kafka-version': { type: 'string', default: 'unknown' },
    'work-dir': { type: 'string', default: join(ROOT, '.bench', 'outage') },
    pidfile: { type: 'string' },
  },
});

function usageError(message) {
  console.error(`tier-outage.mjs: ${message}`);
  process.exit(2);
}
if (!opt.bootstrap) usageError('--bootstrap HOST:PORT is required (scripts/tier-outage.sh starts a broker and passes it)');
const OUTAGE_MIN = Number(opt['outage-minutes']);
if (!(OUTAGE_MIN > 0)) usageError(`--outage-minutes must be a number above 0, not "${opt['outage-minutes']}"`);
const RATE = Number(opt.rate);
if (!(RATE > 0 && RATE <= 5000)) usageError(`--rate must be a number of records per second in (0, 5000], not "${opt.rate}"`);

/** The delays as Courier reads COURIER_RETRY_TIERS (src/config/kinds.ts tierList); the label is the topic suffix. */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const TIERS = opt.tiers
  .split(',')
  .map((item) => item.trim())
  .filter(Boolean)
  .map((label) => {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(label);
    if (!match || Number(match[1]) <= 0) usageError(`--tiers: "${label}" is not a delay such as 30s, 5m or 1h`);
    return { label, delayMs: Number(match[1]) * UNIT_MS[match[2]] };
  });
if (TIERS.length === 0) usageError('--tiers needs at least one delay');
if (new Set(TIERS.map((t) => t.label)).size !== TIERS.length) usageError('--tiers: a delay is given twice');

// ------------------------------------------------------------------------------- settings ----

const PARTITIONS = 4;
const WARMUP_MS = 60_000;
const OUTAGE_MS = Math.round(OUTAGE_MIN * 60_000);
/** The producer goes on this long after the outage. */
const AFTER_MS = 60_000;
const SAMPLE_MS = 5000;
const PROGRESS_MS = 30_000;
/** A source partition whose committed offset stays put this long while it has lag fails the run. */
const STALL_LIMIT_MS = 30_000;
const TIERS_MS = TIERS.reduce((total, tier) => total + tier.delayMs, 0);
/** From the outage's start: every tier's delay, the outage, and 10 minutes to spare. */
const DEADLINE_AFTER_OUTAGE_START_MS = TIERS_MS + OUTAGE_MS + 600_000;
/** Pause reasons a source partition may show without being held (DESIGN: the partition moves on). */
const ALLOWED_SOURCE_PAUSES = new Set(['backpressure', 'retry_wait']);

const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
const DATE = new Date().toISOString().slice(0, 10);
const WORK = join(opt['work-dir'], STAMP);
mkdirSync(WORK, { recursive: true });
// Only the documented run (the defaults) goes to bench/results/; any other (a smoke run) stays with its logs.
const DEFAULT_RUN = opt['outage-minutes'] === '10' && opt.tiers === '1m,5m,15m' && opt.rate === '20';
const OUT = DEFAULT_RUN ? join(ROOT, 'bench', 'results', `tier-outage-${DATE}.json`) : join(WORK, 'result-summary.json');
const SAMPLES_PATH = join(WORK, 'samples.jsonl');
const COURIER_LOG = join(WORK, 'courier.log');

const TOPIC = `tier-outage-${STAMP}`;
const GROUP = `tier-outage-${STAMP}`;
const TIER_TOPICS = TIERS.map((tier) => `${TOPIC}.retry-${tier.label}`);
const DLQ_TOPIC = `${TOPIC}.dlq`;

const courierSettings = {
  COURIER_GROUP_ID: GROUP,
  COURIER_TOPICS: TOPIC,
  COURIER_ORDERING: 'partition',
  COURIER_RETRY_TIERS: TIERS.map((t) => t.label).join(','),
  COURIER_MAX_ATTEMPTS: '3',
  COURIER_RETRY_INITIAL_MS: '200',
  COURIER_RETRY_MAX_MS: '1000',
  COURIER_LOG_LEVEL: 'info',
  COURIER_HOST: '127.0.0.1',
  COURIER_PORT: '0',
};

// ------------------------------------------------------------------------------- progress ----

const startedAt = new Date();
/** The producer's start: every time in the report is relative to it. */
let t0 = Date.now();
const rel = (at) => (at - t0) / 1000;
const fmtS = (ms) => `${Math.round(ms / 1000)}s`;
function say(text) {
  process.stderr.write(`tier-outage: ${text}\n`);
}

// ---------------------------------------------------------------------------- the records ----

/** id → what the run knows of the record: produced when, where it landed, its answers. */
const records = new Map();
let producedCount = 0;
let produceErrors = 0;
let acknowledgedCount = 0;
let outageStartAt = Number.POSITIVE_INFINITY;
let outageEndAt = Number.POSITIVE_INFINITY;
let produceEndAt = Number.POSITIVE_INFINITY;

function phaseAt(at) {
  if (at < outageStartAt) return 'warm-up';
  if (at < outageEndAt) return 'outage';
  if (at < produceEndAt) return 'after';
  return 'drain';
}

// -------------------------------------------------------------------------------- the app ----

/** Every request the app answered, compact: the run's memory grows by one of these per request. */
const requests = [];
const requestStats = { total: 0, byStatus: {}, unknownIds: 0, coordinateMismatches: 0, mismatchExamples: [] };

const app = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const at = Date.now();
    const status = at >= outageStartAt && at < outageEndAt ? 503 : 200;
    let id;
    try {
      id = JSON.parse(Buffer.concat(chunks).toString('utf8')).id;
    } catch {
      // counted as unknown below
    }
    const partition = Number(req.headers['kafka-partition']);
    const offset = Number(req.headers['kafka-offset']);
    const attempt = Number(req.headers['courier-attempt']);
    requests.push({ id, ceId: req.headers['ce-id'], partition, offset, attempt, status, at });
    requestStats.total++;
    requestStats.byStatus[status] = (requestStats.byStatus[status] ?? 0) + 1;
    const record = id === undefined ? undefined : records.get(id);
    if (!record) requestStats.unknownIds++;
    else {
      record.requests++;
      // A record from a tier comes back as the original: its source topic, partition, offset and ce-id.
      if (record.offset !== undefined) {
        const ceId = `${TOPIC}-${record.partition}-${record.offset}`;
        if (req.headers['kafka-topic'] !== TOPIC || partition !== record.partition || offset !== record.offset || req.headers['ce-id'] !== ceId) {
          requestStats.coordinateMismatches++;
          if (requestStats.mismatchExamples.length < 10)
            requestStats.mismatchExamples.push({
              id,
              expected: { topic: TOPIC, partition: record.partition, offset: record.offset, ceId },
              got: { topic: req.headers['kafka-topic'], partition, offset, ceId: req.headers['ce-id'] },
            });
        }
      }
      if (status === 200) {
        if (record.acks++ === 0) {
          record.firstAckAt = at;
          acknowledgedCount++;
        }
      }
    }
    // 503 without Retry-After: a plain failure to Courier (not an overload answer).
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : 'outage');
  });
});
await new Promise((resolveListen) => app.listen(0, '127.0.0.1', resolveListen));
const APP_URL = `http://127.0.0.1:${app.address().port}/ingest`;

// -------------------------------------------------------------------------------- courier ----

let courier;
let courierExit;
let apiBase;

function startTimeOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Starts Courier with only this run's COURIER_* and KAFKA_* settings; resolves with its API's base URL. */
function startCourier() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('COURIER_') && !name.startsWith('KAFKA_')));
  Object.assign(env, courierSettings, { COURIER_TARGET_URL: APP_URL, KAFKA_BOOTSTRAP_SERVERS: opt.bootstrap });
  const log = createWriteStream(COURIER_LOG, { flags: 'a' });
  courier = spawn(process.execPath, ['dist/main.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (courier.pid && opt.pidfile) appendFileSync(opt.pidfile, `${courier.pid} ${startTimeOf(courier.pid) ?? ''} courier\n`);
  const exited = new Promise((resolveExit) => {
    courier.on('exit', (code, signal) => resolveExit((courierExit = { code, signal, at: Date.now() })));
    courier.on('error', (error) => resolveExit((courierExit = { code: null, signal: null, error: error.message, at: Date.now() })));
  });
  courier.stderr.on('data', (chunk) => log.write(chunk));
  return new Promise((resolvePort, reject) => {
    let buffered = '';
    let found = false;
    courier.stdout.on('data', (chunk) => {
      log.write(chunk);
      if (found) return;
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line.includes('"msg":"api listening"')) continue;
        const { port } = JSON.parse(line);
        found = true;
        buffered = '';
        resolvePort(`http://127.0.0.1:${port}`);
        return;
      }
    });
    const timer = setTimeout(() => reject(new Error(`Courier logged no "api listening" within 60 s (log: ${COURIER_LOG})`)), 60_000);
    exited.then((exit) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`Courier exited (${exit.code ?? exit.signal ?? exit.error}) before it listened; last log lines:\n${tail(COURIER_LOG)}`));
    });
  });
}

function tail(path, lines = 10) {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function api(path, timeoutMs = 4000) {
  const response = await fetch(`${apiBase}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (path === '/metrics') {
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.text();
  }
  const body = await response.json();
  if (!response.ok && path !== '/readyz') throw new Error(`${path}: HTTP ${response.status}`);
  return body;
}

async function stopCourier(graceMs = 30_000) {
  if (!courier || courierExit) return courierExit;
  courier.kill('SIGTERM');
  const exit = await Promise.race([new Promise((r) => courier.once('exit', () => r(courierExit))), sleep(graceMs).then(() => undefined)]);
  if (exit) return exit;
  courier.kill('SIGKILL');
  await new Promise((r) => (courierExit ? r() : courier.once('exit', r)));
  return courierExit;
}

let stopping = false;
process.on('exit', () => {
  if (courier && !courierExit) courier.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, async () => {
    if (stopping) process.exit(130);
    stopping = true;
    say(`${signal}: stopping Courier and the app`);
    await stopCourier(5000);
    process.exit(130);
  });
}

/** `courier_retry_tier_records` of our topic by tier and state, and `courier_records_dead_lettered_total` summed. */
function parseMetrics(text) {
  const tiers = Object.fromEntries(TIERS.map((t) => [t.label, { written: 0, due: 0, delivered: 0 }]));
  let deadLettered = 0;
  for (const line of text.split('\n')) {
    let match = /^courier_retry_tier_records\{([^}]*)\} (\S+)$/.exec(line);
    if (match) {
      const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      if (labels.topic !== TOPIC) continue;
      tiers[labels.tier] ??= { written: 0, due: 0, delivered: 0 };
      tiers[labels.tier][labels.state] = Number(match[2]);
      continue;
    }
    match = /^courier_records_dead_lettered_total(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match) deadLettered += Number(match[1]);
  }
  return { tiers, deadLettered };
}

/** Records somewhere in the tiers now: written to the first tier, not yet delivered from one nor dead-lettered. */
function inTiers(metrics) {
  if (!metrics) return null;
  const delivered = Object.values(metrics.tiers).reduce((total, t) => total + t.delivered, 0);
  return Math.max(0, (metrics.tiers[TIERS[0].label]?.written ?? 0) - delivered - metrics.deadLettered);
}

// -------------------------------------------------------------------------------- sampling ----

const samples = [];

/** One reading of Courier's API: lag and pause reasons per partition, route state, tier metrics. */
async function sample() {
  const at = Date.now();
  const entry = { t: round(rel(at), 1), phase: phaseAt(at) };
  const [lag, assignment, metricsText] = await Promise.allSettled([api('/v1/lag', 8000), api('/v1/assignment'), api('/metrics')]);
  const errors = [lag, assignment, metricsText].filter((r) => r.status === 'rejected').map((r) => r.reason?.message ?? String(r.reason));
  if (errors.length) entry.errors = errors;
  const paused = new Map();
  if (assignment.status === 'fulfilled') {
    for (const p of assignment.value.partitions) paused.set(`${p.topic}/${p.partition}`, p.pausedReasons);
    entry.route = assignment.value.routes.find((r) => r.topic === TOPIC)?.state ?? null;
  }
  if (lag.status === 'fulfilled') {
    const row = (p) => ({
      partition: p.partition,
      committed: p.committedOffset,
      high: p.highWatermark,
      lag: p.lag,
      paused: paused.get(`${p.topic}/${p.partition}`) ?? null,
    });
    entry.source = lag.value.partitions.filter((p) => p.topic === TOPIC).map(row);
    entry.tiers = lag.value.partitions.filter((p) => p.topic !== TOPIC).map((p) => ({ topic: p.topic, ...row(p) }));
  } else if (assignment.status === 'fulfilled') {
    // Pause reasons without offsets still count for the pause check.
    entry.source = assignment.value.partitions
      .filter((p) => p.topic === TOPIC)
      .map((p) => ({ partition: p.partition, committed: undefined, high: undefined, lag: undefined, paused: p.pausedReasons }));
  }
  if (metricsText.status === 'fulfilled') entry.metrics = parseMetrics(metricsText.value);
  samples.push(entry);
  appendFileSync(SAMPLES_PATH, `${JSON.stringify(entry)}\n`);
  return entry;
}

// ------------------------------------------------------------------------------- the run ----

const gitCommit = (() => {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
})();

say(`run ${STAMP}: topic ${TOPIC} (${PARTITIONS} partitions), tiers ${TIERS.map((t) => t.label).join(',')}, outage ${OUTAGE_MIN} min, ${RATE} records/s`);
say(`logs and samples: ${WORK.replace(`${ROOT}/`, '')}/`);

// Tier topics with the source's partition count; nothing is auto-created.
await withAdmin(opt.bootstrap, async (admin) => {
  const topics = [
    { topic: TOPIC, numPartitions: PARTITIONS },
    ...TIER_TOPICS.map((topic) => ({ topic, numPartitions: PARTITIONS })),
    { topic: DLQ_TOPIC, numPartitions: 1 },
  ];
  await admin.createTopics({ topics: topics.map((t) => ({ ...t, replicationFactor: 1 })) });
  for (const { topic, numPartitions } of topics) {
    for (let i = 0; ; i++) {
      try {
        if ((await admin.fetchTopicOffsets(topic)).length === numPartitions) break;
      } catch {
        // not visible yet
      }
      if (i >= 100) throw new Error(`topic ${topic} not visible 10 s after creation`);
      await sleep(100);
    }
  }
});
say(`created ${TOPIC}, ${TIER_TOPICS.join(', ')} (${PARTITIONS} partitions each) and ${DLQ_TOPIC}`);

apiBase = await startCourier();
say(`courier pid ${courier.pid}, API ${apiBase}, app ${APP_URL}`);

// Ready, with every source and tier partition assigned, before the clock starts.
{
  const wanted = PARTITIONS * (1 + TIERS.length);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (courierExit) throw new Error(`Courier exited (${courierExit.code ?? courierExit.signal}) before it was ready; last log lines:\n${tail(COURIER_LOG)}`);
    try {
      const ready = await api('/readyz');
      const assigned = (await api('/v1/assignment')).partitions.length;
      if (ready.ready && assigned === wanted) break;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`Courier not ready with ${wanted} partitions within 120 s (log: ${COURIER_LOG})`);
    await sleep(250);
  }
}

const producer = new rdkafka.Producer({
  'bootstrap.servers': opt.bootstrap,
  'client.id': 'courier-tier-outage-producer',
  acks: 'all',
  dr_cb: true,
  log_level: 0,
});
producer.on('delivery-report', (error, report) => {
  const record = records.get(report?.opaque);
  if (error || !record) {
    produceErrors++;
    if (record) record.produceError = error?.message ?? 'no report';
    return;
  }
  record.partition = report.partition;
  record.offset = report.offset;
  record.delivered = true;
  producedCount++;
});
await new Promise((resolveConnect, reject) => producer.connect({ timeout: 30_000 }, (error) => (error ? reject(error) : resolveConnect())));
producer.setPollInterval(20);

t0 = Date.now();
outageStartAt = t0 + WARMUP_MS;
outageEndAt = outageStartAt + OUTAGE_MS;
produceEndAt = outageEndAt + AFTER_MS;
const deadlineAt = outageStartAt + DEADLINE_AFTER_OUTAGE_START_MS;
say(
  `timeline: warm-up until ${fmtS(WARMUP_MS)}, outage (503 to every request) until ${fmtS(outageEndAt - t0)}, producing until ${fmtS(produceEndAt - t0)}, deadline ${fmtS(deadlineAt - t0)}`,
);

let attempted = 0;
const producing = (async () => {
  while (Date.now() < produceEndAt && !stopping && !courierExit) {
    const due = Math.min(Math.floor(((Date.now() - t0) / 1000) * RATE) + 1, Math.ceil(((produceEndAt - t0) / 1000) * RATE));
    while (attempted < due) {
      const n = attempted++;
      const id = `r${n}`;
      const producedAt = Date.now();
      records.set(id, { n, producedAt, acks: 0, requests: 0, firstAckAt: undefined });
      try {
        producer.produce(TOPIC, n % PARTITIONS, Buffer.from(JSON.stringify({ id, producedAt })), id, producedAt, id);
      } catch (error) {
        produceErrors++;
        records.get(id).produceError = error.message;
      }
    }
    await sleep(Math.max(1, Math.min(50, produceEndAt - Date.now())));
  }
  await new Promise((resolveFlush) => producer.flush(30_000, () => resolveFlush()));
  for (let waited = 0; producedCount + produceErrors < attempted && waited < 10_000; waited += 50) await sleep(50);
  await new Promise((resolveDisconnect) => producer.disconnect(() => resolveDisconnect()));
})();

let sampling = true;
const sampler = (async () => {
  for (let k = 0; sampling; k++) {
    const next = t0 + k * SAMPLE_MS;
    if (next > Date.now()) await sleep(next - Date.now());
    if (!sampling) break;
    try {
      await sample();
    } catch (error) {
      say(`sample failed: ${error.message}`);
    }
  }
})();

let lastProgressAt = 0;
function progressLine() {
  lastProgressAt = Date.now();
  const last = samples.at(-1);
  const tiers = inTiers(last?.metrics);
  say(
    `[${String(Math.round(rel(Date.now()))).padStart(4)}s] ${phaseAt(Date.now()).padEnd(7)} produced ${producedCount} · acknowledged ${acknowledgedCount} · unacknowledged ${producedCount - acknowledgedCount} · in tiers ${tiers ?? '?'} · route ${last?.route ?? '?'}${produceErrors ? ` · produce errors ${produceErrors}` : ''}`,
  );
}

let endReason;
let courierDied = false;
{
  let nextProgress = t0 + PROGRESS_MS;
  let announced = 'warm-up';
  let productionDone = false;
  producing.then(() => {
    productionDone = true;
  });
  for (;;) {
    const now = Date.now();
    const phase = phaseAt(now);
    if (phase !== announced) {
      announced = phase;
      if (phase === 'outage') say(`outage begins: the app answers 503 (no Retry-After) to every request for ${OUTAGE_MIN} min`);
      if (phase === 'after') say('outage over: the app answers 200 again; producing for one more minute');
      if (phase === 'drain') say('production over: waiting until every record is acknowledged');
    }
    if (now >= nextProgress) {
      progressLine();
      nextProgress += PROGRESS_MS;
    }
    // Interrupted: the signal handler stops Courier and exits; no report.
    if (stopping) await new Promise(() => undefined);
    if (courierExit) {
      courierDied = true;
      endReason = `courier exited (${courierExit.code ?? courierExit.signal ?? courierExit.error}) at ${Math.round(rel(courierExit.at))} s`;
      break;
    }
    if (productionDone && acknowledgedCount >= producedCount && producedCount + produceErrors >= attempted) {
      endReason = 'every produced record acknowledged';
      break;
    }
    if (now > deadlineAt) {
      endReason = `deadline (${fmtS(deadlineAt - t0)}) passed with ${producedCount - acknowledgedCount} records unacknowledged`;
      break;
    }
    await sleep(250);
  }
}
const endedAt = Date.now();
if (endedAt - lastProgressAt > 1000) progressLine();
say(`end: ${endReason}`);

// Courier's offsets catch up within a commit interval or two: the final lag is part of the report.
let finalSample;
if (!courierExit) {
  for (let i = 0; i < 6; i++) {
    try {
      finalSample = await sample();
      const total = [...(finalSample.source ?? []), ...(finalSample.tiers ?? [])].reduce((n, r) => n + (r.lag ?? 0), 0);
      if (finalSample.source && total === 0) break;
    } catch {
      // try again
    }
    await sleep(2500);
  }
}
sampling = false;
await sampler;
await producing;
const exit = await stopCourier();
app.close();
writeFileSync(join(WORK, 'requests.jsonl'), requests.map((r) => JSON.stringify(r)).join('\n') + (requests.length ? '\n' : ''));

// ---------------------------------------------------------------------------------- report ----

const dlq = await readAll(opt.bootstrap, DLQ_TOPIC, 60_000);
const dlqIds = new Set();
for (const record of dlq) {
  try {
    dlqIds.add(JSON.parse(record.value).id);
  } catch {
    dlqIds.add(`(unparsed ${record.partition}/${record.offset})`);
  }
}

const produced = [...records.entries()].filter(([, r]) => r.delivered);
const lostIds = produced.filter(([id, r]) => r.acks === 0 && !dlqIds.has(id)).map(([id]) => id);
const duplicateIds = produced.filter(([, r]) => r.acks > 1).map(([id]) => id);
const ackTimes = produced
  .filter(([, r]) => r.acks > 0)
  .map(([id, r]) => [(r.firstAckAt - r.producedAt) / 1000, id])
  .sort((a, b) => a[0] - b[0]);
const ackSeconds = ackTimes.map(([s]) => s);
const slowest = ackTimes.at(-1);
const lastMetrics = [...samples].reverse().find((s) => s.metrics)?.metrics ?? null;

/**
 * Per source partition, the longest stretch between samples in [from, to] in which its committed
 * offset did not advance although it had lag (a stretch restarts at an advance or at lag 0).
 * The last sample before `from` is the baseline.
 */
function stalls(from, to) {
  const inWindow = samples.filter((s) => s.source && s.t * 1000 >= from && s.t * 1000 <= to);
  const before = samples.filter((s) => s.source && s.t * 1000 < from).at(-1);
  const window = before ? [before, ...inWindow] : inWindow;
  const perPartition = {};
  for (let p = 0; p < PARTITIONS; p++) {
    let previous;
    let since;
    let longest = { seconds: 0, fromS: null, toS: null };
    for (const s of window) {
      const row = s.source.find((r) => r.partition === p);
      if (!row || row.lag === undefined) continue;
      const committed = row.committed ?? -1;
      if (previous === undefined || committed > previous || row.lag === 0) since = s.t;
      else if (s.t - since > longest.seconds) longest = { seconds: round(s.t - since, 1), fromS: since, toS: s.t };
      previous = committed;
    }
    perPartition[p] = longest;
  }
  const worst = Object.entries(perPartition).reduce((a, b) => (b[1].seconds > a[1].seconds ? b : a));
  return { longestS: worst[1].seconds, partition: Number(worst[0]), samples: inWindow.length, perPartition };
}
const outageWindow = { from: outageStartAt - t0, to: outageEndAt - t0 };
const stallsOutage = stalls(outageWindow.from, outageWindow.to);
const stallsRun = stalls(0, endedAt - t0);

/** Pause reasons of source partitions other than backpressure/retry_wait, per partition and reason: when seen. */
function unexpectedPauses(from, to) {
  const seen = new Map();
  for (const s of samples) {
    if (!s.source || s.t * 1000 < from || s.t * 1000 > to) continue;
    for (const row of s.source)
      for (const reason of row.paused ?? []) {
        if (ALLOWED_SOURCE_PAUSES.has(reason)) continue;
        const key = `${row.partition}/${reason}`;
        const entry = seen.get(key) ?? { partition: row.partition, reason, firstS: s.t, lastS: s.t, samples: 0 };
        entry.lastS = s.t;
        entry.samples++;
        seen.set(key, entry);
      }
  }
  return [...seen.values()];
}
const pausesOutage = unexpectedPauses(outageWindow.from, outageWindow.to);
const pausesRun = unexpectedPauses(0, endedAt - t0);
const tierPauseReasons = {};
const sourcePauseReasons = {};
for (const s of samples) {
  for (const row of s.tiers ?? []) for (const reason of row.paused ?? []) tierPauseReasons[reason] = (tierPauseReasons[reason] ?? 0) + 1;
  for (const row of s.source ?? []) for (const reason of row.paused ?? []) sourcePauseReasons[reason] = (sourcePauseReasons[reason] ?? 0) + 1;
}
const routeStates = [];
for (const s of samples) if (s.route && s.route !== routeStates.at(-1)?.state) routeStates.push({ state: s.route, fromS: s.t });
const sampleErrors = samples.filter((s) => s.errors).length;

/** Courier's warnings and errors by message (its log is JSON lines, pino levels: 40 warn, 50 error, 60 fatal). */
const courierProblems = {};
for (const line of readFileSync(COURIER_LOG, 'utf8').split('\n')) {
  if (!line.startsWith('{')) continue;
  try {
    const entry = JSON.parse(line);
    if (entry.level >= 40) {
      const key = `${entry.level >= 50 ? 'error' : 'warn'}: ${entry.msg}`;
      courierProblems[key] = (courierProblems[key] ?? 0) + 1;
    }
  } catch {
    // not a log line
  }
}

const failures = [];
if (lostIds.length) failures.push(`${lostIds.length} records lost`);
if (dlq.length) failures.push(`${dlq.length} records in the DLQ`);
if (stallsOutage.longestS * 1000 > STALL_LIMIT_MS)
  failures.push(`source partition ${stallsOutage.partition} stalled ${stallsOutage.longestS} s with lag during the outage (limit ${STALL_LIMIT_MS / 1000} s)`);
// The run itself must have tested something.
if (produceErrors) failures.push(`${produceErrors} records could not be produced (the run is not valid)`);
if (stallsOutage.samples === 0) failures.push('no sample of Courier during the outage (the run is not valid)');
if (!((lastMetrics?.tiers[TIERS[0].label]?.written ?? 0) > 0)) failures.push(`no record reached the first tier (the outage tested nothing)`);
if (courierDied) failures.push(endReason);
else if (exit && exit.code !== 0) failures.push(`courier stopped with ${exit.code ?? exit.signal} after SIGTERM`);
const pass = failures.length === 0;

const report = {
  date: startedAt.toISOString(),
  durationS: round((Date.now() - startedAt.getTime()) / 1000, 1),
  commit: gitCommit,
  machine: { cores: os.cpus().length, node: process.version, kafka: opt['kafka-version'], loadAverage: os.loadavg().map((l) => round(l, 2)) },
  settings: {
    partitions: PARTITIONS,
    rate: RATE,
    warmupS: WARMUP_MS / 1000,
    outageMinutes: OUTAGE_MIN,
    afterOutageS: AFTER_MS / 1000,
    tiers: TIERS,
    deadlineS: (deadlineAt - t0) / 1000,
    stallLimitS: STALL_LIMIT_MS / 1000,
    sampleS: SAMPLE_MS / 1000,
    topics: { source: TOPIC, tiers: TIER_TOPICS, dlq: DLQ_TOPIC },
    courier: courierSettings,
  },
  timeline: {
    outageStartS: rel(outageStartAt),
    outageEndS: rel(outageEndAt),
    produceEndS: rel(produceEndAt),
    endS: round(rel(endedAt), 1),
    endReason,
  },
  verdict: pass ? 'PASS' : 'FAIL',
  failures,
  produced: producedCount,
  produceErrors,
  acknowledged: produced.filter(([, r]) => r.acks > 0).length,
  lost: lostIds.length,
  lostIds: lostIds.slice(0, 50),
  deadLettered: dlq.length,
  deadLetteredIds: [...dlqIds].slice(0, 50),
  deadLetteredMetric: lastMetrics?.deadLettered ?? null,
  duplicates: duplicateIds.length,
  duplicateIds: duplicateIds.slice(0, 50),
  requests: {
    ...requestStats,
    perRecordMax: produced.reduce((most, [, r]) => Math.max(most, r.requests), 0),
    highestAttemptHeader: requests.reduce((most, r) => Math.max(most, r.attempt || 0), 0),
  },
  tiers: lastMetrics?.tiers ?? null,
  produceToAck: {
    p50S: round(percentile(ackSeconds, 50), 2),
    p99S: round(percentile(ackSeconds, 99), 2),
    maxS: round(slowest?.[0], 2),
    slowestId: slowest?.[1] ?? null,
  },
  stalls: { outage: stallsOutage, wholeRun: stallsRun },
  unexpectedSourcePauses: { outage: pausesOutage, wholeRun: pausesRun },
  sourcePauseReasons,
  tierPauseReasons,
  routeStates,
  finalLag: finalSample?.source
    ? {
        source: Object.fromEntries(finalSample.source.map((r) => [r.partition, r.lag])),
        tiers: Object.fromEntries((finalSample.tiers ?? []).map((r) => [`${r.topic}/${r.partition}`, r.lag])),
      }
    : null,
  samples: samples.length,
  sampleErrors,
  courier: { exit, problems: courierProblems, log: COURIER_LOG.replace(`${ROOT}/`, '') },
  samplesFile: SAMPLES_PATH.replace(`${ROOT}/`, ''),
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(WORK, 'result.json'), `${JSON.stringify(report, null, 2)}\n`);

const fmt = (value, digits = 0) =>
  value === null || value === undefined ? '—' : Number(value).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rows = [
  ['produced', fmt(producedCount), produceErrors ? `${produceErrors} produce errors` : `${RATE}/s for ${fmtS(produceEndAt - t0)}, ${PARTITIONS} partitions`],
  ['acknowledged', fmt(report.acknowledged), 'distinct ids the app answered 2xx'],
  ['lost', fmt(report.lost), lostIds.length ? `e.g. ${lostIds.slice(0, 5).join(', ')}` : 'produced, never 2xx, not in the DLQ'],
  ['dead-lettered', fmt(report.deadLettered), `records in ${DLQ_TOPIC} (metric: ${fmt(report.deadLetteredMetric)})`],
  ['duplicates', fmt(report.duplicates), 'ids answered 2xx more than once (at-least-once allows them)'],
  ...TIERS.map((t) => {
    const m = lastMetrics?.tiers[t.label];
    return [`tier ${t.label} written`, fmt(m?.written), m ? `due ${fmt(m.due)} · delivered ${fmt(m.delivered)}` : 'no metrics'];
  }),
  [
    'produce → 2xx max',
    `${fmt(report.produceToAck.maxS, 1)} s`,
    `p50 ${fmt(report.produceToAck.p50S, 1)} s · p99 ${fmt(report.produceToAck.p99S, 1)} s · ${slowest?.[1] ?? ''}`,
  ],
  [
    'longest stall (outage)',
    `${fmt(stallsOutage.longestS)} s`,
    `${Object.entries(stallsOutage.perPartition)
      .map(([p, s]) => `p${p} ${fmt(s.seconds)} s`)
      .join(' · ')} (limit ${STALL_LIMIT_MS / 1000} s, ${stallsOutage.samples} samples)`,
  ],
  ['longest stall (whole run)', `${fmt(stallsRun.longestS)} s`, `partition ${stallsRun.partition}`],
  [
    'other pause reasons',
    String(pausesOutage.length),
    pausesOutage.length
      ? pausesOutage.map((p) => `p${p.partition} ${p.reason} ${p.firstS}–${p.lastS} s`).join(' · ')
      : `none on source partitions during the outage${pausesRun.length ? ` (whole run: ${pausesRun.map((p) => `p${p.partition} ${p.reason}`).join(', ')})` : ''}`,
  ],
  [
    'tier partitions paused',
    Object.keys(tierPauseReasons).join(',') || '—',
    `route: ${routeStates.map((r) => `${r.state} from ${fmt(r.fromS)} s`).join(' → ') || '?'}`,
  ],
  [
    'requests',
    fmt(requestStats.total),
    `${Object.entries(requestStats.byStatus)
      .map(([s, n]) => `${n} × ${s}`)
      .join(' · ')} · coordinate mismatches ${requestStats.coordinateMismatches}${requestStats.unknownIds ? ` · unknown ids ${requestStats.unknownIds}` : ''}`,
  ],
];
const header = ['figure', 'value', 'notes'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => `| ${cells.map((c, i) => (i === 1 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(' | ')} |`;
process.stdout.write(
  `\nCourier retry tiers through an outage · ${DATE} · tiers ${TIERS.map((t) => t.label).join(',')} · outage ${OUTAGE_MIN} min · ${RATE} records/s · ${os.cpus().length} cores · Node ${process.version} · Kafka ${opt['kafka-version']}\n\n`,
);
process.stdout.write(
  `${[line(header), `|${widths.map((w, i) => (i === 1 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...rows.map(line)].join('\n')}\n\n`,
);
process.stdout.write(`end: ${endReason} after ${fmt(rel(endedAt))} s\n`);
process.stdout.write(`verdict: ${pass ? 'PASS' : `FAIL (${failures.join('; ')})`}\n`);
process.stdout.write(`results: ${OUT.replace(`${ROOT}/`, '')} · Courier log and samples: ${WORK.replace(`${ROOT}/`, '')}/\n`);
process.exit(pass ? 0 : 1);
