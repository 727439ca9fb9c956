// The benchmark runner (started by scripts/bench.sh, which builds Courier and the peers and starts
// the broker). Every process it starts is its own, measured from outside (/proc) or reporting its
// own process.cpuUsage; all of them are stopped on exit, Ctrl-C or failure.
//
//   node bench/run.mjs --bootstrap HOST:PORT [--short|--full] [--soak] [--out FILE]
//
// See bench/README.md for what each figure means.
import { spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import rdkafka from '@confluentinc/kafka-javascript';
import {
  committedOffsets,
  cpuSecondsOf,
  endOffsets,
  freePort,
  groupOffsetReader,
  kafka,
  memoryOf,
  nowNs,
  nsToS,
  percentile,
  processTree,
  RECORD_BYTES,
  remaining,
  round,
  sleep,
  slope,
  sum,
} from './lib.mjs';
import { PEER_NAMES, PEERS, ratioKey } from './peers/peers.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    short: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    inflight: { type: 'boolean' },
    'soak-minutes': { type: 'string', default: '10' },
    records: { type: 'string' },
    peers: { type: 'string', default: PEER_NAMES.join(',') },
    'kafka-version': { type: 'string', default: 'unknown' },
    out: { type: 'string' },
    'work-dir': { type: 'string', default: join(ROOT, '.bench', 'run') },
    pidfile: { type: 'string' },
    // For development: run only some phases (raw,courier,batch,overhead,slow,latency,peers); --latency-rate and
    // --latency-mode stand in for the Courier figures the latency phase needs.
    phases: { type: 'string', default: 'raw,courier,batch,overhead,slow,latency,peers' },
    'latency-rate': { type: 'string' },
    'latency-mode': { type: 'string' },
  },
});
if (!opt.bootstrap) {
  console.error('run.mjs: --bootstrap HOST:PORT is required (scripts/bench.sh starts a broker and passes it)');
  process.exit(2);
}

// ------------------------------------------------------------------------------- settings ----

const MODE = opt.full ? 'full' : 'short';
const PARTITIONS = 16;
const RECORDS = Number(opt.records ?? (MODE === 'full' ? 200_000 : 20_000));
/** Records for the 5 ms app: at the partition-mode bound (3,200/s) these take a few seconds. */
const SLOW_RECORDS = Math.min(RECORDS, MODE === 'full' ? 50_000 : 10_000);
const LATENCY_SECONDS = MODE === 'full' ? 30 : 10;
const LATENCY_BROKER_WARMUP_S = 10;
/** Warm-up rounds at most, and the p50 (ms) below which a warm-up round counts as settled. */
const LATENCY_WARMUP_ROUNDS = 6;
const LATENCY_SETTLED_MS = 100;
/**
 * The paced production runs this much longer, and its records are left out: a process settles for
 * a second or two when the load changes (JIT, GC, batch sizes); `perSecond` in the JSON shows it.
 */
const LATENCY_WARMUP_MS = 3000;
const SLOW_APP_MS = 5;
/** The in-flight memory check: Courier with 10,000 records in flight against an app holding each one. */
const INFLIGHT = 10_000;
/** V8's old space as deploy/ sets it for Courier: half of its memory limit (deploy/base/deployment.yaml). */
const DEPLOYED_HEAP_MIB = 128;
/** The heap for the 10,000-in-flight rows: half of the 384Mi limit README's sizing gives that many in flight. */
const INFLIGHT_HEAP_MIB = 192;
/** The latency phase's second, fixed rate (records/s), beside half of Courier's best. */
const EVERYDAY_RATE = 2000;
const HOLD_APP_MS = 20_000;
const RUN_INFLIGHT = opt.inflight ?? MODE === 'full';
/** Courier's COURIER_MAX_IN_FLIGHT default (src/config.ts); raw push at key/unordered uses the same. */
const MAX_IN_FLIGHT = 256;
const PHASES = new Set(opt.phases.split(','));
const PEER_LIST = opt.peers.split(',').filter(Boolean);
const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
const WORK = join(opt['work-dir'], STAMP);
mkdirSync(WORK, { recursive: true });
const date = new Date().toISOString().slice(0, 10);
const PARTIAL = opt.phases !== 'raw,courier,batch,overhead,slow,latency,peers' || opt.records !== undefined;
// A partial or resized run (development) does not replace the dated results.
const OUT = opt.out ?? (PARTIAL ? join(WORK, 'results.json') : join(ROOT, 'bench', 'results', `${date}${MODE === 'full' ? '' : `-${MODE}`}.json`));

// ------------------------------------------------------------------------------- progress ----

const tty = process.stderr.isTTY;
let progressText = '';
let lastPlainPrint = 0;
const phaseStarted = nowNs();
function progress(text) {
  progressText = text;
  const line = `bench [${Math.round(nsToS(nowNs() - phaseStarted))}s] ${text}`;
  if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
  else if (Date.now() - lastPlainPrint > 5000) {
    lastPlainPrint = Date.now();
    process.stderr.write(`${line}\n`);
  }
}
function say(text) {
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stderr.write(`bench: ${text}\n`);
  lastPlainPrint = 0;
  if (progressText && tty) progress(progressText);
}

// ------------------------------------------------------------------------------- children ----

const children = new Set();

function startTimeOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Starts a process whose stdout JSON lines `{"event":…}` become events; everything it prints goes
 * to WORK/<name>.log. Its pid goes to the pidfile so scripts/bench.sh can kill it if we die hard.
 */
function startChild(name, command, args, { env = {}, cwd = ROOT } = {}) {
  const logPath = join(WORK, `${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = {
    name,
    child,
    pid: child.pid,
    logPath,
    listeners: new Map(),
    events: [],
    exit: undefined,
    exited: undefined,
    on(event, fn) {
      const list = this.listeners.get(event) ?? [];
      list.push(fn);
      this.listeners.set(event, list);
      return () =>
        this.listeners.set(
          event,
          (this.listeners.get(event) ?? []).filter((f) => f !== fn),
        );
    },
  };
  handle.exited = new Promise((resolveExit) => {
    child.on('exit', (code, signal) => {
      handle.exit = { code, signal };
      children.delete(handle);
      resolveExit(handle.exit);
    });
    child.on('error', (error) => {
      handle.exit = { code: null, signal: null, error: error.message };
      children.delete(handle);
      resolveExit(handle.exit);
    });
  });
  if (child.pid && opt.pidfile) appendFileSync(opt.pidfile, `${child.pid} ${startTimeOf(child.pid) ?? ''} ${name}\n`);
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    log.write(chunk);
    buffered += chunk.toString('utf8');
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (!line.startsWith('{"event"')) continue;
      try {
        const message = JSON.parse(line);
        handle.events.push(message);
        for (const fn of handle.listeners.get(message.event) ?? []) fn(message);
      } catch {
        // not one of ours
      }
    }
  });
  child.stderr.on('data', (chunk) => log.write(chunk));
  children.add(handle);
  return handle;
}

function tail(handle, lines = 8) {
  try {
    return readFileSync(handle.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

class PhaseError extends Error {}

/** The next `event` of a child; fails when the child exits first or the time is up. */
function nextEvent(handle, event, timeoutMs, what) {
  const seen = handle.events.find((e) => e.event === event && !e.consumed);
  if (seen) {
    seen.consumed = true;
    return Promise.resolve(seen);
  }
  return new Promise((resolveEvent, reject) => {
    let settled = false;
    const off = handle.on(event, (message) => {
      message.consumed = true;
      if (done()) resolveEvent(message);
    });
    const timer = setTimeout(() => {
      if (done()) reject(new PhaseError(`${what}: no '${event}' from ${handle.name} within ${Math.round(timeoutMs / 1000)} s (log: ${handle.logPath})`));
    }, timeoutMs);
    handle.exited.then((exit) => {
      if (done())
        reject(
          new PhaseError(`${what}: ${handle.name} exited (${exit.code ?? exit.signal ?? exit.error}) before '${event}'; last log lines:\n${tail(handle)}`),
        );
    });
    function done() {
      if (settled) return false;
      settled = true;
      off();
      clearTimeout(timer);
      return true;
    }
  });
}

async function stopChild(handle, graceMs = 5000) {
  if (!handle || handle.exit) return handle?.exit;
  handle.child.kill('SIGTERM');
  const exit = await Promise.race([handle.exited, sleep(graceMs).then(() => undefined)]);
  if (exit) return exit;
  handle.child.kill('SIGKILL');
  return handle.exited;
}

let stopping = false;
async function stopAll() {
  await Promise.all([...children].map((handle) => stopChild(handle, 3000)));
}
process.on('exit', () => {
  for (const handle of children) handle.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, async () => {
    if (stopping) process.exit(130);
    stopping = true;
    say(`${signal}: stopping every process of the benchmark`);
    await stopAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------- kafka ----

const admin = kafka(opt.bootstrap).admin();
await admin.connect();

async function createTopic(topic, partitions, config = {}) {
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: Object.entries(config).map(([name, value]) => ({ name, value })) }],
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await admin.fetchTopicOffsets(topic)).length === partitions) return;
    } catch {
      // not visible yet
    }
    await sleep(100);
  }
  throw new Error(`topic ${topic} not visible 10 s after creation`);
}

/** bench/apps/producer.mjs into `topic`; `mode` is `--count N` (bulk) or `--rate R --seconds S` (paced, stamped). */
function producerChild(topic, ...mode) {
  return startChild(`produce-${topic}`, process.execPath, [
    'bench/apps/producer.mjs',
    '--bootstrap',
    opt.bootstrap,
    '--topic',
    topic,
    '--partitions',
    String(PARTITIONS),
    ...mode,
  ]);
}

async function produceBulk(topic, count) {
  const producer = producerChild(topic, '--count', String(count));
  const deadline = Math.max(120_000, count * 2);
  const waiting = nextEvent(producer, 'done', deadline, `producing ${count} records to ${topic}`);
  const ticker = setInterval(() => progress(`producing ${count.toLocaleString('en')} records of ${RECORD_BYTES} B to ${topic}`), 500);
  try {
    const done = await waiting;
    if (done.errors > 0) throw new Error(`producer reported ${done.errors} failed deliveries`);
    const ends = await endOffsets(admin, topic);
    if (sum(ends) !== count) throw new Error(`${topic} holds ${sum(ends)} records, expected ${count}`);
    return done;
  } finally {
    clearInterval(ticker);
    await stopChild(producer);
  }
}

// ------------------------------------------------------------------------------- the sinks ----

async function startSink(name, latencyMs, { h2c = false } = {}) {
  const handle = startChild(name, process.execPath, ['bench/apps/sink.mjs', '--latency-ms', String(latencyMs), ...(h2c ? ['--h2c'] : [])]);
  const { port, h2Port } = await nextEvent(handle, 'listening', 15_000, `starting ${name}`);
  // With --h2c the records go to the HTTP/2 port; the control paths stay on `port`.
  return { handle, port, latencyMs, url: `http://127.0.0.1:${h2Port ?? port}/sink` };
}

async function sinkCall(sink, method, path) {
  const response = await fetch(`http://127.0.0.1:${sink.port}${path}`, { method, signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`${sink.handle.name} ${path}: HTTP ${response.status}`);
  return response.json();
}

async function resetSink(sink, recordLatency = false) {
  sink.handle.events = sink.handle.events.filter((e) => e.event !== 'first');
  await sinkCall(sink, 'POST', `/__reset${recordLatency ? '?record=1' : ''}`);
}

// --------------------------------------------------------------------------------- phases ----

const results = { raw: {}, courier: {}, batch: {}, overhead: null, inFlight: null, inFlightHttp2: null, latency: {}, peers: {}, soak: null };
const failures = [];

function perTenK(cpuS, count) {
  return cpuS === undefined || !count ? null : round((cpuS / count) * 10_000, 3);
}

/** Runs one phase; a failure is recorded (and printed) instead of ending the benchmark. */
async function phase(label, fn) {
  progress(label);
  try {
    return await fn();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    failures.push({ phase: label, error: message });
    say(`${label} failed: ${message}`);
    return { error: message };
  }
}

async function rawConsume(topic, purpose = 'raw-consume') {
  const group = `bench-${purpose}-${STAMP}`;
  const handle = startChild(purpose, process.execPath, [
    'bench/apps/raw-consume.mjs',
    '--bootstrap',
    opt.bootstrap,
    '--topic',
    topic,
    '--group',
    group,
    '--count',
    String(RECORDS),
  ]);
  const ticker = setInterval(() => progress(`raw consume: reading ${RECORDS.toLocaleString('en')} records`), 500);
  try {
    const done = await nextEvent(handle, 'done', 60_000 + RECORDS, 'raw consume');
    const seconds = nsToS(BigInt(done.lastNs) - BigInt(done.firstNs));
    // The clock starts when the first batch is there: that batch is not part of the interval.
    const counted = done.count - done.firstBatch;
    return {
      records: done.count,
      recordsPerS: round(counted / seconds, 0),
      seconds: round(seconds, 3),
      cpuPer10k: perTenK(done.cpuS, counted),
      peakRssMb: round(done.peakMb, 1),
      group,
    };
  } finally {
    clearInterval(ticker);
    await stopChild(handle);
  }
}

/**
 * Courier's own CPU per record without Kafka (bench/overhead.mjs): the real pipeline and pusher fed
 * from memory beside undici alone, same app, same process, alternating; see bench/README.md.
 */
async function overhead(sink) {
  const records = MODE === 'full' ? 100_000 : 30_000;
  const handle = startChild('overhead', process.execPath, [
    'bench/overhead.mjs',
    '--url',
    sink.url,
    '--records',
    String(records),
    '--rounds',
    '3',
    '--ordering',
    'key',
  ]);
  const ticker = setInterval(() => progress(`overhead: pipeline beside raw push, ${records.toLocaleString('en')} records × 3 rounds`), 500);
  try {
    const { event, ...result } = await nextEvent(handle, 'done', 600_000, 'overhead');
    return result;
  } finally {
    clearInterval(ticker);
    await stopChild(handle);
  }
}

async function rawPush(sink, concurrency, count = RECORDS, name = `raw-push-${concurrency}`) {
  await resetSink(sink);
  const handle = startChild(name, process.execPath, [
    'bench/apps/raw-push.mjs',
    '--url',
    sink.url,
    '--count',
    String(count),
    '--concurrency',
    String(concurrency),
  ]);
  const ticker = setInterval(() => progress(`${name}: posting ${count.toLocaleString('en')} bodies, ${concurrency} in flight`), 500);
  try {
    const done = await nextEvent(handle, 'done', 60_000 + count * 2, name);
    if (done.errors > 0) throw new PhaseError(`raw push ×${concurrency}: ${done.errors} requests failed`);
    const seconds = nsToS(BigInt(done.lastNs) - BigInt(done.firstNs));
    return {
      records: done.count,
      concurrency,
      recordsPerS: round(done.count / seconds, 0),
      seconds: round(seconds, 3),
      cpuPer10k: perTenK(done.cpuS, done.count),
      peakRssMb: round(done.peakMb, 1),
    };
  } finally {
    clearInterval(ticker);
    await stopChild(handle);
  }
}

/**
 * A delivering process (Courier or a peer) from its start until the group's committed offsets equal
 * the topic's end offsets. Its CPU and peak RSS come from /proc; the first push is the app's clock.
 */
async function delivered({ label, name, command, args, env, sink, topic, group, count, timeoutMs, stopGraceMs = 25_000, cleanExitCodes = [] }) {
  await resetSink(sink);
  const ends = await endOffsets(admin, topic);
  if (sum(ends) !== count) throw new PhaseError(`${label}: ${topic} holds ${sum(ends)} records, expected ${count}`);
  const offsets = await groupOffsetReader(opt.bootstrap, group);
  const t0 = nowNs();
  const handle = startChild(name, command, args, { env });
  let firstNs;
  let cpuAtFirst;
  const offFirst = sink.handle.on('first', (message) => {
    cpuAtFirst = cpuSecondsOf(handle.pid);
    firstNs = BigInt(message.ns);
  });
  const deadline = Date.now() + timeoutMs;
  let left = count;
  let timedOut = false;
  let lastPeak;
  let peakPss = 0;
  try {
    while (left > 0) {
      if (handle.exit)
        throw new PhaseError(
          `${label}: ${name} exited (${handle.exit.code ?? handle.exit.signal ?? handle.exit.error}) with ${left} records not committed; last log lines:\n${tail(handle)}`,
        );
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      try {
        left = remaining(ends, await offsets.committed(topic));
      } catch {
        // the group does not exist yet
      }
      const sample = memoryOf(handle.pid);
      lastPeak = sample.peakMb ?? lastPeak;
      peakPss = Math.max(peakPss, sample.pssMb ?? 0);
      const elapsed = firstNs ? nsToS(nowNs() - firstNs) : 0;
      const rate = elapsed > 0 ? Math.round((count - left) / elapsed) : 0;
      progress(
        `${label}: ${(count - left).toLocaleString('en')} / ${count.toLocaleString('en')} committed${firstNs ? ` · ${rate.toLocaleString('en')} rec/s since first push` : ' · starting'}`,
      );
      if (left > 0) await sleep(25);
    }
    const endNs = nowNs();
    const cpuEnd = cpuSecondsOf(handle.pid);
    const memory = memoryOf(handle.pid);
    const stats = await sinkCall(sink, 'GET', '/__stats');
    const committed = count - left;
    if (!firstNs) throw new PhaseError(`${label}: the app received nothing within ${Math.round(timeoutMs / 1000)} s; last log lines:\n${tail(handle)}`);
    const seconds = nsToS(endNs - firstNs);
    const pushSeconds = nsToS(BigInt(stats.lastNs) - BigInt(stats.firstNs));
    return {
      records: count,
      committed,
      recordsPerS: round(committed / seconds, 0),
      seconds: round(seconds, 3),
      startupS: round(nsToS(firstNs - t0), 3),
      fromStartS: round(nsToS(endNs - t0), 3),
      pushedPerS: pushSeconds > 0 ? round((stats.count - 1) / pushSeconds, 0) : null,
      received: stats.count,
      requests: stats.requests,
      duplicates: Math.max(0, stats.count - committed),
      cpuPer10k: perTenK(cpuEnd - cpuAtFirst, committed),
      cpuStartupS: round(cpuAtFirst, 2),
      peakRssMb: round(memory.peakMb ?? lastPeak, 1),
      // Several processes (workers): their proportional set size, sampled every 25 ms, at its highest.
      ...(processTree(handle.pid).length > 1 ? { peakPssMb: round(peakPss, 1), processes: processTree(handle.pid).length } : {}),
      appMeanServiceMs: round(stats.meanServiceMs, 3),
      timedOut,
      ...(timedOut ? { note: `timed out after ${Math.round(timeoutMs / 1000)} s: ${committed} of ${count} committed` } : {}),
    };
  } finally {
    offFirst();
    await offsets.close();
    const exit = await stopChild(handle, stopGraceMs);
    if (exit && exit.code !== 0 && !cleanExitCodes.includes(exit.code) && exit.signal !== 'SIGTERM' && !stopping)
      say(`${name} exited with ${exit.code ?? exit.signal} after SIGTERM (log: ${handle.logPath})`);
  }
}

/** Courier's node arguments; BENCH_COURIER_NODE_ARGS adds flags, e.g. "--cpu-prof --cpu-prof-dir=.bench/prof". */
function courierArgs(heapMiB = DEPLOYED_HEAP_MIB) {
  const extra = process.env.BENCH_COURIER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  // As deploy/ runs it: NODE_OPTIONS gives V8 half of the container's memory limit (256Mi → 128 MiB).
  const heap = extra.some((flag) => flag.startsWith('--max-old-space-size')) ? [] : [`--max-old-space-size=${heapMiB}`];
  return [...heap, ...extra, 'dist/main.js'];
}

async function courierEnv({ group, topic, sink, ordering, extra = {} }) {
  return {
    COURIER_GROUP_ID: group,
    COURIER_TOPICS: topic,
    COURIER_TARGET_URL: sink.url,
    COURIER_ORDERING: ordering,
    COURIER_LOG_LEVEL: 'warn',
    COURIER_HOST: '127.0.0.1',
    COURIER_PORT: String(await freePort()),
    KAFKA_BOOTSTRAP_SERVERS: opt.bootstrap,
    ...extra,
    ...courierEnvOverrides(),
  };
}

/** BENCH_COURIER_ENV="NAME=value …" sets Courier variables in every Courier the benchmark starts (to measure a setting). */
function courierEnvOverrides() {
  const pairs = process.env.BENCH_COURIER_ENV?.split(/\s+/).filter(Boolean) ?? [];
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

/** Courier's batch delivery (DESIGN A6) with its default limits: 100 records, 1 MiB, 5 ms linger. */
const BATCH_ENV = { COURIER_DELIVERY: 'batch' };

async function courier(ordering, sink, topic, count, extra = {}) {
  const batch = extra.COURIER_DELIVERY === 'batch' ? 'batch-' : '';
  const workers = extra.COURIER_WORKERS ? `-x${extra.COURIER_WORKERS}` : '';
  const group = `bench-courier-${batch}${ordering}${workers}-${sink.latencyMs}ms-${STAMP}`;
  const env = await courierEnv({ group, topic, sink, ordering, extra });
  const result = await delivered({
    label: `courier ${batch ? 'batch ' : ''}${ordering}${workers ? ` ×${extra.COURIER_WORKERS} workers` : ''}${sink.latencyMs ? ` @${sink.latencyMs} ms app` : ''}`,
    name: `courier-${batch}${ordering}${workers}-${sink.latencyMs}ms`,
    command: process.execPath,
    args: courierArgs(),
    env,
    sink,
    topic,
    group,
    count,
    timeoutMs: 60_000 + count * 2,
  });
  return {
    ordering,
    maxInFlight: MAX_IN_FLIGHT,
    ...(workers ? { workers: Number(extra.COURIER_WORKERS) } : {}),
    ...(batch ? { delivery: 'batch', meanBatch: round(result.received / result.requests, 1) } : {}),
    ...result,
  };
}

/**
 * p50/p99/max of app receipt − produce() time (monotonic, µs precision; includes the producer's
 * linger), and of app receipt − broker append time (record timestamp of a LogAppendTime topic, ms
 * precision), for records produced after the warm-up.
 */
function latencySummary(stats) {
  const kept = [];
  const fromAppend = [];
  for (let i = 0; i < stats.latencyMs.length; i++) {
    if (stats.at[i] < LATENCY_WARMUP_MS) continue;
    kept.push(stats.latencyMs[i]);
    if (stats.fromAppendMs[i] !== null) fromAppend.push(stats.fromAppendMs[i]);
  }
  // Per second of production: how the latency moved (a queue that builds shows here).
  const series = [];
  for (let i = 0; i < stats.latencyMs.length; i++) {
    const second = Math.floor(stats.at[i] / 1000);
    series[second] ??= [];
    series[second].push(stats.latencyMs[i]);
  }
  const perSecond = series.map((values, second) => {
    values.sort((a, b) => a - b);
    return { second, records: values.length, p50Ms: round(percentile(values, 50), 2), maxMs: round(values.at(-1), 2) };
  });
  kept.sort((a, b) => a - b);
  fromAppend.sort((a, b) => a - b);
  return {
    samples: kept.length,
    p50Ms: round(percentile(kept, 50), 3),
    p99Ms: round(percentile(kept, 99), 3),
    maxMs: round(kept.at(-1), 3),
    perSecond: perSecond.filter(Boolean),
    fromBrokerAppend: {
      samples: fromAppend.length,
      p50Ms: percentile(fromAppend, 50) ?? null,
      p99Ms: percentile(fromAppend, 99) ?? null,
      maxMs: fromAppend.at(-1) ?? null,
    },
  };
}

async function waitReady(url, handle, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (handle.exit) throw new PhaseError(`${what}: ${handle.name} exited before it was ready; last log lines:\n${tail(handle)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new PhaseError(`${what}: not ready within ${Math.round(timeoutMs / 1000)} s (log: ${handle.logPath})`);
}

/** raw consume + push (raw-consume.mjs --push), ready once it has its partitions. */
function rawPipe(topic, sink, batch = false) {
  const handle = startChild(`raw-pipe-${topic}`, process.execPath, [
    'bench/apps/raw-consume.mjs',
    '--bootstrap',
    opt.bootstrap,
    '--topic',
    topic,
    '--group',
    `${topic}-${STAMP}`,
    '--push',
    sink.url,
    '--connections',
    String(MAX_IN_FLIGHT),
    ...(batch ? ['--batch'] : []),
  ]);
  return { process: handle, ready: nextEvent(handle, 'ready', 60_000, `raw consume+push on ${topic}`) };
}

/** Paced records through `start()`'s process into the sink; the sink records each latency. */
async function latencyRun({ label, topic, sink, rate, start, seconds = LATENCY_SECONDS }) {
  await resetSink(sink);
  const handle = await start();
  try {
    progress(`${label}: waiting for the consumer to join`);
    await handle.ready;
    // Warm-up (JIT, connections, fetch sessions): records without a produce time, delivered
    // before the paced ones start.
    const warmup = Math.min(5000, Math.max(1000, rate));
    await produceBulk(topic, warmup);
    for (let stats = await sinkCall(sink, 'GET', '/__stats'); stats.count < warmup; stats = await sinkCall(sink, 'GET', '/__stats')) {
      if (handle.process.exit) throw new PhaseError(`${label}: ${handle.process.name} exited during the warm-up; last log lines:\n${tail(handle.process)}`);
      progress(`${label}: warm-up, ${stats.count.toLocaleString('en')} / ${warmup.toLocaleString('en')} delivered`);
      await sleep(100);
    }
    await resetSink(sink, true);
    await sleep(500);
    const cpuBefore = cpuSecondsOf(handle.process.pid);
    const producing = seconds + LATENCY_WARMUP_MS / 1000;
    progress(`${label}: producing ${rate.toLocaleString('en')} rec/s for ${producing} s`);
    const producer = producerChild(topic, '--rate', String(rate), '--seconds', String(producing));
    const done = await nextEvent(producer, 'done', producing * 1000 + 60_000, `${label} producer`);
    await stopChild(producer);
    if (done.errors > 0) throw new PhaseError(`${label}: the producer reported ${done.errors} failed deliveries`);
    const deadline = Date.now() + 60_000;
    let stats = await sinkCall(sink, 'GET', '/__stats');
    while (stats.samples < done.produced) {
      if (Date.now() > deadline)
        throw new PhaseError(`${label}: the app received ${stats.samples} of ${done.produced} records within 60 s after the producer ended`);
      if (handle.process.exit) throw new PhaseError(`${label}: ${handle.process.name} exited; last log lines:\n${tail(handle.process)}`);
      progress(`${label}: ${stats.samples.toLocaleString('en')} / ${done.produced.toLocaleString('en')} received`);
      await sleep(200);
      stats = await sinkCall(sink, 'GET', '/__stats');
    }
    const cpuAfter = cpuSecondsOf(handle.process.pid);
    const memory = memoryOf(handle.process.pid);
    stats = await sinkCall(sink, 'GET', '/__stats?samples=1');
    return {
      rate,
      seconds,
      produced: done.produced,
      achievedRate: round(done.produced / done.seconds, 0),
      // A producer that fell behind paced fewer records than asked: the latency is of a lighter load.
      producerBehind: done.produced / done.seconds < rate * 0.95,
      cpuPer10k: perTenK(cpuAfter - cpuBefore, done.produced),
      peakRssMb: round(memory.peakMb, 1),
      ...latencySummary(stats),
    };
  } finally {
    await stopChild(handle.process, 25_000);
  }
}

/**
 * A freshly started broker JVM answers a paced produce-and-fetch load slowly for its first 30–60
 * seconds of it (JIT; the bulk phases before do not exercise those paths): measured here, a raw
 * pipe's p50 was 2.2 s in its first 15 s run, 0.5 s in its second and 16 ms after. Whichever process
 * is measured first would pay for it, so an unmeasured raw pipe runs rounds at the phase's rate
 * until the p50 of a round's last seconds is under LATENCY_SETTLED_MS; the rounds are kept in the
 * JSON, and `settled: false` flags a run whose broker never settled.
 */
async function warmBroker(topic, rate, sink, batch = false) {
  const rounds = [];
  for (let round = 1; round <= LATENCY_WARMUP_ROUNDS; round++) {
    const roundTopic = `${topic}-${round}`;
    await createTopic(roundTopic, PARTITIONS);
    const result = await latencyRun({
      label: `broker warm-up ${round}`,
      topic: roundTopic,
      sink,
      rate,
      start: () => rawPipe(roundTopic, sink, batch),
      seconds: LATENCY_BROKER_WARMUP_S,
    });
    // The last full seconds say where the broker is now; the round's p50 also holds its start.
    const tail = result.perSecond
      .filter((second) => second.records >= rate * 0.5)
      .slice(-3)
      .map((second) => second.p50Ms)
      .sort((x, y) => x - y);
    const tailP50 = tail.length > 0 ? tail[Math.floor(tail.length / 2)] : result.p50Ms;
    rounds.push({ p50Ms: result.p50Ms, lastSecondsP50Ms: tailP50 });
    if (tailP50 < LATENCY_SETTLED_MS) return { rate, rounds, settled: true };
  }
  say(`latency warm-up: the broker did not settle at ${rate}/s (p50 of each round's last seconds: ${rounds.map((r) => r.lastSecondsP50Ms).join(', ')} ms)`);
  return { rate, rounds, settled: false };
}

// ----------------------------------------------------------------------------------- peers ----

function peerStatus(peer) {
  const file = join(ROOT, '.bench', 'peers', `${peer}.json`);
  if (!existsSync(file)) return { ok: false, reason: `not built: run bash bench/peers/build.sh ${peer} (scripts/bench.sh does)` };
  return JSON.parse(readFileSync(file, 'utf8'));
}

async function runPeer(peer, status, sink, topic) {
  const group = `bench-${peer}-${STAMP}`;
  const dir = join(WORK, peer);
  mkdirSync(dir, { recursive: true });
  const values = {
    BOOTSTRAP: opt.bootstrap,
    TOPIC: topic,
    GROUP: group,
    TARGET_URL: sink.url,
    MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
    PARTITIONS: String(PARTITIONS),
  };
  const { command, args, env = {} } = await PEERS[peer].start({ root: ROOT, dir, status, values, sink });
  return delivered({
    label: peer,
    name: peer,
    command,
    args,
    env,
    sink,
    topic,
    group,
    count: RECORDS,
    timeoutMs: 90_000 + RECORDS * 5,
    stopGraceMs: 10_000,
    cleanExitCodes: PEERS[peer].cleanExitCodes,
  });
}

// -------------------------------------------------------------------------------- in flight ----

/** Courier's RSS while INFLIGHT records are in flight (an app that holds each request HOLD_APP_MS). */
async function inFlightMemory(topic, { http2 = false } = {}) {
  const sink = await startSink(http2 ? 'app-hold-h2c' : 'app-hold', HOLD_APP_MS, { h2c: http2 });
  const group = `bench-inflight${http2 ? '-h2' : ''}-${STAMP}`;
  const env = await courierEnv({
    group,
    topic,
    sink,
    ordering: 'unordered',
    extra: { COURIER_MAX_IN_FLIGHT: String(INFLIGHT), COURIER_PARTITION_BUFFER: '1000', ...(http2 ? { COURIER_APP_HTTP2: 'true' } : {}) },
  });
  // Configured as README's sizing says for this many in flight: limits.memory 384Mi, so a 192 MiB heap.
  const handle = startChild(`courier-inflight${http2 ? '-h2' : ''}`, process.execPath, courierArgs(INFLIGHT_HEAP_MIB), { env });
  try {
    const deadline = Date.now() + 60_000;
    let heldSince;
    let rssAtFullMb = 0;
    let stats = { open: 0, maxOpen: 0 };
    for (;;) {
      if (handle.exit) throw new PhaseError(`courier (${INFLIGHT} in flight) exited; last log lines:\n${tail(handle)}`);
      stats = await sinkCall(sink, 'GET', '/__stats');
      const { rssMb } = memoryOf(handle.pid);
      if (stats.open >= INFLIGHT) {
        heldSince ??= Date.now();
        rssAtFullMb = Math.max(rssAtFullMb, rssMb ?? 0);
        if (Date.now() - heldSince > 2000) break;
      }
      if (Date.now() > deadline) throw new PhaseError(`courier never had ${INFLIGHT} records in flight within 60 s (the app held at most ${stats.maxOpen})`);
      progress(
        `courier ${INFLIGHT.toLocaleString('en')} in flight: the app holds ${stats.open.toLocaleString('en')} requests · RSS ${(rssMb ?? 0).toFixed(0)} MB`,
      );
      await sleep(200);
    }
    // Where the memory is, as Courier's own /metrics says (prom-client's process and heap gauges).
    const breakdown = {};
    try {
      const text = await (await fetch(`http://127.0.0.1:${env.COURIER_PORT}/metrics`)).text();
      const gauge = (name) => Number(text.match(new RegExp(`^${name} (\\S+)`, 'm'))?.[1] ?? Number.NaN) / 1048576;
      Object.assign(breakdown, {
        heapUsedMb: round(gauge('nodejs_heap_size_used_bytes'), 1),
        heapTotalMb: round(gauge('nodejs_heap_size_total_bytes'), 1),
        externalMb: round(gauge('nodejs_external_memory_bytes'), 1),
      });
    } catch {
      // the figures are extra; RSS is the measure
    }
    return {
      inFlight: stats.maxOpen,
      appHoldMs: HOLD_APP_MS,
      rssAtFullMb: round(rssAtFullMb, 1),
      peakRssMb: round(memoryOf(handle.pid).peakMb, 1),
      ...breakdown,
    };
  } finally {
    // Nothing is measured after this: no need to wait for the held requests.
    await stopChild(handle, 1000);
    await stopChild(sink.handle, 1000);
  }
}

// ------------------------------------------------------------------------------------ soak ----

async function soak(rate, sink, topic) {
  const minutes = Number(opt['soak-minutes']);
  const group = `bench-soak-${STAMP}`;
  const handle = startChild('courier-soak', process.execPath, courierArgs(), {
    env: await courierEnv({ group, topic, sink, ordering: 'unordered' }),
  });
  try {
    await sleep(3000);
    const producer = producerChild(topic, '--rate', String(rate), '--seconds', String(minutes * 60));
    const t0 = nowNs();
    const cpuBefore = cpuSecondsOf(handle.pid);
    const samples = [];
    while (!producer.exit) {
      if (handle.exit) throw new PhaseError(`soak: Courier exited; last log lines:\n${tail(handle)}`);
      const { rssMb } = memoryOf(handle.pid);
      const minute = nsToS(nowNs() - t0) / 60;
      samples.push([round(minute, 3), round(rssMb, 1)]);
      progress(`soak: ${minute.toFixed(1)} / ${minutes} min at ${rate.toLocaleString('en')} rec/s · RSS ${rssMb.toFixed(1)} MB`);
      await Promise.race([sleep(5000), producer.exited]);
    }
    const cpuAfter = cpuSecondsOf(handle.pid);
    const produced = (await nextEvent(producer, 'done', 30_000, 'soak producer').catch(() => undefined))?.produced;
    const settled = samples.filter(([minute]) => minute >= 1);
    const lag = remaining(await endOffsets(admin, topic), await committedOffsets(opt.bootstrap, group, topic));
    return {
      minutes,
      rate,
      slopeMbPerMin: round(slope(settled), 3),
      rssStartMb: settled[0]?.[1] ?? null,
      rssEndMb: settled.at(-1)?.[1] ?? null,
      peakRssMb: round(memoryOf(handle.pid).peakMb, 1),
      produced: produced ?? null,
      cpuPer10k: produced ? perTenK(cpuAfter - cpuBefore, produced) : null,
      lagAtEnd: lag,
      samples,
    };
  } finally {
    await stopChild(handle, 25_000);
  }
}

// ------------------------------------------------------------------------------------- run ----

function machine() {
  const version = (name) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memoryGb: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    kafka: opt['kafka-version'],
    kafkaClient: `@confluentinc/kafka-javascript ${version('@confluentinc/kafka-javascript')} (librdkafka ${rdkafka.librdkafkaVersion})`,
    undici: version('undici'),
    loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
  };
}

const started = new Date();
const info = machine();
say(`${MODE} run: ${RECORDS.toLocaleString('en')} records of ${RECORD_BYTES} B on ${PARTITIONS} partitions; logs in ${WORK.replace(`${ROOT}/`, '')}`);
if (info.loadAverageAtStart[0] > info.cores * 0.5)
  say(`warning: load average ${info.loadAverageAtStart[0]} on ${info.cores} cores: other work is running, figures will be noisy`);

let exitCode = 0;
try {
  const MAIN = 'bench-main';
  const SLOW = 'bench-slow';
  await createTopic(MAIN, PARTITIONS);
  await createTopic(SLOW, PARTITIONS);
  // Courier's default dead-letter topics (never written here: the apps answer 204).
  await createTopic(`${MAIN}.dlq`, 1);
  await createTopic(`${SLOW}.dlq`, 1);
  const produced = await produceBulk(MAIN, RECORDS);
  say(`produced ${RECORDS.toLocaleString('en')} records in ${produced.seconds.toFixed(1)} s`);
  await produceBulk(SLOW, SLOW_RECORDS);

  const fast = await startSink('app-fast', 0);
  const slow = await startSink('app-5ms', SLOW_APP_MS);

  // A freshly started broker JVM serves its first fetches slower, and a fresh app its first
  // requests (JIT): read the topic once and post to each app, unmeasured, before measuring.
  await phase('warm-up', async () => {
    await rawConsume(MAIN, 'warmup');
    for (const sink of [fast, slow]) await rawPush(sink, MAX_IN_FLIGHT, Math.min(RECORDS, 10_000), `warmup-${sink.handle.name}`);
  });

  if (PHASES.has('raw')) {
    results.raw.consume = await phase('raw consume', () => rawConsume(MAIN));
    results.raw.push16 = await phase('raw push ×16', () => rawPush(fast, PARTITIONS));
    results.raw.push256 = await phase(`raw push ×${MAX_IN_FLIGHT}`, () => rawPush(fast, MAX_IN_FLIGHT));
  }
  if (PHASES.has('courier')) {
    for (const ordering of ['partition', 'key', 'unordered']) {
      results.courier[ordering] = await phase(`courier ${ordering}`, () => courier(ordering, fast, MAIN, RECORDS));
    }
    // The second core (COURIER_WORKERS): two consumer processes in the group behind one API.
    for (const ordering of ['key', 'unordered']) {
      results.courier[`${ordering}_workers2`] = await phase(`courier ${ordering} ×2 workers`, () =>
        courier(ordering, fast, MAIN, RECORDS, { COURIER_WORKERS: '2' }),
      );
    }
  }
  if (PHASES.has('batch')) {
    results.batch = {};
    for (const ordering of ['unordered', 'key']) {
      results.batch[ordering] = await phase(`courier batch ${ordering}`, () => courier(ordering, fast, MAIN, RECORDS, BATCH_ENV));
    }
  }
  if (PHASES.has('overhead')) results.overhead = await phase('overhead', () => overhead(fast));
  if (PHASES.has('slow')) {
    for (const ordering of ['partition', 'key', 'unordered']) {
      results.courier[`${ordering}_5ms`] = await phase(`courier ${ordering} @5 ms app`, () => courier(ordering, slow, SLOW, SLOW_RECORDS));
    }
  }

  if (RUN_INFLIGHT) {
    if (RECORDS < INFLIGHT * 1.5) say(`in-flight memory check skipped: it needs at least ${INFLIGHT * 1.5} records`);
    else {
      results.inFlight = await phase(`courier ${INFLIGHT} in flight`, () => inFlightMemory(MAIN));
      results.inFlightHttp2 = await phase(`courier ${INFLIGHT} in flight over HTTP/2`, () => inFlightMemory(MAIN, { http2: true }));
    }
  }

  // Added latency at half of Courier's best measured rate.
  const bestMode =
    opt['latency-mode'] ??
    ['partition', 'key', 'unordered'].reduce((best, mode) =>
      (results.courier[mode]?.recordsPerS ?? 0) > (results.courier[best]?.recordsPerS ?? 0) ? mode : best,
    );
  const best = opt['latency-rate'] ? Number(opt['latency-rate']) * 2 : results.courier[bestMode]?.recordsPerS;
  if (best && PHASES.has('latency')) {
    const rate = Math.max(100, Math.round(best / 2));
    // LogAppendTime: the record timestamp is the broker's, for the second latency figure.
    for (const topic of ['bench-lat-courier', 'bench-lat-raw']) await createTopic(topic, PARTITIONS, { 'message.timestamp.type': 'LogAppendTime' });
    await createTopic('bench-lat-courier.dlq', 1);
    results.latency.warmup = await phase('latency warm-up', () => warmBroker('bench-lat-warm', rate, fast));
    results.latency.courier = await phase(`latency courier ${bestMode}`, async () => ({
      ordering: bestMode,
      ...(await latencyRun({
        label: `latency courier ${bestMode}`,
        topic: 'bench-lat-courier',
        sink: fast,
        rate,
        start: async () => {
          const env = await courierEnv({ group: `bench-lat-courier-${STAMP}`, topic: 'bench-lat-courier', sink: fast, ordering: bestMode });
          const process_ = startChild('courier-latency', process.execPath, courierArgs(), { env });
          return { process: process_, ready: waitReady(`http://127.0.0.1:${env.COURIER_PORT}/readyz`, process_, 60_000, 'courier (latency)') };
        },
      })),
    }));
    results.latency.raw = await phase('latency raw consume+push', () =>
      latencyRun({ label: 'latency raw consume+push', topic: 'bench-lat-raw', sink: fast, rate, start: () => rawPipe('bench-lat-raw', fast) }),
    );
    // The same pair at an everyday rate, far from every limit (issue 17: p99 added ≤ 5 ms here).
    for (const topic of ['bench-lat-courier-2k', 'bench-lat-raw-2k']) await createTopic(topic, PARTITIONS, { 'message.timestamp.type': 'LogAppendTime' });
    await createTopic('bench-lat-courier-2k.dlq', 1);
    results.latency.courierEveryday = await phase(`latency courier ${bestMode} at ${EVERYDAY_RATE}/s`, async () => ({
      ordering: bestMode,
      ...(await latencyRun({
        label: `latency courier ${bestMode} at ${EVERYDAY_RATE}/s`,
        topic: 'bench-lat-courier-2k',
        sink: fast,
        rate: EVERYDAY_RATE,
        start: async () => {
          const env = await courierEnv({ group: `bench-lat-courier-2k-${STAMP}`, topic: 'bench-lat-courier-2k', sink: fast, ordering: bestMode });
          const process_ = startChild('courier-latency-2k', process.execPath, courierArgs(), { env });
          return { process: process_, ready: waitReady(`http://127.0.0.1:${env.COURIER_PORT}/readyz`, process_, 60_000, 'courier (latency 2k)') };
        },
      })),
    }));
    results.latency.rawEveryday = await phase(`latency raw consume+push at ${EVERYDAY_RATE}/s`, () =>
      latencyRun({
        label: `latency raw consume+push at ${EVERYDAY_RATE}/s`,
        topic: 'bench-lat-raw-2k',
        sink: fast,
        rate: EVERYDAY_RATE,
        start: () => rawPipe('bench-lat-raw-2k', fast),
      }),
    );
    // Batch delivery at half of its own best rate, beside a raw pipe at that same rate: the added
    // latency includes the linger (COURIER_BATCH_LINGER_MS, 5 ms by default).
    const batchRate = (mode) => (typeof results.batch[mode]?.recordsPerS === 'number' ? results.batch[mode].recordsPerS : 0);
    const batchBest = Math.max(batchRate('unordered'), batchRate('key'));
    if (batchBest > 0) {
      const batchMode = batchRate('unordered') >= batchRate('key') ? 'unordered' : 'key';
      const halfRate = Math.max(100, Math.round(batchBest / 2));
      for (const topic of ['bench-lat-batch', 'bench-lat-batch-raw']) await createTopic(topic, PARTITIONS, { 'message.timestamp.type': 'LogAppendTime' });
      await createTopic('bench-lat-batch.dlq', 1);
      results.latency.batchWarmup = await phase('batch latency warm-up', () => warmBroker('bench-lat-batch-warm', halfRate, fast, true));
      results.latency.batch = await phase(`latency courier batch ${batchMode}`, async () => ({
        ordering: batchMode,
        ...(await latencyRun({
          label: `latency courier batch ${batchMode}`,
          topic: 'bench-lat-batch',
          sink: fast,
          rate: halfRate,
          start: async () => {
            const env = await courierEnv({ group: `bench-lat-batch-${STAMP}`, topic: 'bench-lat-batch', sink: fast, ordering: batchMode, extra: BATCH_ENV });
            const process_ = startChild('courier-latency-batch', process.execPath, courierArgs(), { env });
            return { process: process_, ready: waitReady(`http://127.0.0.1:${env.COURIER_PORT}/readyz`, process_, 60_000, 'courier (batch latency)') };
          },
        })),
      }));
      // The baseline pushes each fetched batch at once, one request per partition: a per-record
      // pipe cannot keep up at batch rates, and its queueing would pass for Courier's gain.
      results.latency.batchRaw = await phase('latency raw consume+batch push', () =>
        latencyRun({
          label: 'latency raw consume+batch push',
          topic: 'bench-lat-batch-raw',
          sink: fast,
          rate: halfRate,
          start: () => rawPipe('bench-lat-batch-raw', fast, true),
        }),
      );
    }
    const addedOf = (c, r) =>
      c && r && !c.error && !r.error && c.p99Ms !== null && r.p99Ms !== null
        ? { p50Ms: round(c.p50Ms - r.p50Ms, 3), p99Ms: round(c.p99Ms - r.p99Ms, 3), maxMs: round(c.maxMs - r.maxMs, 3), rate: c.rate }
        : null;
    results.latency.addedEveryday = addedOf(results.latency.courierEveryday, results.latency.rawEveryday);
    const c = results.latency.courier;
    const r = results.latency.raw;
    if (c && r && !c.error && !r.error && c.p99Ms !== null && r.p99Ms !== null) {
      results.latency.added = {
        p50Ms: round(c.p50Ms - r.p50Ms, 3),
        p99Ms: round(c.p99Ms - r.p99Ms, 3),
        maxMs: round(c.maxMs - r.maxMs, 3),
        fromBrokerAppend: {
          p50Ms: c.fromBrokerAppend.p50Ms - r.fromBrokerAppend.p50Ms,
          p99Ms: c.fromBrokerAppend.p99Ms - r.fromBrokerAppend.p99Ms,
          maxMs: c.fromBrokerAppend.maxMs - r.fromBrokerAppend.maxMs,
        },
      };
    }
  } else {
    results.latency = { error: 'no Courier rate was measured, so there is no half rate to run at' };
  }

  for (const peer of PHASES.has('peers') ? PEER_LIST : []) {
    if (!PEERS[peer]) {
      results.peers[peer] = { recordsPerS: null, reason: `unknown peer (known: ${PEER_NAMES.join(', ')})` };
      say(`${peer}: not run: unknown peer`);
      continue;
    }
    const status = peerStatus(peer);
    if (!status.ok) {
      results.peers[peer] = { recordsPerS: null, reason: status.reason, build: status };
      say(`${peer}: not run: ${status.reason}`);
      continue;
    }
    const outcome = await phase(peer, () => runPeer(peer, status, fast, MAIN));
    results.peers[peer] = { ...outcome, recordsPerS: outcome.recordsPerS ?? null, ...(outcome.error ? { reason: outcome.error } : {}), build: status };
  }

  if (opt.soak && best) {
    await createTopic('bench-soak', PARTITIONS);
    await createTopic('bench-soak.dlq', 1);
    results.soak = await phase('soak', () => soak(Math.max(100, Math.round(best / 2)), fast, 'bench-soak'));
  }
} catch (error) {
  exitCode = 1;
  failures.push({ phase: 'setup', error: error instanceof Error ? error.message : String(error) });
  say(`failed: ${error instanceof Error ? error.message : error}`);
} finally {
  if (tty) process.stderr.write('\r\x1b[2K');
  await stopAll();
  await admin.disconnect().catch(() => undefined);
}

// --------------------------------------------------------------------------------- report ----

const rps = (r) => (r && typeof r.recordsPerS === 'number' ? r.recordsPerS : null);
const ratio = (a, b) => (a === null || b === null || !b ? null : round(a / b, 3));
const minOf = (...values) => (values.some((v) => v === null) ? null : Math.min(...values));
const consumeLimit = rps(results.raw.consume);
const limit256 = minOf(consumeLimit, rps(results.raw.push256));
const limit16 = minOf(consumeLimit, rps(results.raw.push16));
const bound = PARTITIONS / (SLOW_APP_MS / 1000);
// Courier's best per-record mode, with one process or with workers (the second core).
const PER_RECORD_MODES = ['partition', 'key', 'unordered', 'key_workers2', 'unordered_workers2'];
const bestCourier = Math.max(...PER_RECORD_MODES.map((m) => rps(results.courier[m]) ?? 0)) || null;
const bestBatch = Math.max(rps(results.batch.unordered) ?? 0, rps(results.batch.key) ?? 0) || null;
const bestPeer = Math.max(0, ...Object.values(results.peers).map((p) => rps(p) ?? 0)) || null;
const lat = results.latency;
const ratios = {
  key_vs_limit: ratio(rps(results.courier.key), limit256),
  unordered_vs_limit: ratio(rps(results.courier.unordered), limit256),
  partition_vs_limit: ratio(rps(results.courier.partition), limit16),
  partition_vs_bound: ratio(rps(results.courier.partition_5ms), bound),
  // Courier's best per-record mode ÷ each peer of --peers (vs_daprd, vs_redpanda_connect, …).
  ...Object.fromEntries(PEER_LIST.map((peer) => [ratioKey(peer), ratio(bestCourier, rps(results.peers[peer]))])),
  // Batch delivery (DESIGN A6) beside the consumer's own limit and the best peer, same run.
  batch_unordered_vs_consume: ratio(rps(results.batch.unordered), consumeLimit),
  batch_key_vs_consume: ratio(rps(results.batch.key), consumeLimit),
  batch_vs_best_peer: ratio(bestBatch, bestPeer),
  batch_cpu_us_per_record:
    bestBatch === null ? null : round(Math.min(...['unordered', 'key'].map((m) => results.batch[m]?.cpuPer10k ?? Number.POSITIVE_INFINITY)) * 100, 2),
  batch_added_p50_ms:
    lat.batch && lat.batchRaw && !lat.batch.error && !lat.batchRaw.error && lat.batch.p50Ms !== null ? round(lat.batch.p50Ms - lat.batchRaw.p50Ms, 3) : null,
  // Without Kafka: the pipeline's CPU per record ÷ undici's alone, and the difference in µs.
  pipeline_cpu_vs_raw_push: results.overhead?.error
    ? null
    : ratio(results.overhead?.courier?.cpuUsPerRecord ?? null, results.overhead?.raw?.cpuUsPerRecord ?? null),
  overhead_us_per_record: results.overhead?.error ? null : (results.overhead?.overheadUsPerRecord ?? null),
};
const report = {
  date: started.toISOString(),
  mode: MODE,
  durationS: round((Date.now() - started.getTime()) / 1000, 1),
  machine: info,
  setup: {
    partitions: PARTITIONS,
    recordBytes: RECORD_BYTES,
    records: RECORDS,
    slowAppRecords: SLOW_RECORDS,
    slowAppLatencyMs: SLOW_APP_MS,
    courierMaxInFlight: MAX_IN_FLIGHT,
    partitionBound: bound,
    latencySeconds: LATENCY_SECONDS,
    latencyWarmupMs: LATENCY_WARMUP_MS,
    inFlightCheck: RUN_INFLIGHT ? { records: INFLIGHT, appHoldMs: HOLD_APP_MS } : null,
  },
  limits: { consume: consumeLimit, push16: rps(results.raw.push16), push256: rps(results.raw.push256), min16: limit16, min256: limit256 },
  ratios,
  results,
  failures,
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);

const fmt = (value, digits = 0) =>
  value === null || value === undefined ? '—' : Number(value).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rows = [];
const row = (name, r, notes) =>
  r !== undefined &&
  rows.push([
    name,
    r?.error ? 'failed' : fmt(r?.recordsPerS),
    fmt(r?.cpuPer10k, 2),
    fmt(r?.peakRssMb, 0),
    r?.error ? r.error.split('\n')[0].slice(0, 90) : notes,
  ]);
const courierNotes = (r, vs, vsLabel) =>
  r && !r.error
    ? [
        vsLabel ? `${fmt(vs === null ? null : vs * 100)}% of ${vsLabel}` : '',
        `start-up ${fmt(r.startupS, 1)} s`,
        `to last push ${fmt(r.pushedPerS)}/s`,
        r.appMeanServiceMs >= 1 ? `app ${fmt(r.appMeanServiceMs, 2)} ms` : '',
        r.duplicates ? `${r.duplicates} dup` : '',
        r.timedOut ? 'TIMED OUT' : '',
      ]
        .filter(Boolean)
        .join(' · ')
    : '';
row('raw consume', results.raw.consume, 'consumer-side limit (same client & settings)');
row('raw push ×16', results.raw.push16, 'HTTP limit at partition-mode concurrency');
row(`raw push ×${MAX_IN_FLIGHT}`, results.raw.push256, 'HTTP limit at COURIER_MAX_IN_FLIGHT');
row('courier partition', results.courier.partition, courierNotes(results.courier.partition, ratios.partition_vs_limit, 'min(consume, push ×16)'));
row('courier key', results.courier.key, courierNotes(results.courier.key, ratios.key_vs_limit, 'limit'));
row('courier unordered', results.courier.unordered, courierNotes(results.courier.unordered, ratios.unordered_vs_limit, 'limit'));
for (const ordering of ['key', 'unordered']) {
  const r = results.courier[`${ordering}_workers2`];
  row(
    `courier ${ordering} ×2 workers`,
    r,
    r && !r.error ? `${courierNotes(r, null, null)} · RSS: each process's peak added up (shared pages counted twice); PSS peak ${fmt(r.peakPssMb, 0)} MB` : '',
  );
}
const batchNotes = (r, vs) =>
  r && !r.error
    ? [
        `${fmt(vs === null ? null : vs * 100)}% of raw consume`,
        `mean batch ${fmt(r.meanBatch, 1)}`,
        `${fmt(r.cpuPer10k * 100, 1)} µs CPU/record`,
        courierNotes(r, null, null),
      ]
        .filter(Boolean)
        .join(' · ')
    : '';
row('courier batch unordered', results.batch.unordered, batchNotes(results.batch.unordered, ratios.batch_unordered_vs_consume));
row('courier batch key', results.batch.key, batchNotes(results.batch.key, ratios.batch_key_vs_consume));
if (results.overhead) {
  const o = results.overhead;
  rows.push(
    o.error
      ? ['pipeline without Kafka', 'failed', '', '', o.error.split('\n')[0].slice(0, 90)]
      : [
          `pipeline without Kafka (${o.ordering})`,
          fmt(o.courier.recordsPerS),
          fmt(o.courier.cpuUsPerRecord / 100, 2),
          '',
          `${fmt(o.courier.cpuUsPerRecord, 1)} µs/record vs raw push ${fmt(o.raw.cpuUsPerRecord, 1)} (${fmt(o.raw.recordsPerS)}/s): Courier's own ${fmt(o.overheadUsPerRecord, 1)} µs · ${fmt(o.logic.cpuUsPerRecord, 1)} µs with an instant app`,
        ],
  );
}
row('courier partition @5 ms', results.courier.partition_5ms, courierNotes(results.courier.partition_5ms, ratios.partition_vs_bound, `bound ${fmt(bound)}/s`));
row('courier key @5 ms', results.courier.key_5ms, courierNotes(results.courier.key_5ms, null, null));
row('courier unordered @5 ms', results.courier.unordered_5ms, courierNotes(results.courier.unordered_5ms, null, null));
const inFlightRow = (name, r) =>
  r &&
  rows.push([
    name,
    r.error ? 'failed' : '',
    '',
    r.error ? '' : fmt(r.peakRssMb),
    r.error
      ? r.error.split('\n')[0].slice(0, 90)
      : `RSS ${fmt(r.rssAtFullMb)} MB with ${fmt(r.inFlight)} held by a ${HOLD_APP_MS / 1000} s app · JS heap ${fmt(r.heapUsedMb)} of ${fmt(r.heapTotalMb)} MB · external ${fmt(r.externalMb)} MB`,
  ]);
inFlightRow(`courier ${fmt(INFLIGHT)} in flight`, results.inFlight);
inFlightRow(`courier ${fmt(INFLIGHT)} in flight, HTTP/2`, results.inFlightHttp2);
const signed = (value, digits) => (value === null || value === undefined ? '—' : `${value >= 0 ? '+' : '−'}${fmt(Math.abs(value), digits)}`);
const latNote = (l, vs) =>
  l && !l.error && l.p50Ms !== undefined
    ? `p50 ${fmt(l.p50Ms, 2)} · p99 ${fmt(l.p99Ms, 2)} · max ${fmt(l.maxMs, 1)} ms${vs ? ` · added p50 ${signed(l.p50Ms - vs.p50Ms, 2)} p99 ${signed(l.p99Ms - vs.p99Ms, 2)} ms` : ''}${l.producerBehind ? ` · PRODUCER BEHIND (${fmt(l.achievedRate)}/s)` : ''}`
    : '';
const latRow = (name, l, vs) =>
  rows.push([name, l.error ? 'failed' : fmt(l.rate), fmt(l.cpuPer10k, 2), fmt(l.peakRssMb, 0), l.error ? l.error.split('\n')[0].slice(0, 90) : latNote(l, vs)]);
if (lat.courier) latRow(`latency courier ${lat.courier.ordering ?? ''}`, lat.courier, lat.raw?.error ? null : lat.raw);
if (lat.raw) latRow('latency raw consume+push', lat.raw);
if (lat.courierEveryday)
  latRow(
    `latency courier ${lat.courierEveryday.ordering ?? ''} @${fmt(EVERYDAY_RATE)}/s`,
    lat.courierEveryday,
    lat.rawEveryday?.error ? null : lat.rawEveryday,
  );
if (lat.rawEveryday) latRow(`latency raw consume+push @${fmt(EVERYDAY_RATE)}/s`, lat.rawEveryday);
if (lat.batch) latRow(`latency courier batch ${lat.batch.ordering ?? ''}`, lat.batch, lat.batchRaw?.error ? null : lat.batchRaw);
if (lat.batchRaw) latRow('latency raw consume+batch push', lat.batchRaw);
for (const [peer, r] of Object.entries(results.peers)) {
  row(
    peer,
    r,
    r.recordsPerS === null
      ? `not run: ${(r.reason ?? '').split('\n')[0].slice(0, 100)}`
      : `Courier best ÷ ${peer} = ${fmt(ratios[ratioKey(peer)], 2)} · start-up ${fmt(r.startupS, 1)} s · to last push ${fmt(r.pushedPerS)}/s`,
  );
}
if (results.soak && !results.soak.error)
  rows.push([
    'soak (courier unordered)',
    fmt(results.soak.rate),
    fmt(results.soak.cpuPer10k, 2),
    fmt(results.soak.peakRssMb),
    `RSS slope ${fmt(results.soak.slopeMbPerMin, 3)} MB/min over ${results.soak.minutes} min (after the first) · RSS ${fmt(results.soak.rssStartMb)} → ${fmt(results.soak.rssEndMb)} MB · lag at end ${fmt(results.soak.lagAtEnd)}`,
  ]);
else if (results.soak?.error) rows.push(['soak', 'failed', '', '', results.soak.error.split('\n')[0].slice(0, 90)]);

const header = ['mode', 'records/s', 'CPU s / 10k', 'peak RSS MB', 'notes'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => `| ${cells.map((c, i) => (i >= 1 && i <= 3 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(' | ')} |`;
const out = [line(header), `|${widths.map((w, i) => (i >= 1 && i <= 3 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...rows.map(line)];
process.stdout.write(
  `\nCourier benchmark, ${MODE} (${RECORDS.toLocaleString('en')} × ${RECORD_BYTES} B records, ${PARTITIONS} partitions) · ${date} · ${info.cores} cores · Node ${info.node} · Kafka ${info.kafka}\n\n`,
);
process.stdout.write(`${out.join('\n')}\n\n`);
process.stdout.write(
  `ratios: ${Object.entries(ratios)
    .map(([k, v]) => `${k}=${v ?? 'null'}`)
    .join('  ')}\n`,
);
process.stdout.write(
  `results: ${OUT.replace(`${ROOT}/`, '')}${failures.length ? ` · ${failures.length} phase(s) failed: ${failures.map((f) => f.phase).join(', ')}` : ''}\n`,
);
process.exit(exitCode || (failures.length ? 1 : 0));
