import type { KafkaRecord } from '../record.js';

/**
 * Records Courier parks in Kafka, in a retry tier or the DLQ (DESIGN A3, A7): the record's own key,
 * value and headers, then Courier's headers, always starting with `original_topic`. Reading one back
 * splits it there (the last `original_topic`, since Courier's are appended after the record's own),
 * so the app sees the original record again and a redrive writes the original headers, not the
 * failure's.
 */

/** One stay in memory or in a tier, for the `retry_history` header. */
export interface TierPassage {
  /** The tier the attempts were made in; null: the in-memory attempts after the source record was fetched. */
  readonly tier: string | null;
  readonly attempts: number;
  readonly errorType: string;
  readonly httpStatus?: number | undefined;
  readonly failedAt: string;
}

/** What Courier writes with a parked record (A3 headers, and A7's for retry tiers). */
export interface ParkingReason {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly httpStatus?: number | undefined;
  /** The app's answer body, redacted, as app-response.ts formats it; absent when there was none. */
  readonly appResponse?: string | undefined;
  /** Every attempt so far, across tiers. */
  readonly attempts: number;
  readonly failedAt: Date;
  /** The tier written to (retry) or the last tier the record was in (DLQ). */
  readonly retryTier?: string | undefined;
  /** Epoch ms the record is due again (retry tiers only). */
  readonly retryDueAt?: number | undefined;
  /** Each stay that ended in a failure, oldest first; written only once tiers are involved. */
  readonly history?: readonly TierPassage[] | undefined;
}

export const ORIGINAL_TOPIC = 'original_topic';
export const REDRIVEN_FROM = 'courier_redriven_from';
export const REDRIVE_COUNT = 'redrive_count';

/** The record's own headers, then Courier's (A3, then A7's when set). */
export function parkedHeaders(record: KafkaRecord, reason: ParkingReason, valueOmitted = false): Array<Record<string, Buffer>> {
  const headers = record.headers.map(([name, value]) => ({ [name]: value }));
  const add = (name: string, value: string) => headers.push({ [name]: Buffer.from(value, 'utf8') });
  add(ORIGINAL_TOPIC, record.topic);
  add('original_partition', String(record.partition));
  add('original_offset', String(record.offset));
  add('error_type', reason.errorType);
  add('error_message', reason.errorMessage);
  add('failed_at', reason.failedAt.toISOString());
  if (reason.httpStatus !== undefined) add('http_status', String(reason.httpStatus));
  if (reason.appResponse !== undefined) add('app_response', reason.appResponse);
  add('attempts', String(reason.attempts));
  if (reason.retryTier !== undefined) add('retry_tier', reason.retryTier);
  if (reason.retryDueAt !== undefined) add('retry_due_at', String(reason.retryDueAt));
  if (reason.history && reason.history.length > 0) add('retry_history', JSON.stringify(reason.history));
  if (valueOmitted) add('dlq_value_omitted', 'too_large');
  return headers;
}

/** A parked record read back. */
export interface ParkedRecord {
  /** The source record as the app first saw it: its coordinates, timestamp, key, value and own headers. */
  readonly original: KafkaRecord;
  /** Courier's headers by name (the last of each). */
  readonly fields: ReadonlyMap<string, string>;
  readonly attempts: number;
  readonly retryTier: string | undefined;
  /** Epoch ms; undefined when absent or unreadable (then it is due at once). */
  readonly dueAt: number | undefined;
  readonly history: readonly TierPassage[];
  /** How often the record was redriven from a DLQ already (`redrive_count` of its own headers). */
  readonly redriveCount: number;
}

/**
 * Splits a parked record. A record without Courier's headers (written to a retry topic by hand) is
 * its own original: it is delivered as it is, due at once.
 */
export function readParked(record: KafkaRecord): ParkedRecord {
  let split = -1;
  for (let i = record.headers.length - 1; i >= 0; i--) {
    if (record.headers[i]?.[0] === ORIGINAL_TOPIC) {
      split = i;
      break;
    }
  }
  const own = split < 0 ? record.headers : record.headers.slice(0, split);
  const fields = new Map<string, string>();
  if (split >= 0) for (const [name, value] of record.headers.slice(split)) fields.set(name, value.toString('utf8'));
  const partition = wholeNumber(fields.get('original_partition'));
  const offset = wholeNumber(fields.get('original_offset'));
  const topic = fields.get(ORIGINAL_TOPIC);
  const coordinates = topic && partition !== undefined && offset !== undefined ? { topic, partition, offset } : record;
  const original: KafkaRecord = {
    topic: coordinates.topic,
    partition: coordinates.partition,
    offset: coordinates.offset,
    timestamp: record.timestamp,
    key: record.key,
    value: record.value,
    headers: own,
    fetchedAt: record.fetchedAt,
  };
  return {
    original,
    fields,
    attempts: wholeNumber(fields.get('attempts')) ?? 0,
    retryTier: fields.get('retry_tier'),
    dueAt: wholeNumber(fields.get('retry_due_at')),
    history: readHistory(fields.get('retry_history')),
    redriveCount: redriveCountOf(own),
  };
}

/** The last `redrive_count` among a record's own headers; 0 without one (or an unreadable one). */
export function redriveCountOf(headers: KafkaRecord['headers']): number {
  for (let i = headers.length - 1; i >= 0; i--) {
    const header = headers[i];
    if (header?.[0] === REDRIVE_COUNT) return wholeNumber(header[1].toString('utf8')) ?? 0;
  }
  return 0;
}

/** The original's own headers for a redrive: earlier redrive headers replaced by this one's. */
export function redriveHeaders(own: KafkaRecord['headers'], from: string, count: number): Array<Record<string, Buffer>> {
  const headers = own.filter(([name]) => name !== REDRIVEN_FROM && name !== REDRIVE_COUNT).map(([name, value]) => ({ [name]: value }));
  headers.push({ [REDRIVEN_FROM]: Buffer.from(from, 'utf8') }, { [REDRIVE_COUNT]: Buffer.from(String(count), 'utf8') });
  return headers;
}

function wholeNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  return Number(text);
}

function readHistory(text: string | undefined): TierPassage[] {
  if (!text) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? (parsed.filter((entry) => typeof entry === 'object' && entry !== null) as TierPassage[]) : [];
  } catch {
    return [];
  }
}
