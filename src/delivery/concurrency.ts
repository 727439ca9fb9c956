/**
 * A route's adaptive concurrency limit (AIMD, as TCP Reno and Netflix's concurrency-limits do):
 * it halves on an overload answer (at most once per round trip: the answers of requests sent before
 * the last decrease are the same congestion), grows by one per success back up to the level it
 * fell from (slow start), then by one per `limit` successes (congestion avoidance), between 1 and
 * `max`. Pure arithmetic; the clock is passed in.
 */
export class AimdLimit {
  private value: number;
  private threshold: number;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly max: number) {
    this.value = max;
    this.threshold = max;
  }

  /** The limit now: a whole number in [1, max]. */
  get current(): number {
    return Math.max(1, Math.min(this.max, Math.floor(this.value)));
  }

  success(): void {
    this.value = Math.min(this.max, this.value < this.threshold ? this.value + 1 : this.value + 1 / this.value);
  }

  /** An overload answer to a request sent at `sentAt`; `now` is when it arrived. Returns whether the limit fell. */
  overload(sentAt: number, now: number): boolean {
    if (sentAt < this.lastDecreaseAt) return false;
    this.threshold = Math.max(1, this.value);
    this.value = Math.max(1, this.value / 2);
    this.lastDecreaseAt = now;
    return true;
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
