import type { KafkaRecord } from '../record.js';
import { sleep as realSleep } from '../time.js';
import type { DeadLetterFilter, DeadLetterReader } from './dlq-reader.js';
import { matchesFilter } from './dlq-reader.js';
import { type ParkedRecord, redriveHeaders } from './parked.js';

/**
 * DLQ redrive (DESIGN A7): dead-lettered records of a topic written back to it once the cause is
 * fixed, with `courier_redriven_from` and `redrive_count` + 1, at a bounded rate. A record redriven
 * `REDRIVE_LIMIT` times already stays where it is: a record that keeps failing must not loop.
 */

export const REDRIVE_LIMIT = 3;
export const DEFAULT_REDRIVE_LIMIT = 1000;
export const DEFAULT_REDRIVE_RATE = 100;

export interface RedriveRequest extends DeadLetterFilter {
  readonly dlqTopic: string;
  /** Matching records at most. */
  readonly limit: number;
  readonly dryRun: boolean;
  readonly ratePerSecond: number;
}

export interface RedriveCounts {
  matched: number;
  redriven: number;
  skipped: number;
}

/** Why a matching record is not written back; undefined when it is. */
export function redriveRefusal(parked: ParkedRecord): string | undefined {
  if (parked.redriveCount >= REDRIVE_LIMIT) return `redriven ${parked.redriveCount} times already`;
  // Its value is only at its source coordinates: writing it back would write a tombstone.
  if (parked.fields.has('dlq_value_omitted')) return 'its value was omitted from the DLQ (too large)';
  return undefined;
}

export interface RedriveWriter {
  write(topic: string, record: KafkaRecord, headers: Array<Record<string, Buffer>>): Promise<void>;
}

/** A redrive that stopped at a failed write: the counts say how far it got. */
export class RedriveFailed extends Error {
  constructor(
    message: string,
    readonly counts: RedriveCounts,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export async function redrive(
  reader: Pick<DeadLetterReader, 'read'>,
  writer: RedriveWriter,
  request: RedriveRequest,
  clock: { now: () => number; sleep: (ms: number) => Promise<void> } = { now: Date.now, sleep: async (ms) => void (await realSleep(ms)) },
): Promise<RedriveCounts> {
  const counts: RedriveCounts = { matched: 0, redriven: 0, skipped: 0 };
  const intervalMs = 1000 / request.ratePerSecond;
  let nextWriteAt = clock.now();
  await reader.read(request.dlqTopic, request, async ({ record, parked }) => {
    if (!matchesFilter(parked, request)) return true;
    counts.matched++;
    if (redriveRefusal(parked)) counts.skipped++;
    else if (request.dryRun) counts.redriven++;
    else {
      const wait = nextWriteAt - clock.now();
      if (wait > 0) await clock.sleep(wait);
      nextWriteAt = Math.max(nextWriteAt, clock.now() - intervalMs) + intervalMs;
      const from = `${record.topic}-${record.partition}-${record.offset}`;
      try {
        // Written now: its timestamp is the redrive's, so lag and retention see a new record.
        await writer.write(
          parked.original.topic,
          { ...parked.original, timestamp: clock.now() },
          redriveHeaders(parked.original.headers, from, parked.redriveCount + 1),
        );
      } catch (error) {
        throw new RedriveFailed(`writing ${from} back to ${parked.original.topic} failed: ${(error as Error).message}`, { ...counts }, { cause: error });
      }
      counts.redriven++;
    }
    return counts.matched < request.limit;
  });
  return counts;
}
