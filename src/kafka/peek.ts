import type { Message as RdMessage } from '@confluentinc/kafka-javascript';
import rdkafka from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import { type TopicPartition, type TopicPartitionOffset, tpKey } from '../record.js';
import { logLevelOf } from './diagnosis.js';
import { fromLibrdkafka, LIBRDKAFKA } from './errors.js';
import { splitProperties } from './properties.js';
import { hearRefreshFailures, type KafkaTokens } from './token.js';

/**
 * Reads the timestamp of the record at a given offset, for the lag's age when Courier holds no
 * record of a partition (paused, or not fetched yet). librdkafka has no call for that
 * (offsetsForTimes maps a time to an offset, not back), so a second consumer assigns the
 * partitions at those offsets and reads their first record. It never subscribes, so it never joins
 * the group and never commits (it uses the group's id only so that the same ACLs apply). Made on
 * first use: most instances never need it.
 */

/** The consumer's properties, made fit for reading a few records by hand. */
export function peekProperties(consumer: Readonly<Record<string, string>>): Record<string, string> {
  const properties: Record<string, string> = { ...consumer };
  // A static member id belongs to the real consumer alone.
  delete properties['group.instance.id'];
  return {
    ...properties,
    'client.id': `${consumer['client.id'] ?? 'courier'}-lag`,
    'enable.auto.commit': 'false',
    'enable.auto.offset.store': 'false',
    // The end of a partition answers "no record there yet" at once, instead of after the timeout.
    'enable.partition.eof': 'true',
    // An offset deleted by retention reads the oldest record left.
    'auto.offset.reset': 'earliest',
    // One record is wanted, not librdkafka's usual prefetch of up to 100,000 per partition.
    'queued.min.messages': '1',
    'max.partition.fetch.bytes': '65536',
    'fetch.wait.max.ms': '100',
  };
}

/**
 * Takes one consumed batch into `found`: a partition's first record at or after its wanted offset
 * gives its timestamp (-1 for a record without one); a partition that reached its end without such
 * a record (`ended`) gives null. Messages first: an end reported in the same batch comes after them.
 */
export function takeFirstRecords(
  wanted: ReadonlyMap<string, number>,
  messages: ReadonlyArray<Pick<RdMessage, 'topic' | 'partition' | 'offset' | 'timestamp'>>,
  ended: Iterable<TopicPartition>,
  found: Map<string, number | null>,
): void {
  for (const message of messages) {
    const key = tpKey(message);
    const from = wanted.get(key);
    if (from === undefined || found.has(key) || message.offset < from) continue;
    found.set(key, typeof message.timestamp === 'number' && message.timestamp >= 0 ? message.timestamp : -1);
  }
  for (const tp of ended) {
    const key = tpKey(tp);
    if (wanted.has(key) && !found.has(key)) found.set(key, null);
  }
}

type RdConsumer = InstanceType<typeof rdkafka.KafkaConsumer>;

export class RecordPeeker {
  private consumer: Promise<RdConsumer> | undefined;
  private closed = false;
  /** One read at a time: the consumer has one assignment. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly properties: Readonly<Record<string, string>>,
    private readonly logger: Logger,
    private readonly tokens?: KafkaTokens,
  ) {}

  /** For each position, the first record's timestamp at or after it (see `takeFirstRecords`). */
  timestampsAt(positions: readonly TopicPartitionOffset[], timeoutMs: number): Promise<Map<string, number | null>> {
    const read = this.chain.then(() => this.read(positions, timeoutMs));
    this.chain = read.catch(() => undefined);
    return read;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.consumer;
    this.consumer = undefined;
    const consumer = await pending?.catch(() => undefined);
    if (consumer?.isConnected()) await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }

  private async read(positions: readonly TopicPartitionOffset[], timeoutMs: number): Promise<Map<string, number | null>> {
    const deadline = Date.now() + timeoutMs;
    const consumer = await this.connect(timeoutMs);
    const wanted = new Map(positions.map((p) => [tpKey(p), p.offset]));
    const found = new Map<string, number | null>();
    let ended: TopicPartition[] = [];
    const onEnd = (eof: TopicPartition) => ended.push(eof);
    consumer.on('partition.eof', onEnd);
    consumer.assign(positions.map(({ topic, partition, offset }) => ({ topic, partition, offset })));
    try {
      while (found.size < wanted.size && Date.now() < deadline) {
        const messages = await new Promise<RdMessage[]>((resolve) => {
          consumer.consume(Math.max(wanted.size, 10), (error, batch) => {
            if (error && error.code !== LIBRDKAFKA.TIMED_OUT && error.code !== LIBRDKAFKA.PARTITION_EOF) {
              this.logger.debug({ err: fromLibrdkafka(error).message }, 'lag: reading a record timestamp failed');
            }
            resolve(error ? [] : batch);
          });
        });
        takeFirstRecords(wanted, messages, ended, found);
        ended = [];
      }
    } finally {
      consumer.removeListener('partition.eof', onEnd);
      if (consumer.isConnected()) consumer.unassign();
    }
    return found;
  }

  private connect(timeoutMs: number): Promise<RdConsumer> {
    if (this.closed) return Promise.reject(new Error('lag: the record reader is closed'));
    if (this.consumer) return this.consumer;
    const connecting = new Promise<RdConsumer>((resolve, reject) => {
      const { global, topic } = splitProperties(peekProperties(this.properties));
      const refresh = this.tokens ? { oauthbearer_token_refresh_cb: this.tokens.callbackFor('lag reader') } : {};
      const consumer = new rdkafka.KafkaConsumer({ ...global, ...refresh } as never, topic as never);
      if (this.tokens) hearRefreshFailures(consumer);
      consumer.setDefaultConsumeTimeout(100);
      consumer.on('event.error', (error) => this.logger.debug({ err: fromLibrdkafka(error).message }, 'lag: record reader error'));
      // Its lines go to the log; what they say is wrong, the consumer (same cluster, same
      // credentials) reports for readiness.
      consumer.on('event.log', (line) =>
        this.logger[logLevelOf(line.severity)]({ kafka: { client: 'lag reader', facility: line.fac } }, `librdkafka: ${line.message}`),
      );
      consumer.connect({ timeout: timeoutMs }, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: 'lag: cannot connect the record reader' }));
        else resolve(consumer);
      });
    });
    // A failed connection is tried again next time.
    connecting.catch(() => {
      if (this.consumer === connecting) this.consumer = undefined;
    });
    this.consumer = connecting;
    return connecting;
  }
}
