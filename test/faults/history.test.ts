import { describe, expect, it } from 'vitest';
import { check, type Delivery, type History } from './history.js';

// The checker must be able to fail: each rule is shown catching a broken history.

const produced = [0, 1, 2, 3].map((offset) => ({ partition: 0, offset, key: offset % 2 === 0 ? 'a' : 'b' }));
const delivered = (offset: number, at: number, status = 200, key = offset % 2 === 0 ? 'a' : 'b'): Delivery => ({
  partition: 0,
  offset,
  key,
  at,
  answeredAt: at + 1,
  status,
});

function history(overrides: Partial<History>): History {
  return {
    ordering: 'partition',
    produced,
    deliveries: [delivered(0, 10), delivered(1, 20), delivered(2, 30), delivered(3, 40)],
    commits: [{ at: 100, offsets: new Map([[0, 4]]) }],
    deadLetters: [],
    duplicatesAllowed: false,
    ...overrides,
  };
}

describe('history checker', () => {
  it('accepts a correct history and counts it', () => {
    expect(check(history({}))).toEqual({ produced: 4, delivered: 4, duplicates: 0, deadLettered: 0, violations: [] });
  });

  it('reports a record neither acknowledged nor dead-lettered as lost', () => {
    const verdict = check(history({ deliveries: [delivered(0, 10), delivered(1, 20, 500), delivered(2, 30), delivered(3, 40)], commits: [] }));
    expect(verdict.violations).toEqual(['lost: 0/1 (key b) was neither acknowledged nor dead-lettered']);
  });

  it('counts a dead-lettered record as done', () => {
    const verdict = check(
      history({ deliveries: [delivered(0, 10), delivered(1, 20, 400), delivered(2, 30), delivered(3, 40)], deadLetters: [{ partition: 0, offset: 1 }] }),
    );
    expect(verdict.violations).toEqual([]);
    expect(verdict.deadLettered).toBe(1);
  });

  it('reports a commit past a record acknowledged only later', () => {
    const verdict = check(history({ commits: [{ at: 25, offsets: new Map([[0, 3]]) }] }));
    expect(verdict.violations).toHaveLength(1);
    expect(verdict.violations[0]).toMatch(/^premature commit: offset 3 of partition 0.*0\/2/);
  });

  it('reports a record delivered before an earlier one of its partition', () => {
    const verdict = check(history({ deliveries: [delivered(0, 10), delivered(2, 20), delivered(1, 30), delivered(3, 40)] }));
    expect(verdict.violations).toEqual(['order: 0/1 first delivered after offset 2 of lane 0']);
  });

  it('in key mode only orders records of the same key', () => {
    const deliveries = [delivered(1, 10), delivered(0, 20), delivered(3, 30), delivered(2, 40)];
    expect(check(history({ ordering: 'key', deliveries })).violations).toEqual([]);
    expect(check(history({ ordering: 'key', deliveries: [delivered(2, 10), delivered(0, 20), delivered(1, 30), delivered(3, 40)] })).violations).toEqual([
      'order: 0/0 first delivered after offset 2 of lane 0/a',
    ]);
  });

  it('rejects duplicates where none are allowed, and allows them at or after the committed offset', () => {
    const deliveries = [delivered(0, 10), delivered(1, 20), delivered(1, 60), delivered(2, 70), delivered(3, 80)];
    const commits = [{ at: 50, offsets: new Map([[0, 1]]) }];
    expect(check(history({ deliveries, commits })).violations).toEqual(['duplicate: 0/1 acknowledged again in a scenario that allows none']);
    const allowed = check(history({ deliveries, commits, duplicatesAllowed: true }));
    expect([allowed.violations, allowed.duplicates]).toEqual([[], 1]);
  });

  it('rejects a duplicate below the committed offset even where duplicates are allowed', () => {
    const deliveries = [delivered(0, 10), delivered(1, 20), delivered(0, 60), delivered(2, 70), delivered(3, 80)];
    const verdict = check(history({ deliveries, commits: [{ at: 50, offsets: new Map([[0, 2]]) }], duplicatesAllowed: true }));
    expect(verdict.violations).toEqual(['duplicate below the committed offset: 0/0 delivered again after offset 2 was committed']);
  });
});

describe('history checker with retry tiers', () => {
  // 0/1 fails from the source at 20, is parked in a tier at 25, the source commits past it at 50
  // and its tier delivers it at 200, after the records behind it.
  const parked = (parkedAt = 25, offset = 1) => [{ partition: 0, offset, parkedAt }];
  const deliveries = [delivered(0, 10), delivered(1, 20, 500), delivered(2, 30), delivered(3, 40), delivered(1, 200)];
  const commits = [{ at: 50, offsets: new Map([[0, 4]]) }];

  it('accepts a record delivered from its tier after the records behind it, and counts it', () => {
    expect(check(history({ deliveries, commits, parked: parked() }))).toEqual({
      produced: 4,
      delivered: 4,
      duplicates: 0,
      deadLettered: 0,
      parked: 1,
      violations: [],
    });
  });

  it('reports a record parked in a tier and never delivered from it as lost', () => {
    const verdict = check(history({ deliveries: deliveries.slice(0, 4), commits, parked: parked() }));
    expect(verdict.violations).toEqual(['lost: 0/1 (key b) was neither acknowledged nor dead-lettered (it was parked in a retry tier)']);
  });

  it('counts a record dead-lettered after its tiers as done', () => {
    const verdict = check(history({ deliveries: deliveries.slice(0, 4), commits, parked: parked(), deadLetters: [{ partition: 0, offset: 1 }] }));
    expect([verdict.violations, verdict.deadLettered, verdict.parked]).toEqual([[], 1, 1]);
  });

  it('accepts a commit past a record parked before it, and reports one past a record parked only after it', () => {
    expect(check(history({ deliveries, commits, parked: parked(25) })).violations).toEqual([]);
    const late = check(history({ deliveries, commits, parked: parked(60) }));
    expect(late.violations).toEqual([
      'premature commit: offset 4 of partition 0 seen at 50, but 0/1 was not acknowledged, dead-lettered or parked in a retry tier by then',
    ]);
    // The same commit without the tier write is premature too.
    expect(check(history({ deliveries, commits })).violations).toEqual([
      'premature commit: offset 4 of partition 0 seen at 50, but 0/1 was not acknowledged or dead-lettered by then',
    ]);
  });

  it('exempts a record from the order rule once it is parked', () => {
    // Its attempts from the source never reached the app (a connection lost before the request
    // was read costs an attempt): the app first sees it from its tier, after the records behind it.
    const fromTier = [delivered(0, 10), delivered(2, 30), delivered(3, 40), delivered(1, 200)];
    expect(check(history({ deliveries: fromTier, commits, parked: parked() })).violations).toEqual([]);
    expect(check(history({ deliveries: fromTier, commits: [] })).violations).toEqual(['order: 0/1 first delivered after offset 3 of lane 0']);
  });

  it('keeps the order rule for the records that never went through a tier, and for a parked record before it was parked', () => {
    const overtaken = [delivered(0, 10), delivered(1, 20, 500), delivered(3, 30), delivered(2, 40), delivered(1, 200)];
    expect(check(history({ deliveries: overtaken, commits: [], parked: parked() })).violations).toEqual([
      'order: 0/2 first delivered after offset 3 of lane 0',
    ]);
    // 0/2's first attempt from the source came before 0/1's: that is an order violation, tier or not.
    const early = [delivered(0, 10), delivered(2, 15, 500), delivered(1, 20), delivered(3, 40), delivered(2, 200)];
    expect(check(history({ deliveries: early, commits: [], parked: parked(25, 2) })).violations).toEqual([
      'order: 0/1 first delivered after offset 2 of lane 0',
    ]);
  });

  it('keeps the duplicate rule for a record acknowledged twice from its tier', () => {
    const twice = [...deliveries, delivered(1, 300)];
    expect(check(history({ deliveries: twice, commits, parked: parked() })).violations).toEqual([
      'duplicate: 0/1 acknowledged again in a scenario that allows none',
    ]);
    // The source's committed offset passed the record when it was parked: any second acknowledgement
    // of it is below it (the tier partition's own commits are not in the history).
    const allowed = check(history({ deliveries: twice, commits, parked: parked(), duplicatesAllowed: true }));
    expect(allowed.violations).toEqual(['duplicate below the committed offset: 0/1 delivered again after offset 4 was committed']);
  });
});
