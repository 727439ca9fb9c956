import type { Logger } from 'pino';
import type { LagReport, PartitionLag } from './api/schemas.js';
import type { Metrics } from './metrics.js';
import type { Unacknowledged } from './pipeline/partition.js';
import { type TopicPartition, type TopicPartitionOffset, tpKey } from './record.js';

/**
 * Consumer lag per the seed guide: high watermark − committed offset, per assigned partition, read
 * from the broker (not from Courier's own bookkeeping), refreshed on an interval and on demand.
 * A partition with nothing committed yet counts from its low watermark.
 *
 * How old that backlog is (DESIGN A4) needs a record timestamp: the oldest unacknowledged record
 * Courier fetched carries one (the pipeline finds it); when it holds none, the next record is
 * read from the broker (`timestampsAt`), once per position.
 */
export interface LagSource {
  committed(partitions: readonly TopicPartition[], timeoutMs: number): Promise<TopicPartitionOffset[]>;
  watermarks(tp: TopicPartition, timeoutMs: number): Promise<{ low: number; high: number }>;
  /**
   * For each position, the timestamp of the first record at or after it (-1: that record has
   * none), or null when the partition ends before one. A position left out is unknown (timeout).
   */
  timestampsAt?(positions: readonly TopicPartitionOffset[], timeoutMs: number): Promise<Map<string, number | null>>;
}

/** What the pipeline holds of one partition, from its offset tracker. */
export interface HeldRecords {
  /** The next offset Courier has not acknowledged, as far as it tracked (-1: nothing tracked yet). */
  readonly position: number;
  /** The lowest-offset record fetched and neither acknowledged nor dead-lettered. */
  readonly oldest: Unacknowledged | undefined;
}

export interface LagOptions {
  /** What the pipeline holds of a partition; undefined for a partition it does not track. */
  readonly held?: (tp: TopicPartition) => HeldRecords | undefined;
  /** For the first-join notice. */
  readonly groupId?: string;
  /** The consumer's auto.offset.reset: the notice is for the values that start from the beginning. */
  readonly offsetReset?: string;
  readonly timeoutMs?: number;
  /** Reading the next records' timestamps gives up after this; their lagSeconds is then null. */
  readonly peekTimeoutMs?: number;
  readonly clock?: () => number;
}

export type { LagReport, PartitionLag };

type Ages = Pick<PartitionLag, 'lagSeconds' | 'oldestUnackedAgeMs'>;

/** From this many records on, the first-join notice is a warning. */
export const LARGE_BACKLOG = 100_000;

/**
 * The ages of one partition's backlog (pure):
 * - `oldestUnackedAgeMs`: how long Courier has held its oldest unacknowledged record (now − fetched
 *   at); null when it holds none.
 * - `lagSeconds`: now − the Kafka timestamp of that record or, when Courier holds none, of the next
 *   record it has not fetched (`next`: a timestamp; null when there is no such record, so nothing
 *   waits: 0; undefined when unknown: null). Never negative (producers' clocks run ahead sometimes).
 */
export function backlogAges(now: number, oldest: Unacknowledged | undefined, next: number | null | undefined): Ages {
  const age = (at: number) => (at < 0 ? null : Math.max(0, Math.round(now - at)));
  if (oldest) {
    const recordAge = age(oldest.timestamp);
    return { lagSeconds: recordAge === null ? null : recordAge / 1000, oldestUnackedAgeMs: age(oldest.fetchedAt) };
  }
  if (next === null) return { lagSeconds: 0, oldestUnackedAgeMs: null };
  const recordAge = next === undefined ? null : age(next);
  return { lagSeconds: recordAge === null ? null : recordAge / 1000, oldestUnackedAgeMs: null };
}

/**
 * The first offset nobody has acknowledged, when Courier holds no record of the partition: the
 * committed offset (the low watermark when there is none) or further, where Courier acknowledged
 * records that are not committed yet. Undefined when that is the end of the partition.
 */
export function nextUnfetched(committedOrLow: number, high: number, held: HeldRecords | undefined): number | undefined {
  const next = Math.max(committedOrLow, held?.position ?? -1);
  return next < high ? next : undefined;
}

export function startsFromBeginning(offsetReset: string | undefined): boolean {
  return offsetReset === 'earliest' || offsetReset === 'smallest' || offsetReset === 'beginning';
}

export interface BacklogNotice {
  readonly level: 'info' | 'warn';
  readonly message: string;
  readonly records: number;
  readonly partitions: string[];
}

/**
 * The one line a first join says when the group has no committed offsets for partitions it was
 * just given and starts them from the beginning: how many records that pushes. Undefined when
 * there is nothing to say (offsets committed, empty partitions, or auto.offset.reset=latest).
 */
export function backlogNotice(groupId: string, offsetReset: string | undefined, fresh: readonly PartitionLag[]): BacklogNotice | undefined {
  if (!startsFromBeginning(offsetReset)) return undefined;
  const uncommitted = fresh.filter((row) => row.committedOffset === null);
  const records = uncommitted.reduce((sum, row) => sum + row.lag, 0);
  if (records === 0) return undefined;
  const some = uncommitted.length < fresh.length ? ` for ${uncommitted.length} of ${fresh.length} new partitions` : '';
  const count = uncommitted.length === 1 ? '1 partition' : `${uncommitted.length} partitions`;
  return {
    level: records >= LARGE_BACKLOG ? 'warn' : 'info',
    message: `group ${groupId} has no committed offsets${some}: ${records} records on ${count} will be pushed from the beginning (auto.offset.reset=${offsetReset})`,
    records,
    partitions: uncommitted.map((row) => `${row.topic}-${row.partition}`),
  };
}

interface Row {
  readonly tp: TopicPartition;
  readonly row: Omit<PartitionLag, keyof Ages>;
  readonly held: HeldRecords | undefined;
  /** Where the next record's timestamp has to be read from the broker. */
  readonly next: number | undefined;
}

export class LagMonitor {
  private report: LagReport = { partitions: [], totalLag: 0, refreshedAt: null };
  private inFlight: Promise<LagReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly exported = new Set<string>();
  /** Partitions the first-join notice has looked at (forgotten when they go, so a return is looked at again). */
  private readonly announced = new Set<string>();
  /** The timestamp read at a position, per partition: a record's timestamp never changes. */
  private readonly peeked = new Map<string, { offset: number; timestamp: number }>();
  private readonly timeoutMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly source: LagSource,
    private readonly assigned: () => TopicPartition[],
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly options: LagOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.clock = options.clock ?? Date.now;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  latest(): LagReport {
    return this.report;
  }

  /** Asks the broker now; concurrent callers share one round trip. */
  refresh(): Promise<LagReport> {
    this.inFlight ??= this.query().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /**
   * Partitions were just assigned: refresh at once (after a refresh that may have started without
   * them), so the first-join notice comes before Courier commits anything for them.
   */
  assignedNow(): Promise<LagReport> {
    const after = this.inFlight ?? Promise.resolve(this.report);
    return after.then(
      () => this.refresh(),
      () => this.refresh(),
    );
  }

  private async query(): Promise<LagReport> {
    const partitions = this.assigned();
    let committed: TopicPartitionOffset[] = [];
    if (partitions.length > 0) {
      try {
        committed = await this.source.committed(partitions, this.timeoutMs);
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'lag: reading committed offsets failed');
        return this.report;
      }
    }
    const committedOf = new Map(committed.map((c) => [tpKey(c), c.offset]));
    const rows = await Promise.all(
      partitions.map(async (tp): Promise<Row | undefined> => {
        try {
          const { low, high } = await this.source.watermarks(tp, this.timeoutMs);
          const offset = committedOf.get(tpKey(tp));
          const committedOffset = offset !== undefined && offset >= 0 ? offset : null;
          // Read after the broker answered, so that what Courier holds is at least as new.
          const held = this.options.held?.(tp);
          const row = { topic: tp.topic, partition: tp.partition, committedOffset, highWatermark: high, lag: Math.max(0, high - (committedOffset ?? low)) };
          return { tp, row, held, next: held?.oldest ? undefined : nextUnfetched(committedOffset ?? low, high, held) };
        } catch {
          return undefined;
        }
      }),
    );
    const present = rows.filter((row): row is Row => row !== undefined);
    const timestamps = await this.nextTimestamps(present);
    const now = this.clock();
    const lagRows = present
      .map(({ tp, row, held, next }): PartitionLag => {
        if (held?.oldest) return { ...row, ...backlogAges(now, held.oldest, undefined) };
        // Nothing waits: no record after the committed offset, or Courier acknowledged them all.
        if (next === undefined) return { ...row, ...backlogAges(now, undefined, null) };
        return { ...row, ...backlogAges(now, undefined, timestamps.get(tpKey(tp))) };
      })
      .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    this.report = { partitions: lagRows, totalLag: lagRows.reduce((sum, row) => sum + row.lag, 0), refreshedAt: new Date(now).toISOString() };
    this.export(lagRows);
    this.announce(lagRows, partitions);
    return this.report;
  }

  /** Timestamps of the next records where Courier holds none, from the cache or the broker. */
  private async nextTimestamps(rows: readonly Row[]): Promise<Map<string, number | null>> {
    const out = new Map<string, number | null>();
    const wanted: TopicPartitionOffset[] = [];
    for (const { tp, next } of rows) {
      if (next === undefined) continue;
      const cached = this.peeked.get(tpKey(tp));
      if (cached?.offset === next) out.set(tpKey(tp), cached.timestamp);
      else wanted.push({ topic: tp.topic, partition: tp.partition, offset: next });
    }
    for (const key of this.peeked.keys()) if (!rows.some((row) => tpKey(row.tp) === key)) this.peeked.delete(key);
    if (wanted.length === 0 || !this.source.timestampsAt) return out;
    try {
      const read = await this.source.timestampsAt(wanted, this.options.peekTimeoutMs ?? 2000);
      for (const position of wanted) {
        const key = tpKey(position);
        const timestamp = read.get(key);
        if (timestamp === undefined) continue;
        out.set(key, timestamp);
        // "No record yet" changes as records arrive; a record's timestamp does not.
        if (timestamp !== null) this.peeked.set(key, { offset: position.offset, timestamp });
      }
    } catch (error) {
      this.logger.debug({ err: (error as Error).message }, 'lag: reading the timestamps of the next records failed');
    }
    return out;
  }

  /** The first-join notice, once for each partition set that arrives. */
  private announce(rows: readonly PartitionLag[], assigned: readonly TopicPartition[]): void {
    const current = new Set(assigned.map(tpKey));
    for (const key of this.announced) if (!current.has(key)) this.announced.delete(key);
    const fresh = rows.filter((row) => !this.announced.has(tpKey(row)));
    if (fresh.length === 0) return;
    for (const row of fresh) this.announced.add(tpKey(row));
    const notice = backlogNotice(this.options.groupId ?? '?', this.options.offsetReset, fresh);
    if (notice) this.logger[notice.level]({ groupId: this.options.groupId, records: notice.records, partitions: notice.partitions }, notice.message);
  }

  /**
   * Keeps courier_consumer_lag, courier_lag_seconds and courier_oldest_unacked_age_seconds to the
   * partitions we own: a revoked one must not linger. An unknown lagSeconds has no series (it is
   * not 0); nothing unacknowledged is an oldest age of 0.
   */
  private export(rows: readonly PartitionLag[]): void {
    const { consumerLag, lagSeconds, oldestUnackedAge } = this.metrics;
    const now = new Set<string>();
    for (const row of rows) {
      const labels = { topic: row.topic, partition: String(row.partition) };
      consumerLag.set(labels, row.lag);
      if (row.lagSeconds === null) lagSeconds.remove(labels);
      else lagSeconds.set(labels, row.lagSeconds);
      oldestUnackedAge.set(labels, (row.oldestUnackedAgeMs ?? 0) / 1000);
      now.add(tpKey(row));
    }
    for (const key of this.exported) {
      if (!now.has(key)) {
        const [topic, partition] = key.split('\u0000') as [string, string];
        for (const gauge of [consumerLag, lagSeconds, oldestUnackedAge]) gauge.remove({ topic, partition });
      }
    }
    this.exported.clear();
    for (const key of now) this.exported.add(key);
  }
}
