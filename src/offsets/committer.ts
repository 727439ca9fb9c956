import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { TopicPartitionOffset } from '../record.js';
import type { OffsetTracker } from './tracker.js';

/** Where commits go (kafka/consumer.ts): resolves once the broker has them. */
export interface CommitTarget {
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
}

export interface CommitterOptions {
  readonly tracker: OffsetTracker;
  readonly metrics: Pick<Metrics, 'commits' | 'maxPollExceeded'>;
  readonly logger: Logger;
  /** Commit whatever moved on this cadence… */
  readonly intervalMs: number;
  /** …and after this many completed records, whichever comes first. */
  readonly every: number;
}

/**
 * When offsets reach Kafka. The tracker decides what may be committed; this decides when: on a
 * cadence, after every N completions, and synchronously on revoke and stop. One commit at a time,
 * each waiting for the broker's answer; a cadence commit asked for while one already waits to
 * start is that same commit (it reads the tracker when it starts). After `max.poll.interval.ms`
 * was exceeded the member has left the group: nothing of that generation is committed until the
 * next assignment.
 */
export class Committer {
  private target: CommitTarget | undefined;
  private chain: Promise<void> = Promise.resolve();
  private queuedCadence: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private completedSinceCommit = 0;
  private exceededAt: string | undefined;

  constructor(private readonly options: CommitterOptions) {}

  start(target: CommitTarget): void {
    this.target = target;
    this.timer = setInterval(() => void this.commit(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the cadence; explicit commits still go through. */
  stopCadence(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A record was acknowledged or dead-lettered. */
  completed(): void {
    if (++this.completedSinceCommit >= this.options.every) {
      this.completedSinceCommit = 0;
      void this.commit();
    }
  }

  /** librdkafka left the group: this generation's offsets are no longer ours to commit. */
  maxPollExceeded(): void {
    this.exceededAt = new Date().toISOString();
    this.options.metrics.maxPollExceeded.inc();
  }

  /** A new assignment: the member is back in the group. */
  rejoined(): void {
    this.exceededAt = undefined;
  }

  /** When max.poll.interval.ms was exceeded, while the member is out of the group. */
  get maxPollExceededAt(): string | undefined {
    return this.exceededAt;
  }

  /** Commits `offsets` (revoke), or every partition whose committable offset moved. */
  commit(offsets?: readonly TopicPartitionOffset[]): Promise<void> {
    if (!offsets && this.queuedCadence) return this.queuedCadence;
    const done = this.enqueue(offsets).then(() => undefined);
    if (!offsets) this.queuedCadence = done;
    return done;
  }

  /** Commits exactly `offsets` (an operator's seek); resolves whether the broker took them. */
  commitExactly(offsets: readonly TopicPartitionOffset[]): Promise<boolean> {
    return this.enqueue(offsets);
  }

  private enqueue(offsets: readonly TopicPartitionOffset[] | undefined): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      if (!offsets) this.queuedCadence = undefined;
      const target = this.target;
      if (!target || this.exceededAt) return false;
      const candidates = offsets ? offsets.map((o) => ({ ...o, generation: -1 })) : this.options.tracker.commitCandidates();
      if (candidates.length === 0) return true;
      try {
        await target.commit(candidates.map(({ topic, partition, offset }) => ({ topic, partition, offset })));
        for (const c of candidates) if (c.generation >= 0) this.options.tracker.markCommitted(c, c.offset, c.generation);
        this.options.metrics.commits.inc({ result: 'success' });
        return true;
      } catch (error) {
        this.options.metrics.commits.inc({ result: 'failure' });
        const failure = commitFailure(errorMessage(error));
        this.options.logger[failure.level]({ err: errorMessage(error) }, failure.message);
        return false;
      }
    };
    const result = this.chain.then(run, run);
    this.chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * How a failed commit is told. A commit that crosses a rebalance is refused with the old
 * generation, and one sent while this member rejoins waits behind its JoinGroup (the coordinator
 * answers one request per connection at a time) until every member has rejoined — a scale-up's
 * second round can take a heartbeat interval. Both are expected and retried; say so.
 */
export function commitFailure(message: string): { level: 'info' | 'warn'; message: string } {
  if (/generation id is not valid|rebalance in progress|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS/i.test(message)) {
    return { level: 'info', message: 'offset commit crossed a rebalance (refused for the old generation); will retry in the new one' };
  }
  if (/no answer from the broker/i.test(message)) {
    return {
      level: 'warn',
      message:
        'offset commit not answered; will retry (while the group rebalances the coordinator answers only once every member has rejoined, up to heartbeat.interval.ms later)',
    };
  }
  return { level: 'warn', message: 'offset commit failed; will retry' };
}
