import type { Answer, Receipt } from './app.js';

/** One record of an A6 batch request, as the app reads it. */
export interface BatchRecord {
  readonly id: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: string | null;
  readonly keyText?: string;
  readonly headers: Array<[string, string]>;
  readonly contentType: string;
  readonly value?: unknown;
  readonly valueBase64?: string;
  readonly tombstone?: true;
  readonly attempt: number;
}

export interface ListedFailure {
  id: string;
  status: number;
  retryAfterMs?: number;
  reason?: string;
}

export const isBatch = (receipt: Receipt): boolean => receipt.headers['courier-batch-size'] !== undefined;

export function batchRecords(receipt: Receipt): BatchRecord[] {
  return (JSON.parse(receipt.body.toString()) as { records: BatchRecord[] }).records;
}

/** The A6 answer: 200 with the failures listed (an empty body when there are none). */
export function listed(failures: ListedFailure[]): Answer {
  return failures.length === 0 ? { status: 200 } : { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failures }) };
}

/** What one record of a push (a single-record request or a batch) got from the app. */
export interface RecordReceipt {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly at: number;
  readonly answeredAt: number | undefined;
  /** undefined: no answer reached Courier (the connection died). */
  readonly status: number | undefined;
  readonly attempt: number;
}

/**
 * Every record a receipt carried, with the status that applied to it: a batch's 2xx applies to
 * every record it does not list; a listed record gets its own status; any other answer, all.
 */
export function recordReceipts(receipt: Receipt): RecordReceipt[] {
  const answered = receipt.answer && !receipt.answer.drop && receipt.answeredAt !== undefined ? receipt.answer : undefined;
  if (!isBatch(receipt)) {
    return [
      {
        partition: receipt.partition,
        offset: receipt.offset,
        key: decodeURIComponent(String(receipt.headers['kafka-key'] ?? '')),
        at: receipt.at,
        answeredAt: receipt.answeredAt,
        status: answered?.status,
        attempt: receipt.attempt,
      },
    ];
  }
  const listedStatus = new Map<string, number>();
  if (answered && answered.status >= 200 && answered.status < 300 && answered.body && answered.body.length > 0) {
    const failures = (JSON.parse(answered.body.toString()) as { failures?: ListedFailure[] }).failures ?? [];
    for (const failure of failures) listedStatus.set(failure.id, failure.status);
  }
  return batchRecords(receipt).map((record) => ({
    partition: record.partition,
    offset: Number(record.offset),
    key: record.keyText ?? '',
    at: receipt.at,
    answeredAt: receipt.answeredAt,
    status: answered === undefined ? undefined : (listedStatus.get(record.id) ?? answered.status),
    attempt: record.attempt,
  }));
}
