import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OffsetTracker, type RecordTicket } from '../../src/offsets/tracker.js';

const tp = { topic: 'orders', partition: 0 };
const other = { topic: 'orders', partition: 1 };

/** Strictly increasing offsets with gaps (compaction, transaction markers). */
const offsetsArb = fc
  .tuple(fc.integer({ min: 0, max: 1000 }), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 200 }))
  .map(([start, gaps]) => {
    const out: number[] = [];
    let next = start;
    for (const gap of gaps) {
      out.push(next);
      next += gap;
    }
    return out;
  });

/** Smallest tracked offset not done, or last + 1 when all are done. */
function expectedCommittable(tracked: readonly number[], done: ReadonlySet<number>): number {
  for (const offset of tracked) if (!done.has(offset)) return offset;
  return (tracked[tracked.length - 1] as number) + 1;
}

describe('OffsetTracker: committable offset', () => {
  it('is -1 for an unknown partition and for an assigned partition with nothing tracked', () => {
    const tracker = new OffsetTracker();
    expect(tracker.committable(tp)).toBe(-1);
    tracker.assign(tp);
    expect(tracker.committable(tp)).toBe(-1);
    expect(tracker.commitCandidates()).toEqual([]);
  });

  it('after every completion, in any order, equals the smallest incomplete offset or last+1 (property)', () => {
    fc.assert(
      fc.property(
        offsetsArb.chain((offsets) => fc.tuple(fc.constant(offsets), fc.shuffledSubarray(offsets, { minLength: offsets.length, maxLength: offsets.length }))),
        ([offsets, order]) => {
          const tracker = new OffsetTracker();
          tracker.assign(tp);
          const tickets = new Map<number, RecordTicket>();
          for (const offset of offsets) {
            const ticket = tracker.track(tp, offset);
            expect(ticket).not.toBeNull();
            tickets.set(offset, ticket as RecordTicket);
          }
          expect(tracker.committable(tp)).toBe(offsets[0]);
          const done = new Set<number>();
          for (const offset of order) {
            expect(tracker.complete(tickets.get(offset) as RecordTicket)).toBe(true);
            done.add(offset);
            const committable = tracker.committable(tp);
            expect(committable).toBe(expectedCommittable(offsets, done));
            // Never passes an incomplete record.
            for (const o of offsets) if (o < committable) expect(done.has(o)).toBe(true);
            expect(tracker.pending(tp)).toBe(offsets.length - done.size);
          }
          expect(tracker.committable(tp)).toBe((offsets[offsets.length - 1] as number) + 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays correct when tracking and completion interleave (model-based property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('track' as const), gap: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const tracker = new OffsetTracker();
        tracker.assign(tp);
        const tracked: number[] = [];
        const open: RecordTicket[] = [];
        const done = new Set<number>();
        let next = 0;
        for (const o of ops) {
          if (o.kind === 'track') {
            next += o.gap;
            const ticket = tracker.track(tp, next);
            expect(ticket?.offset).toBe(next);
            tracked.push(next);
            open.push(ticket as RecordTicket);
          } else if (open.length > 0) {
            const [ticket] = open.splice(o.pick % open.length, 1) as [RecordTicket];
            expect(tracker.complete(ticket)).toBe(true);
            expect(tracker.complete(ticket)).toBe(false);
            done.add(ticket.offset);
          }
          expect(tracker.committable(tp)).toBe(tracked.length === 0 ? -1 : expectedCommittable(tracked, done));
          // The oldest pending offset is the lowest not done, the record the committable offset waits for.
          const notDone = tracked.filter((offset) => !done.has(offset));
          expect(tracker.oldestPending(tp)).toBe(notDone.length === 0 ? -1 : Math.min(...notDone));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps partitions independent', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    tracker.assign(other);
    const a = tracker.track(tp, 10)!;
    tracker.track(other, 10);
    tracker.complete(a);
    expect(tracker.committable(tp)).toBe(11);
    expect(tracker.committable(other)).toBe(10);
  });
});

describe('OffsetTracker: track', () => {
  it('returns null for an offset at or below the last tracked one (re-fetch after a pause)', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    expect(tracker.track(tp, 5)).not.toBeNull();
    expect(tracker.track(tp, 5)).toBeNull();
    expect(tracker.track(tp, 3)).toBeNull();
    expect(tracker.track(tp, 6)).not.toBeNull();
    expect(tracker.pending(tp)).toBe(2);
  });

  it('returns null for a duplicate even after the original completed', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    tracker.complete(tracker.track(tp, 5)!);
    expect(tracker.track(tp, 5)).toBeNull();
    expect(tracker.committable(tp)).toBe(6);
  });

  it('returns null for a partition that is not assigned', () => {
    const tracker = new OffsetTracker();
    expect(tracker.track(tp, 0)).toBeNull();
  });

  it('hands out tickets carrying the current generation', () => {
    const tracker = new OffsetTracker();
    const generation = tracker.assign(tp);
    expect(tracker.track(tp, 7)).toEqual({ topic: 'orders', partition: 0, offset: 7, generation });
    expect(tracker.generationOf(tp)).toBe(generation);
  });
});

describe('OffsetTracker: generation fencing', () => {
  it('ignores a completion from before a revoke and re-assign, and returns false', () => {
    const tracker = new OffsetTracker();
    const first = tracker.assign(tp);
    const stale = tracker.track(tp, 0)!;
    tracker.revoke(tp);
    const second = tracker.assign(tp);
    expect(second).not.toBe(first);
    const fresh = tracker.track(tp, 0)!;
    expect(tracker.complete(stale)).toBe(false);
    expect(tracker.committable(tp)).toBe(0);
    expect(tracker.pending(tp)).toBe(1);
    expect(tracker.complete(fresh)).toBe(true);
    expect(tracker.committable(tp)).toBe(1);
  });

  it('ignores a completion for a revoked partition', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    const ticket = tracker.track(tp, 0)!;
    tracker.revoke(tp);
    expect(tracker.complete(ticket)).toBe(false);
    expect(tracker.isAssigned(tp)).toBe(false);
    expect(tracker.committable(tp)).toBe(-1);
  });

  it('returns false for a ticket of an offset never tracked', () => {
    const tracker = new OffsetTracker();
    const generation = tracker.assign(tp);
    tracker.track(tp, 4);
    expect(tracker.complete({ ...tp, offset: 3, generation })).toBe(false);
    expect(tracker.complete({ ...tp, offset: 5, generation })).toBe(false);
    expect(tracker.committable(tp)).toBe(4);
  });

  it('stale completions never move committable in random revoke/re-assign runs (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (completeStale, picks) => {
        const tracker = new OffsetTracker();
        tracker.assign(tp);
        const stale = [0, 1, 2, 3].map((o) => tracker.track(tp, o)!);
        tracker.revoke(tp);
        tracker.assign(tp);
        for (const o of [0, 1, 2, 3]) tracker.track(tp, o);
        for (const [i, flag] of completeStale.entries()) {
          if (!flag) continue;
          const ticket = stale[(picks[i % picks.length] as number) % stale.length] as RecordTicket;
          expect(tracker.complete(ticket)).toBe(false);
        }
        expect(tracker.committable(tp)).toBe(0);
        expect(tracker.pending(tp)).toBe(4);
      }),
    );
  });
});

describe('OffsetTracker: revoke, commitCandidates, markCommitted', () => {
  function setup() {
    const tracker = new OffsetTracker();
    const generation = tracker.assign(tp);
    const tickets = [0, 1, 2, 3, 4].map((o) => tracker.track(tp, o)!);
    tracker.complete(tickets[0]!);
    tracker.complete(tickets[1]!);
    return { tracker, generation, tickets };
  }

  it('revoke returns the committable offset when nothing was committed yet', () => {
    const { tracker } = setup();
    expect(tracker.revoke(tp)).toEqual({ topic: 'orders', partition: 0, offset: 2 });
    expect(tracker.isAssigned(tp)).toBe(false);
  });

  it('revoke returns null when committable did not move past markCommitted', () => {
    const { tracker, generation } = setup();
    tracker.markCommitted(tp, 2, generation);
    expect(tracker.revoke(tp)).toBeNull();
  });

  it('revoke returns the new offset when it moved past markCommitted', () => {
    const { tracker, generation, tickets } = setup();
    tracker.markCommitted(tp, 2, generation);
    tracker.complete(tickets[2]!);
    expect(tracker.revoke(tp)).toEqual({ topic: 'orders', partition: 0, offset: 3 });
  });

  it('revoke returns null for an assigned partition with nothing tracked, and for an unknown one', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    expect(tracker.revoke(tp)).toBeNull();
    expect(tracker.revoke(other)).toBeNull();
  });

  it('commitCandidates lists only partitions whose committable moved past the committed offset, with their generation', () => {
    const { tracker, generation } = setup();
    const g2 = tracker.assign(other);
    tracker.track(other, 100);
    expect(tracker.commitCandidates()).toEqual([
      { topic: 'orders', partition: 0, offset: 2, generation },
      { topic: 'orders', partition: 1, offset: 100, generation: g2 },
    ]);
    tracker.markCommitted(tp, 2, generation);
    tracker.markCommitted(other, 100, g2);
    expect(tracker.commitCandidates()).toEqual([]);
  });

  it('markCommitted never moves the committed offset backwards', () => {
    const { tracker, generation, tickets } = setup();
    tracker.markCommitted(tp, 2, generation);
    tracker.markCommitted(tp, 1, generation);
    expect(tracker.commitCandidates()).toEqual([]);
    tracker.complete(tickets[2]!);
    expect(tracker.commitCandidates()).toEqual([{ topic: 'orders', partition: 0, offset: 3, generation }]);
  });

  it('markCommitted with a previous generation is ignored after revoke and re-assign', () => {
    const { tracker, generation } = setup();
    const candidate = tracker.commitCandidates()[0]!;
    tracker.revoke(tp);
    const g2 = tracker.assign(tp);
    tracker.complete(tracker.track(tp, 2)!);
    tracker.markCommitted(tp, candidate.offset + 10, generation);
    expect(tracker.commitCandidates()).toEqual([{ topic: 'orders', partition: 0, offset: 3, generation: g2 }]);
    expect(tracker.revoke(tp)).toEqual({ topic: 'orders', partition: 0, offset: 3 });
  });

  it('assigned() lists the owned partitions', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    tracker.assign(other);
    tracker.revoke(tp);
    expect(tracker.assigned()).toEqual([other]);
  });
});

describe('OffsetTracker: long runs (memory compaction)', () => {
  it('100k records tracked ahead and completed in order keep committable exact', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    const window: RecordTicket[] = [];
    let next = 0;
    let last = -1;
    for (let i = 0; i < 100_000; i++) {
      const ticket = tracker.track(tp, next);
      if (!ticket) expect.fail(`track(${next}) returned null at record ${i}`);
      window.push(ticket);
      last = next;
      next += i % 3 === 0 ? 2 : 1;
      if (window.length > 50) {
        if (!tracker.complete(window.shift()!)) expect.fail(`complete returned false at record ${i}`);
        if (tracker.committable(tp) !== window[0]!.offset) expect.fail(`committable ${tracker.committable(tp)} at record ${i}, expected ${window[0]!.offset}`);
      }
    }
    while (window.length > 0) tracker.complete(window.shift()!);
    expect(tracker.committable(tp)).toBe(last + 1);
    expect(tracker.pending(tp)).toBe(0);
  });

  it('a held record keeps committable put while >1024 later records complete, then releases them all', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    const tickets = Array.from({ length: 5000 }, (_, o) => tracker.track(tp, o)!);
    // Complete 0..2999 in order except 1500: forces the prefix 0..1499 to be released.
    for (let o = 0; o < 3000; o++) if (o !== 1500) tracker.complete(tickets[o]!);
    expect(tracker.committable(tp)).toBe(1500);
    expect(tracker.pending(tp)).toBe(2001);
    // Out-of-order completions after compaction still find their records.
    expect(tracker.complete(tickets[4999]!)).toBe(true);
    expect(tracker.complete(tickets[4999]!)).toBe(false);
    expect(tracker.complete(tickets[1499]!)).toBe(false);
    tracker.complete(tickets[1500]!);
    expect(tracker.committable(tp)).toBe(3000);
    for (let o = 3000; o < 4999; o++) tracker.complete(tickets[o]!);
    expect(tracker.committable(tp)).toBe(5000);
    expect(tracker.pending(tp)).toBe(0);
  });

  it('a random run of 20k records with a wide window and random completion order stays exact', () => {
    const tracker = new OffsetTracker();
    tracker.assign(tp);
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const open: RecordTicket[] = [];
    const done = new Set<number>();
    const tracked: number[] = [];
    let low = 0; // index into tracked of the smallest not-done offset
    let next = 0;
    for (let i = 0; i < 20_000; i++) {
      const ticket = tracker.track(tp, next)!;
      tracked.push(next);
      open.push(ticket);
      next += 1 + Math.floor(rand() * 3);
      if (open.length > 3000 || rand() < 0.4) {
        const [t] = open.splice(Math.floor(rand() * open.length), 1) as [RecordTicket];
        tracker.complete(t);
        done.add(t.offset);
        while (low < tracked.length && done.has(tracked[low]!)) low++;
      }
      const expected = low < tracked.length ? tracked[low]! : tracked[tracked.length - 1]! + 1;
      if (tracker.committable(tp) !== expected) expect.fail(`committable ${tracker.committable(tp)} at step ${i}, expected ${expected}`);
    }
  });
});

describe('OffsetTracker: oldest pending offset', () => {
  it('stays exact when the released prefix is dropped, and is -1 for a partition not assigned', () => {
    const tracker = new OffsetTracker();
    expect(tracker.oldestPending(tp)).toBe(-1);
    tracker.assign(tp);
    const tickets = Array.from({ length: 3000 }, (_, o) => tracker.track(tp, o)!);
    for (let o = 0; o < 2500; o++) if (o !== 2100) tracker.complete(tickets[o]!);
    expect(tracker.oldestPending(tp)).toBe(2100);
    tracker.complete(tickets[2100]!);
    expect(tracker.oldestPending(tp)).toBe(2500);
    for (let o = 2500; o < 3000; o++) tracker.complete(tickets[o]!);
    expect(tracker.oldestPending(tp)).toBe(-1);
  });
});

describe('OffsetTracker: the highest record done above a gap', () => {
  it('after every completion, in any order, is the highest done offset above the oldest pending one, else -1 (property)', () => {
    fc.assert(
      fc.property(
        offsetsArb.chain((offsets) => fc.tuple(fc.constant(offsets), fc.shuffledSubarray(offsets, { minLength: offsets.length, maxLength: offsets.length }))),
        ([offsets, order]) => {
          const partition = new OffsetTracker().assignPartition(tp);
          const tickets = new Map(offsets.map((offset) => [offset, partition.track(offset) as RecordTicket]));
          expect(partition.highestDoneAboveGap()).toBe(-1);
          const done = new Set<number>();
          for (const offset of order) {
            partition.complete((tickets.get(offset) as RecordTicket).offset);
            done.add(offset);
            const oldestPending = offsets.find((o) => !done.has(o));
            const above = oldestPending === undefined ? [] : [...done].filter((o) => o > oldestPending);
            expect(partition.highestDoneAboveGap()).toBe(above.length > 0 ? Math.max(...above) : -1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
