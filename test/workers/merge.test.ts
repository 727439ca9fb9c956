import { describe, expect, it } from 'vitest';
import type { PartitionStatus, RouteStatus } from '../../src/api/schemas.js';
import { MERGED_REBALANCE_EVENTS, mergeAssignment, mergeLag, mergePause, mergeReasons, mergeRebalances, mergeRoutes } from '../../src/workers/merge.js';

const lagOf = (partition: number, lag: number) => ({
  topic: 'orders',
  partition,
  committedOffset: 10,
  highWatermark: 10 + lag,
  lag,
  lagSeconds: 0,
  oldestUnackedAgeMs: null,
});

const route = (overrides: Partial<RouteStatus> = {}): RouteStatus => ({
  topic: 'orders',
  url: 'http://app/orders',
  state: 'ok',
  concurrencyLimit: 128,
  pushing: 3,
  started: 5,
  since: null,
  status: null,
  location: null,
  ...overrides,
});

const partition = (topic: string, n: number): PartitionStatus => ({
  topic,
  partition: n,
  state: 'active',
  inFlight: 0,
  queued: 0,
  oldestInFlightMs: null,
  pausedReason: null,
  pausedReasons: [],
});

describe('mergeLag', () => {
  it("adds the workers' partitions and lag, and is as fresh as its stalest part", () => {
    const merged = mergeLag([
      { partitions: [lagOf(2, 5)], totalLag: 5, refreshedAt: '2026-11-30T10:00:05.000Z' },
      { partitions: [lagOf(0, 1), lagOf(1, 2)], totalLag: 3, refreshedAt: '2026-11-30T10:00:01.000Z' },
    ]);
    expect(merged.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);
    expect(merged.totalLag).toBe(8);
    expect(merged.refreshedAt).toBe('2026-11-30T10:00:01.000Z');
  });

  it('has no refresh time while one worker has none, nor without workers', () => {
    expect(
      mergeLag([
        { partitions: [], totalLag: 0, refreshedAt: null },
        { partitions: [], totalLag: 0, refreshedAt: '2026-11-30T10:00:00.000Z' },
      ]).refreshedAt,
    ).toBeNull();
    expect(mergeLag([])).toEqual({ partitions: [], totalLag: 0, refreshedAt: null });
  });
});

describe('mergeAssignment', () => {
  it('lists every worker’s partitions in topic and partition order', () => {
    const merged = mergeAssignment([[partition('orders', 3), partition('audit', 0)], [partition('orders', 1)]]);
    expect(merged.map((p) => `${p.topic}-${p.partition}`)).toEqual(['audit-0', 'orders-1', 'orders-3']);
  });
});

describe('mergeRoutes', () => {
  it('adds up the figures of one route and shows its worst state with that worker’s details', () => {
    const merged = mergeRoutes([
      [route({ since: '2026-11-30T10:00:02.000Z' })],
      [route({ state: 'app_misrouted', concurrencyLimit: 1, pushing: 0, started: 2, since: '2026-11-30T10:00:03.000Z', status: 404 })],
    ]);
    expect(merged).toEqual([route({ state: 'app_misrouted', concurrencyLimit: 129, pushing: 3, started: 7, since: '2026-11-30T10:00:02.000Z', status: 404 })]);
  });

  it('keeps routes of different topics apart', () => {
    const merged = mergeRoutes([[route(), route({ topic: 'audit' })], [route()]]);
    expect(merged.map((r) => [r.topic, r.concurrencyLimit])).toEqual([
      ['orders', 256],
      ['audit', 128],
    ]);
  });
});

describe('mergeRebalances', () => {
  it('interleaves the events by time, keeps the newest, and adds the counts', () => {
    const at = (second: number) => `2026-11-30T10:00:${String(second).padStart(2, '0')}.000Z`;
    const merged = mergeRebalances([
      {
        events: [
          { at: at(1), type: 'assign', partitions: [] },
          { at: at(3), type: 'revoke', partitions: [] },
        ],
        counts: { assign: 1, revoke: 1, lost: 0 },
      },
      { events: [{ at: at(2), type: 'assign', partitions: [] }], counts: { assign: 4, revoke: 0, lost: 1 } },
    ]);
    expect(merged.events.map((e) => e.at)).toEqual([at(1), at(2), at(3)]);
    expect(merged.counts).toEqual({ assign: 5, revoke: 1, lost: 1 });
    const many = Array.from({ length: MERGED_REBALANCE_EVENTS + 5 }, (_, i) => ({
      at: new Date(Date.UTC(2026, 10, 30, 0, 0, i)).toISOString(),
      type: 'assign' as const,
      partitions: [],
    }));
    expect(mergeRebalances([{ events: many, counts: { assign: many.length, revoke: 0, lost: 0 } }]).events[0]?.at).toBe(many[5]?.at);
  });
});

describe('mergeReasons', () => {
  it('says each reason once', () => {
    const down = { code: 'kafka_unreachable', message: 'cannot reach localhost:9092' };
    expect(mergeReasons([[down], [down, { code: 'app_down', message: 'connection refused' }]])).toEqual([
      down,
      { code: 'app_down', message: 'connection refused' },
    ]);
  });
});

describe('mergePause', () => {
  const ref = (n: number) => ({ topic: 'orders', partition: n });
  it('reports a partition not assigned only when no worker owns it', () => {
    const merged = mergePause([
      { changed: [ref(0)], notAssigned: [ref(1), ref(5)] },
      { changed: [ref(1)], notAssigned: [ref(0), ref(5)] },
    ]);
    expect(merged).toEqual({ changed: [ref(0), ref(1)], notAssigned: [ref(5)] });
  });

  it('is null (unknown topic) when every worker says so', () => {
    expect(mergePause([null, null])).toBeNull();
    expect(mergePause([])).toBeNull();
  });
});
