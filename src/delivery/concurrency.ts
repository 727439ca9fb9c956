/** How an answer's round trip is measured: both on one monotonic clock, in ms. */
export interface Sample {
  /** When the request went out. */
  sentAt: number;
  /** When its answer arrived. */
  now: number;
  /** The route's requests out when the answer arrived (this one included). */
  inFlight: number;
  /** Records the request carried (a batch): its round trip counts per record, since size changes it. */
  records?: number;
}

/** Latency counts as rising when a window's average exceeds this many times the long-term one. */
export const LATENCY_TOLERANCE = 2;
/** Below this baseline (ms), timing noise (event loop, GC) outweighs queueing: no latency signal. */
const LATENCY_FLOOR_MS = 1;
/**
 * Round trips are averaged over windows of at least this long and this many answers (Netflix's
 * defaults). Courier sends a poll's records in one burst, so within a burst the last answers wait
 * for Courier to write and read the earlier ones: averaged answer by answer, every burst's tail
 * looked like the app queueing and could cut the limit. A window averages whole bursts.
 */
const WINDOW_MS = 1000;
const WINDOW_MIN_ANSWERS = 10;
/** Windows averaged before the latency signal is trusted. */
const WARMUP_WINDOWS = 2;
/** The long-term average follows about the last 10 windows. */
const LONG_WEIGHT = 0.1;

interface Window {
  startedAt: number;
  answers: number;
  rttSum: number;
  maxInFlight: number;
}

/**
 * A route's adaptive concurrency limit, between 1 and `max`. Two signals shrink it, at most once
 * per round trip (answers to requests sent before the last decrease describe the same congestion):
 * - an overload answer halves it (AIMD, as TCP Reno and Netflix's concurrency-limits do);
 * - rising latency (Netflix's Gradient2): when a window's average round trip exceeds
 *   `LATENCY_TOLERANCE` × the long-term average while the route used at least half its limit, the
 *   limit falls in proportion (by the ratio, at most by half). The long-term average follows a
 *   lasting change, so an app that got slower for good is not squeezed for ever.
 * Successes grow it by one each back up to the level an overload cut it from (slow start), then by
 * one per `limit` successes (congestion avoidance). Pure arithmetic; the clock is passed in.
 */
export class AdaptiveLimit {
  private value: number;
  private threshold: number;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private windows = 0;
  private window: Window = { startedAt: 0, answers: 0, rttSum: 0, maxInFlight: 0 };
  private shortRtt = 0;
  private longRtt = 0;

  constructor(private readonly max: number) {
    this.value = max;
    this.threshold = max;
  }

  /** The limit now: a whole number in [1, max]. */
  get current(): number {
    return Math.max(1, Math.min(this.max, Math.floor(this.value)));
  }

  /** The long-term average and the last window's average round trip (ms), for tests. */
  get latency(): { longMs: number; shortMs: number } {
    return { longMs: this.longRtt, shortMs: this.shortRtt };
  }

  /** A success. Returns whether the limit fell (its latency says the app queues). */
  success(sample: Sample): boolean {
    const ratio = this.risingRatio(sample);
    if (ratio !== undefined) {
      this.value = Math.max(1, Math.min(this.value - 1, this.value * Math.max(0.5, ratio)));
      // Grow back carefully: the level it fell from is where the app queued.
      this.threshold = this.value;
      this.lastDecreaseAt = sample.now;
      return true;
    }
    this.value = Math.min(this.max, this.value < this.threshold ? this.value + 1 : this.value + 1 / this.value);
    return false;
  }

  /** An overload answer. Returns whether the limit fell. */
  overload(sample: Pick<Sample, 'sentAt' | 'now'>): boolean {
    if (sample.sentAt < this.lastDecreaseAt) return false;
    this.threshold = Math.max(1, this.value);
    this.value = Math.max(1, this.value / 2);
    this.lastDecreaseAt = sample.now;
    this.window.answers = 0;
    return true;
  }

  /** Adds the answer to the window; when that closes a window whose latency rose, the factor to cut by. */
  private risingRatio({ sentAt, now, inFlight, records = 1 }: Sample): number | undefined {
    // Sent before the last decrease: it describes the congestion already acted upon.
    if (sentAt < this.lastDecreaseAt) return undefined;
    const window = this.window;
    if (window.answers === 0) {
      window.startedAt = now;
      window.rttSum = 0;
      window.maxInFlight = 0;
    }
    window.answers++;
    window.rttSum += Math.max(0, now - sentAt) / Math.max(1, records);
    window.maxInFlight = Math.max(window.maxInFlight, inFlight);
    if (window.answers < WINDOW_MIN_ANSWERS || now - window.startedAt < WINDOW_MS) return undefined;
    const average = window.rttSum / window.answers;
    const busy = window.maxInFlight * 2 >= this.current;
    window.answers = 0;
    this.shortRtt = average;
    this.windows++;
    if (this.windows <= WARMUP_WINDOWS) {
      this.longRtt += (average - this.longRtt) / this.windows;
      return undefined;
    }
    const baseline = Math.max(this.longRtt, LATENCY_FLOOR_MS);
    this.longRtt += (average - this.longRtt) * LONG_WEIGHT;
    // An idle route's latency is the app's own business, not queueing Courier causes.
    if (!busy || average <= LATENCY_TOLERANCE * baseline) return undefined;
    return (LATENCY_TOLERANCE * baseline) / average;
  }
}

/**
 * Permits to push for one route: at most `limit()` pushes at once. A record holds a permit only
 * while its request is out; it gives it back while it waits (backoff, Retry-After), and waits for
 * one again before its next attempt, ahead of records not started yet.
 */
export class Permits {
  private active = 0;
  private readonly waiters: Array<{ grant: (granted: boolean) => void; signal: AbortSignal; onAbort: () => void }> = [];

  constructor(
    private readonly limit: () => number,
    /** A permit is free and nobody waits for it: records not started yet may start. */
    private readonly onFree: () => void,
  ) {}

  get inUse(): number {
    return this.active;
  }

  /** For a record not started yet: only when no started record waits. */
  tryAcquire(): boolean {
    if (this.waiters.length > 0 || this.active >= this.limit()) return false;
    this.active++;
    return true;
  }

  /** For a started record's next attempt; false when `signal` aborted first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.waiters.length === 0 && this.active < this.limit()) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        grant: resolve,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          resolve(false);
          this.wake();
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    this.active--;
    this.wake();
  }

  /** Hands free permits to waiting records first; tells the scheduler when some are left. */
  wake(): void {
    while (this.waiters.length > 0 && this.active < this.limit()) {
      const waiter = this.waiters.shift();
      if (!waiter) break;
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      this.active++;
      waiter.grant(true);
    }
    if (this.waiters.length === 0 && this.active < this.limit()) this.onFree();
  }
}

/**
 * A route's optional rate limit (records started per second): a token bucket that holds at most
 * one second's worth, so a quiet route cannot burst past its rate for longer than a second.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = Math.max(1, perSecond);
    this.updatedAt = now;
  }

  /** Takes a token if one is there. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token. */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }

  private refill(now: number): void {
    this.tokens = Math.min(Math.max(1, this.perSecond), this.tokens + ((now - this.updatedAt) * this.perSecond) / 1000);
    this.updatedAt = now;
  }
}
