import type { Message as RdMessage } from '@confluentinc/kafka-javascript';
import rdkafka from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import { CourierError } from '../errors.js';
import type { KafkaRecord, TopicPartition, TopicPartitionOffset } from '../record.js';
import { sleep } from '../time.js';
import type { KafkaConditions } from './conditions.js';
import { fromLibrdkafka, type KafkaClientError, LIBRDKAFKA } from './errors.js';
import { splitProperties } from './properties.js';
import { hearRefreshFailures, type KafkaTokens } from './token.js';

/** The typings lag the library: these methods exist in 1.10 (lib/kafka-consumer.js). */
type RdKafkaConsumer = InstanceType<typeof rdkafka.KafkaConsumer> & {
  rebalanceProtocol(): 'NONE' | 'COOPERATIVE' | 'EAGER';
  incrementalAssign(partitions: TopicPartition[]): void;
  incrementalUnassign(partitions: TopicPartition[]): void;
  assignmentLost(): boolean;
  commitCb(offsets: TopicPartitionOffset[], cb: (error: Error | null) => void): void;
  setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void;
};

/** What the consumer tells the pipeline. The pipeline decides; this file only talks to librdkafka. */
export interface ConsumerHandlers {
  /** Partitions were assigned (already added to librdkafka's assignment, no record served yet). */
  onAssign(partitions: TopicPartition[]): void;
  /**
   * Partitions are being taken away. `lost` means another member may own them already: nothing
   * may be committed. Fetching of them continues until the returned promise settles, so the
   * pipeline has to ignore their records meanwhile.
   */
  onRevoke(partitions: TopicPartition[], lost: boolean): Promise<void>;
  /** A batch of fetched records, in fetch order. */
  onRecords(records: KafkaRecord[]): void;
  /** A client error, named (kafka/errors.ts); `fatal` means the consumer cannot continue. */
  onError(error: KafkaClientError, fatal: boolean): void;
  /**
   * Asked before each fetch: a promise means "enough records wait; fetch when it settles". The
   * loop fetches anyway after a second, so rebalance events keep being served.
   */
  beforeFetch?(): Promise<void> | undefined;
}

const MAX_FETCH_HOLD_MS = 1000;
/** A commit the broker has not answered within this is reported failed (and retried by the pipeline). */
const COMMIT_ANSWER_TIMEOUT_MS = 10_000;

interface CommitWaiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export interface ConsumerOptions {
  readonly properties: Readonly<Record<string, string>>;
  readonly topics: readonly string[];
  readonly logger: Logger;
  /** Upper bound of records per consume call. */
  readonly batchSize?: number;
  /** How long a consume call waits for the first record. */
  readonly pollTimeoutMs?: number;
  /** Observed time each consume call took (poll latency). */
  readonly onPoll?: (seconds: number) => void;
  /** Where librdkafka's log lines and errors are read and named (readiness, log). */
  readonly conditions?: KafkaConditions;
  /** OAUTHBEARER tokens from a provider Courier runs (COURIER_KAFKA_TOKEN_PROVIDER). */
  readonly tokens?: KafkaTokens | undefined;
}

export interface Watermarks {
  readonly low: number;
  readonly high: number;
}

/**
 * The librdkafka consumer: subscribe, rebalance events, pause/resume, explicit commits, watermarks.
 * It never commits by itself (auto-commit and offset store are off): every commit comes from the
 * pipeline with explicit offsets.
 */
export class KafkaSource {
  private readonly consumer: RdKafkaConsumer;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** Rebalance events are handled one at a time, in the order librdkafka raised them. */
  private rebalanceChain: Promise<void> = Promise.resolve();
  private readonly batchSize: number;
  /** Commits sent, oldest first, waiting for the broker's answer (offset_commit_cb). */
  private readonly commitWaiters: CommitWaiter[] = [];
  private serving = false;
  private closed = false;
  /** Waiting for a consume call that starts after they asked (`nextPoll`). */
  private pollWaiters: Array<() => void> = [];

  constructor(
    private readonly options: ConsumerOptions,
    private readonly handlers: ConsumerHandlers,
  ) {
    this.batchSize = options.batchSize ?? 500;
    const { global, topic } = splitProperties(options.properties);
    this.consumer = new rdkafka.KafkaConsumer(
      {
        ...global,
        ...(options.tokens ? { oauthbearer_token_refresh_cb: options.tokens.callbackFor('consumer') } : {}),
        rebalance_cb: (error: { code: number }, assignment: TopicPartition[]) => this.rebalance(error, assignment),
        // The binding's commitCb answers once the commit is queued, not once the broker has it:
        // the broker's answer comes here, and only it settles a commit.
        offset_commit_cb: (error: { code?: number; message?: string } | undefined, offsets: Array<TopicPartitionOffset & { error?: unknown }>) =>
          this.commitAnswered(error, offsets),
      } as never,
      topic,
    ) as RdKafkaConsumer;
    this.consumer.setDefaultConsumeTimeout(options.pollTimeoutMs ?? 100);
    // A batch returns as soon as the first record is there; later ones only if already fetched.
    this.consumer.setDefaultIsTimeoutOnlyForFirstMessage(true);
    const { conditions } = options;
    if (options.tokens) hearRefreshFailures(this.consumer);
    if (conditions) this.consumer.on('event.log', (line) => conditions.clientLog('consumer', line));
    this.consumer.on('event.error', (error) => {
      const named = fromLibrdkafka(error);
      // A named cause (credentials, TLS, ACL, missing topic) is reported there, with its fix.
      if (conditions?.clientError('consumer', error) && named.code !== 'KAFKA_CONSUMER_FATAL') return;
      // librdkafka does not say which subscribed topic is unknown: the topic check names it.
      if (conditions && (named.librdkafkaCode === LIBRDKAFKA.UNKNOWN_TOPIC_OR_PART || named.librdkafkaCode === LIBRDKAFKA.UNKNOWN_TOPIC)) {
        options.logger.debug({ err: named.message }, 'a subscribed topic is unknown to the broker');
        return;
      }
      this.handlers.onError(named, named.code === 'KAFKA_CONSUMER_FATAL');
    });
  }

  /** Connects (waiting for the cluster's metadata) and subscribes; the consume loop starts. */
  async start(connectTimeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.consumer.connect({ timeout: connectTimeoutMs }, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: 'cannot reach Kafka', code: 'KAFKA_UNREACHABLE' }));
        else resolve();
      });
    });
    if (this.closed) {
      // Closed while it connected (a shutdown during start-up): consuming now would keep the process alive.
      await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
      return;
    }
    this.consumer.subscribe([...this.options.topics]);
    this.running = true;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      // Flow control without pause/resume: pausing purges librdkafka's prefetched records.
      const hold = this.handlers.beforeFetch?.();
      if (hold) {
        const timeout = new AbortController();
        await Promise.race([hold, sleep(MAX_FETCH_HOLD_MS, timeout.signal)]);
        timeout.abort();
      }
      const started = performance.now();
      const waiters = this.pollWaiters;
      this.pollWaiters = [];
      const messages = await new Promise<RdMessage[]>((resolve) => {
        this.consumer.consume(this.batchSize, (error, batch) => {
          if (error) {
            // Timeouts and "no more messages" are normal; anything else is reported, not fatal here.
            if (error.code !== LIBRDKAFKA.TIMED_OUT && error.code !== LIBRDKAFKA.PARTITION_EOF) {
              // An ACL refusal comes back here (TOPIC_AUTHORIZATION_FAILED), naming no topic: ours.
              const topics = error.code === LIBRDKAFKA.TOPIC_AUTHORIZATION_FAILED ? this.options.topics.join(', ') : undefined;
              if (this.options.conditions?.clientError('consumer', error, topics)) {
                resolve([]);
                return;
              }
              const named = fromLibrdkafka(error);
              this.handlers.onError(named, named.code === 'KAFKA_CONSUMER_FATAL');
            }
            resolve([]);
          } else resolve(batch);
        });
      });
      this.options.onPoll?.((performance.now() - started) / 1000);
      // Records of this call were fetched after the waiters asked: hand them over first.
      if (waiters.length > 0) {
        queueMicrotask(() => {
          for (const wake of waiters) wake();
        });
      }
      if (messages.length > 0) this.options.conditions?.healthy('consumer');
      if (messages.length > 0 && this.running) {
        const fetchedAt = Date.now();
        this.handlers.onRecords(messages.map((message) => toRecord(message, fetchedAt)));
      }
    }
  }

  private rebalance(error: { code: number }, assignment: TopicPartition[]): void {
    const partitions = assignment.map(({ topic, partition }) => ({ topic, partition }));
    const cooperative = this.consumer.rebalanceProtocol() === 'COOPERATIVE';
    this.rebalanceChain = this.rebalanceChain.then(async () => {
      try {
        if (error.code === LIBRDKAFKA.ASSIGN_PARTITIONS) {
          if (cooperative) this.consumer.incrementalAssign(partitions);
          else this.consumer.assign(partitions);
          // librdkafka keeps a partition's pause across its revoke: one paused when it was taken away
          // and assigned back later would never be fetched again (the pipeline owns it afresh, unpaused).
          this.resume(partitions);
          this.options.conditions?.healthy('consumer');
          this.handlers.onAssign(partitions);
        } else if (error.code === LIBRDKAFKA.REVOKE_PARTITIONS) {
          const lost = this.consumer.assignmentLost();
          await this.handlers.onRevoke(partitions, lost);
          if (cooperative) this.consumer.incrementalUnassign(partitions);
          else this.consumer.unassign();
        } else {
          this.handlers.onError(fromLibrdkafka(error, { prefix: 'rebalance error' }), false);
        }
      } catch (caught) {
        if (this.consumer.isConnected()) this.handlers.onError(fromLibrdkafka(caught, { prefix: 'rebalance failed' }), false);
      }
    });
  }

  pause(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0 && this.consumer.isConnected()) this.consumer.pause(partitions.map(plain));
  }

  resume(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0 && this.consumer.isConnected()) this.consumer.resume(partitions.map(plain));
  }

  /**
   * Commits exactly these offsets ("next record to read") and resolves once the broker has them;
   * rejects when the broker refused them (e.g. the group rebalanced meanwhile) or did not answer.
   * One commit at a time: the pipeline chains them.
   */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: CommitWaiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => this.settleCommit(waiter, new Error(`no answer from the broker within ${COMMIT_ANSWER_TIMEOUT_MS} ms`)),
          COMMIT_ANSWER_TIMEOUT_MS,
        ),
      };
      this.commitWaiters.push(waiter);
      try {
        this.consumer.commitCb(
          offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
          (error: Error | null) => {
            if (error) this.settleCommit(waiter, error);
          },
        );
      } catch (error) {
        this.settleCommit(waiter, error as Error);
        return;
      }
      // The answer is served by a consume call: after the loop stopped (shutdown), serve it here.
      if (!this.running) this.serveCommitAnswers();
    });
  }

  private commitAnswered(error: { code?: number; message?: string } | undefined, offsets: Array<{ error?: unknown }> | undefined): void {
    const waiter = this.commitWaiters[0];
    if (!waiter) return; // not ours (Courier makes every commit itself), nothing waits
    const partitionError = offsets?.find((offset) => offset.error)?.error as { message?: string } | undefined;
    if (error && error.code !== LIBRDKAFKA.NO_OFFSET) this.settleCommit(waiter, new Error(error.message ?? `error ${error.code}`));
    else if (partitionError) this.settleCommit(waiter, new Error(partitionError.message ?? String(partitionError)));
    else this.settleCommit(waiter, undefined);
  }

  private settleCommit(waiter: CommitWaiter, error: Error | undefined): void {
    const index = this.commitWaiters.indexOf(waiter);
    if (index < 0) return;
    this.commitWaiters.splice(index, 1);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(new CourierError('KAFKA_COMMIT_FAILED', `commit failed: ${error.message}`, { cause: error, retriable: true }));
    else waiter.resolve();
  }

  /** Consume calls (records dropped: nothing fetched now gets delivered) until no commit waits. */
  private serveCommitAnswers(): void {
    if (this.serving) return;
    this.serving = true;
    const serve = () => {
      if (this.commitWaiters.length === 0 || !this.consumer.isConnected()) {
        this.serving = false;
        return;
      }
      this.consumer.consume(1, () => setImmediate(serve));
    };
    serve();
  }

  /**
   * Moves the partition's fetch position. librdkafka drops what it fetched before; `nextPoll` waits
   * out a consume call that may have taken records before the seek.
   */
  seek(tp: TopicPartition, offset: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.consumer.seek({ topic: tp.topic, partition: tp.partition, offset }, timeoutMs, (error) => {
        if (error) reject(fromLibrdkafka(error, { prefix: `seek of ${tp.topic}-${tp.partition} failed` }));
        else resolve();
      });
    });
  }

  /** Resolves once a consume call that starts after this call has returned (at once when the loop is stopped). */
  nextPoll(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.pollWaiters.push(resolve));
  }

  /** The first offset whose timestamp is at or after `timestamp`; -1 when there is none (past the end). */
  offsetForTime(tp: TopicPartition, timestamp: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.consumer.offsetsForTimes([{ topic: tp.topic, partition: tp.partition, offset: timestamp }], timeoutMs, (error, offsets) => {
        if (error) reject(fromLibrdkafka(error, { prefix: `offsets for ${new Date(timestamp).toISOString()} of ${tp.topic}-${tp.partition}` }));
        else resolve(offsets[0]?.offset ?? -1);
      });
    });
  }

  /** The group's committed offset of one partition; null when there is none. */
  async groupOffset(tp: TopicPartition, timeoutMs: number): Promise<number | null> {
    const [entry] = await this.committed([tp], timeoutMs);
    return entry && entry.offset >= 0 ? entry.offset : null;
  }

  /** Committed offsets of the group for these partitions (-1001 = none, as librdkafka says). */
  committed(partitions: readonly TopicPartition[], timeoutMs: number): Promise<TopicPartitionOffset[]> {
    return new Promise((resolve, reject) => {
      this.consumer.committed(partitions.map(plain), timeoutMs, (error, result) => {
        if (error) reject(error);
        else resolve(result.map(({ topic, partition, offset }) => ({ topic, partition, offset: offset ?? -1001 })));
      });
    });
  }

  watermarks(tp: TopicPartition, timeoutMs: number): Promise<Watermarks> {
    return new Promise((resolve, reject) => {
      this.consumer.queryWatermarkOffsets(tp.topic, tp.partition, timeoutMs, (error, offsets) => {
        if (error) reject(error);
        else resolve({ low: offsets.lowOffset, high: offsets.highOffset });
      });
    });
  }

  /** Stops the consume loop; the member stays in the group until `close`. */
  async stopFetching(): Promise<void> {
    this.running = false;
    await this.loopDone;
    for (const wake of this.pollWaiters.splice(0)) wake();
    // A commit sent while the loop ran may be answered after its last consume call.
    this.serveCommitAnswers();
  }

  /** Leaves the group (librdkafka revokes the assignment first, through the rebalance handler). */
  async close(): Promise<void> {
    this.closed = true;
    await this.stopFetching();
    if (!this.consumer.isConnected()) return;
    // A static member (group.instance.id) must not leave the group: coming back within the session
    // timeout then costs the others no rebalance. librdkafka's close() revokes locally without a
    // LeaveGroup for it; unsubscribe() would leave.
    if (!this.options.properties['group.instance.id']) {
      // unsubscribe triggers the final revoke; wait for it so its synchronous commit happens.
      await new Promise<void>((resolve) => {
        this.consumer.unsubscribe();
        // Serve the revoke event: librdkafka delivers it through a consume call.
        const serve = () => {
          this.consumer.consume(1, () => {
            if (this.consumer.assignments().length === 0) resolve();
            else setTimeout(serve, 10);
          });
        };
        serve();
      });
    }
    await this.rebalanceChain;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
    await this.rebalanceChain;
  }
}

function plain(tp: TopicPartition): TopicPartition {
  return { topic: tp.topic, partition: tp.partition };
}

const NO_HEADERS: ReadonlyArray<readonly [string, Buffer]> = Object.freeze([]);

function toRecord(message: RdMessage, fetchedAt: number): KafkaRecord {
  let headers: Array<readonly [string, Buffer]> | undefined;
  if (message.headers) {
    for (const header of message.headers) {
      for (const name in header) {
        const value = header[name];
        headers ??= [];
        headers.push([name, Buffer.isBuffer(value) ? value : Buffer.from(String(value))]);
      }
    }
  }
  const key = message.key;
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp ?? fetchedAt,
    key: key === undefined || key === null ? null : Buffer.isBuffer(key) ? key : Buffer.from(String(key)),
    value: message.value ?? null,
    headers: headers ?? NO_HEADERS,
    fetchedAt,
  };
}
