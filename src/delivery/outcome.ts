/**
 * What one push attempt produced, and what Courier does about it (DESIGN.md A2). Pure: the table
 * that decides whether a record is acknowledged, retried, dead-lettered or held is here alone.
 */
export type AttemptResult =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly retryAfter?: string | undefined;
      /** Where a 3xx points (never followed; reported so the operator can fix the URL). */
      readonly location?: string | undefined;
      /** Non-2xx: the first APP_RESPONSE_MAX_BYTES of the answer body, for the DLQ; a batch's 2xx: its failures list. Absent when empty. */
      readonly body?: Buffer;
    }
  /** No answer within the per-attempt timeout; the request may have reached the app. */
  | { readonly kind: 'timeout' }
  /** Nothing reached the app: connection refused, DNS failure, no route, connect timeout. */
  | { readonly kind: 'unreachable'; readonly code: string }
  /** The connection died after the request was (at least partly) sent. */
  | { readonly kind: 'connection-lost'; readonly code: string };

/** How much of a non-2xx answer body a push keeps: the DLQ's `app_response` (DESIGN A2). */
export const APP_RESPONSE_MAX_BYTES = 1024;

/**
 * What an answer means (DESIGN A2, v2). Only `failure` costs the record an attempt; `overload`,
 * `misrouted`, `refused` and `down` hold it without one, because they say nothing about the record.
 */
export type Outcome =
  /** 2xx, or a status the route lists in `ackStatuses`: the offset may be committed. */
  | { readonly class: 'ack' }
  /** 429, or 503 with Retry-After: the app asks for less; wait, never an attempt, never DLQ. */
  | { readonly class: 'overload'; readonly reason: string }
  /** 408, 5xx, timeout, connection dropped after sending: an attempt; back off, then DLQ. */
  | { readonly class: 'failure'; readonly reason: string }
  /** 401/403: the app refuses Courier itself (token or signature); hold and report, never DLQ. */
  | { readonly class: 'refused'; readonly reason: string }
  /** 3xx, 404, 405, 415 while the route has had no 2xx since the answer began: a wrong URL, not a bad record. */
  | { readonly class: 'misrouted'; readonly reason: string }
  /** Any other 4xx, or a misroute status while other records of the route succeed: DLQ at once. */
  | { readonly class: 'rejected'; readonly reason: string }
  /** Nothing reached the app: hold, pause, probe; not an attempt, never a DLQ write. */
  | { readonly class: 'down'; readonly reason: string };

export type OutcomeClass = Outcome['class'];

/** What the route knows that the answer alone does not tell. */
export interface RouteView {
  /** Statuses the route counts as acknowledgements besides 2xx (e.g. 409 for idempotent handlers). */
  readonly ackStatuses: ReadonlySet<number>;
  /**
   * Whether the route has had a 2xx since this record first got a misroute answer (3xx, 404, 405,
   * 415): then the app works for others and the answer is about this record.
   */
  readonly succeededSinceMisroute: boolean;
}

const NO_ACK_STATUSES: ReadonlySet<number> = new Set();
/** A route that has seen nothing: for callers without one. */
export const FRESH_ROUTE: RouteView = Object.freeze({ ackStatuses: NO_ACK_STATUSES, succeededSinceMisroute: false });

/** Answers that mean "this URL, path, method or content type is wrong" when nothing of the route succeeds. */
export function isMisrouteStatus(status: number): boolean {
  return (status >= 300 && status < 400) || status === 404 || status === 405 || status === 415;
}

/** Socket error codes that prove the request never reached the app. */
const NOTHING_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function isUnreachableCode(code: string): boolean {
  return NOTHING_SENT.has(code);
}

export function classify(result: AttemptResult, route: RouteView = FRESH_ROUTE): Outcome {
  switch (result.kind) {
    case 'unreachable':
      return { class: 'down', reason: result.code };
    case 'timeout':
      return { class: 'failure', reason: 'timeout' };
    case 'connection-lost':
      return { class: 'failure', reason: 'connection_lost' };
    case 'response': {
      const { status } = result;
      const reason = `http_${status}`;
      if ((status >= 200 && status < 300) || route.ackStatuses.has(status)) return { class: 'ack' };
      if (status === 429 || (status === 503 && result.retryAfter !== undefined)) return { class: 'overload', reason };
      if (status === 401 || status === 403) return { class: 'refused', reason };
      if (status === 408 || status >= 500) return { class: 'failure', reason };
      // Redirects are never followed: a signed body must not leave the configured origin.
      if (isMisrouteStatus(status)) return { class: route.succeededSinceMisroute ? 'rejected' : 'misrouted', reason };
      // 1xx cannot end a request; every other 4xx is the app saying "never" for this record.
      return { class: 'rejected', reason };
    }
  }
}

/** The `result` label of `courier_delivery_attempts_total`. */
export function resultLabel(result: AttemptResult): string {
  switch (result.kind) {
    case 'response':
      return `${Math.floor(result.status / 100)}xx`;
    case 'timeout':
      return 'timeout';
    case 'unreachable':
      return 'unreachable';
    case 'connection-lost':
      return 'connection_lost';
  }
}

/** Every `result` label `resultLabel` gives (1xx never ends a request): exported at 0 from start-up. */
export const ATTEMPT_RESULTS = ['2xx', '3xx', '4xx', '5xx', 'timeout', 'connection_lost', 'unreachable'] as const;

/** Every DLQ `error_type` (and `reason` label): the app's answers, and the push limits (delivery/limits.ts). */
export const DEAD_LETTER_REASONS = ['rejected_by_app', 'retries_exhausted', 'record_too_large', 'too_many_headers', 'headers_too_large'] as const;
