// The consumer-side limit: the Kafka client Courier uses, with Courier's consumer settings and
// consume loop (low-level KafkaConsumer, consume(500) batches, timeout only for the first message),
// reading the topic and discarding every record.
//
//   node bench/apps/raw-consume.mjs --bootstrap B --topic T --group G --count N
//       stops after N records: {"event":"done","count","firstNs","lastNs","cpuS","peakMb"}
//   node bench/apps/raw-consume.mjs --bootstrap B --topic T --group G --push URL --connections C
//       "raw consume + push": POSTs every record at once through an undici Agent shaped like
//       Courier's (no ordering, no commit), until SIGTERM. For the latency comparison.
//   ... --push URL --batch: the same, but each fetched batch goes as one A6-shaped JSON request per
//       partition (values base64, no linger): the baseline of batch delivery's latency.
// stdout also has {"event":"ready"} once partitions are assigned, {"event":"first","ns"} at the first record.

import { parseArgs } from 'node:util';
import rdkafka from '@confluentinc/kafka-javascript';
import { Agent } from 'undici';
import { courierAgentOptions, courierConsumerSettings, courierLikeHeaders, emit, nowNs, post, selfUsage } from '../lib.mjs';

const { values: opt } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    count: { type: 'string' },
    push: { type: 'string' },
    connections: { type: 'string', default: '256' },
    batch: { type: 'boolean', default: false },
  },
});

const settings = await courierConsumerSettings(opt.bootstrap, opt.group);
let consumer;
const rebalanceCb = (error, assignment) => {
  const cooperative = consumer.rebalanceProtocol() === 'COOPERATIVE';
  if (error.code === rdkafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
    if (cooperative) consumer.incrementalAssign(assignment);
    else consumer.assign(assignment);
    emit('ready', { partitions: assignment.length });
  } else if (error.code === rdkafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
    if (cooperative) consumer.incrementalUnassign(assignment);
    else consumer.unassign();
  }
};
consumer = new rdkafka.KafkaConsumer({ ...settings.global, rebalance_cb: rebalanceCb }, settings.topic);
consumer.setDefaultConsumeTimeout(100);
consumer.setDefaultIsTimeoutOnlyForFirstMessage(true);
await new Promise((resolve, reject) => consumer.connect({ timeout: 30_000 }, (error) => (error ? reject(error) : resolve())));
consumer.subscribe([opt.topic]);

const target = opt.push ? new URL(opt.push) : undefined;
const agent = target ? new Agent(courierAgentOptions(Number(opt.connections))) : undefined;
const path = target ? target.pathname + target.search : '';
let pushErrors = 0;

function push(m) {
  const key = m.key ? m.key.toString() : null;
  post(agent, target.origin, path, courierLikeHeaders(m.topic, m.partition, m.offset, key, m.timestamp), m.value ?? '').then((status) => {
    if (status < 200 || status >= 300) pushErrors++;
  });
}

/** One request per partition of a fetched batch, shaped like Courier's batch body (DESIGN A6). */
function pushBatches(messages) {
  const byPartition = new Map();
  for (const m of messages) {
    const list = byPartition.get(m.partition) ?? [];
    list.push(m);
    byPartition.set(m.partition, list);
  }
  for (const list of byPartition.values()) {
    const records = list.map((m) => ({
      id: `${m.topic}-${m.partition}-${m.offset}`,
      topic: m.topic,
      partition: m.partition,
      offset: String(m.offset),
      timestamp: m.timestamp,
      key: m.key ? m.key.toString('base64') : null,
      headers: [],
      contentType: 'application/octet-stream',
      valueBase64: (m.value ?? Buffer.alloc(0)).toString('base64'),
      attempt: 1,
    }));
    const headers = { 'content-type': 'application/json', 'courier-batch-size': String(records.length) };
    post(agent, target.origin, path, headers, Buffer.from(JSON.stringify({ records }))).then((status) => {
      if (status < 200 || status >= 300) pushErrors++;
    });
  }
}

const expected = opt.count ? Number(opt.count) : Number.POSITIVE_INFINITY;
let count = 0;
let firstNs = 0n;
let lastNs = 0n;
let cpuAtFirst = 0;
let firstBatch = 0;
let running = true;
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    running = false;
  });
}

while (running && count < expected) {
  const batch = await new Promise((resolve) => consumer.consume(500, (error, messages) => resolve(error ? [] : messages)));
  if (batch.length === 0) continue;
  if (count === 0) {
    firstNs = nowNs();
    cpuAtFirst = selfUsage().cpuS;
    firstBatch = batch.length;
    emit('first', { ns: String(firstNs) });
  }
  if (target && opt.batch) pushBatches(batch);
  else if (target) for (const m of batch) push(m);
  else for (const m of batch) if (m.value === undefined) count--; // touch every record, as a consumer would
  count += batch.length;
  lastNs = nowNs();
}
const usage = selfUsage();
emit('done', {
  count,
  firstBatch,
  firstNs: String(firstNs),
  lastNs: String(lastNs),
  cpuS: usage.cpuS - cpuAtFirst,
  cpuTotalS: usage.cpuS,
  peakMb: usage.peakMb,
  pushErrors,
});
await new Promise((resolve) => consumer.disconnect(() => resolve()));
await agent?.close();
process.exit(0);
