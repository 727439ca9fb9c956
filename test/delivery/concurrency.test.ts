import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdaptiveLimit, Permits, TokenBucket } from '../../src/delivery/concurrency.js';

/** Answers `count` requests that each took `rttMs`, one every `everyMs`, with `inFlight` out. */
function answer(limit: AdaptiveLimit, clock: { now: number }, count: number, rttMs: number, inFlight = limit.current, everyMs = 1): number {
  let decreases = 0;
  for (let i = 0; i < count; i++) {
    clock.now += everyMs;
    if (limit.success({ sentAt: clock.now - rttMs, now: clock.now, inFlight })) decreases++;
  }
  return decreases;
}

describe('AdaptiveLimit', () => {
  it('halves on overload, at most once per round trip, never below 1', () => {
    const limit = new AdaptiveLimit(256);
    expect(limit.overload({ sentAt: 0, now: 10 })).toBe(true);
    expect(limit.current).toBe(128);
    // Sent before the decrease: the same congestion, no second cut.
    expect(limit.overload({ sentAt: 5, now: 12 })).toBe(false);
    expect(limit.current).toBe(128);
    for (let t = 20; t < 400; t += 20) limit.overload({ sentAt: t, now: t + 1 });
    expect(limit.current).toBe(1);
  });

  it('grows back by one per success to where it fell from, then by one per limit successes', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(100);
    limit.overload({ sentAt: 0, now: 1 }); // 100 → 50, threshold 100
    answer(limit, clock, 50, 5);
    expect(limit.current).toBe(100);
    const capped = new AdaptiveLimit(100);
    capped.overload({ sentAt: 0, now: 1 }); // 50
    capped.overload({ sentAt: 2, now: 3 }); // 25, threshold 50
    answer(capped, clock, 25, 5);
    expect(capped.current).toBe(50);
    answer(capped, clock, 49, 5);
    expect(capped.current).toBe(50); // about one per 50 successes now
    answer(capped, clock, 3, 5);
    expect(capped.current).toBe(51);
  });

  it('holds at a steady latency, shrinks when latency rises under load, in proportion and at most by half per window', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(64);
    expect(answer(limit, clock, 10_000, 10)).toBe(0);
    expect(limit.current).toBe(64);
    expect(limit.latency.longMs).toBeCloseTo(10);
    // The app starts queueing: 4× the usual latency, answers one per ms (windows of 1 s).
    const before = limit.current;
    let decreases = 0;
    let lowest = before;
    for (let i = 0; i < 1100; i++) {
      decreases += answer(limit, clock, 1, 40);
      lowest = Math.min(lowest, limit.current);
    }
    expect(decreases).toBe(1);
    expect(lowest).toBe(before / 2);
    const first = new AdaptiveLimit(64);
    answer(first, clock, 10_000, 10);
    // A window whose average is 100× cannot cut it by more than half.
    let cuts = 0;
    for (let i = 0; i < 1100 && cuts === 0; i++) cuts += answer(first, clock, 1, 1000);
    expect(cuts).toBe(1);
    expect(first.current).toBe(32);
  });

  it('does not shrink for latency while the route uses less than half its limit, nor for sub-millisecond noise', () => {
    const clock = { now: 0 };
    const idle = new AdaptiveLimit(64);
    answer(idle, clock, 5000, 10, 4);
    expect(answer(idle, clock, 5000, 100, 4)).toBe(0);
    expect(idle.current).toBe(64);
    const fast = new AdaptiveLimit(64);
    answer(fast, clock, 5000, 0.2);
    expect(answer(fast, clock, 5000, 1.5)).toBe(0);
    expect(fast.current).toBe(64);
  });

  it('does not shrink for bursts: the last answers of a burst waited for the first ones, which is not the app queueing', () => {
    // A poll's 80 records are sent at once every 40 ms; Courier writes and reads them one after
    // another, so the i-th answer arrives 0.5·(i + 1) ms later. Averaged answer by answer, every
    // burst's tail looked like rising latency and the limit spiralled down.
    const limit = new AdaptiveLimit(128);
    let cuts = 0;
    for (let burst = 0; burst < 500; burst++) {
      const sentAt = burst * 40;
      for (let i = 0; i < 80; i++) {
        if (limit.success({ sentAt, now: sentAt + 0.5 * (i + 1), inFlight: 80 - i })) cuts++;
      }
    }
    expect(cuts).toBe(0);
    expect(limit.current).toBe(128);
  });

  it('counts a batch round trip per record: bigger batches taking longer is not rising latency', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(64);
    for (let i = 0; i < 5000; i++) {
      clock.now += 1;
      limit.success({ sentAt: clock.now - 2, now: clock.now, inFlight: 64, records: 1 });
    }
    let cuts = 0;
    for (let i = 0; i < 5000; i++) {
      clock.now += 1;
      if (limit.success({ sentAt: clock.now - 200, now: clock.now, inFlight: 64, records: 100 })) cuts++;
    }
    expect(cuts).toBe(0);
    expect(limit.current).toBe(64);
  });

  it('follows a lasting change: an app that got slower for good gets its limit back', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(64);
    answer(limit, clock, 5000, 10);
    answer(limit, clock, 2000, 50);
    const squeezed = limit.current;
    expect(squeezed).toBeLessThan(64);
    // The long-term average catches up with 50 ms; from then on successes grow the limit again.
    answer(limit, clock, 30_000, 50);
    expect(limit.latency.longMs).toBeGreaterThan(40);
    expect(limit.current).toBeGreaterThan(squeezed);
  });

  it('stays a whole number in [1, max] for any sequence of answers (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.oneof(fc.constant<'overload'>('overload'), fc.double({ min: 0, max: 10_000, noNaN: true })), { maxLength: 500 }),
        (max, answers) => {
          const limit = new AdaptiveLimit(max);
          let now = 0;
          for (const answered of answers) {
            now += 1;
            if (answered === 'overload') limit.overload({ sentAt: now - 1, now });
            else limit.success({ sentAt: now - answered, now, inFlight: limit.current });
            expect(Number.isInteger(limit.current)).toBe(true);
            expect(limit.current).toBeGreaterThanOrEqual(1);
            expect(limit.current).toBeLessThanOrEqual(max);
          }
        },
      ),
    );
  });
});

describe('Permits', () => {
  it('never grants more than the limit; waiting records go before new ones; an abort leaves the queue', async () => {
    let limit = 2;
    let freed = 0;
    const permits = new Permits(
      () => limit,
      () => freed++,
    );
    expect(permits.tryAcquire()).toBe(true);
    expect(permits.tryAcquire()).toBe(true);
    expect(permits.tryAcquire()).toBe(false);
    const never = new AbortController();
    const gone = new AbortController();
    const first = permits.acquire(never.signal);
    const aborted = permits.acquire(gone.signal);
    gone.abort();
    expect(await aborted).toBe(false);
    permits.release();
    expect(await first).toBe(true);
    expect(permits.inUse).toBe(2);
    expect(permits.tryAcquire()).toBe(false);
    limit = 1;
    permits.release();
    expect(permits.inUse).toBe(1);
    expect(permits.tryAcquire()).toBe(false);
    const before = freed;
    permits.release();
    expect(freed).toBe(before + 1);
    expect(permits.tryAcquire()).toBe(true);
  });
});

describe('TokenBucket (a route’s rateLimit)', () => {
  it('lets at most the rate start per second after a burst of one second’s worth (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 200 }), (rate, steps) => {
        const bucket = new TokenBucket(rate, 0);
        let now = 0;
        let taken = 0;
        for (const step of steps) {
          now += step;
          while (bucket.take(now)) taken++;
        }
        expect(taken).toBeLessThanOrEqual(Math.max(1, rate) + Math.floor((now * rate) / 1000) + 1);
      }),
    );
  });

  it('says when the next token is due', () => {
    const bucket = new TokenBucket(2, 0);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.waitMs(0)).toBe(500);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
  });
});
