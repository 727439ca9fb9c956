import type { AttemptResult } from '../delivery/outcome.js';
import type { DeadLetterReason } from '../kafka/dlq.js';
import type { CommitTarget } from '../offsets/committer.js';
import type { KafkaRecord, TopicPartition } from '../record.js';

/** What the pipeline needs from Kafka (kafka/consumer.ts). */
export interface SourcePort extends CommitTarget {
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  stopFetching(): Promise<void>;
  close(): Promise<void>;
  /** Operator seek (kafka/consumer.ts has the details). */
  seek(tp: TopicPartition, offset: number, timeoutMs: number): Promise<void>;
  nextPoll(): Promise<void>;
  offsetForTime(tp: TopicPartition, timestamp: number, timeoutMs: number): Promise<number>;
  watermarks(tp: TopicPartition, timeoutMs: number): Promise<{ readonly low: number; readonly high: number }>;
  groupOffset(tp: TopicPartition, timeoutMs: number): Promise<number | null>;
}

/** What the pipeline needs from the DLQ producer (kafka/dlq.ts). */
export interface DeadLetterPort {
  /** Resolves once the broker acknowledged the write; `omitTooLarge` false: a too-large refusal is thrown (retry tiers). */
  send(topic: string, record: KafkaRecord, reason: DeadLetterReason, omitTooLarge?: boolean): Promise<void>;
}

/** What the pipeline needs from HTTP (delivery/push.ts). */
export interface PushPort {
  /** `okBodyMax`: bytes of a 2xx answer body to keep in the result (batch answers); 0 keeps none. */
  push(url: URL, headers: Record<string, string | string[]>, body: Buffer | null, timeoutMs: number, okBodyMax?: number): Promise<AttemptResult>;
  /** Cancels every request still running: only at shutdown, once the grace period is over. */
  abortAll(): Promise<void>;
}
