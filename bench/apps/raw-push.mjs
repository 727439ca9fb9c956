// The HTTP-side limit: undici posting 1 KiB bodies with Courier-shaped headers to the app, through an
// Agent with Courier's settings and Courier's way of dispatching (lib.mjs post), keeping exactly --concurrency requests in flight. No Kafka.
//
//   node bench/apps/raw-push.mjs --url URL --count N --concurrency C
// stdout: {"event":"first","ns"} then {"event":"done","count","errors","firstNs","lastNs","cpuS","peakMb"}
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { courierAgentOptions, courierLikeHeaders, DISTINCT_KEYS, emit, nowNs, post, recordValue, selfUsage } from '../lib.mjs';

const { values: opt } = parseArgs({
  options: { url: { type: 'string' }, count: { type: 'string' }, concurrency: { type: 'string' }, partitions: { type: 'string', default: '16' } },
});
const url = new URL(opt.url);
const total = Number(opt.count);
const concurrency = Number(opt.concurrency);
const partitions = Number(opt.partitions);
const agent = new Agent(courierAgentOptions(concurrency));
const path = url.pathname + url.search;
// The bodies exist before the clock starts, as fetched records would.
const bodies = Array.from({ length: Math.min(total, 4096) }, (_, i) => recordValue(i));

let next = 0;
let done = 0;
let errors = 0;
const cpuAtStart = selfUsage().cpuS;
const firstNs = nowNs();
emit('first', { ns: String(firstNs) });

async function worker() {
  while (next < total) {
    const i = next++;
    const partition = i % partitions;
    const status = await post(
      agent,
      url.origin,
      path,
      courierLikeHeaders('bench', partition, Math.floor(i / partitions), `k${i % DISTINCT_KEYS}`, Date.now()),
      bodies[i % bodies.length],
    );
    if (status < 200 || status >= 300) errors++;
    done++;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const lastNs = nowNs();
const usage = selfUsage();
emit('done', { count: done, errors, firstNs: String(firstNs), lastNs: String(lastNs), cpuS: usage.cpuS - cpuAtStart, peakMb: usage.peakMb });
await agent.close();
process.exit(0);
