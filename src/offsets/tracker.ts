import { type TopicPartition, type TopicPartitionOffset, tpKey } from '../record.js';

/**
 * Per-partition contiguous offset tracker.
 *
 * Records are tracked in fetch order (strictly increasing offsets per partition, gaps allowed:
 * compaction and transaction markers leave holes). The committable offset of a partition is the
 * first tracked record that is not yet done, or one past the last tracked record when all are
 * done: the Kafka convention "committed offset = next record to read". It can therefore never pass
 * a record that was neither acknowledged nor dead-lettered.
 *
 * Each assignment of a partition gets a fresh generation. A completion that carries an older
 * generation (the partition was revoked, maybe re-assigned, while the record was in flight) is
 * ignored, so nothing is ever committed for a partition on behalf of a previous owner's work.
 */
export interface RecordTicket {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly generation: number;
}

/**
 * One assigned partition's offsets under one generation. The pipeline keeps this handle in its
 * partition object, so tracking and completing a record need no lookup.
 */
export class TrackedPartition {
  /** Set when the partition is revoked: tickets of this generation can no longer complete. */
  revoked = false;
  /** Tracked offsets not yet released, ascending; `done[i]` says whether `offsets[i]` finished. */
  private offsets: number[] = [];
  private done: boolean[] = [];
  private head = 0;
  private lastTracked = -1;
  /** Offset known to be committed in Kafka for this partition (-1: nothing known). */
  committed = -1;
  /** Offset that will be committable once `offsets` is empty: one past the last record tracked. */
  private nextAfterLast = -1;

  constructor(
    readonly tp: TopicPartition,
    readonly generation: number,
  ) {}

  /**
   * Registers a fetched record. Returns a ticket to complete it with, or null when the offset was
   * already tracked in this generation (a re-fetch after a pause): such a record is either in
   * flight or done already and must not be delivered again.
   */
  track(offset: number): RecordTicket | null {
    if (this.revoked || offset <= this.lastTracked) return null;
    this.offsets.push(offset);
    this.done.push(false);
    this.lastTracked = offset;
    this.nextAfterLast = offset + 1;
    return new Ticket(this.tp.topic, this.tp.partition, offset, this.generation, this);
  }

  complete(offset: number): boolean {
    // Binary search: completions arrive mostly near the head, but any order is valid.
    let lo = this.head;
    let hi = this.offsets.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const value = this.offsets[mid] as number;
      if (value === offset) {
        if (this.done[mid]) return false;
        this.done[mid] = true;
        this.advance();
        return true;
      }
      if (value < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  private advance(): void {
    while (this.head < this.offsets.length && this.done[this.head]) this.head++;
    if (this.head === this.offsets.length) {
      this.offsets.length = 0;
      this.done.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.offsets.length) {
      // Drop the released prefix now and then so memory follows the in-flight window only.
      this.offsets = this.offsets.slice(this.head);
      this.done = this.done.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The lowest tracked offset not yet done (the record the committable offset waits for: `advance`
   * keeps `head` on it), or -1 when every tracked record is done.
   */
  oldestPending(): number {
    return this.head < this.offsets.length ? (this.offsets[this.head] as number) : -1;
  }

  /** Next offset to commit, or -1 when nothing was ever tracked. */
  committable(): number {
    if (this.head < this.offsets.length) return this.offsets[this.head] as number;
    return this.nextAfterLast;
  }

  /**
   * The highest offset already done above the oldest pending one (-1 when none is): records
   * acknowledged past a gap, which the next owner would deliver again unless the gap is filled.
   */
  highestDoneAboveGap(): number {
    for (let i = this.offsets.length - 1; i > this.head; i--) if (this.done[i]) return this.offsets[i] as number;
    return -1;
  }

  pending(): number {
    let count = 0;
    for (let i = this.head; i < this.offsets.length; i++) if (!this.done[i]) count++;
    return count;
  }
}

/** A tracked record. It holds its partition's state, so completing it needs no lookup. */
class Ticket implements RecordTicket {
  readonly #state: TrackedPartition;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly generation: number,
    state: TrackedPartition,
  ) {
    this.#state = state;
  }

  /** The partition state this ticket belongs to, unless that generation was revoked since. */
  get liveState(): TrackedPartition | undefined {
    return this.#state.revoked ? undefined : this.#state;
  }
}

export class OffsetTracker {
  private readonly partitions = new Map<string, { tp: TopicPartition; state: TrackedPartition }>();
  private nextGeneration = 1;

  /** Starts (or restarts) tracking a partition under a new generation; returns that generation. */
  assign(tp: TopicPartition): number {
    return this.assignPartition(tp).generation;
  }

  /** `assign`, returning the partition's handle. */
  assignPartition(tp: TopicPartition): TrackedPartition {
    const generation = this.nextGeneration++;
    const previous = this.partitions.get(tpKey(tp));
    if (previous) previous.state.revoked = true;
    const plain = { topic: tp.topic, partition: tp.partition };
    const state = new TrackedPartition(plain, generation);
    this.partitions.set(tpKey(tp), { tp: plain, state });
    return state;
  }

  /**
   * Stops tracking a partition. Returns the offset that was committable at that moment (for the
   * synchronous commit on revoke), or null when there is nothing new to commit.
   */
  revoke(tp: TopicPartition): TopicPartitionOffset | null {
    const key = tpKey(tp);
    const entry = this.partitions.get(key);
    if (!entry) return null;
    this.partitions.delete(key);
    entry.state.revoked = true;
    const offset = entry.state.committable();
    return offset > entry.state.committed ? { topic: tp.topic, partition: tp.partition, offset } : null;
  }

  isAssigned(tp: TopicPartition): boolean {
    return this.partitions.has(tpKey(tp));
  }

  generationOf(tp: TopicPartition): number | undefined {
    return this.partitions.get(tpKey(tp))?.state.generation;
  }

  /** `TrackedPartition.track` by name; null when the partition is not assigned. */
  track(tp: TopicPartition, offset: number): RecordTicket | null {
    return this.partitions.get(tpKey(tp))?.state.track(offset) ?? null;
  }

  /** Whether the ticket's partition is still tracked under the ticket's generation. */
  owns(ticket: RecordTicket): boolean {
    return this.stateOf(ticket) !== undefined;
  }

  /** Marks a record acknowledged or dead-lettered. Returns false for a stale or unknown ticket. */
  complete(ticket: RecordTicket): boolean {
    return this.stateOf(ticket)?.complete(ticket.offset) ?? false;
  }

  private stateOf(ticket: RecordTicket): TrackedPartition | undefined {
    if (ticket instanceof Ticket) return ticket.liveState;
    // A ticket not made here (tests, callers holding plain objects): look it up.
    const state = this.partitions.get(tpKey(ticket))?.state;
    return state?.generation === ticket.generation ? state : undefined;
  }

  committable(tp: TopicPartition): number {
    return this.partitions.get(tpKey(tp))?.state.committable() ?? -1;
  }

  pending(tp: TopicPartition): number {
    return this.partitions.get(tpKey(tp))?.state.pending() ?? 0;
  }

  oldestPending(tp: TopicPartition): number {
    return this.partitions.get(tpKey(tp))?.state.oldestPending() ?? -1;
  }

  /** Offsets that moved past what was last committed, for partitions still owned. */
  commitCandidates(): Array<TopicPartitionOffset & { generation: number }> {
    const out: Array<TopicPartitionOffset & { generation: number }> = [];
    for (const { tp, state } of this.partitions.values()) {
      const offset = state.committable();
      if (offset > state.committed) out.push({ topic: tp.topic, partition: tp.partition, offset, generation: state.generation });
    }
    return out;
  }

  /** Records a successful commit, unless the partition changed hands since the commit began. */
  markCommitted(tp: TopicPartition, offset: number, generation: number): void {
    const entry = this.partitions.get(tpKey(tp));
    if (entry && entry.state.generation === generation && offset > entry.state.committed) entry.state.committed = offset;
  }

  assigned(): TopicPartition[] {
    return [...this.partitions.values()].map((entry) => entry.tp);
  }
}
