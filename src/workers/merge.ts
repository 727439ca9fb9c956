import type { LagReport, PartitionStatus, ReadinessReason, RebalanceEvent, RebalancesReport, RouteStatus } from '../api/schemas.js';

/**
 * One view of N workers (COURIER_WORKERS): each owns some partitions of the same group, so the
 * partition lists are disjoint and are concatenated; a route exists in every worker, so its figures
 * are added up and its worst state wins. Pure: the supervisor gathers, these merge.
 */

/** The events a merged history keeps, like one Courier's (the newest). */
export const MERGED_REBALANCE_EVENTS = 100;

const byPartition = (a: { topic: string; partition: number }, b: { topic: string; partition: number }) =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;

export function mergeLag(reports: readonly LagReport[]): LagReport {
  const times = reports.map((report) => report.refreshedAt).filter((at): at is string => at !== null);
  return {
    partitions: reports.flatMap((report) => report.partitions).sort(byPartition),
    totalLag: reports.reduce((sum, report) => sum + report.totalLag, 0),
    // The oldest refresh: the merged report is no fresher than its stalest part.
    refreshedAt: times.length === reports.length && times.length > 0 ? (times.sort()[0] ?? null) : null,
  };
}

export function mergeAssignment(lists: readonly PartitionStatus[][]): PartitionStatus[] {
  return lists.flat().sort(byPartition);
}

const ROUTE_STATE_WEIGHT: Record<RouteStatus['state'], number> = { ok: 0, app_failing: 1, app_misrouted: 2 };

export function mergeRoutes(lists: readonly RouteStatus[][]): RouteStatus[] {
  const merged = new Map<string, RouteStatus>();
  for (const route of lists.flat()) {
    const seen = merged.get(route.topic);
    if (!seen) {
      merged.set(route.topic, { ...route });
      continue;
    }
    const worse = ROUTE_STATE_WEIGHT[route.state] > ROUTE_STATE_WEIGHT[seen.state];
    merged.set(route.topic, {
      ...seen,
      state: worse ? route.state : seen.state,
      concurrencyLimit: seen.concurrencyLimit + route.concurrencyLimit,
      pushing: seen.pushing + route.pushing,
      started: seen.started + route.started,
      since: earliest(seen.since, route.since),
      status: worse ? route.status : (seen.status ?? route.status),
      location: worse ? route.location : (seen.location ?? route.location),
    });
  }
  return [...merged.values()];
}

export function mergeRebalances(reports: readonly RebalancesReport[]): RebalancesReport {
  const events: RebalanceEvent[] = reports.flatMap((report) => report.events).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return {
    events: events.slice(-MERGED_REBALANCE_EVENTS),
    counts: {
      assign: reports.reduce((sum, report) => sum + report.counts.assign, 0),
      revoke: reports.reduce((sum, report) => sum + report.counts.revoke, 0),
      lost: reports.reduce((sum, report) => sum + report.counts.lost, 0),
    },
  };
}

/** Every worker's reasons, each said once (two workers without a broker say the same thing). */
export function mergeReasons(lists: readonly ReadinessReason[][]): ReadinessReason[] {
  const seen = new Set<string>();
  const merged: ReadinessReason[] = [];
  for (const reason of lists.flat()) {
    const id = `${reason.code}\u0000${reason.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    merged.push(reason);
  }
  return merged;
}

/** Partitions an operator named: changed by whichever worker owns them; not assigned only if no worker does. */
export function mergePause(results: ReadonlyArray<{ changed: Ref[]; notAssigned: Ref[] } | null>): { changed: Ref[]; notAssigned: Ref[] } | null {
  const known = results.filter((result): result is { changed: Ref[]; notAssigned: Ref[] } => result !== null);
  if (known.length === 0) return null;
  const id = (ref: Ref) => `${ref.topic}\u0000${ref.partition}`;
  const missingIn = new Map<string, { ref: Ref; workers: number }>();
  for (const result of known)
    for (const ref of result.notAssigned) {
      const entry = missingIn.get(id(ref)) ?? { ref, workers: 0 };
      entry.workers++;
      missingIn.set(id(ref), entry);
    }
  const notAssigned = [...missingIn.values()].filter((entry) => entry.workers === known.length).map((entry) => entry.ref);
  return {
    changed: known.flatMap((result) => result.changed).sort(byPartition),
    notAssigned: notAssigned.sort(byPartition),
  };
}

type Ref = { topic: string; partition: number };

function earliest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}
