import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff, decideRetry, nextDelay, overloadDelay, parseRetryAfter, shortestRetryWaits } from '../../src/delivery/retry.js';

const NOW = Date.parse('2025-01-15T12:00:00.000Z');
const policy = { initialMs: 200, maxMs: 30_000 };
const fixed = (value: number) => () => value;

describe('nextDelay: exponential backoff with full jitter', () => {
  it('stays in [0, min(max, initial·2^(attempt-1))) and equals floor(random·ceiling) (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (attempt, random, initialMs, extra) => {
          const maxMs = initialMs + extra;
          const delay = nextDelay(attempt, { initialMs, maxMs }, undefined, NOW, () => random);
          const ceiling = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(ceiling);
          expect(delay).toBe(Math.floor(random * ceiling));
        },
      ),
    );
  });

  it('doubles the ceiling per attempt until the cap', () => {
    const almostOne = fixed(0.999999);
    expect(nextDelay(1, policy, undefined, NOW, almostOne)).toBe(199);
    expect(nextDelay(2, policy, undefined, NOW, almostOne)).toBe(399);
    expect(nextDelay(3, policy, undefined, NOW, almostOne)).toBe(799);
    expect(nextDelay(8, policy, undefined, NOW, almostOne)).toBe(25_599);
    expect(nextDelay(9, policy, undefined, NOW, almostOne)).toBe(29_999);
    expect(nextDelay(1000, policy, undefined, NOW, almostOne)).toBe(29_999);
  });

  it('is 0 when random() is 0 (full jitter starts at zero)', () => {
    expect(nextDelay(5, policy, undefined, NOW, fixed(0))).toBe(0);
  });
});

describe('nextDelay with Retry-After', () => {
  it('honours delay-seconds instead of the backoff', () => {
    expect(nextDelay(1, policy, '7', NOW, fixed(0.5))).toBe(7000);
    expect(nextDelay(1, policy, ' 3 ', NOW, fixed(0.5))).toBe(3000);
    expect(nextDelay(4, policy, '0', NOW, fixed(0.5))).toBe(0);
  });

  it('honours an HTTP-date relative to the injected now', () => {
    const at = new Date(NOW + 12_000).toUTCString();
    expect(nextDelay(1, policy, at, NOW, fixed(0.5))).toBe(12_000);
  });

  it('gives 0 for an HTTP-date in the past', () => {
    const at = new Date(NOW - 60_000).toUTCString();
    expect(nextDelay(3, policy, at, NOW, fixed(0.9))).toBe(0);
  });

  it('caps Retry-After at maxMs (seconds and dates)', () => {
    expect(nextDelay(1, policy, '3600', NOW, fixed(0.5))).toBe(30_000);
    expect(nextDelay(1, policy, '99999999999999999999', NOW, fixed(0.5))).toBe(30_000);
    expect(nextDelay(1, policy, new Date(NOW + 86_400_000).toUTCString(), NOW, fixed(0.5))).toBe(30_000);
  });

  it.each(['soon', '', '-5', '1.5', '+10', '0x10', 'Someday, 99 Foo 2025 99:99:99 GMT'])('falls back to the backoff for an invalid Retry-After %j', (value) => {
    expect(nextDelay(3, policy, value, NOW, fixed(0.5))).toBe(400);
  });
});

describe('nextDelay: a Retry-After that is neither delay-seconds nor an HTTP-date is ignored (RFC 9110 §10.2.3)', () => {
  // Date.parse's legacy fallback reads these as dates in 2001–2025, i.e. in the past, so they
  // would give 0 ms (an immediate retry) instead of the backoff.
  it.each(['retry 10', 'x 1', 'Wed 5', 'abc 2025'])('%j falls back to the backoff', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
    expect(nextDelay(3, policy, value, NOW, fixed(0.5))).toBe(400);
  });
});

describe('parseRetryAfter', () => {
  it('parses delay-seconds as milliseconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
  });

  it('parses IMF-fixdate relative to now', () => {
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:00:30 GMT', NOW)).toBe(30_000);
  });

  it('parses the obsolete RFC 850 form', () => {
    expect(parseRetryAfter('Wednesday, 15-Jan-25 12:00:10 GMT', NOW)).toBe(10_000);
  });

  it('returns 0 for a date in the past and undefined for garbage', () => {
    expect(parseRetryAfter('Tue, 14 Jan 2025 12:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('later', NOW)).toBeUndefined();
    expect(parseRetryAfter('-1', NOW)).toBeUndefined();
    expect(parseRetryAfter('2.5', NOW)).toBeUndefined();
  });
});

describe('backoff: the one delay for pushes, DLQ writes, probes and reconnects', () => {
  it('without jitter is exactly min(max, initial·2^(failures−1)), never decreasing (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (failures, initialMs, extra) => {
          const policy = { initialMs, maxMs: initialMs + extra, jitter: 'none' } as const;
          const delay = backoff(failures, policy);
          expect(delay).toBe(Math.min(policy.maxMs, initialMs * 2 ** Math.min(failures - 1, 52)));
          expect(backoff(failures + 1, policy)).toBeGreaterThanOrEqual(delay);
        },
      ),
    );
  });

  it('gives the DLQ and probe sequences Courier used before (500 → 5000 ms; 100 → 2000 ms)', () => {
    const dlq = { initialMs: 500, maxMs: 5000, jitter: 'none' } as const;
    expect([1, 2, 3, 4, 5, 9].map((n) => backoff(n, dlq))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    const probe = { initialMs: 100, maxMs: 2000, jitter: 'none' } as const;
    expect([1, 2, 3, 4, 5, 6].map((n) => backoff(n, probe))).toEqual([100, 200, 400, 800, 1600, 2000]);
  });
});

describe('decideRetry: whether, how long, give up', () => {
  it('gives up exactly when the attempt that failed was the last allowed one (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), (attempt, maxAttempts) => {
        const decision = decideRetry(attempt, maxAttempts, policy, undefined, NOW, fixed(0.5));
        expect(decision.retry).toBe(attempt < maxAttempts);
        if (decision.retry) expect(decision.delayMs).toBe(nextDelay(attempt, policy, undefined, NOW, fixed(0.5)));
      }),
    );
  });

  it('honours Retry-After in the delay while attempts remain', () => {
    expect(decideRetry(1, 5, policy, '4', NOW, fixed(0.5))).toEqual({ retry: true, delayMs: 4000 });
    expect(decideRetry(5, 5, policy, '4', NOW, fixed(0.5))).toEqual({ retry: false });
  });
});

describe('backoff with equal jitter (record pushes)', () => {
  it('waits between half the ceiling and the ceiling, so n waits add up to at least half the ceilings (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (failures, random) => {
        const policy = { initialMs: 1000, maxMs: 20_000, jitter: 'equal' } as const;
        const ceiling = Math.min(20_000, 1000 * 2 ** (failures - 1));
        const delay = backoff(failures, policy, () => random);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(delay).toBeLessThanOrEqual(ceiling);
      }),
    );
  });

  it('with the default settings, 7 waits take at least 35.5 s: longer than the 30 s outage window', () => {
    const policy = { initialMs: 1000, maxMs: 20_000, jitter: 'equal' } as const;
    let floor = 0;
    for (let failures = 1; failures <= 7; failures++) floor += backoff(failures, policy, () => 0);
    expect(floor).toBe(35_500);
  });
});

describe('overloadDelay: Retry-After on 429/503, never an attempt', () => {
  it('honours Retry-After (seconds or date) up to retryAfterMaxMs, far beyond the failure backoff cap', () => {
    expect(overloadDelay('2', 1, policy, 3_600_000, NOW, fixed(0.5))).toBe(2000);
    expect(overloadDelay('600', 1, policy, 3_600_000, NOW, fixed(0.5))).toBe(600_000);
    expect(overloadDelay('7200', 1, policy, 3_600_000, NOW, fixed(0.5))).toBe(3_600_000);
    expect(overloadDelay(new Date(NOW + 90_000).toUTCString(), 1, policy, 3_600_000, NOW, fixed(0.5))).toBe(90_000);
  });

  it('backs off by the overloads in a row when there is no valid Retry-After', () => {
    expect(overloadDelay(undefined, 3, policy, 3_600_000, NOW, fixed(0.5))).toBe(backoff(3, policy, fixed(0.5)));
    expect(overloadDelay('soon', 1, policy, 3_600_000, NOW, fixed(0.5))).toBe(backoff(1, policy, fixed(0.5)));
  });
});

describe('shortestRetryWaits', () => {
  it('is the sum of the waits when random() is 0: 35.5 s with the defaults, 0 for a single attempt', () => {
    expect(shortestRetryWaits(8, 1000, 20_000)).toBe(35_500);
    expect(shortestRetryWaits(1, 1000, 20_000)).toBe(0);
    expect(shortestRetryWaits(3, 100, 1000)).toBe(150);
  });
});
