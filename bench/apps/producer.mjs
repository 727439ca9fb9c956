// Produces the benchmark's records: 1 KiB values, keys k0…k1023 in turn, partitions in turn.
//
//   node bench/apps/producer.mjs --bootstrap B --topic T --partitions 16 --count N
//       bulk: as fast as the broker takes them, before a measured phase (nothing else runs then)
//   node bench/apps/producer.mjs --bootstrap B --topic T --partitions 16 --rate R --seconds S
//       paced: R records/s for S seconds, each value starting with its monotonic produce time
//
// stdout: {"event":"done","produced":N,"seconds":S,"errors":E}

import { parseArgs } from 'node:util';
import rdkafka from '@confluentinc/kafka-javascript';
import { DISTINCT_KEYS, emit, nowNs, recordValue, sleep } from '../lib.mjs';

const { values: opt } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    partitions: { type: 'string', default: '16' },
    count: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'linger-ms': { type: 'string' },
  },
});
const partitions = Number(opt.partitions);
const paced = opt.rate !== undefined;

const producer = new rdkafka.Producer({
  'bootstrap.servers': opt.bootstrap,
  'client.id': 'courier-bench-producer',
  acks: 'all',
  // Bulk: big batches. Paced: librdkafka's default 5 ms. Each record may wait that long before it
  // is sent (the same for every process measured), but the producer and the broker do not spend a
  // request per record: at thousands of records/s on 2 cores, linger.ms=0 takes the CPU the
  // measured process needs, and every latency grows by a queue.
  'linger.ms': opt['linger-ms'] ?? (paced ? 5 : 20),
  'batch.num.messages': 10_000,
  'queue.buffering.max.messages': 200_000,
  'queue.buffering.max.kbytes': 512 * 1024,
  dr_cb: true,
  log_level: 0,
});
let errors = 0;
let delivered = 0;
producer.on('delivery-report', (error) => {
  if (error) errors++;
  else delivered++;
});
await new Promise((resolve, reject) => producer.connect({ timeout: 30_000 }, (error) => (error ? reject(error) : resolve())));
producer.setPollInterval(10);

let i = 0;
function produceOne(stamp) {
  try {
    producer.produce(opt.topic, i % partitions, recordValue(i, stamp), `k${i % DISTINCT_KEYS}`, Date.now());
    i++;
    return true;
  } catch (error) {
    if (error?.code === rdkafka.CODES.ERRORS.ERR__QUEUE_FULL) return false;
    throw error;
  }
}

const t0 = nowNs();
if (paced) {
  const rate = Number(opt.rate);
  const total = Math.round(rate * Number(opt.seconds));
  while (i < total) {
    const due = Math.min(total, Math.floor((Number(nowNs() - t0) / 1e9) * rate) + 1);
    while (i < due) if (!produceOne(nowNs())) break;
    await sleep(1);
  }
} else {
  const total = Number(opt.count);
  while (i < total) {
    if (!produceOne(undefined)) {
      producer.poll();
      await sleep(5);
    }
    if (i % 5000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}
await new Promise((resolve, reject) => producer.flush(120_000, (error) => (error ? reject(error) : resolve())));
// Delivery reports of the last batch arrive through the poll interval.
for (let waited = 0; delivered + errors < i && waited < 10_000; waited += 20) await sleep(20);
await new Promise((resolve) => producer.disconnect(() => resolve()));
emit('done', { produced: delivered, errors, seconds: Number(nowNs() - t0) / 1e9 });
process.exit(errors > 0 ? 1 : 0);
