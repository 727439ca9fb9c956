import type { Logger } from 'pino';
import type { LagReport, PartitionLag } from './api/schemas.js';
import type { Metrics } from './metrics.js';
import { type TopicPartition, type TopicPartitionOffset, tpKey } from './record.js';

/**
 * Consumer lag per the seed guide: high watermark − committed offset, per assigned partition, read
 * from the broker (not from Courier's own bookkeeping), refreshed on an interval and on demand.
 * A partition with nothing committed yet counts from its low watermark.
 */
export interface LagSource {
  committed(partitions: readonly TopicPartition[], timeoutMs: number): Promise<TopicPartitionOffset[]>;
  watermarks(tp: TopicPartition, timeoutMs: number): Promise<{ low: number; high: number }>;
}

export type { LagReport, PartitionLag };

export class LagMonitor {
  private report: LagReport = { partitions: [], totalLag: 0, refreshedAt: null };
  private inFlight: Promise<LagReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly exported = new Set<string>();

  constructor(
    private readonly source: LagSource,
    private readonly assigned: () => TopicPartition[],
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly timeoutMs = 5000,
  ) {}

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
      partitions.map(async (tp): Promise<PartitionLag | undefined> => {
        try {
          const { low, high } = await this.source.watermarks(tp, this.timeoutMs);
          const offset = committedOf.get(tpKey(tp));
          const committedOffset = offset !== undefined && offset >= 0 ? offset : null;
          return { topic: tp.topic, partition: tp.partition, committedOffset, highWatermark: high, lag: Math.max(0, high - (committedOffset ?? low)) };
        } catch {
          return undefined;
        }
      }),
    );
    const present = rows.filter((row): row is PartitionLag => row !== undefined).sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    this.report = { partitions: present, totalLag: present.reduce((sum, row) => sum + row.lag, 0), refreshedAt: new Date().toISOString() };
    this.export(present);
    return this.report;
  }

  /** Keeps courier_consumer_lag to the partitions we own: a revoked one must not linger. */
  private export(rows: readonly PartitionLag[]): void {
    const now = new Set<string>();
    for (const row of rows) {
      const labels = { topic: row.topic, partition: String(row.partition) };
      this.metrics.consumerLag.set(labels, row.lag);
      now.add(tpKey(row));
    }
    for (const key of this.exported) {
      if (!now.has(key)) {
        const [topic, partition] = key.split('\u0000') as [string, string];
        this.metrics.consumerLag.remove({ topic, partition });
      }
    }
    this.exported.clear();
    for (const key of now) this.exported.add(key);
  }
}
