import type { TopicPartition } from '../record.js';
import type { BatchLimits, PermitGate } from './scheduler.js';

/** The scheduler's per-partition structures: waiting records in lanes, and the partition's queue. */

/** A FIFO with O(1) push and shift that reuses its array. */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** The records of one lane waiting for their turn, and how many of them are in flight. */
export class Lane<T> {
  waiting = new Fifo<T>();
  running = 0;
  constructor(
    public id: string,
    public queue: PartitionQueue<T>,
  ) {}
}

/** Lanes come and go with every key in key mode; emptied ones are reused. */
export const SPARE_LANES = 1024;

/** One partition's waiting records; the handle its owner passes back to every call. */
export class PartitionQueue<T> {
  /** Lanes by id (the partition itself, or a key); unordered mode has none. */
  readonly lanes = new Map<string, Lane<T>>();
  /** Lanes that are not busy and have a waiting record, in the order they became so. */
  ready = new Fifo<Lane<T>>();
  /** unordered: every waiting record is ready. */
  unordered = new Fifo<T>();
  length = 0;
  bytes = 0;
  /** Waiting records that may start now: those of the ready lanes (a batch's linger counts them). */
  readyRecords = 0;
  inFlight = 0;
  /** Pushes in flight: records, or batches for a batch route. */
  pushes = 0;
  lingerTimer: NodeJS.Timeout | undefined = undefined;
  /** Set while the first waiting item is not due. */
  dueTimer: NodeJS.Timeout | undefined = undefined;
  blocked = false;
  /** An operator paused the partition: keep its records, start none. */
  held = false;
  backpressured = false;
  /** The partition was removed (or replaced): late finishes of its records change nothing. */
  removed = false;
  constructor(
    readonly tp: TopicPartition,
    /** Whether a record of this partition may start now (its route's concurrency); takes the permit when it may. */
    readonly permit: PermitGate | undefined,
    /** Set for a batch route: its records start in batches. */
    readonly batching: BatchLimits | undefined,
  ) {}

  clearLinger(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  clearDue(): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueTimer = undefined;
  }
}
