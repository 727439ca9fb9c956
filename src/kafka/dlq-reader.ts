import type { Message as RdMessage } from '@confluentinc/kafka-javascript';
import rdkafka from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import { CourierError } from '../errors.js';
import type { KafkaRecord } from '../record.js';
import { fromLibrdkafka, LIBRDKAFKA } from './errors.js';
import { type ParkedRecord, readParked } from './parked.js';
import { peekProperties } from './peek.js';
import { splitProperties } from './properties.js';
import { hearRefreshFailures, type KafkaTokens } from './token.js';

/**
 * Reads a DLQ topic for `courier dlq list` and redrive (DESIGN A7): a consumer that assigns
 * partitions by hand, never joins the group and never commits, so the main group's offsets are
 * untouched. It reads up to the end offsets as they are when the read starts: records dead-lettered
 * meanwhile (a redriven record failing again, say) are not read by the same request.
 */

export interface DeadLetterFilter {
  /** Only records of this source topic (`original_topic`). */
  readonly topic: string;
  readonly errorType?: string | undefined;
  readonly httpStatus?: number | undefined;
  /** Only this DLQ partition. */
  readonly partition?: number | undefined;
  /** Inclusive DLQ offsets, in each partition read. */
  readonly fromOffset?: number | undefined;
  readonly toOffset?: number | undefined;
}

/** Whether a DLQ record passes the filter (its partition and offsets were chosen by the read). */
export function matchesFilter(parked: ParkedRecord, filter: DeadLetterFilter): boolean {
  if (parked.fields.get('original_topic') !== filter.topic) return false;
  if (filter.errorType !== undefined && parked.fields.get('error_type') !== filter.errorType) return false;
  if (filter.httpStatus !== undefined && parked.fields.get('http_status') !== String(filter.httpStatus)) return false;
  return true;
}

/** Which offsets of a partition to read: [from, to] within [low, high). Undefined: none. */
export function readRange(low: number, high: number, filter: Pick<DeadLetterFilter, 'fromOffset' | 'toOffset'>): { from: number; to: number } | undefined {
  const from = Math.max(low, filter.fromOffset ?? 0);
  const to = Math.min(high - 1, filter.toOffset ?? Number.MAX_SAFE_INTEGER);
  return from <= to ? { from, to } : undefined;
}

/** A DLQ record with where it is. */
export interface DeadLetterRecord {
  readonly record: KafkaRecord;
  readonly parked: ParkedRecord;
}

type RdConsumer = InstanceType<typeof rdkafka.KafkaConsumer>;

const CALL_TIMEOUT_MS = 10_000;
/** A read gives up when a partition brings nothing for this long (the broker is gone). */
const STALL_MS = 30_000;

export class DeadLetterReader {
  constructor(
    private readonly properties: Readonly<Record<string, string>>,
    private readonly logger: Logger,
    private readonly tokens?: KafkaTokens,
  ) {}

  /**
   * Calls `visit` for each record of `dlqTopic` in the filter's partitions and offsets, partition
   * by partition in offset order, until every range is read or `visit` returns false.
   */
  async read(dlqTopic: string, filter: DeadLetterFilter, visit: (entry: DeadLetterRecord) => Promise<boolean> | boolean): Promise<void> {
    const consumer = await this.connect();
    try {
      const partitions = await partitionsOf(consumer, dlqTopic);
      for (const partition of partitions) {
        if (filter.partition !== undefined && partition !== filter.partition) continue;
        const { low, high } = await watermarks(consumer, dlqTopic, partition);
        const range = readRange(low, high, filter);
        if (!range) continue;
        if (!(await this.readPartition(consumer, dlqTopic, partition, range, visit))) return;
      }
    } finally {
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    }
  }

  private async readPartition(
    consumer: RdConsumer,
    topic: string,
    partition: number,
    range: { from: number; to: number },
    visit: (entry: DeadLetterRecord) => Promise<boolean> | boolean,
  ): Promise<boolean> {
    consumer.assign([{ topic, partition, offset: range.from }]);
    try {
      let next = range.from;
      let lastProgress = Date.now();
      while (next <= range.to) {
        const messages = await new Promise<RdMessage[]>((resolve) => {
          consumer.consume(100, (error, batch) => {
            if (error && error.code !== LIBRDKAFKA.TIMED_OUT && error.code !== LIBRDKAFKA.PARTITION_EOF) {
              this.logger.debug({ err: fromLibrdkafka(error).message }, 'DLQ reader: consume failed');
            }
            resolve(error ? [] : batch);
          });
        });
        if (messages.length === 0) {
          if (Date.now() - lastProgress > STALL_MS) throw new Error(`reading ${topic}-${partition} stalled at offset ${next}`);
          continue;
        }
        lastProgress = Date.now();
        for (const message of messages) {
          // Transaction markers and compaction leave gaps: the end is by offset, not by count.
          if (message.offset > range.to) return true;
          next = message.offset + 1;
          const record = toRecord(message);
          if (!(await visit({ record, parked: readParked(record) }))) return false;
        }
      }
      return true;
    } finally {
      consumer.unassign();
    }
  }

  private connect(): Promise<RdConsumer> {
    return new Promise<RdConsumer>((resolve, reject) => {
      const properties: Record<string, string> = { ...peekProperties(this.properties), 'client.id': `${this.properties['client.id'] ?? 'courier'}-dlq-reader` };
      // Whole batches, not the lag reader's single records.
      delete properties['queued.min.messages'];
      delete properties['max.partition.fetch.bytes'];
      const { global, topic } = splitProperties(properties);
      const refresh = this.tokens ? { oauthbearer_token_refresh_cb: this.tokens.callbackFor('DLQ reader') } : {};
      const consumer = new rdkafka.KafkaConsumer({ ...global, ...refresh } as never, topic as never);
      if (this.tokens) hearRefreshFailures(consumer);
      consumer.setDefaultConsumeTimeout(200);
      consumer.on('event.error', (error) => this.logger.debug({ err: fromLibrdkafka(error).message }, 'DLQ reader error'));
      consumer.connect({ timeout: CALL_TIMEOUT_MS }, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: 'cannot connect the DLQ reader' }));
        else resolve(consumer);
      });
    });
  }
}

function partitionsOf(consumer: RdConsumer, topic: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    consumer.getMetadata({ topic, timeout: CALL_TIMEOUT_MS }, (error, metadata) => {
      if (error) return reject(fromLibrdkafka(error, { prefix: `cannot read the metadata of ${topic}` }));
      const found = metadata.topics.find((t) => t.name === topic);
      if (!found || found.partitions.length === 0) return reject(new CourierError('TOPIC_NOT_FOUND', `topic ${topic} does not exist`));
      resolve(found.partitions.map((p) => p.id).sort((a, b) => a - b));
    });
  });
}

function watermarks(consumer: RdConsumer, topic: string, partition: number): Promise<{ low: number; high: number }> {
  return new Promise((resolve, reject) => {
    consumer.queryWatermarkOffsets(topic, partition, CALL_TIMEOUT_MS, (error, offsets) => {
      if (error) reject(fromLibrdkafka(error));
      else resolve({ low: offsets.lowOffset, high: offsets.highOffset });
    });
  });
}

function toRecord(message: RdMessage): KafkaRecord {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp ?? -1,
    key: (message.key as Buffer | null | undefined) ?? null,
    value: message.value ?? null,
    headers: (message.headers ?? []).flatMap((header) => Object.entries(header).map(([name, value]) => [name, Buffer.from(value as Buffer)] as const)),
    fetchedAt: Date.now(),
  };
}
