// Shared helpers of the benchmark: Kafka admin, /proc readings, free ports, statistics.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export { committedOffsets, endOffsets, groupOffsetReader, kafka, sum, withAdmin } from '../scripts/lib/kafka.mjs';

export const RECORD_BYTES = 1024;
export const DISTINCT_KEYS = 1024;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** CLOCK_MONOTONIC in ns: the same clock in every process of this machine. */
export const nowNs = () => process.hrtime.bigint();
export const nsToS = (ns) => Number(ns) / 1e9;

/**
 * The consumer configuration Courier builds (src/config/kafka.ts CONSUMER_DEFAULTS, the prefetch it
 * sizes from COURIER_BUFFER_BYTES and what loadConfig forces), split into global and topic properties the way src/kafka/properties.ts does (the JS
 * binding ignores topic properties such as auto.offset.reset in the global configuration).
 */
export async function courierConsumerSettings(bootstrap, groupId) {
  const { CONSUMER_DEFAULTS, DEFAULTS, prefetchProperties } = await import('../dist/config/index.js');
  const { splitProperties } = await import('../dist/kafka/properties.js');
  if (!CONSUMER_DEFAULTS || !splitProperties || !prefetchProperties)
    throw new Error('dist/ lacks CONSUMER_DEFAULTS, prefetchProperties or splitProperties: run scripts/setup.sh');
  const { global, topic } = splitProperties({
    ...CONSUMER_DEFAULTS,
    // librdkafka's prefetch as Courier sizes it from COURIER_BUFFER_BYTES' default.
    ...prefetchProperties(DEFAULTS.bufferBytes),
    'client.id': 'courier-bench',
    'bootstrap.servers': bootstrap,
    'group.id': groupId,
    'enable.auto.commit': 'false',
    'enable.auto.offset.store': 'false',
    'enable.partition.eof': 'false',
  });
  return { global: { ...global, log_level: 0 }, topic };
}

/** Courier's Pusher settings (src/delivery/push.ts): one undici Agent, keep-alive, no pipelining. */
export function courierAgentOptions(connections) {
  return { connections, pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 5_000 } };
}

/**
 * One POST the way Courier's Pusher sends it (src/delivery/push.ts): an undici dispatch whose answer
 * is read for its status and dropped, no response stream. Resolves with the status, or -1 when the
 * request failed. The raw-push limits use it so that they measure the same HTTP client work.
 */
export function post(agent, origin, path, headers, body) {
  return new Promise((resolve) => {
    let status = 0;
    agent.dispatch(
      { origin, path, method: 'POST', headers, body },
      {
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData() {},
        onResponseEnd() {
          resolve(status);
        },
        onResponseError() {
          resolve(-1);
        },
      },
    );
  });
}

/**
 * Headers shaped like the ones Courier sends (CloudEvents binary mode + Kafka coordinates), so
 * the raw-push limit moves the same bytes over the wire.
 */
export function courierLikeHeaders(topic, partition, offset, key, timestamp) {
  return {
    'ce-specversion': '1.0',
    'ce-id': `${topic}-${partition}-${offset}`,
    'ce-source': `/kafka/${topic}`,
    'ce-type': 'dev.courier.kafka.record',
    'ce-time': new Date(timestamp).toISOString(),
    'content-type': 'application/octet-stream',
    'kafka-topic': topic,
    'kafka-partition': String(partition),
    'kafka-offset': String(offset),
    'kafka-timestamp': String(timestamp),
    ...(key ? { 'kafka-key': key } : {}),
    'courier-attempt': '1',
  };
}

/** A 1 KiB record value. When `stampNs` is given, it starts with `t=<monotonic ns>;` for latency. */
export function recordValue(i, stampNs) {
  const head = stampNs === undefined ? `i=${i};` : `t=${stampNs};i=${i};`;
  return Buffer.from(head.padEnd(RECORD_BYTES, 'x'));
}

/** The monotonic produce time a value carries (see recordValue), or undefined. */
export function stampOf(body) {
  if (body.length < 3 || body[0] !== 0x74 || body[1] !== 0x3d) return undefined; // "t="
  const end = body.indexOf(0x3b, 2); // ";"
  if (end < 0 || end > 40) return undefined;
  try {
    return BigInt(body.subarray(2, end).toString('latin1'));
  } catch {
    return undefined;
  }
}

/** Records of `ends` not yet covered by `committed` (a partition with nothing committed counts in full). */
export function remaining(ends, committed) {
  let left = 0;
  for (const [partition, end] of ends) left += Math.max(0, end - Math.max(0, committed.get(partition) ?? 0));
  return left;
}

/** A process and every process it started (and they started), alive now: Courier's workers, a peer's children. */
export function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const child of readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim().split(/\s+/)) if (child) pids.push(Number(child));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** utime + stime of a process and its live descendants, in seconds (USER_HZ = 100 on Linux). */
export function cpuSecondsOf(pid) {
  const each = processTree(pid).map(ownCpuSecondsOf);
  return each[0] === undefined ? undefined : each.reduce((sum, seconds) => sum + (seconds ?? 0), 0);
}

function ownCpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15 → indexes 11 and 12 here.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Peak and current resident set size, in MB (VmHWM / VmRSS of /proc/<pid>/status), added up over
 * the process and its live descendants (so for Courier's workers the sum of each process's own peak:
 * pages they share, Node's code, count once per process), and `pssMb`: their proportional set size
 * now (shared pages divided among them, what a container's memory counts).
 */
export function memoryOf(pid) {
  let peakMb = 0;
  let rssMb = 0;
  let pssMb = 0;
  const tree = processTree(pid);
  for (const one of tree) {
    try {
      const status = readFileSync(`/proc/${one}/status`, 'utf8');
      const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
      peakMb += kb('VmHWM') / 1024;
      rssMb += kb('VmRSS') / 1024;
      if (tree.length > 1) pssMb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${one}/smaps_rollup`, 'utf8'))?.[1] ?? Number.NaN) / 1024;
    } catch {
      if (one === pid) return { peakMb: undefined, rssMb: undefined, pssMb: undefined };
    }
  }
  return { peakMb, rssMb, pssMb: tree.length > 1 ? pssMb : rssMb };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return undefined;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? undefined : num / den;
}

export const round = (value, digits = 2) => (value === undefined || value === null || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));

/** Prints one JSON line on stdout: how the bench's own processes talk to the runner. */
export function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** CPU and peak RSS of this process, the same readings the runner takes of Courier from /proc. */
export function selfUsage() {
  const cpu = process.cpuUsage();
  return { cpuS: (cpu.user + cpu.system) / 1e6, ...memoryOf(process.pid) };
}
