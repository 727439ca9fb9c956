import { setMaxListeners } from 'node:events';
import type { PauseReason } from '../api/schemas.js';
import { readParked, type TierPassage } from '../kafka/parked.js';
import type { OffsetTracker, RecordTicket, TrackedPartition } from '../offsets/tracker.js';
import type { KafkaRecord, TopicPartition } from '../record.js';
import { sleep } from '../time.js';
import type { Route } from './route.js';
import type { PartitionQueue, Schedulable } from './scheduler.js';

export type { PauseReason };

/** The oldest record of a partition that Courier fetched and has neither acknowledged nor dead-lettered. */
export interface Unacknowledged {
  readonly offset: number;
  /** The record's Kafka timestamp (ms since the epoch; -1 when unknown). */
  readonly timestamp: number;
  /** When Courier received it from the client (ms since the epoch; -1 when unknown). */
  readonly fetchedAt: number;
}

/** A record read back from a retry tier: where it stands in its tiers. */
export interface TierStay {
  /** Index of the tier it was read from, in its route's `tiers`. */
  readonly index: number;
  /** Attempts made before this tier (all earlier tiers and the in-memory ones). */
  readonly priorAttempts: number;
  readonly history: readonly TierPassage[];
}

/** One fetched record on its way: from the scheduler's queue until acknowledged, dead-lettered or abandoned. */
export interface Delivery extends Schedulable {
  /** What the app receives: the fetched record, or for a retry tier's record the original it carries. */
  readonly record: KafkaRecord;
  /** The fetched record's place in its partition (tracking, ordering): `ticket.offset`. */
  readonly ticket: RecordTicket;
  /** Set for a record read from a retry tier. */
  readonly tier: TierStay | undefined;
  readonly partition: OwnedPartition;
  /** Set when the record starts: when, and the delivery's promise (for draining). */
  startedAt: number;
  task: Promise<void> | undefined;
}

/**
 * Everything Courier holds for one partition it owns, in one object: its route, its offsets in the
 * tracker, its queue in the scheduler, the records in flight, the signal that tells their waits to
 * give up, and why it is paused.
 */
export class OwnedPartition {
  /** Aborted on revoke or shutdown: waits (backoff, app down, DLQ retries) give up at once. */
  readonly soft = new AbortController();
  readonly inFlight = new Set<Delivery>();
  /** Pause reasons are counted: two DLQ writes failing in one partition need two successes to resume. */
  readonly pauseReasons = new Map<PauseReason, number>();
  private pausedInKafka = false;
  revoking = false;

  constructor(
    readonly tp: TopicPartition,
    readonly route: Route,
    readonly offsets: TrackedPartition,
    readonly queue: PartitionQueue<Delivery>,
    /** Pauses or resumes fetching of this partition in Kafka. */
    private readonly pauseFetching: (tp: TopicPartition, paused: boolean) => void,
    /** The retry tier this partition's topic is (index in the route's `tiers`); undefined for a source topic. */
    readonly tierIndex: number | undefined = undefined,
  ) {
    // Every record waiting in this partition listens on the signal.
    setMaxListeners(0, this.soft.signal);
  }

  static assign(
    tp: TopicPartition,
    route: Route,
    tracker: OffsetTracker,
    addQueue: (tp: TopicPartition) => PartitionQueue<Delivery>,
    pauseFetching: (tp: TopicPartition, paused: boolean) => void,
    tierIndex?: number,
  ): OwnedPartition {
    return new OwnedPartition(tp, route, tracker.assignPartition(tp), addQueue(tp), pauseFetching, tierIndex);
  }

  /** A fetched record, ready for the scheduler; null when it is a re-fetch or the partition is going. */
  accept(record: KafkaRecord): Delivery | null {
    if (this.revoking) return null;
    const ticket = this.offsets.track(record.offset);
    if (!ticket) return null;
    const size = (record.value?.length ?? 0) + (record.key?.length ?? 0);
    let tier: TierStay | undefined;
    let dueAt: number | undefined;
    if (this.tierIndex !== undefined) {
      // A retry tier's record: the app gets the original again, once it is due.
      const parked = readParked(record);
      record = parked.original;
      dueAt = parked.dueAt;
      tier = { index: this.tierIndex, priorAttempts: parked.attempts, history: parked.history };
    }
    return {
      record,
      ticket,
      tier,
      dueAt,
      partition: this,
      key: record.key,
      size,
      arrivedAt: record.fetchedAt,
      startedAt: 0,
      task: undefined,
      scheduled: undefined,
      batchSlot: undefined,
    };
  }

  setPaused(reason: PauseReason, on: boolean): void {
    const count = (this.pauseReasons.get(reason) ?? 0) + (on ? 1 : -1);
    if (count > 0) this.pauseReasons.set(reason, count);
    else this.pauseReasons.delete(reason);
    const shouldPause = this.pauseReasons.size > 0;
    if (shouldPause === this.pausedInKafka || this.revoking) return;
    this.pausedInKafka = shouldPause;
    this.pauseFetching(this.tp, shouldPause);
  }

  isPausedFor(reason: PauseReason): boolean {
    return this.pauseReasons.has(reason);
  }

  /** Being taken away: start nothing more, stop waiting (in-flight pushes get the grace period). */
  revoke(): void {
    this.revoking = true;
    this.soft.abort();
  }

  /**
   * The record the committable offset waits for (the lowest tracked offset neither acknowledged nor
   * dead-lettered), looked up at report time so that no record pays for it: it is either in flight
   * or the first waiting record of its lane (`waiting`: those firsts), since a lane holds its
   * records in offset order. Unknown times (-1) if it is in neither, which should not happen.
   */
  oldestUnacknowledged(waiting: Iterable<Delivery>): Unacknowledged | undefined {
    const offset = this.offsets.oldestPending();
    if (offset < 0) return undefined;
    for (const delivery of this.inFlight) if (delivery.ticket.offset === offset) return unacknowledged(offset, delivery.record);
    for (const delivery of waiting) if (delivery.ticket.offset === offset) return unacknowledged(offset, delivery.record);
    return { offset, timestamp: -1, fetchedAt: -1 };
  }

  /**
   * What a graceful revoke or stop still delivers of what waits: the records below the highest one
   * acknowledged or in flight. Without them the commit stops at the first gap and the next owner
   * delivers again everything acknowledged above it (key mode starts keys out of offset order).
   * Undefined when nothing is to be kept; a retry tier keeps nothing (its records are not due).
   */
  gapFiller(): ((delivery: Delivery) => boolean) | undefined {
    if (this.tierIndex !== undefined) return undefined;
    let limit = this.offsets.highestDoneAboveGap();
    for (const delivery of this.inFlight) if (delivery.ticket.offset > limit) limit = delivery.ticket.offset;
    if (limit < 0) return undefined;
    return (delivery) => delivery.ticket.offset < limit;
  }

  oldestStartedAt(): number | undefined {
    let oldest: number | undefined;
    for (const delivery of this.inFlight) if (oldest === undefined || delivery.startedAt < oldest) oldest = delivery.startedAt;
    return oldest;
  }

  tasks(): Promise<void>[] {
    const tasks: Promise<void>[] = [];
    for (const delivery of this.inFlight) if (delivery.task) tasks.push(delivery.task);
    return tasks;
  }

  get name(): string {
    return `${this.tp.topic}-${this.tp.partition}`;
  }
}

function unacknowledged(offset: number, record: KafkaRecord): Unacknowledged {
  return { offset, timestamp: record.timestamp, fetchedAt: record.fetchedAt };
}

/**
 * Waits for the partitions' deliveries, up to `graceMs`: those in flight and those they start
 * meanwhile (the records a blocked queue kept); true when they all finished.
 */
export async function drainPartitions(partitions: readonly OwnedPartition[], graceMs: number): Promise<boolean> {
  const graceOver = new AbortController();
  const deadline = sleep(graceMs, graceOver.signal).then(() => false);
  try {
    for (;;) {
      const tasks = partitions.flatMap((partition) => partition.tasks());
      if (tasks.length === 0) return true;
      if (!(await Promise.race([Promise.allSettled(tasks).then(() => true), deadline]))) return false;
    }
  } finally {
    graceOver.abort(); // clears the timer, which would otherwise keep the process alive
  }
}
