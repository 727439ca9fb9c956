import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AimdLimit, Permits, TokenBucket } from '../../src/delivery/concurrency.js';

describe('AimdLimit', () => {
  it('halves on overload, at most once per round trip, never below 1', () => {
    const limit = new AimdLimit(256);
    expect(limit.overload(0, 10)).toBe(true);
    expect(limit.current).toBe(128);
    // Sent before the decrease: the same congestion, no second cut.
    expect(limit.overload(5, 12)).toBe(false);
    expect(limit.current).toBe(128);
    for (let t = 20; t < 400; t += 20) limit.overload(t, t + 1);
    expect(limit.current).toBe(1);
  });

  it('grows back by one per success to where it fell from, then by one per limit successes', () => {
    const limit = new AimdLimit(100);
    limit.overload(0, 1); // 100 → 50, threshold 100
    for (let i = 0; i < 50; i++) limit.success();
    expect(limit.current).toBe(100);
    const capped = new AimdLimit(100);
    capped.overload(0, 1); // 50
    capped.overload(2, 3); // 25, threshold 50
    for (let i = 0; i < 25; i++) capped.success();
    expect(capped.current).toBe(50);
    for (let i = 0; i < 49; i++) capped.success();
    expect(capped.current).toBe(50); // about one per 50 successes now
    for (let i = 0; i < 3; i++) capped.success();
    expect(capped.current).toBe(51);
  });

  it('stays a whole number in [1, max] for any sequence of answers (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.boolean(), { maxLength: 500 }), (max, answers) => {
        const limit = new AimdLimit(max);
        let now = 0;
        for (const overloaded of answers) {
          now += 1;
          if (overloaded) limit.overload(now - 1, now);
          else limit.success();
          expect(Number.isInteger(limit.current)).toBe(true);
          expect(limit.current).toBeGreaterThanOrEqual(1);
          expect(limit.current).toBeLessThanOrEqual(max);
        }
      }),
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
