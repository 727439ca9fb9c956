import { createServer, type Server } from 'node:net';
import type { AttemptResult } from '../../src/delivery/outcome.js';
import { CourierError } from '../../src/errors.js';
import type { DeadLetterReason } from '../../src/kafka/dlq.js';
import type { DeadLetterPort, PushPort, SourcePort } from '../../src/pipeline/ports.js';
import type { KafkaRecord, TopicPartition, TopicPartitionOffset } from '../../src/record.js';

/** Captured before any test can install fake timers, so polling keeps real time. */
const realSetTimeout = globalThis.setTimeout;

export function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Polls `condition` every 2 ms (real time) until it holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await realSleep(2);
  }
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export function record(partition: number, offset: number, key: string | null = null, topic = 'orders'): KafkaRecord {
  return {
    topic,
    partition,
    offset,
    timestamp: 1_700_000_000_000 + offset,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(`value-${partition}-${offset}`),
    headers: [],
    fetchedAt: Date.now(),
  };
}

// ---- Kafka source --------------------------------------------------------------------------------

export interface CommitCall {
  readonly offsets: readonly TopicPartitionOffset[];
  readonly ok: boolean;
  /** Index in `FakeSource.log`. */
  readonly seq: number;
}

/** Records every call; commits resolve at once unless told to fail. */
export class FakeSource implements SourcePort {
  readonly commits: CommitCall[] = [];
  readonly paused: TopicPartition[] = [];
  readonly resumed: TopicPartition[] = [];
  /** Every call in order: `pause orders-0`, `resume orders-0`, `commit orders-0@3,…`, `stopFetching`, `close`. */
  readonly log: string[] = [];
  /** Commit call i fails when `failCommits[i]` is true. */
  failCommits: boolean[] = [];
  /** Called synchronously when a commit arrives, before it resolves or fails. */
  onCommit: ((offsets: readonly TopicPartitionOffset[]) => void) | undefined;

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      this.paused.push({ topic: tp.topic, partition: tp.partition });
      this.log.push(`pause ${tp.topic}-${tp.partition}`);
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      this.resumed.push({ topic: tp.topic, partition: tp.partition });
      this.log.push(`resume ${tp.topic}-${tp.partition}`);
    }
  }

  commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const copy = offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset }));
    this.onCommit?.(copy);
    const ok = !this.failCommits[this.commits.length];
    this.commits.push({ offsets: copy, ok, seq: this.log.length });
    this.log.push(`commit ${copy.map((o) => `${o.topic}-${o.partition}@${o.offset}`).join(',')}${ok ? '' : ' (failed)'}`);
    return ok ? Promise.resolve() : Promise.reject(new Error('commit failed (fake)'));
  }

  /** Seeks the pipeline asked for, in order. */
  readonly seeks: TopicPartitionOffset[] = [];
  /** What `offsetForTime` answers (-1: past the end), and the high watermark. */
  offsetAtTime = -1;
  highWatermark = 0;

  seek(tp: TopicPartition, offset: number): Promise<void> {
    this.seeks.push({ topic: tp.topic, partition: tp.partition, offset });
    this.log.push(`seek ${tp.topic}-${tp.partition}@${offset}`);
    return Promise.resolve();
  }

  nextPoll(): Promise<void> {
    return Promise.resolve();
  }

  offsetForTime(): Promise<number> {
    return Promise.resolve(this.offsetAtTime);
  }

  watermarks(): Promise<{ low: number; high: number }> {
    return Promise.resolve({ low: 0, high: this.highWatermark });
  }

  groupOffset(tp: TopicPartition): Promise<number | null> {
    const offset = this.committed(tp);
    return Promise.resolve(offset >= 0 ? offset : null);
  }

  stopFetching(): Promise<void> {
    this.log.push('stopFetching');
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.log.push('close');
    return Promise.resolve();
  }

  /** Highest offset successfully committed for the partition, -1 when none. */
  committed(tp: TopicPartition): number {
    let best = -1;
    for (const call of this.commits) {
      if (!call.ok) continue;
      for (const o of call.offsets) if (o.topic === tp.topic && o.partition === tp.partition && o.offset > best) best = o.offset;
    }
    return best;
  }

  /** Every offset ever sent in a commit call for the partition, in call order. */
  commitOffsetsOf(tp: TopicPartition): number[] {
    return this.commits.flatMap((call) => call.offsets.filter((o) => o.topic === tp.topic && o.partition === tp.partition).map((o) => o.offset));
  }

  pauseCount(tp: TopicPartition): number {
    return this.paused.filter((p) => p.topic === tp.topic && p.partition === tp.partition).length;
  }

  resumeCount(tp: TopicPartition): number {
    return this.resumed.filter((p) => p.topic === tp.topic && p.partition === tp.partition).length;
  }
}

// ---- HTTP push -----------------------------------------------------------------------------------

export interface PushCall {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly attempt: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** Aborts when the pipeline cancels every running push (shutdown past the grace). */
  readonly signal: AbortSignal | undefined;
  /** Set when the fake answered. */
  result: AttemptResult | undefined;
}

/** What one attempt gets: an answer now, an answer after a few ms, or whatever a promise gives. */
export type Answer = AttemptResult | { readonly result: AttemptResult; readonly delayMs: number } | Promise<AttemptResult>;

export const ok200: AttemptResult = { kind: 'response', status: 200 };

/**
 * Answers each attempt with `script(call)`. `onCall` sees the call when it arrives, `onAnswer` when
 * its answer is about to be returned to the pipeline (both synchronously).
 */
export class FakePusher implements PushPort {
  readonly calls: PushCall[] = [];
  onCall: ((call: PushCall) => void) | undefined;
  onAnswer: ((call: PushCall, result: AttemptResult) => void) | undefined;

  constructor(public script: (call: PushCall) => Answer = () => ok200) {}

  /** Aborted by `abortAll`, as the real Pusher destroys its sockets at the end of a shutdown grace. */
  private readonly cancelled = new AbortController();

  async abortAll(): Promise<void> {
    this.cancelled.abort();
  }

  async push(_url: URL, headers: Record<string, string | string[]>, _body: Buffer | null, _timeoutMs: number): Promise<AttemptResult> {
    const signal = this.cancelled.signal;
    const key = headers['kafka-key'];
    const call: PushCall = {
      topic: String(headers['kafka-topic']),
      partition: Number(headers['kafka-partition']),
      offset: Number(headers['kafka-offset']),
      key: typeof key === 'string' ? decodeURIComponent(key) : null,
      attempt: Number(headers['courier-attempt']),
      headers: { ...headers },
      signal,
      result: undefined,
    };
    this.calls.push(call);
    this.onCall?.(call);
    const answer = this.script(call);
    let result: AttemptResult;
    if (answer instanceof Promise) result = await answer;
    else if ('delayMs' in answer) {
      await realSleep(answer.delayMs);
      result = answer.result;
    } else {
      await Promise.resolve();
      result = answer;
    }
    call.result = result;
    this.onAnswer?.(call, result);
    return result;
  }

  callsOf(partition: number, offset: number, topic = 'orders'): PushCall[] {
    return this.calls.filter((c) => c.topic === topic && c.partition === partition && c.offset === offset);
  }
}

/** Resolves with a lost connection when `signal` aborts (what the real Pusher reports), else with `answer`. */
export function abortable(signal: AbortSignal | undefined, answer: Promise<AttemptResult>): Promise<AttemptResult> {
  const lost: AttemptResult = { kind: 'connection-lost', code: 'AbortError' };
  if (signal?.aborted) return Promise.resolve(lost);
  return new Promise((resolve, reject) => {
    signal?.addEventListener('abort', () => resolve(lost), { once: true });
    answer.then(resolve, reject);
  });
}

// ---- DLQ -----------------------------------------------------------------------------------------

export interface DeadLetterWrite {
  readonly dlqTopic: string;
  readonly record: KafkaRecord;
  readonly reason: DeadLetterReason;
}

/** Records writes; the first `failFirst` calls reject. */
export class FakeDeadLetters implements DeadLetterPort {
  readonly writes: DeadLetterWrite[] = [];
  sendCalls = 0;
  onWrite: ((write: DeadLetterWrite) => void) | undefined;

  /** Topics that refuse every record as too large (as the real producer reports it). */
  readonly tooLarge = new Set<string>();

  constructor(public failFirst = 0) {}

  send(dlqTopic: string, record: KafkaRecord, reason: DeadLetterReason, omitTooLarge = true): Promise<void> {
    this.sendCalls++;
    if (this.sendCalls <= this.failFirst) return Promise.reject(new Error(`DLQ unavailable (fake failure ${this.sendCalls})`));
    if (this.tooLarge.has(dlqTopic) && !omitTooLarge) {
      const refused = new CourierError('KAFKA_RECORD_TOO_LARGE', 'Broker: Message size too large', { retriable: false });
      return Promise.reject(new CourierError('DLQ_WRITE_FAILED', `write to ${dlqTopic} failed`, { cause: refused, retriable: true }));
    }
    const write = { dlqTopic, record, reason };
    this.writes.push(write);
    this.onWrite?.(write);
    return Promise.resolve();
  }

  has(partition: number, offset: number, topic = 'orders'): boolean {
    return this.writes.some((w) => w.record.topic === topic && w.record.partition === partition && w.record.offset === offset);
  }
}

// ---- a TCP listener for the app gate's probes ----------------------------------------------------

/** A plain TCP listener on 127.0.0.1: the app gate's probes succeed while it is open. */
export class ProbeTarget {
  private server: Server | undefined;
  connections = 0;
  port = 0;

  async open(): Promise<void> {
    const server = createServer((socket) => {
      this.connections++;
      socket.on('error', () => {});
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address && typeof address === 'object') this.port = address.port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }
}
