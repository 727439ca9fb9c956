import rdkafka from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import { CourierError } from '../errors.js';
import type { KafkaRecord } from '../record.js';
import type { KafkaConditions } from './conditions.js';
import { withoutPrefix } from './diagnosis.js';
import { fromLibrdkafka, LIBRDKAFKA } from './errors.js';
import { type ParkingReason, parkedHeaders } from './parked.js';
import { splitProperties } from './properties.js';
import { hearRefreshFailures, type KafkaTokens } from './token.js';

type RdProducer = InstanceType<typeof rdkafka.Producer>;

/** Why a record was dead-lettered (or parked in a retry tier); becomes the A3 / A7 headers. */
export type DeadLetterReason = ParkingReason;

/** A3 headers (and A7's), appended after the record's own so a consumer of the DLQ sees the original record first. */
export const deadLetterHeaders = parkedHeaders;

/** librdkafka's default `receive.message.max.bytes`: the largest record the consumer can fetch. */
const CONSUMER_FETCH_LIMIT = '100000000';

/**
 * The producer's properties: a DLQ write must never be refused by the producer itself for a record
 * the consumer could fetch (librdkafka's producer default `message.max.bytes` is 1,000,000), so it
 * accepts as much as the consumer receives unless the user chose a limit.
 */
export function deadLetterProducerProperties(properties: Readonly<Record<string, string>>): Record<string, string> {
  return { 'message.max.bytes': properties['receive.message.max.bytes'] ?? CONSUMER_FETCH_LIMIT, ...properties };
}

/** One librdkafka producer: what DeadLetterProducer replaces when it failed fatally. */
export interface ProducerClient {
  connect(timeoutMs: number): Promise<void>;
  /** Resolves once the broker acknowledged the record; rejects with librdkafka's error. */
  produce(topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>, omitValue: boolean): Promise<void>;
  close(timeoutMs: number): Promise<void>;
  /** The topic names in the cluster's metadata. */
  topics(timeoutMs: number): Promise<Set<string>>;
}

/** Waits between attempts to replace a fatally failed producer: 1 s doubling to 30 s. */
const RECREATE_MIN_MS = 1000;
const RECREATE_MAX_MS = 30_000;

export interface DeadLetterProducerOptions {
  readonly conditions?: KafkaConditions;
  readonly logger?: Logger;
  /** OAUTHBEARER tokens from a provider Courier runs (COURIER_KAFKA_TOKEN_PROVIDER). */
  readonly tokens?: KafkaTokens | undefined;
  /** A new client; tests pass their own. */
  readonly createClient?: (onFatal: (error: unknown) => void) => ProducerClient;
  readonly now?: () => number;
}

/**
 * The dead-letter producer: acks=all and idempotence (config/kafka.ts forces both). `send` resolves only
 * when the broker acknowledged the write, which is what allows the source offset to move. A record
 * the broker refuses as too large is written again without its value (header
 * `dlq_value_omitted: too_large`): the original stays readable at its source coordinates, and its
 * partition is not blocked forever (DESIGN A3).
 *
 * An idempotent producer that fails fatally (e.g. the principal may not IDEMPOTENT_WRITE on the
 * cluster) never writes again: it is replaced by a new one at the next write, at most every 1 s
 * doubling to 30 s until a write succeeds, so a fixed ACL drains the held partitions without a restart.
 */
export class DeadLetterProducer {
  private client: ProducerClient;
  private fatal: unknown;
  private replacementsSinceWrite = 0;
  private nextReplacementAt = 0;
  private replacing: Promise<void> | undefined;
  private readonly createClient: (onFatal: (error: unknown) => void) => ProducerClient;
  private readonly now: () => number;

  constructor(
    properties: Readonly<Record<string, string>>,
    private readonly options: DeadLetterProducerOptions = {},
  ) {
    this.createClient = options.createClient ?? ((onFatal) => new RdProducerClient(properties, onFatal, options.conditions, options.tokens));
    this.now = options.now ?? Date.now;
    this.client = this.newClient();
  }

  async start(connectTimeoutMs: number): Promise<void> {
    await this.client.connect(connectTimeoutMs);
  }

  /**
   * Writes `record` with Courier's headers for `reason`. A record the broker refuses as too large
   * is written without its value when `omitTooLarge` (the DLQ); otherwise the refusal is thrown
   * (a retry tier, which must not lose the value: `isRecordTooLarge` tells it).
   */
  async send(topic: string, record: KafkaRecord, reason: DeadLetterReason, omitTooLarge = true): Promise<void> {
    await this.usable(topic);
    try {
      await this.produce(topic, record, deadLetterHeaders(record, reason, false), false);
    } catch (error) {
      if (!omitTooLarge || !isRecordTooLarge(error) || record.value === null) throw error;
      await this.produce(topic, record, deadLetterHeaders(record, reason, true), true);
    }
  }

  /** Writes `record`'s key, value and timestamp with exactly `headers` (a redrive). */
  async write(topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>): Promise<void> {
    await this.usable(topic);
    await this.produce(topic, record, headers, false);
  }

  /** Of these topics, the ones the cluster does not have (its metadata, as this producer sees it). */
  async missingTopics(topics: readonly string[], timeoutMs: number): Promise<string[]> {
    const known = await this.client.topics(timeoutMs);
    return topics.filter((topic) => !known.has(topic));
  }

  async close(timeoutMs: number): Promise<void> {
    await this.replacing?.catch(() => undefined);
    await this.client.close(timeoutMs);
  }

  private newClient(): ProducerClient {
    const client = this.createClient((error) => {
      // Only the current client's failure counts: a replaced one may still report.
      if (this.client === client && this.fatal === undefined) {
        this.fatal = error;
        this.options.logger?.error({ err: fromLibrdkafka(error).message }, 'DLQ producer failed fatally; it is replaced at the next DLQ write');
      }
    });
    return client;
  }

  /** Replaces a fatally failed client (one replacement at a time, with backoff) before a write. */
  private async usable(topic: string): Promise<void> {
    if (this.fatal === undefined) return;
    if (!this.replacing) {
      const waitMs = this.nextReplacementAt - this.now();
      if (waitMs > 0) throw dlqWriteFailed(topic, this.fatal, `the DLQ producer failed fatally; a new one is tried in ${Math.ceil(waitMs / 1000)} s`);
      this.replacing = this.replace().finally(() => {
        this.replacing = undefined;
      });
    }
    try {
      await this.replacing;
    } catch (error) {
      throw dlqWriteFailed(topic, error, 'the DLQ producer failed fatally and its replacement could not connect');
    }
  }

  private async replace(): Promise<void> {
    const old = this.client;
    void old.close(1000).catch(() => undefined);
    const client = this.newClient();
    this.client = client;
    this.fatal = undefined;
    // Counted until a write succeeds, not until one connects: a producer whose ACL is still missing
    // connects, then fails fatally at its first write, and must not be replaced at every retry.
    this.replacementsSinceWrite++;
    this.nextReplacementAt = this.now() + Math.min(RECREATE_MAX_MS, RECREATE_MIN_MS * 2 ** (this.replacementsSinceWrite - 1));
    try {
      await client.connect(10_000);
      this.options.logger?.info('DLQ producer replaced after a fatal error');
    } catch (error) {
      this.fatal ??= error;
      throw error;
    }
  }

  private async produce(topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>, omitValue: boolean): Promise<void> {
    try {
      await this.client.produce(topic, record, headers, omitValue);
      this.replacementsSinceWrite = 0;
      this.nextReplacementAt = 0;
      // A write went through: connected, and allowed to write (its cluster ACL included).
      this.options.conditions?.healthy('DLQ producer', ['kafka_unreachable', 'kafka_auth_failed', 'kafka_tls_failed', 'kafka_not_authorized']);
    } catch (error) {
      this.options.conditions?.clientError('DLQ producer', error as { code?: number; message: string }, topic);
      throw dlqWriteFailed(topic, error);
    }
  }
}

/** librdkafka's producer, with delivery reports matched to their writes. */
class RdProducerClient implements ProducerClient {
  private readonly producer: RdProducer;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private closed = false;

  constructor(
    properties: Readonly<Record<string, string>>,
    private readonly onFatal: (error: unknown) => void,
    private readonly conditions?: KafkaConditions,
    tokens?: KafkaTokens,
  ) {
    const { global, topic } = splitProperties(deadLetterProducerProperties(properties));
    const refresh = tokens ? { oauthbearer_token_refresh_cb: tokens.callbackFor('DLQ producer') } : {};
    this.producer = new rdkafka.Producer({ ...global, ...refresh, dr_cb: true } as never, topic);
    if (tokens) hearRefreshFailures(this.producer);
    this.producer.on('event.log', (line) => {
      conditions?.clientLog('DLQ producer', line);
      // The binding's error event for a fatal error is not marked fatal; librdkafka's FATAL line is.
      if (line.fac === 'FATAL') this.onFatal(new Error(withoutPrefix(line.message)));
    });
    this.producer.on('event.error', (error) => {
      conditions?.clientError('DLQ producer', error);
      if (isFatal(error)) this.onFatal(error);
    });
    this.producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (error) {
        if (isFatal(error)) this.onFatal(error);
        waiter.reject(error as unknown as Error);
      } else waiter.resolve();
    });
  }

  connect(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.producer.connect({ timeout: timeoutMs }, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: 'DLQ producer cannot reach Kafka', code: 'KAFKA_UNREACHABLE' }));
        else if (this.closed) {
          // Closed while it connected (a shutdown during start-up): a polling producer would keep the process alive.
          this.producer.disconnect(() => reject(new Error('Local: the DLQ producer was closed while it connected')));
        } else {
          this.conditions?.healthy('DLQ producer');
          this.producer.setPollInterval(20);
          resolve();
        }
      });
    });
  }

  produce(topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>, omitValue: boolean): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        const value = omitValue ? null : record.value;
        this.producer.produce(topic, null, value, record.key ?? undefined, record.timestamp, id, headers);
      } catch (error) {
        this.pending.delete(id);
        if (isFatal(error)) this.onFatal(error);
        reject(error);
      }
    });
  }

  topics(timeoutMs: number): Promise<Set<string>> {
    return new Promise((resolve, reject) => {
      this.producer.getMetadata({ timeout: timeoutMs }, (error, metadata) => {
        if (error) reject(fromLibrdkafka(error));
        else resolve(new Set(metadata.topics.map((topic) => topic.name)));
      });
    });
  }

  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (!this.producer.isConnected()) return;
    await new Promise<void>((resolve) => this.producer.flush(timeoutMs, () => resolve()));
    this.producer.setPollInterval(0);
    await new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
    // A write whose report never came (a replaced, fatally failed producer) fails, so it is retried:
    // it must not hold its partition for ever.
    for (const waiter of this.pending.values()) waiter.reject(new Error('Local: the DLQ producer was closed before the broker answered'));
    this.pending.clear();
  }
}

/** librdkafka marks fatal errors (`isFatal`) or reports them as ERR__FATAL. */
function isFatal(error: unknown): boolean {
  const raw = error as { isFatal?: boolean; code?: number; message?: string } | undefined;
  return Boolean(raw?.isFatal) || raw?.code === LIBRDKAFKA.FATAL || /Fatal error/i.test(raw?.message ?? '');
}

function dlqWriteFailed(topic: string, error: unknown, why?: string): CourierError {
  const named = fromLibrdkafka(error);
  return new CourierError('DLQ_WRITE_FAILED', `DLQ write to ${topic} failed: ${why ? `${why} (${named.message})` : named.message}`, {
    cause: named,
    retriable: true,
  });
}

/** A failed write because the broker (or the producer) refused the record as larger than it accepts. */
export function isRecordTooLarge(error: unknown): boolean {
  return error instanceof CourierError && error.cause instanceof CourierError && error.cause.code === 'KAFKA_RECORD_TOO_LARGE';
}
