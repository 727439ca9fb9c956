/**
 * Delay before the next attempt: exponential backoff with full jitter, capped, and the app's
 * `Retry-After` honoured (also capped) when it sent one. Pure; `random` and `now` are injected.
 */
export interface RetryPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * @param attempt the attempt that just failed, starting at 1
 * @param retryAfter the raw `Retry-After` header of that attempt's answer, if any
 */
export function nextDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfter: string | undefined,
  now: number = Date.now(),
  random: () => number = Math.random,
): number {
  const fromHeader = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, now);
  if (fromHeader !== undefined) return Math.min(fromHeader, policy.maxMs);
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}

/** `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP-date; undefined if invalid. */
export function parseRetryAfter(value: string, now: number): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only the three HTTP-date forms (RFC 9110 §5.6.7): Date.parse alone accepts loose text such as
  // "retry 10" as a date in 2001, which would turn a malformed header into "retry now".
  if (!HTTP_DATE.some((form) => form.test(trimmed))) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

const DAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
const HTTP_DATE = [
  new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`), // IMF-fixdate
  new RegExp(`^${LONG_DAY}, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`), // obsolete RFC 850
  new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} \\d{4}$`), // obsolete asctime
];
