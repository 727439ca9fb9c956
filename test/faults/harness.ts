import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';
import { type Handler, TestApp } from '../helpers/app.js';
import { recordReceipts } from '../helpers/batch.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { committedOffsets, createTopics, endOffsets, headerOf, type ReadRecord, readAll, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';
import { type CommitSample, check, type Ordering, type Parked, type Produced, type Verdict } from './history.js';

/**
 * One fault scenario against a real broker: a topic, its DLQ (and retry tier topics when asked), a
 * test app, Courier processes in one group, a producer that keeps producing while faults happen,
 * and a sampler that reads the group's committed offsets from the broker every 200 ms. `verdict()`
 * runs the history checker.
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
  /**
   * Retry tiers (DESIGN A7), e.g. ['1s', '3s']: their topics (the default template,
   * `{topic}.retry-{delay}`) are created with the source's partition count, Courier gets
   * COURIER_RETRY_TIERS and COURIER_MAX_ATTEMPTS=2 (`env` may say otherwise), `drained` waits for the
   * tier topics too, and the verdict reads them.
   */
  readonly tiers?: readonly string[];
}

/** A record Courier wrote to a retry tier, read back after the run. */
export interface TierRecord extends Parked {
  /** The tier it was written to (`retry_tier`). */
  readonly tier: string;
  readonly record: ReadRecord;
}

/** A committed-offsets sample older than this is read again with a fresh client. */
const STALE_SAMPLE_MS = 5000;

/** What the log says when a record's tier write was acknowledged (src/pipeline/attempts.ts). */
const PARKED_LOG = 'record parked in its next retry tier; its partition moves on';

export async function startFaultRun(options: FaultRunOptions) {
  const { bootstrap } = options;
  const topic = uniqueName(options.name);
  const groupId = uniqueName(`${options.name}-group`);
  const dlqTopic = `${topic}.dlq`;
  const tiers = (options.tiers ?? []).map((label) => ({ label, delayMs: delayMs(label), topic: `${topic}.retry-${label}` }));
  await createTopics(bootstrap, [
    { topic, partitions: options.partitions },
    { topic: dlqTopic, partitions: 1 },
    // Courier never creates them: like the DLQ, the operator does, as wide as the source.
    ...tiers.map((tier) => ({ topic: tier.topic, partitions: options.partitions })),
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
  const tierPartitions = tiers.flatMap((tier) => Array.from({ length: options.partitions }, (_, partition) => ({ topic: tier.topic, partition })));
  /** The group's committed offsets of the tier partitions, by `topic/partition`. */
  const readTierCommitted = () =>
    new Promise<Map<string, number>>((resolve, reject) =>
      reader.committed(tierPartitions, 5000, (error, result) =>
        error ? reject(error) : resolve(new Map(result.map((p) => [`${p.topic}/${p.partition}`, p.offset ?? -1]))),
      ),
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

  /**
   * Every record written to the tier topics, by the source record it carries. `parkedAt` is when
   * the tier write was made: Courier sets `retry_due_at` to the time it sends the write plus the
   * tier's delay, afresh for each try of a write the broker refused, so `retry_due_at` − delay is
   * when the write that landed was sent, milliseconds before the broker acknowledged it (and only
   * then may the source offset move). `failed_at` is the failure decision, before the first try:
   * seconds earlier when the write had to be tried again, and a commit made in between would pass
   * as fine. So the later, tighter time; `failed_at` only when `retry_due_at` is missing. Both are
   * Courier's clock, which on this machine is the checker's.
   */
  const readTiers = async (): Promise<TierRecord[]> => {
    const read = await Promise.all(tiers.map(async (tier) => ({ tier, records: await readAll(bootstrap, tier.topic) })));
    return read.flatMap(({ tier, records }) =>
      records.map((record) => {
        const dueAt = headerOf(record, 'retry_due_at');
        const parked = {
          partition: Number(headerOf(record, 'original_partition')),
          offset: Number(headerOf(record, 'original_offset')),
          parkedAt: dueAt === undefined ? Date.parse(headerOf(record, 'failed_at') ?? '') : Number(dueAt) - tier.delayMs,
          tier: headerOf(record, 'retry_tier') ?? tier.label,
          record,
        };
        // An unreadable time would pass every commit as fine.
        if (![parked.partition, parked.offset, parked.parkedAt].every(Number.isFinite)) {
          throw new Error(
            `unreadable tier record ${tier.topic}-${record.partition}@${record.offset}: ${JSON.stringify(record.headers.map(([k, v]) => [k, v.toString()]))}`,
          );
        }
        return parked;
      }),
    );
  };

  return {
    topic,
    groupId,
    dlqTopic,
    tierTopics: tiers.map((tier) => tier.topic),
    app,
    produced,
    send,
    /** How many records `startProducing` sent (seq 0 to this, less one, once it stopped). */
    get sent(): number {
      return sequence;
    },
    readTiers,
    /**
     * Records sitting in a retry tier now: parked (their tier write acknowledged, as a Courier logged
     * it) and neither acknowledged by the app nor dead-lettered since.
     */
    sittingInTiers(): number {
      const parked = new Set<string>();
      const done = new Set<string>();
      for (const process of couriers) {
        for (const line of process.logs) {
          if (line.topic !== topic) continue;
          if (line.msg === PARKED_LOG) parked.add(`${line.partition}/${line.offset}`);
          else if (line.msg === 'record dead-lettered') done.add(`${line.partition}/${line.offset}`);
        }
      }
      for (const receipt of app.acknowledged()) done.add(`${receipt.partition}/${receipt.offset}`);
      return [...parked].filter((record) => !done.has(record)).length;
    },
    courier(env: Record<string, string> = {}): CourierProcess {
      const process = new CourierProcess(
        courierEnv(bootstrap, {
          COURIER_GROUP_ID: groupId,
          COURIER_TOPICS: topic,
          COURIER_TARGET_URL: app.url,
          COURIER_ORDERING: options.ordering,
          ...(tiers.length > 0 ? { COURIER_RETRY_TIERS: tiers.map((tier) => tier.label).join(','), COURIER_MAX_ATTEMPTS: '2' } : {}),
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
    /**
     * Waits until the group's committed offsets reach the end offsets of every partition, the tier
     * topics' included. Committed offsets are read before end offsets: a record moving on (source →
     * tier → next tier → DLQ) is committed where it was only after its next write landed, so at
     * least one topic shows it pending.
     */
    async drained(timeoutMs = 90_000): Promise<void> {
      /** The partitions behind at the last look, for the error. */
      let behind: string[] = [];
      const lagging = (name: string, ends: Map<number, number>, committed: (partition: number) => number | undefined) =>
        [...ends]
          .filter(([partition, end]) => end > 0 && committed(partition) !== end)
          .map(([partition, end]) => `${name}-${partition} ${committed(partition)}/${end}`);
      /** A fresh client's read when the sampler's last one is stale (its consumer can stay stuck after a broker restart). */
      const latest = async (): Promise<CommitSample | undefined> => {
        const last = commits.at(-1);
        if (last !== undefined && Date.now() - last.at < STALE_SAMPLE_MS) return last;
        try {
          const offsets = await committedOffsets(bootstrap, groupId, topic);
          const fresh = { at: Date.now(), offsets }; // as the sampler: the time the answer came
          commits.push(fresh); // an observation like the sampler's: the checker judges it too
          return fresh;
        } catch {
          return last;
        }
      };
      try {
        await waitFor(
          'committed offsets to reach the end offsets',
          async () => {
            const last = await latest();
            const tierCommitted = tiers.length > 0 ? await readTierCommitted() : new Map<string, number>();
            behind = lagging(topic, await endOffsets(bootstrap, topic), (partition) => last?.offsets.get(partition));
            for (const tier of tiers) {
              behind.push(...lagging(tier.topic, await endOffsets(bootstrap, tier.topic), (partition) => tierCommitted.get(`${tier.topic}/${partition}`)));
            }
            return last !== undefined && behind.length === 0;
          },
          timeoutMs,
          250,
        );
      } catch (error) {
        // What a failure in CI needs to be told apart: a stuck sampler, or Courier not committing (and why).
        const last = commits.at(-1);
        const sampled = last === undefined ? 'never sampled' : `last sample ${Math.round((Date.now() - last.at) / 1000)} s old`;
        const warnings = couriers.flatMap((process, index) =>
          process.logs
            .filter((line) => line.level >= 40)
            .slice(-8)
            .map((line) => `  courier ${index}: ${JSON.stringify(line)}`),
        );
        throw new Error(
          `${(error as Error).message}; behind (committed/end): ${behind.join(', ') || 'none seen'}; ${sampled}${warnings.length > 0 ? `\n${warnings.join('\n')}` : ''}`,
        );
      }
    },
    async verdict(duplicatesAllowed: boolean): Promise<Verdict> {
      const [dead, parked] = await Promise.all([readAll(bootstrap, dlqTopic), tiers.length > 0 ? readTiers() : undefined]);
      const deadLetters = dead.map((record) => ({
        partition: Number(headerOf(record, 'original_partition')),
        offset: Number(headerOf(record, 'original_offset')),
      }));
      // A batch request is one delivery per record, each with the status that applied to it.
      const deliveries = app.receipts.flatMap(recordReceipts);
      const verdict = check({
        ordering: options.ordering,
        produced,
        deliveries,
        commits,
        deadLetters,
        duplicatesAllowed,
        ...(parked ? { parked: parked.map(({ partition, offset, parkedAt }) => ({ partition, offset, parkedAt })) } : {}),
      });
      const tiered = parked ? ` parked=${verdict.parked} tier-writes=${parked.length}` : '';
      console.log(
        `[fault: ${options.name}] produced=${verdict.produced} delivered=${verdict.delivered} duplicates=${verdict.duplicates} dlq=${verdict.deadLettered}${tiered} requests=${app.receipts.length} violations=${verdict.violations.length}`,
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

/**
 * An app for tier runs: a record fails (500) until `failMs(seq)` after the app first saw it, then
 * succeeds; 0 never fails, Infinity fails for ever. Decided by the record's seq and the app's own
 * clock, whichever Courier delivers it and from wherever (its source or a tier).
 */
export function failingFor(failMs: (seq: number) => number): Handler {
  const firstSeen = new Map<number, number>();
  return (receipt) => {
    const seq = (JSON.parse(receipt.body.toString()) as { seq: number }).seq;
    const ms = failMs(seq);
    if (ms <= 0) return { status: 200 };
    const first = firstSeen.get(seq) ?? receipt.at;
    firstSeen.set(seq, first);
    return receipt.at - first < ms ? { status: 500, body: 'not yet' } : { status: 200 };
  };
}

/** A tier's delay as COURIER_RETRY_TIERS writes it (`500ms`, `1s`, `5m`, `1h`, `1d`), in ms. */
function delayMs(label: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(label);
  if (!match) throw new Error(`not a tier delay: ${label}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

function hash(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h;
}
