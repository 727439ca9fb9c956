import { randomUUID } from 'node:crypto';
import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';

/** Real-broker helpers for integration tests: topics, producing, reading back, group offsets. */

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

function kafka(bootstrap: string) {
  return new KafkaJS.Kafka({ 'bootstrap.servers': bootstrap, log_level: 0 } as never);
}

export async function createTopics(bootstrap: string, topics: Array<{ topic: string; partitions: number; config?: Record<string, string> }>): Promise<void> {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map(({ topic, partitions, config }) => ({
        topic,
        numPartitions: partitions,
        replicationFactor: 1,
        configEntries: Object.entries(config ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  } finally {
    await admin.disconnect();
  }
}

export interface ProducedRecord {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  partition?: number;
  headers?: Record<string, string | Buffer | Array<string | Buffer>>;
  /** The record's timestamp, milliseconds since the epoch as a string (the producer's clock by default). */
  timestamp?: string;
}

export async function produce(bootstrap: string, topic: string, records: ProducedRecord[], properties: Record<string, string | number> = {}): Promise<void> {
  const producer = kafka(bootstrap).producer({ 'linger.ms': 5, 'enable.idempotence': true, ...properties } as never);
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 500) {
      await producer.send({ topic, messages: records.slice(i, i + 500) as never });
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * Committed offset per partition for the group (-1 when none), read with a consumer that never joins
 * the group. Not with the admin client (KafkaJS fetchOffsets): librdkafka 2.15 answers a
 * NOT_COORDINATOR reply to its OffsetFetch by handing a coordinator query to the client's consumer
 * group, which an admin client does not have, and the process dies of SIGSEGV
 * (rd_kafka_handle_OffsetFetch → rd_kafka_cgrp_op(rkcg=NULL)). A fresh broker answers so while it
 * loads __consumer_offsets: it killed the vitest worker of examples.test.ts on a first run.
 */
export async function committedOffsets(bootstrap: string, groupId: string, topic: string): Promise<Map<number, number>> {
  const consumer = new rdkafka.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': groupId, 'enable.auto.commit': false, log_level: 0 } as never, {});
  const metadata = await new Promise<rdkafka.Metadata>((resolve, reject) =>
    consumer.connect({ topic, timeout: 10_000 }, (error, data) => (error ? reject(error) : resolve(data))),
  );
  try {
    const partitions = (metadata.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => ({ topic, partition: p.id }));
    if (partitions.length === 0) return new Map();
    const offsets = await new Promise<rdkafka.TopicPartitionOffset[]>((resolve, reject) =>
      consumer.committed(partitions, 10_000, (error, result) => (error ? reject(error) : resolve(result))),
    );
    return new Map(offsets.map((p) => [p.partition, p.offset ?? -1]));
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

export async function endOffsets(bootstrap: string, topic: string): Promise<Map<number, number>> {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

export interface ReadRecord {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[string, Buffer]>;
}

/** Every record currently in the topic (reads up to the end offsets as they are now). */
export async function readAll(bootstrap: string, topic: string): Promise<ReadRecord[]> {
  const ends = await endOffsets(bootstrap, topic);
  const wanted = [...ends].filter(([, end]) => end > 0);
  if (wanted.length === 0) return [];
  const consumer = new rdkafka.KafkaConsumer(
    { 'bootstrap.servers': bootstrap, 'group.id': uniqueName('reader'), 'enable.auto.commit': false, log_level: 0 } as never,
    {},
  );
  await new Promise<void>((resolve, reject) => consumer.connect({}, (error) => (error ? reject(error) : resolve())));
  try {
    consumer.assign(wanted.map(([partition]) => ({ topic, partition, offset: 0 })));
    const out: ReadRecord[] = [];
    const position = new Map<number, number>(wanted.map(([p]) => [p, 0]));
    const deadline = Date.now() + 30_000;
    while ([...position].some(([p, at]) => at < (ends.get(p) ?? 0))) {
      if (Date.now() > deadline) throw new Error(`readAll(${topic}) timed out`);
      const batch = await new Promise<rdkafka.Message[]>((resolve, reject) =>
        consumer.consume(500, (error, messages) => (error ? reject(error) : resolve(messages))),
      );
      for (const m of batch) {
        position.set(m.partition, m.offset + 1);
        out.push({
          partition: m.partition,
          offset: m.offset,
          key: (m.key as Buffer | null | undefined) ?? null,
          value: m.value,
          headers: (m.headers ?? []).flatMap((h) => Object.entries(h).map(([k, v]) => [k, Buffer.from(v as Buffer)] as [string, Buffer])),
        });
      }
    }
    return out;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

export function headerOf(record: ReadRecord, name: string): string | undefined {
  return record.headers.find(([key]) => key === name)?.[1].toString('utf8');
}
