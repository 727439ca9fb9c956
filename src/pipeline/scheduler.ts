import type { Ordering } from '../config/index.js';
import { type TopicPartition, tpKey } from '../record.js';
import { Fifo, Lane, PartitionQueue, SPARE_LANES } from './queues.js';

export { PartitionQueue };

/**
 * Decides which fetched records may start now. A record starts when its lane is free and the
 * global in-flight cap allows:
 * - `partition`: one lane per partition (one record in flight per partition);
 * - `key`: one lane per key within a partition (a null key is its own lane: such records have no
 *   order to keep);
 * - `unordered`: no lanes, only the cap.
 * Every operation is O(1) per record: waiting records sit in per-lane FIFOs, and lanes that may
 * start are kept in a FIFO of their own, in the order they became ready.
 * A partition of a batch route starts its records as batches (DESIGN A6): the records of one
 * partition that may start, up to the batch limits, in one push. A lane stays busy until every
 * record it gave to a batch finished, so `partition` mode has one batch per partition at a time and
 * `key` mode never has two records of a key in two pushes at once. A batch waits up to the linger
 * time (from its oldest record's arrival) to fill. `maxInFlight` counts pushes: a batch is one.
 * The scheduler knows nothing of HTTP or Kafka: it calls `start` and is told `finish`.
 */
export interface Schedulable {
  readonly key: Buffer | null;
  /** Bytes the item holds while it waits (value and key). */
  readonly size: number;
  /** The scheduler's own note while the item runs (its lane or queue): no side table per record. */
  scheduled?: unknown;
  /** The scheduler's note of the batch the item runs in. */
  batchSlot?: unknown;
  /** When the item arrived (ms, the scheduler's clock), for a batch's linger; absent: long ago. */
  readonly arrivedAt?: number;
  /**
   * Not before this time (ms, the scheduler's clock): a retry tier's record. While the first waiting
   * item of a partition is not due, nothing of that partition starts (`waitingForDue` says so).
   */
  readonly dueAt?: number | undefined;
}

/** How a batch route's partition groups records (DESIGN A6). */
export interface BatchLimits {
  readonly maxRecords: number;
  /** Bytes of the items' `size`; a single larger item goes alone. */
  readonly maxBytes: number;
  readonly lingerMs: number;
}

/** One batch in flight: it is one push until its last record finished. */
interface BatchSlot {
  remaining: number;
}

export interface SchedulerOptions<T extends Schedulable> {
  readonly ordering: Ordering;
  readonly maxInFlight: number;
  /** Waiting records, or bytes, at which a partition asks to be paused (resumed below half of both). */
  readonly partitionBuffer: number;
  readonly partitionBufferBytes: number;
  /** Bytes waiting across all partitions: a partition's byte limit is at most its share of this. */
  readonly bufferBytes?: number;
  readonly start: (item: T, tp: TopicPartition) => void;
  /** Starts a batch (partitions added with batch limits); the records are in offset order. */
  readonly startBatch?: (items: T[], tp: TopicPartition) => void;
  readonly backpressure: (tp: TopicPartition, paused: boolean) => void;
  /** A partition that was fed just ran out of waiting records (it may starve without a fetch). */
  readonly drained?: (tp: TopicPartition) => void;
  /** Offset order, for a key-mode batch made of several lanes. */
  readonly compare?: (a: T, b: T) => number;
  /** The clock of `arrivedAt` and `dueAt` (tests pass their own). */
  readonly now?: () => number;
  /** A partition's first waiting item is not due (true), or has become due (false; dispatching follows). */
  readonly waitingForDue?: (tp: TopicPartition, waiting: boolean) => void;
}

/** A route's concurrency, as the scheduler sees it (delivery/concurrency.ts Permits). */
export interface PermitGate {
  tryAcquire(): boolean;
  release(): void;
}

/** The least a partition may hold of the global budget, however many partitions share it: one full fetch of it (max.partition.fetch.bytes). */
export const MIN_SHARE_BYTES = 1024 * 1024;

export class Scheduler<T extends Schedulable> {
  private readonly queues = new Map<string, PartitionQueue<T>>();
  /** The same queues as an array, so dispatching allocates nothing. */
  private queueList: PartitionQueue<T>[] = [];
  /** Pushes in flight: records, and batches of batch routes. */
  private inFlight = 0;
  /** Records waiting across all partitions. */
  private waiting = 0;
  private readonly spareLanes: Lane<T>[] = [];
  /** Rotates which partition gets the first free slot, so one busy partition cannot starve others. */
  private cursor = 0;
  /** Null keys get a lane each: they have no order to keep. */
  private nullKeyLanes = 0;

  private readonly now: () => number;

  constructor(private readonly options: SchedulerOptions<T>) {
    this.now = options.now ?? Date.now;
  }

  /** Starts scheduling a partition; returns its queue, the handle for every other call. */
  addPartition(tp: TopicPartition, permit?: PermitGate, batching?: BatchLimits): PartitionQueue<T> {
    if (batching && (!this.options.startBatch || (this.options.ordering === 'key' && !this.options.compare))) {
      throw new Error('a batch partition needs the startBatch option (and compare, in key mode)');
    }
    const queue = new PartitionQueue<T>(tp, permit, batching);
    const previous = this.queues.get(tpKey(tp));
    if (previous) this.removePartition(previous);
    this.queues.set(tpKey(tp), queue);
    this.queueList = [...this.queueList, queue];
    return queue;
  }

  /** Forgets a partition: waiting records are dropped (not started, so never acknowledged). */
  removePartition(queue: PartitionQueue<T>): number {
    if (queue.removed) return 0;
    queue.removed = true;
    queue.clearLinger();
    queue.clearDue();
    this.queues.delete(tpKey(queue.tp));
    this.queueList = this.queueList.filter((q) => q !== queue);
    this.inFlight -= queue.pushes;
    this.waiting -= queue.length;
    return queue.length;
  }

  /**
   * Stops taking records for a partition (revoking, shutting down) and drops what waits, except the
   * records `keep` names: those still start as usual (a revoke fills the gaps below records already
   * acknowledged). A lane holds its records in offset order, so what is kept stays in order.
   */
  block(queue: PartitionQueue<T>, keep?: (item: T) => boolean): void {
    if (queue.removed) return;
    queue.blocked = true;
    queue.clearLinger();
    queue.clearDue();
    let length = 0;
    let bytes = 0;
    const kept = (from: Fifo<T>): Fifo<T> => {
      const into = new Fifo<T>();
      if (!keep) return into;
      for (let item = from.shift(); item !== undefined; item = from.shift()) {
        if (!keep(item)) continue;
        into.push(item);
        length++;
        bytes += item.size;
      }
      return into;
    };
    queue.unordered = kept(queue.unordered);
    const ready = new Fifo<Lane<T>>();
    let readyRecords = 0;
    for (let lane = queue.ready.shift(); lane !== undefined; lane = queue.ready.shift()) {
      lane.waiting = kept(lane.waiting);
      if (lane.waiting.length === 0) continue;
      ready.push(lane);
      readyRecords += lane.waiting.length;
    }
    for (const [id, lane] of queue.lanes) {
      if (lane.running > 0)
        lane.waiting = kept(lane.waiting); // busy lanes are not in `ready`
      else if (lane.waiting.length === 0) queue.lanes.delete(id);
    }
    queue.ready = ready;
    queue.readyRecords = readyRecords;
    this.waiting -= queue.length - length;
    queue.length = length;
    queue.bytes = bytes;
    this.relieve(queue);
  }

  /** Holds (or releases) a partition's waiting records without dropping them. */
  hold(queue: PartitionQueue<T>, held: boolean): void {
    queue.held = held;
  }

  enqueue(queue: PartitionQueue<T>, item: T): boolean {
    if (queue.removed || queue.blocked) return false;
    if (this.options.ordering === 'unordered') {
      queue.unordered.push(item);
    } else {
      const id = this.laneOf(item);
      let lane = queue.lanes.get(id);
      if (!lane) {
        lane = this.spareLanes.pop();
        if (lane) {
          lane.id = id;
          lane.queue = queue;
        } else lane = new Lane<T>(id, queue);
        queue.lanes.set(id, lane);
      }
      lane.waiting.push(item);
      if (lane.running === 0) {
        queue.readyRecords++;
        if (lane.waiting.length === 1) queue.ready.push(lane);
      }
    }
    queue.length++;
    this.waiting++;
    queue.bytes += item.size;
    if (!queue.backpressured && (queue.length >= this.options.partitionBuffer || queue.bytes >= this.byteLimit())) {
      queue.backpressured = true;
      this.options.backpressure(queue.tp, true);
    }
    return true;
  }

  /** A started record ended (acknowledged, dead-lettered or abandoned); a batch's records end one by one. */
  finish(item: T): void {
    const scheduled = item.scheduled as Lane<T> | PartitionQueue<T> | undefined;
    const slot = item.batchSlot as BatchSlot | undefined;
    item.scheduled = undefined;
    item.batchSlot = undefined;
    if (scheduled === undefined) return;
    const lane = scheduled instanceof Lane ? scheduled : undefined;
    const queue = lane ? lane.queue : (scheduled as PartitionQueue<T>);
    if (queue.removed) return;
    queue.inFlight--;
    if (slot === undefined || --slot.remaining === 0) {
      queue.pushes--;
      this.inFlight--;
    }
    if (!lane || --lane.running > 0) return;
    if (lane.waiting.length > 0) {
      queue.ready.push(lane);
      queue.readyRecords += lane.waiting.length;
    } else {
      queue.lanes.delete(lane.id);
      if (this.spareLanes.length < SPARE_LANES) this.spareLanes.push(lane);
    }
  }

  inFlightOf(queue: PartitionQueue<T>): number {
    return queue.removed ? 0 : queue.inFlight;
  }

  queuedOf(queue: PartitionQueue<T>): number {
    return queue.removed ? 0 : queue.length;
  }

  /**
   * The first waiting record of each lane of a partition: records wait in fetch order within a
   * lane, so the partition's lowest waiting offset is among these. For reports, not per record.
   */
  waitingFronts(queue: PartitionQueue<T>): T[] {
    const fronts: T[] = [];
    const unordered = queue.unordered.peek();
    if (unordered !== undefined) fronts.push(unordered);
    for (const lane of queue.lanes.values()) {
      const front = lane.waiting.peek();
      if (front !== undefined) fronts.push(front);
    }
    return fronts;
  }

  get totalInFlight(): number {
    return this.inFlight;
  }

  get totalWaiting(): number {
    return this.waiting;
  }

  /** Whether some partition has nothing waiting although it can start records. */
  hasIdlePartition(): boolean {
    for (const queue of this.queueList) if (queue.length === 0 && !queue.blocked && !queue.held && !queue.backpressured) return true;
    return false;
  }

  /** Starts every record that may start now. */
  dispatch(): void {
    const queues = this.queueList;
    const count = queues.length;
    if (count === 0) return;
    this.cursor = (this.cursor + 1) % count;
    let progressed = true;
    while (progressed && this.inFlight < this.options.maxInFlight) {
      progressed = false;
      for (let i = 0; i < count && this.inFlight < this.options.maxInFlight; i++) {
        const queue = queues[(this.cursor + i) % count] as PartitionQueue<T>;
        if (!queue.held && this.startOne(queue)) progressed = true;
      }
    }
  }

  /**
   * A partition's byte limit: its fair share of the global budget (so the partitions together hold
   * about `bufferBytes`, however many there are), never below MIN_SHARE_BYTES (a partition must be
   * able to hold a few records to make progress), and never above `partitionBufferBytes`.
   */
  private byteLimit(): number {
    const { bufferBytes, partitionBufferBytes } = this.options;
    if (bufferBytes === undefined) return partitionBufferBytes;
    return Math.min(partitionBufferBytes, Math.max(MIN_SHARE_BYTES, bufferBytes / Math.max(1, this.queueList.length)));
  }

  /** A backpressured partition resumes once below half of both its limits. */
  private relieve(queue: PartitionQueue<T>): void {
    if (queue.backpressured && queue.length <= this.options.partitionBuffer >> 1 && queue.bytes <= this.byteLimit() / 2) {
      queue.backpressured = false;
      this.options.backpressure(queue.tp, false);
    }
  }

  private startOne(queue: PartitionQueue<T>): boolean {
    if (queue.batching) return this.startBatch(queue, queue.batching);
    const unordered = this.options.ordering === 'unordered';
    const ready = unordered ? queue.unordered.length : queue.ready.length;
    if (ready === 0 || queue.dueTimer || this.notDue(queue, unordered ? queue.unordered.peek() : queue.ready.peek()?.waiting.peek())) return false;
    if (queue.permit && !queue.permit.tryAcquire()) return false;
    let item: T | undefined;
    let lane: Lane<T> | undefined;
    if (this.options.ordering === 'unordered') {
      item = queue.unordered.shift();
    } else {
      lane = queue.ready.shift();
      if (lane) queue.readyRecords -= lane.waiting.length; // the lane is busy from now on
      item = lane?.waiting.shift();
    }
    if (item === undefined) {
      queue.permit?.release();
      return false;
    }
    if (lane) lane.running = 1;
    this.took(queue, item, lane);
    queue.pushes++;
    this.inFlight++;
    this.afterTaking(queue);
    this.options.start(item, queue.tp);
    return true;
  }

  /**
   * Starts one batch of a partition: the records that may start, in order, up to the limits; once
   * its oldest record waited the linger time even if it is not full.
   */
  private startBatch(queue: PartitionQueue<T>, limits: BatchLimits): boolean {
    const unordered = this.options.ordering === 'unordered';
    const front = unordered ? queue.unordered.peek() : queue.ready.peek()?.waiting.peek();
    if (front === undefined || queue.dueTimer || this.notDue(queue, front)) return false;
    const ready = unordered ? queue.unordered.length : queue.readyRecords;
    // A blocked partition's kept records go at once: nothing more will join them.
    if (ready < limits.maxRecords && queue.bytes < limits.maxBytes && limits.lingerMs > 0 && !queue.blocked) {
      const lingerLeft = (front.arrivedAt ?? Number.NEGATIVE_INFINITY) + limits.lingerMs - this.now();
      if (lingerLeft > 0) {
        this.lingerFor(queue, lingerLeft);
        return false;
      }
    }
    if (queue.permit && !queue.permit.tryAcquire()) return false;
    queue.clearLinger();
    const items: T[] = [];
    const slot: BatchSlot = { remaining: 0 };
    let bytes = 0;
    const fits = (item: T) => items.length < limits.maxRecords && (items.length === 0 || bytes + item.size <= limits.maxBytes);
    if (unordered) {
      for (let item = queue.unordered.peek(); item !== undefined && fits(item); item = queue.unordered.peek()) {
        queue.unordered.shift();
        bytes += item.size;
        items.push(this.took(queue, item, undefined, slot));
      }
    } else {
      // Whole lanes in the order they became ready; a lane cut short by the limits stays busy
      // (its later records wait for this batch), so a key's records never run in two pushes.
      for (let lane = queue.ready.peek(); lane !== undefined; lane = queue.ready.peek()) {
        const waiting = lane.waiting.length;
        let taken = 0;
        for (let item = lane.waiting.peek(); item !== undefined && fits(item); item = lane.waiting.peek()) {
          lane.waiting.shift();
          bytes += item.size;
          items.push(this.took(queue, item, lane, slot));
          taken++;
        }
        if (taken === 0) break;
        lane.running += taken;
        queue.ready.shift();
        queue.readyRecords -= waiting; // taken, or waiting behind this batch
        if (items.length >= limits.maxRecords) break;
      }
      // Lanes interleave in the partition: the app sees the batch in offset order.
      if (this.options.compare) items.sort(this.options.compare);
    }
    slot.remaining = items.length;
    queue.pushes++;
    this.inFlight++;
    this.afterTaking(queue);
    (this.options.startBatch as NonNullable<SchedulerOptions<T>['startBatch']>)(items, queue.tp);
    return true;
  }

  /** Moves a waiting item to in flight. */
  private took(queue: PartitionQueue<T>, item: T, lane: Lane<T> | undefined, slot?: BatchSlot): T {
    queue.length--;
    this.waiting--;
    queue.bytes -= item.size;
    queue.inFlight++;
    item.scheduled = lane ?? queue;
    item.batchSlot = slot;
    return item;
  }

  private afterTaking(queue: PartitionQueue<T>): void {
    if (queue.backpressured) this.relieve(queue);
    if (queue.length === 0) this.options.drained?.(queue.tp);
  }

  /** Whether `front` must wait for its due time; if so, the partition waits until then. */
  private notDue(queue: PartitionQueue<T>, front: T | undefined): boolean {
    if (front?.dueAt === undefined) return false;
    const waitMs = front.dueAt - this.now();
    if (waitMs <= 0) return false;
    this.options.waitingForDue?.(queue.tp, true);
    queue.dueTimer = setTimeout(() => {
      queue.dueTimer = undefined;
      this.options.waitingForDue?.(queue.tp, false);
      this.dispatch();
    }, Math.ceil(waitMs));
    queue.dueTimer.unref();
    return true;
  }

  /** Dispatches again when a lingering batch is due. */
  private lingerFor(queue: PartitionQueue<T>, ms: number): void {
    if (queue.lingerTimer) return;
    queue.lingerTimer = setTimeout(() => {
      queue.lingerTimer = undefined;
      this.dispatch();
    }, Math.ceil(ms));
    queue.lingerTimer.unref();
  }

  private laneOf(item: T): string {
    if (this.options.ordering === 'partition') return '';
    // A null key has no order to keep: each such record is a lane of its own.
    return item.key === null ? `\u0000${this.nullKeyLanes++}` : item.key.toString('latin1');
  }
}
