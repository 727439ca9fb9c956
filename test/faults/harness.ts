import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';
import { type Handler, TestApp } from '../helpers/app.js';
import { recordReceipts } from '../helpers/batch.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { createTopics, endOffsets, headerOf, readAll, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';
import { type CommitSample, check, type Ordering, type Produced, type Verdict } from './history.js';

/**
 * One fault scenario against a real broker: a topic, its DLQ, a test app, Courier processes in one
 * group, a producer that keeps producing while faults happen, and a sampler that reads the group's
 * committed offsets from the broker every 200 ms. `verdict()` runs the history checker.
 */
export interface FaultRunOptions {
  readonly bootstrap: string;
  readonly name: string;
  readonly partitions: number;
  readonly ordering: Ordering;
  readonly handler?: Handler;
  readonly env?: Record<string, string>;
  /** Keys cycle through this many values (key mode needs several per partition). */
  readonly keys?: number;
}

export async function startFaultRun(options: FaultRunOptions) {
  const { bootstrap } = options;
  const topic = uniqueName(options.name);
  const groupId = uniqueName(`${options.name}-group`);
  const dlqTopic = `${topic}.dlq`;
  await createTopics(bootstrap, [
    { topic, partitions: options.partitions },
    { topic: dlqTopic, partitions: 1 },
  ]);
  const kafka = new KafkaJS.Kafka({ 'bootstrap.servers': bootstrap, log_level: 0 } as never);
  // Reads the group's committed offsets (an OffsetFetch; it never joins the group). The admin
  // client tripped a librdkafka assertion when its requests timed out while the broker was down.
  const reader = new rdkafka.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': groupId, 'enable.auto.commit': false, log_level: 0 } as never, {});
  await new Promise<void>((resolve, reject) => reader.connect({}, (error) => (error ? reject(error) : resolve())));
  const partitionList = Array.from({ length: options.partitions }, (_, partition) => ({ topic, partition }));
  const readCommitted = () =>
    new Promise<Map<number, number>>((resolve, reject) =>
      reader.committed(partitionList, 5000, (error, result) => (error ? reject(error) : resolve(new Map(result.map((p) => [p.partition, p.offset ?? -1]))))),
    );
  const producer = kafka.producer({ 'linger.ms': 0, 'enable.idempotence': true } as never);
  await producer.connect();
  const app = new TestApp(options.handler);
  await app.listen();

  const produced: Produced[] = [];
  const commits: CommitSample[] = [];
  const couriers: CourierProcess[] = [];
  let sequence = 0;
  let producing: Promise<void> | undefined;
  let stopProducing = false;
  let sampling = true;

  const sampler = (async () => {
    while (sampling) {
      try {
        const offsets = await readCommitted();
        commits.push({ at: Date.now(), offsets });
      } catch {
        // The broker may be down in a scenario; the next sample will tell.
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();

  /** Sends one record; the key decides the partition, so key order is partition-local. */
  const send = async (key: string, value: string) => {
    const partition = hash(key) % options.partitions;
    const [meta] = await producer.send({ topic, messages: [{ key, value, partition }] });
    produced.push({ partition, offset: Number(meta?.baseOffset), key });
  };

  return {
    topic,
    groupId,
    dlqTopic,
    app,
    produced,
    send,
    courier(env: Record<string, string> = {}): CourierProcess {
      const process = new CourierProcess(
        courierEnv(bootstrap, {
          COURIER_GROUP_ID: groupId,
          COURIER_TOPICS: topic,
          COURIER_TARGET_URL: app.url,
          COURIER_ORDERING: options.ordering,
          ...options.env,
          ...env,
        }),
      );
      couriers.push(process);
      return process.start();
    },
    /** Keeps producing about `perSecond` records until `stopProducing`. */
    startProducing(perSecond = 100): void {
      const batch = Math.max(1, Math.round(perSecond / 20));
      const keys = options.keys ?? 16;
      producing = (async () => {
        while (!stopProducing) {
          const sends: Array<Promise<void>> = [];
          for (let i = 0; i < batch; i++) {
            const seq = sequence++;
            sends.push(send(`key-${seq % keys}`, JSON.stringify({ seq })));
          }
          await Promise.all(sends);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
    },
    async stopProducing(): Promise<void> {
      stopProducing = true;
      await producing;
    },
    /** Waits until the group's committed offsets reach the end offsets of every partition. */
    async drained(timeoutMs = 90_000): Promise<void> {
      await waitFor(
        'committed offsets to reach the end offsets',
        async () => {
          const ends = await endOffsets(bootstrap, topic);
          const last = commits.at(-1);
          return last !== undefined && [...ends].every(([partition, end]) => end === 0 || last.offsets.get(partition) === end);
        },
        timeoutMs,
        250,
      );
    },
    async verdict(duplicatesAllowed: boolean): Promise<Verdict> {
      const deadLetters = (await readAll(bootstrap, dlqTopic)).map((record) => ({
        partition: Number(headerOf(record, 'original_partition')),
        offset: Number(headerOf(record, 'original_offset')),
      }));
      // A batch request is one delivery per record, each with the status that applied to it.
      const deliveries = app.receipts.flatMap(recordReceipts);
      const verdict = check({ ordering: options.ordering, produced, deliveries, commits, deadLetters, duplicatesAllowed });
      console.log(
        `[fault: ${options.name}] produced=${verdict.produced} delivered=${verdict.delivered} duplicates=${verdict.duplicates} dlq=${verdict.deadLettered} requests=${app.receipts.length} violations=${verdict.violations.length}`,
      );
      return verdict;
    },
    async close(): Promise<void> {
      stopProducing = true;
      await producing;
      sampling = false;
      await sampler;
      for (const process of couriers) await process.kill();
      await app.close();
      await producer.disconnect();
      await new Promise<void>((resolve) => reader.disconnect(() => resolve()));
    },
  };
}

export type FaultRun = Awaited<ReturnType<typeof startFaultRun>>;

function hash(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h;
}
