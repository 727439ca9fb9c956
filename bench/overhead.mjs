// Courier's own cost per record, without Kafka: the real Pipeline and Pusher (dist/) fed from
// memory (a source that commits instantly), pushing to the benchmark app in another process, beside
// undici pushing the same records at the same concurrency. Both run in this process, one after the
// other and alternating, so machine drift hits both alike; the difference is what the pipeline
// (ordering, tracking, headers, retries bookkeeping, metrics) costs per record.
//
//   node bench/overhead.mjs [--records N] [--rounds R] [--ordering key|unordered|partition] [--delivery record|batch] [--url APP]
// Without --url it starts bench/apps/sink.mjs itself. stdout: a table, then {"event":"done",…}
// (scripts/bench.sh runs it as its "overhead" phase).
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Agent } from 'undici';
import { loadConfig } from '../dist/config/index.js';
import { Pusher } from '../dist/delivery/push.js';
import { createMetrics } from '../dist/metrics.js';
import { Pipeline } from '../dist/pipeline/flow.js';
import { courierAgentOptions, courierLikeHeaders, DISTINCT_KEYS, emit, post, recordValue, round } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    ordering: { type: 'string', default: 'key' },
    // record or batch (DESIGN A6; its default limits: 100 records, 5 ms linger)
    delivery: { type: 'string', default: 'record' },
    partitions: { type: 'string', default: '16' },
    url: { type: 'string' },
    // For profiling one side: raw, pipeline or logic.
    only: { type: 'string' },
  },
});
const RECORDS = Number(opt.records);
const PARTITIONS = Number(opt.partitions);
const TOPIC = 'bench';
const BATCH = 500;
const OK = Object.freeze({ kind: 'response', status: 204, retryAfter: undefined });

const sink = opt.url ? undefined : spawn(process.execPath, ['bench/apps/sink.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url =
  opt.url ??
  `http://127.0.0.1:${await new Promise((resolve) => sink.stdout.once('data', (data) => resolve(JSON.parse(String(data).split('\n')[0]).port)))}/records`;
const values = Array.from({ length: 4096 }, (_, i) => recordValue(i));

function records(from, count) {
  const out = [];
  const now = Date.now();
  for (let i = from; i < from + count; i++) {
    out.push({
      topic: TOPIC,
      partition: i % PARTITIONS,
      offset: Math.floor(i / PARTITIONS),
      timestamp: now,
      key: Buffer.from(`k${i % DISTINCT_KEYS}`),
      value: values[i % values.length],
      headers: [],
      fetchedAt: now,
    });
  }
  return out;
}

async function pipelineRun(instant = false) {
  const config = loadConfig({
    env: { COURIER_GROUP_ID: 'overhead', COURIER_TOPICS: TOPIC, COURIER_TARGET_URL: url, COURIER_ORDERING: opt.ordering, COURIER_DELIVERY: opt.delivery },
    readFile: () => '',
  });
  // instant: a push that answers 204 at once, without HTTP, for the pipeline's own cost.
  const pusher = instant ? { push: async () => OK, abortAll: async () => {}, close: async () => {} } : new Pusher({ connections: config.maxInFlight });
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const next = new Map();
  let done;
  const allCommitted = new Promise((resolve) => (done = resolve));
  const source = {
    pause() {},
    resume() {},
    async commit(offsets) {
      for (const { partition, offset } of offsets) next.set(partition, offset);
      let total = 0;
      for (const offset of next.values()) total += offset;
      if (total >= RECORDS) done();
    },
    async stopFetching() {},
    async close() {},
  };
  const pipeline = new Pipeline({
    config: { ...config, commitEvery: 1000 },
    logger: pino({ level: 'silent' }),
    metrics,
    deadLetters: { send: async () => {} },
    pusher,
  });
  pipeline.attach(source);
  pipeline.onAssign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })));
  // The adaptive limit's lowest value during the run: whether latency or overload made it shrink.
  let lowestLimit = Number.POSITIVE_INFINITY;
  const limitWatch = setInterval(() => {
    for (const route of pipeline.operator.routes()) lowestLimit = Math.min(lowestLimit, route.concurrencyLimit);
  }, 10);
  const cpu = process.cpuUsage();
  const started = performance.now();
  // The consume loop's shape: ask before each batch, then hand it over.
  for (let fed = 0; fed < RECORDS; fed += BATCH) {
    const hold = pipeline.beforeFetch();
    if (hold) await hold;
    pipeline.onRecords(records(fed, Math.min(BATCH, RECORDS - fed)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Offsets are "next to read": the sum of next offsets over all partitions equals RECORDS.
  const timer = setInterval(() => void pipeline.commit(), 20);
  await allCommitted;
  clearInterval(timer);
  clearInterval(limitWatch);
  const seconds = (performance.now() - started) / 1000;
  const usage = process.cpuUsage(cpu);
  await pipeline.stop();
  await pusher.close();
  return { seconds, cpuS: (usage.user + usage.system) / 1e6, lowestLimit };
}

async function rawRun(concurrency) {
  const agent = new Agent(courierAgentOptions(concurrency));
  const target = new URL(url);
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  async function worker() {
    while (next < RECORDS) {
      const i = next++;
      const partition = i % PARTITIONS;
      await post(
        agent,
        target.origin,
        target.pathname,
        courierLikeHeaders(TOPIC, partition, Math.floor(i / PARTITIONS), `k${i % DISTINCT_KEYS}`, Date.now()),
        values[i % values.length],
      );
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const usage = process.cpuUsage(cpu);
  await agent.close();
  return { seconds, cpuS: (usage.user + usage.system) / 1e6 };
}

const rows = { pipeline: [], raw: [], logic: [] };
const runs = { raw: () => rawRun(256), pipeline: () => pipelineRun(), logic: () => pipelineRun(true) };
// A warm-up round (JIT, sockets) that is not counted.
for (const [name, run] of Object.entries(runs)) if (!opt.only || opt.only === name) await run();
for (let round_ = 0; round_ < Number(opt.rounds); round_++) {
  for (const [name, run] of Object.entries(runs)) if (!opt.only || opt.only === name) rows[name].push(await run());
}
sink?.kill();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (runs) =>
  runs.length === 0
    ? { recordsPerS: null, cpuUsPerRecord: null }
    : {
        recordsPerS: round(median(runs.map((r) => RECORDS / r.seconds)), 0),
        cpuUsPerRecord: round(median(runs.map((r) => (r.cpuS / RECORDS) * 1e6)), 2),
        ...(runs[0].lowestLimit === undefined ? {} : { lowestConcurrencyLimit: Math.min(...runs.map((r) => r.lowestLimit)) }),
      };
const raw = summary(rows.raw);
const courier = summary(rows.pipeline);
const logic = summary(rows.logic);
const result = {
  ordering: opt.ordering,
  records: RECORDS,
  rounds: Number(opt.rounds),
  raw,
  courier,
  logic,
  overheadUsPerRecord: round(courier.cpuUsPerRecord - raw.cpuUsPerRecord, 2),
};
console.log(
  `| run | records/s | CPU µs / record |\n|---|--:|--:|\n| raw push ×256 | ${raw.recordsPerS} | ${raw.cpuUsPerRecord} |\n| pipeline (${opt.ordering}, limit ≥ ${courier.lowestConcurrencyLimit}) | ${courier.recordsPerS} | ${courier.cpuUsPerRecord} |\n| pipeline, instant app, no HTTP | ${logic.recordsPerS} | ${logic.cpuUsPerRecord} |`,
);
emit('done', result);
process.exit(0);
