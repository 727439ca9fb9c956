/**
 * Courier's one retry policy: whether to try again, how long to wait, when to give up. Every wait
 * that grows with failures (a push, a DLQ write, a probe of a down app, connecting to Kafka) takes
 * its delay from `backoff`. Pure: `random` and `now` are injected.
 */
export interface Backoff {
  /** Ceiling of the first wait. */
  readonly initialMs: number;
  /** No wait is longer. */
  readonly maxMs: number;
  /**
   * `full` (default): a uniformly random wait below the ceiling, so many records failing together
   * do not retry in lockstep. `equal`: between half the ceiling and the ceiling, so the sum of the
   * waits has a floor (record pushes: a healthy record must outlast the outage window, see
   * config defaults). `none`: exactly the ceiling (probes and reconnects, one at a time).
   */
  readonly jitter?: 'full' | 'equal' | 'none';
}

/** The wait after `failures` consecutive failures (1 = the first): ceiling min(max, initial·2^(failures−1)). */
export function backoff(failures: number, policy: Backoff, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 52);
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  if (policy.jitter === 'none') return ceiling;
  if (policy.jitter === 'equal') return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
  return Math.floor(random() * ceiling);
}

/**
 * Delay before the next attempt: the app's `Retry-After` when it sent a valid one (capped by
 * `maxMs`), else the backoff.
 * @param attempt the attempt that just failed, starting at 1
 * @param retryAfter the raw `Retry-After` header of that attempt's answer, if any
 */
export function nextDelay(
  attempt: number,
  policy: Backoff,
  retryAfter: string | undefined,
  now: number = Date.now(),
  random: () => number = Math.random,
): number {
  const fromHeader = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, now);
  if (fromHeader !== undefined) return Math.min(fromHeader, policy.maxMs);
  return backoff(attempt, policy, random);
}

/**
 * The wait after an overload answer (429; 503 with Retry-After), which is never an attempt: the
 * app's Retry-After up to `retryAfterMaxMs` (an hour by default: the app knows best how long it
 * needs), else the backoff of the overloads in a row.
 */
export function overloadDelay(
  retryAfter: string | undefined,
  overloads: number,
  policy: Backoff,
  retryAfterMaxMs: number,
  now: number = Date.now(),
  random: () => number = Math.random,
): number {
  const fromHeader = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, now);
  if (fromHeader !== undefined) return Math.min(fromHeader, retryAfterMaxMs);
  return backoff(overloads, policy, random);
}

/**
 * The shortest time a record can spend waiting between its `maxAttempts` attempts with equal
 * jitter (the push policy): if it is shorter than the outage window, an app that fails everything
 * for that long can exhaust a healthy record's attempts before the route is held.
 */
export function shortestRetryWaits(maxAttempts: number, initialMs: number, maxMs: number): number {
  let total = 0;
  for (let failures = 1; failures < maxAttempts; failures++) total += backoff(failures, { initialMs, maxMs, jitter: 'equal' }, () => 0);
  return total;
}

export type RetryDecision = { readonly retry: true; readonly delayMs: number } | { readonly retry: false };

/**
 * After a failed attempt (one that counts): retry after a delay, or give up (DLQ) once
 * `maxAttempts` attempts were made.
 */
export function decideRetry(
  attempt: number,
  maxAttempts: number,
  policy: Backoff,
  retryAfter: string | undefined,
  now: number = Date.now(),
  random: () => number = Math.random,
): RetryDecision {
  if (attempt >= maxAttempts) return { retry: false };
  return { retry: true, delayMs: nextDelay(attempt, policy, retryAfter, now, random) };
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
