import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Ordering } from '../../src/config/index.js';
import { goAgain, halves } from '../../src/delivery/batch-order.js';

const keys = (...names: Array<string | null>) => names.map((name) => (name === null ? null : Buffer.from(name)));

describe('goAgain: what a batch sends again after a per-record answer', () => {
  it.each<[Ordering, boolean[]]>([
    // records:            a      b      a      c     null    b
    ['unordered', [false, true, false, false, false, false]],
    ['partition', [false, true, true, true, true, true]],
    ['key', [false, true, false, false, false, true]],
  ])('%s mode', (ordering, expected) => {
    const mustRetry = [false, true, false, false, false, false];
    expect(goAgain(mustRetry, keys('a', 'b', 'a', 'c', null, 'b'), ordering)).toEqual(expected);
  });

  it('a null key follows nothing; nothing to retry sends nothing again', () => {
    expect(goAgain([true, false], keys(null, null), 'key')).toEqual([true, false]);
    expect(goAgain([false, false, false], keys('a', 'a', 'a'), 'partition')).toEqual([false, false, false]);
  });

  it('never lets a record go ahead of an earlier one it must follow, and resends every record that must be retried (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Ordering>('partition', 'key', 'unordered'),
        fc.array(fc.record({ key: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }), retry: fc.boolean() }), { maxLength: 30 }),
        (ordering, records) => {
          const again = goAgain(
            records.map((r) => r.retry),
            keys(...records.map((r) => r.key)),
            ordering,
          );
          records.forEach((record, i) => {
            if (record.retry) expect(again[i]).toBe(true);
            if (again[i]) return;
            // Settled now: no earlier record it must follow goes again.
            for (let j = 0; j < i; j++) {
              const follows = ordering === 'partition' || (ordering === 'key' && record.key !== null && records[j]!.key === record.key);
              if (follows) expect(again[j]).toBe(false);
            }
          });
        },
      ),
    );
  });
});

describe('halves', () => {
  it('splits n into ⌈n/2⌉ then ⌊n/2⌋, in order', () => {
    expect(halves([1, 2, 3, 4, 5])).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(halves([1, 2])).toEqual([[1], [2]]);
  });
});
