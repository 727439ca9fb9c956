import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Committer } from '../offsets/committer.js';
import type { OffsetTracker } from '../offsets/tracker.js';
import { type TopicPartition, tpKey } from '../record.js';
import { type Delivery, drainPartitions, type OwnedPartition } from './partition.js';
import type { SourcePort } from './ports.js';
import type { Scheduler } from './scheduler.js';

/** How long a seek's calls to Kafka (offsets for a time, watermarks, the seek itself) may take. */
const KAFKA_CALL_TIMEOUT_MS = 10_000;

/** What an operator's seek (DESIGN A7) reads and steers of the flow (pipeline/flow.ts). */
export interface SeekableFlow {
  readonly partitions: Map<string, OwnedPartition>;
  /** Partitions a seek is moving; a revoke meanwhile removes them (the seek then gives up). */
  readonly seeking: Set<string>;
  readonly source: SourcePort | undefined;
  readonly stopping: boolean;
  readonly graceMs: number;
  readonly tracker: OffsetTracker;
  readonly scheduler: Scheduler<Delivery>;
  readonly committer: Committer;
  readonly logger: Logger;
  pauseFetching(tp: TopicPartition, paused: boolean): void;
  releaseFetch(): void;
  /** Owns the partition again under a new generation. */
  own(tp: TopicPartition): OwnedPartition | undefined;
}

/**
 * Moves a partition this instance owns to `offset`, or to the first record at or after
 * `timestamp` (the end when there is none): start none of its records, let those in flight finish
 * (the grace period), commit the new position, seek, and own the partition again under a new
 * generation, so nothing fetched before the seek is delivered or committed after it. Undefined
 * when the partition is not ours (or stops being ours meanwhile).
 */
export async function seekPartition(
  flow: SeekableFlow,
  tp: TopicPartition,
  to: { offset: number } | { timestamp: number },
): Promise<{ previous: number | null; now: number } | undefined> {
  const key = tpKey(tp);
  const partition = flow.partitions.get(key);
  const source = flow.source;
  if (!partition || partition.revoking || !source || flow.stopping || flow.seeking.has(key)) return undefined;
  flow.seeking.add(key);
  let target: number;
  try {
    const { low, high } = await source.watermarks(tp, KAFKA_CALL_TIMEOUT_MS);
    target = 'offset' in to ? to.offset : await source.offsetForTime(tp, to.timestamp, KAFKA_CALL_TIMEOUT_MS);
    // Within what the partition holds: past the end is the end, before the start (retention) the start.
    target = target < 0 ? high : Math.min(Math.max(target, low), high);
  } catch (error) {
    flow.seeking.delete(key);
    throw error;
  }
  if (!flow.seeking.has(key) || flow.partitions.get(key) !== partition) {
    flow.seeking.delete(key);
    return undefined;
  }

  partition.revoke();
  flow.scheduler.block(partition.queue);
  // Paused in Kafka until the new owner object exists: records fetched after the seek and
  // handed over before it would be dropped, and lost (librdkafka's position is past them).
  flow.pauseFetching(tp, true);
  flow.releaseFetch();
  await drainPartitions([partition], flow.graceMs);
  if (!flow.seeking.has(key)) return undefined; // revoked while it drained: the revoke committed
  flow.tracker.revoke(tp);
  flow.scheduler.removePartition(partition.queue);
  const done = partition.offsets.committable();
  const previous = done >= 0 ? done : await source.groupOffset(tp, KAFKA_CALL_TIMEOUT_MS);
  const { logger } = flow;
  // Records fetched and not started were dropped: whatever happens, the fetch position must move
  // to a committed one, or the next owner would skip them.
  const committed = await flow.committer.commitExactly([{ ...tp, offset: target }]);
  // Revoked meanwhile: the next owner starts from what is committed.
  if (!flow.seeking.has(key)) return undefined;
  const position = committed ? target : (previous ?? target);
  try {
    // Seeking a paused partition moves the position it resumes from (measured on librdkafka 2.x).
    await source.seek(tp, position, KAFKA_CALL_TIMEOUT_MS);
  } catch (error) {
    // Left paused and unowned: the next assignment starts it at its committed offset.
    flow.partitions.delete(key);
    flow.seeking.delete(key);
    logger.error({ err: errorMessage(error), ...tp }, 'seek failed; the partition stays paused until the next rebalance');
    throw error;
  }
  await source.nextPoll();
  if (!flow.seeking.delete(key) || flow.partitions.get(key) !== partition) return undefined;
  flow.partitions.delete(key);
  const owned = flow.own(tp);
  // A new partition object starts unpaused: Kafka follows unless it brought pause reasons along.
  if (owned && owned.pauseReasons.size === 0) flow.pauseFetching(tp, false);
  flow.scheduler.dispatch();
  if (!committed) throw new Error(`the commit of ${tp.topic}-${tp.partition}@${target} failed; the partition is back at ${position}`);
  logger.info({ ...tp, previous, now: target }, 'seek by operator');
  return { previous, now: target };
}
