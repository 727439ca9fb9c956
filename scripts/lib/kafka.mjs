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

/**
 * Reads a group's committed offsets with a consumer that never joins the group. Not with the admin
 * client (fetchOffsets): librdkafka 2.15 answers a NOT_COORDINATOR reply to its OffsetFetch by handing
 * a coordinator query to the client's consumer group, which an admin client does not have, and the
 * process dies of SIGSEGV; a fresh broker answers so while it loads __consumer_offsets, which is when
 * the demo and the benchmark first ask.
 */
export async function groupOffsetReader(bootstrap, groupId) {
  const consumer = new rdkafka.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': groupId, 'enable.auto.commit': false, log_level: 0 }, {});
  await new Promise((resolve, reject) => consumer.connect({}, (error) => (error ? reject(error) : resolve())));
  const partitionsOf = new Map();
  return {
    /** Map partition → committed offset of the group (-1 when none). */
    async committed(topic) {
      let partitions = partitionsOf.get(topic);
      if (!partitions) {
        const metadata = await new Promise((resolve, reject) =>
          consumer.getMetadata({ topic, timeout: 10_000 }, (error, data) => (error ? reject(error) : resolve(data))),
        );
        partitions = (metadata.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => ({ topic, partition: p.id }));
        if (partitions.length > 0) partitionsOf.set(topic, partitions);
      }
      if (partitions.length === 0) return new Map();
      const offsets = await new Promise((resolve, reject) =>
        consumer.committed(partitions, 10_000, (error, result) => (error ? reject(error) : resolve(result))),
      );
      return new Map(offsets.map((p) => [p.partition, p.offset ?? -1]));
    },
    close: () => new Promise((resolve) => consumer.disconnect(() => resolve())),
  };
}

/** Map partition → committed offset of the group (-1 when none), with a reader of its own. */
export async function committedOffsets(bootstrap, groupId, topic) {
  const reader = await groupOffsetReader(bootstrap, groupId);
  try {
    return await reader.committed(topic);
  } finally {
    await reader.close();
  }
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
