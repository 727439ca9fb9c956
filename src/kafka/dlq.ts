import rdkafka from '@confluentinc/kafka-javascript';
import { CourierError } from '../errors.js';
import type { KafkaRecord } from '../record.js';
import { splitProperties } from './properties.js';

type RdProducer = InstanceType<typeof rdkafka.Producer>;

/** Why a record was dead-lettered; becomes the A3 headers. */
export interface DeadLetterReason {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly httpStatus?: number | undefined;
  readonly attempts: number;
  readonly failedAt: Date;
}

/**
 * A3 headers, names from the seed guide, appended after the record's own headers so a consumer of
 * the DLQ sees the original record first.
 */
export function deadLetterHeaders(record: KafkaRecord, reason: DeadLetterReason): Array<Record<string, Buffer>> {
  const headers = record.headers.map(([name, value]) => ({ [name]: value }));
  const add = (name: string, value: string) => headers.push({ [name]: Buffer.from(value, 'utf8') });
  add('original_topic', record.topic);
  add('original_partition', String(record.partition));
  add('original_offset', String(record.offset));
  add('error_type', reason.errorType);
  add('error_message', reason.errorMessage);
  add('failed_at', reason.failedAt.toISOString());
  if (reason.httpStatus !== undefined) add('http_status', String(reason.httpStatus));
  add('attempts', String(reason.attempts));
  return headers;
}

/**
 * The dead-letter producer: acks=all and idempotence (config/kafka.ts forces both). `send` resolves only
 * when the broker acknowledged the write, which is what allows the source offset to move.
 */
export class DeadLetterProducer {
  private readonly producer: RdProducer;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor(properties: Readonly<Record<string, string>>) {
    const { global, topic } = splitProperties(properties);
    this.producer = new rdkafka.Producer({ ...global, dr_cb: true } as never, topic);
    this.producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (error)
        waiter.reject(new CourierError('DLQ_WRITE_FAILED', `DLQ write to ${report.topic} failed: ${error.message}`, { cause: error, retriable: true }));
      else waiter.resolve();
    });
  }

  async start(connectTimeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.producer.connect({ timeout: connectTimeoutMs }, (error) => {
        if (error) reject(new CourierError('KAFKA_CONNECT_FAILED', `DLQ producer cannot reach Kafka: ${error.message}`, { cause: error, retriable: true }));
        else resolve();
      });
    });
    this.producer.setPollInterval(20);
  }

  send(topic: string, record: KafkaRecord, reason: DeadLetterReason): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.producer.produce(topic, null, record.value, record.key ?? undefined, record.timestamp, id, deadLetterHeaders(record, reason));
      } catch (error) {
        this.pending.delete(id);
        reject(new CourierError('DLQ_WRITE_FAILED', `DLQ write to ${topic} failed: ${(error as Error).message}`, { cause: error, retriable: true }));
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
