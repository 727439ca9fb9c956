import type { Ordering } from './config.js';
import { type TopicPartition, tpKey } from './record.js';

/**
 * Decides which fetched records may start now. Records wait in a FIFO per partition; a record
 * starts when its lane is free and the global in-flight cap allows:
 * - `partition`: one lane per partition (one record in flight per partition);
 * - `key`: one lane per key within a partition (a null key is its own lane: such records have no
 *   order to keep);
 * - `unordered`: no lanes, only the cap.
 * The scheduler knows nothing of HTTP or Kafka: it calls `start` and is told `finish`.
 */
export interface Schedulable {
  readonly key: Buffer | null;
}

export interface SchedulerOptions<T extends Schedulable> {
  readonly ordering: Ordering;
  readonly maxInFlight: number;
  /** Queue length at which a partition asks to be paused (resumed again at half). */
  readonly partitionBuffer: number;
  readonly start: (item: T, tp: TopicPartition) => void;
  readonly backpressure: (tp: TopicPartition, paused: boolean) => void;
}

class PartitionQueue<T> {
  items: T[] = [];
  head = 0;
  inFlight = 0;
  busyKeys = new Set<string>();
  blocked = false;
  /** An operator paused the partition: keep its records, start none. */
  held = false;
  backpressured = false;
  constructor(readonly tp: TopicPartition) {}

  get length(): number {
    return this.items.length - this.head;
  }

  compact(): void {
    if (this.head > 256 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export class Scheduler<T extends Schedulable> {
  private readonly queues = new Map<string, PartitionQueue<T>>();
  private inFlight = 0;
  /** Which queue started an item, so a late finish after a revoke cannot touch a new queue. */
  private readonly owner = new WeakMap<T, PartitionQueue<T>>();
  /** Rotates which partition gets the first free slot, so one busy partition cannot starve others. */
  private cursor = 0;

  constructor(private readonly options: SchedulerOptions<T>) {}

  addPartition(tp: TopicPartition): void {
    this.queues.set(tpKey(tp), new PartitionQueue(tp));
  }

  /** Forgets a partition: queued records are dropped (not started, so never acknowledged). */
  removePartition(tp: TopicPartition): number {
    const key = tpKey(tp);
    const queue = this.queues.get(key);
    if (!queue) return 0;
    this.queues.delete(key);
    this.inFlight -= queue.inFlight;
    return queue.length;
  }

  /** Stops starting records of a partition (revoking, shutting down) without forgetting it yet. */
  block(tp: TopicPartition): void {
    const queue = this.queues.get(tpKey(tp));
    if (queue) {
      queue.blocked = true;
      queue.items = [];
      queue.head = 0;
    }
  }

  /** Holds (or releases) a partition's queued records without dropping them. */
  hold(tp: TopicPartition, held: boolean): void {
    const queue = this.queues.get(tpKey(tp));
    if (queue) queue.held = held;
  }

  enqueue(tp: TopicPartition, item: T): boolean {
    const queue = this.queues.get(tpKey(tp));
    if (!queue || queue.blocked) return false;
    queue.items.push(item);
    if (!queue.backpressured && queue.length >= this.options.partitionBuffer) {
      queue.backpressured = true;
      this.options.backpressure(queue.tp, true);
    }
    return true;
  }

  /** A started record ended (acknowledged, dead-lettered or abandoned). */
  finish(tp: TopicPartition, item: T): void {
    const queue = this.owner.get(item);
    this.owner.delete(item);
    if (!queue || queue !== this.queues.get(tpKey(tp))) return;
    queue.inFlight--;
    this.inFlight--;
    if (this.options.ordering === 'key' && item.key !== null) queue.busyKeys.delete(item.key.toString('latin1'));
  }

  inFlightOf(tp: TopicPartition): number {
    return this.queues.get(tpKey(tp))?.inFlight ?? 0;
  }

  queuedOf(tp: TopicPartition): number {
    return this.queues.get(tpKey(tp))?.length ?? 0;
  }

  get totalInFlight(): number {
    return this.inFlight;
  }

  /** Starts every record that may start now. */
  dispatch(): void {
    const queues = [...this.queues.values()];
    if (queues.length === 0) return;
    this.cursor = (this.cursor + 1) % queues.length;
    let progressed = true;
    while (progressed && this.inFlight < this.options.maxInFlight) {
      progressed = false;
      for (let i = 0; i < queues.length && this.inFlight < this.options.maxInFlight; i++) {
        const queue = queues[(this.cursor + i) % queues.length] as PartitionQueue<T>;
        if (!queue.blocked && !queue.held && this.startOne(queue)) progressed = true;
      }
    }
    for (const queue of queues) {
      if (queue.backpressured && queue.length <= this.options.partitionBuffer >> 1) {
        queue.backpressured = false;
        this.options.backpressure(queue.tp, false);
      }
      queue.compact();
    }
  }

  private startOne(queue: PartitionQueue<T>): boolean {
    if (queue.length === 0) return false;
    switch (this.options.ordering) {
      case 'partition':
        if (queue.inFlight > 0) return false;
        this.launch(queue, queue.head);
        return true;
      case 'unordered':
        this.launch(queue, queue.head);
        return true;
      case 'key': {
        // The first record whose key is not in flight and not held back by an earlier record of
        // the same key still waiting in the queue.
        const seen = new Set<string>();
        for (let i = queue.head; i < queue.items.length; i++) {
          const item = queue.items[i] as T;
          if (item.key === null) {
            this.launch(queue, i);
            return true;
          }
          const key = item.key.toString('latin1');
          if (!queue.busyKeys.has(key) && !seen.has(key)) {
            queue.busyKeys.add(key);
            this.launch(queue, i);
            return true;
          }
          seen.add(key);
        }
        return false;
      }
    }
  }

  private launch(queue: PartitionQueue<T>, index: number): void {
    const item = queue.items[index] as T;
    if (index === queue.head) queue.head++;
    else queue.items.splice(index, 1);
    queue.inFlight++;
    this.inFlight++;
    this.owner.set(item, queue);
    this.options.start(item, queue.tp);
  }
}
