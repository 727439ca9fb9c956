// Kafka helpers shared by the demo (scripts/demo/) and the benchmark (bench/): the same client Courier uses.
import { randomUUID } from 'node:crypto';
import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';

export function kafka(bootstrap) {
  return new KafkaJS.Kafka({ 'bootstrap.servers': bootstrap, log_level: 0 });
}

export async function withAdmin(bootstrap, fn) {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Map partition → high watermark (end offset). */
export async function endOffsets(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((p) => [p.partition, Number(p.high)]));
}

/** Map partition → committed offset of the group (-1 when none). */
export async function committedOffsets(admin, groupId, topic) {
  const [result] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map((result?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

export const sum = (map) => [...map.values()].reduce((a, b) => a + Math.max(0, b), 0);

/** Every record currently in the topic, read with the low-level consumer up to the end offsets as they are now. */
export async function readAll(bootstrap, topic, timeoutMs = 30_000) {
  const ends = await withAdmin(bootstrap, (admin) => endOffsets(admin, topic));
  const wanted = [...ends].filter(([, end]) => end > 0);
  if (wanted.length === 0) return [];
  const consumer = new rdkafka.KafkaConsumer(
    { 'bootstrap.servers': bootstrap, 'group.id': `demo-reader-${randomUUID().slice(0, 8)}`, 'enable.auto.commit': false, log_level: 0 },
    {},
  );
  await new Promise((resolve, reject) => consumer.connect({}, (error) => (error ? reject(error) : resolve())));
  try {
    consumer.assign(wanted.map(([partition]) => ({ topic, partition, offset: 0 })));
    const out = [];
    const position = new Map(wanted.map(([p]) => [p, 0]));
    const deadline = Date.now() + timeoutMs;
    while ([...position].some(([p, at]) => at < ends.get(p))) {
      if (Date.now() > deadline) throw new Error(`reading ${topic} timed out`);
      const batch = await new Promise((resolve, reject) => consumer.consume(500, (error, messages) => (error ? reject(error) : resolve(messages))));
      for (const m of batch) {
        position.set(m.partition, m.offset + 1);
        const headers = Object.fromEntries((m.headers ?? []).flatMap((h) => Object.entries(h).map(([k, v]) => [k, Buffer.from(v).toString('utf8')])));
        out.push({ partition: m.partition, offset: m.offset, key: m.key?.toString() ?? null, value: m.value?.toString() ?? null, headers });
      }
    }
    return out;
  } finally {
    await new Promise((resolve) => consumer.disconnect(() => resolve()));
  }
}
