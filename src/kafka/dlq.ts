import rdkafka from '@confluentinc/kafka-javascript';
import { CourierError } from '../errors.js';
import type { KafkaRecord } from '../record.js';
import type { KafkaConditions } from './conditions.js';
import { fromLibrdkafka } from './errors.js';
import { splitProperties } from './properties.js';

type RdProducer = InstanceType<typeof rdkafka.Producer>;

/** Why a record was dead-lettered; becomes the A3 headers. */
export interface DeadLetterReason {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly httpStatus?: number | undefined;
  /** The app's answer body, redacted, as app-response.ts formats it; absent when there was none. */
  readonly appResponse?: string | undefined;
  readonly attempts: number;
  readonly failedAt: Date;
}

/**
 * A3 headers, names from the seed guide, appended after the record's own headers so a consumer of
 * the DLQ sees the original record first.
 */
export function deadLetterHeaders(record: KafkaRecord, reason: DeadLetterReason, valueOmitted = false): Array<Record<string, Buffer>> {
  const headers = record.headers.map(([name, value]) => ({ [name]: value }));
  const add = (name: string, value: string) => headers.push({ [name]: Buffer.from(value, 'utf8') });
  add('original_topic', record.topic);
  add('original_partition', String(record.partition));
  add('original_offset', String(record.offset));
  add('error_type', reason.errorType);
  add('error_message', reason.errorMessage);
  add('failed_at', reason.failedAt.toISOString());
  if (reason.httpStatus !== undefined) add('http_status', String(reason.httpStatus));
  if (reason.appResponse !== undefined) add('app_response', reason.appResponse);
  add('attempts', String(reason.attempts));
  if (valueOmitted) add('dlq_value_omitted', 'too_large');
  return headers;
}

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

/**
 * The dead-letter producer: acks=all and idempotence (config/kafka.ts forces both). `send` resolves only
 * when the broker acknowledged the write, which is what allows the source offset to move. A record
 * the broker refuses as too large is written again without its value (header
 * `dlq_value_omitted: too_large`): the original stays readable at its source coordinates, and its
 * partition is not blocked forever (DESIGN A3).
 */
export class DeadLetterProducer {
  private readonly producer: RdProducer;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor(
    properties: Readonly<Record<string, string>>,
    private readonly conditions?: KafkaConditions,
  ) {
    const { global, topic } = splitProperties(deadLetterProducerProperties(properties));
    this.producer = new rdkafka.Producer({ ...global, dr_cb: true } as never, topic);
    if (conditions) {
      this.producer.on('event.log', (line) => conditions.clientLog('DLQ producer', line));
      this.producer.on('event.error', (error) => conditions.clientError('DLQ producer', error));
    }
    this.producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (error) {
        this.conditions?.clientError('DLQ producer', error, report.topic);
        waiter.reject(dlqWriteFailed(report.topic, error));
      } else {
        this.conditions?.healthy('DLQ producer');
        waiter.resolve();
      }
    });
  }

  async start(connectTimeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.producer.connect({ timeout: connectTimeoutMs }, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: 'DLQ producer cannot reach Kafka', code: 'KAFKA_UNREACHABLE' }));
        else {
          this.conditions?.healthy('DLQ producer', ['kafka_unreachable', 'kafka_auth_failed', 'kafka_tls_failed']);
          resolve();
        }
      });
    });
    this.producer.setPollInterval(20);
  }

  async send(topic: string, record: KafkaRecord, reason: DeadLetterReason): Promise<void> {
    try {
      await this.produce(topic, record, reason, false);
    } catch (error) {
      if (!(error instanceof CourierError && error.cause instanceof Error && isTooLarge(error.cause)) || record.value === null) throw error;
      await this.produce(topic, record, reason, true);
    }
  }

  private produce(topic: string, record: KafkaRecord, reason: DeadLetterReason, omitValue: boolean): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        const value = omitValue ? null : record.value;
        this.producer.produce(topic, null, value, record.key ?? undefined, record.timestamp, id, deadLetterHeaders(record, reason, omitValue));
      } catch (error) {
        this.pending.delete(id);
        reject(dlqWriteFailed(topic, error));
      }
    });
  }

  async close(timeoutMs: number): Promise<void> {
    if (!this.producer.isConnected()) return;
    await new Promise<void>((resolve) => this.producer.flush(timeoutMs, () => resolve()));
    this.producer.setPollInterval(0);
    await new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
  }
}

function dlqWriteFailed(topic: string, error: unknown): CourierError {
  const named = fromLibrdkafka(error);
  return new CourierError('DLQ_WRITE_FAILED', `DLQ write to ${topic} failed: ${named.message}`, { cause: named, retriable: true });
}

/** The broker (or the producer) refused the record as larger than it accepts. */
function isTooLarge(error: Error): boolean {
  return error instanceof CourierError && error.code === 'KAFKA_RECORD_TOO_LARGE';
}
