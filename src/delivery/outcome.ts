/**
 * What one push attempt produced, and what Courier does about it (DESIGN.md A2). Pure: the table
 * that decides whether a record is acknowledged, retried, dead-lettered or held is here alone.
 */
export type AttemptResult =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly retryAfter?: string | undefined;
      /** Non-2xx only: the first APP_RESPONSE_MAX_BYTES of the answer body, for the DLQ; absent when empty. */
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

export type Outcome =
  /** 2xx: the offset may be committed. */
  | { readonly action: 'ack' }
  /** Transient: try again after a delay, counted as an attempt. */
  | { readonly action: 'retry'; readonly reason: string }
  /** The app rejected this record for good. */
  | { readonly action: 'dead-letter'; readonly reason: string }
  /** The app is not there: hold the record, pause, probe; not an attempt, never a DLQ write. */
  | { readonly action: 'app-down'; readonly reason: string }
  /** 401/403: the app refuses Courier itself (token or signature); hold and report, never DLQ. */
  | { readonly action: 'app-refused'; readonly reason: string };

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

export function classify(result: AttemptResult): Outcome {
  switch (result.kind) {
    case 'unreachable':
      return { action: 'app-down', reason: result.code };
    case 'timeout':
      return { action: 'retry', reason: 'timeout' };
    case 'connection-lost':
      return { action: 'retry', reason: 'connection_lost' };
    case 'response': {
      const { status } = result;
      if (status >= 200 && status < 300) return { action: 'ack' };
      if (status === 401 || status === 403) return { action: 'app-refused', reason: `http_${status}` };
      if (status === 408 || status === 429 || status >= 500) return { action: 'retry', reason: `http_${status}` };
      // 1xx cannot end a request; 3xx are not followed (a webhook URL that redirects is a
      // misconfiguration best seen in the DLQ); every other 4xx is the app saying "never".
      return { action: 'dead-letter', reason: `http_${status}` };
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
