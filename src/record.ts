/**
 * A Kafka record as the rest of Courier sees it. `kafka/` produces these and `delivery/` consumes
 * them; neither imports the other, they share only this shape.
 */
export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Milliseconds since the epoch (create or log-append time, as the broker reports it). */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** In record order; Kafka allows a name to repeat. */
  readonly headers: ReadonlyArray<readonly [name: string, value: Buffer]>;
  /** When Courier received the record from the client, for the processing-time histogram. */
  readonly fetchedAt: number;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  readonly offset: number;
}

export function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}
