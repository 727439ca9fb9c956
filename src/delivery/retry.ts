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
  // HTTP-date (IMF-fixdate and the obsolete forms Date.parse understands); must name a weekday or
  // month so that bare numbers with signs or decimals are not mistaken for dates.
  if (!/[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
