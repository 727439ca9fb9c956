/**
 * A history checker for fault scenarios, in the spirit of Jepsen's Kafka checker and Kafka's own
 * consumer system tests. It reads what was produced, what the app received and answered, the
 * group's committed offsets sampled during the run, and the DLQ topic, and reports every
 * violation of Courier's promise:
 * - lost: a produced record neither acknowledged (2xx) nor dead-lettered;
 * - premature commit: a committed offset past a record not yet acknowledged or dead-lettered;
 * - order: a record delivered before an earlier record of its partition (or key) had been;
 * - duplicates where none are allowed: a record acknowledged again although its offset was
 *   already below the committed offset when it was delivered again.
 *
 * With retry tiers (DESIGN A7) the history also has the records written to tier topics, by their
 * original source coordinates (`parked`). Parking is a hand-over, not an end: a record parked and
 * never delivered from its tier is still lost. It does let the source offset move on: a commit past
 * a record parked before it is not premature. And it trades order for progress: once parked, a
 * record's deliveries are out of the order rule (the records behind it overtake it by design);
 * its attempts before it was parked, and every record that never went through a tier, keep it.
 */

export type Ordering = 'partition' | 'key' | 'unordered';

export interface Produced {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
}

export interface Delivery {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  /** When the app received the request. */
  readonly at: number;
  /** When the app answered, and with what (undefined: never answered, e.g. the connection died). */
  readonly answeredAt?: number | undefined;
  readonly status?: number | undefined;
}

export interface CommitSample {
  readonly at: number;
  readonly offsets: ReadonlyMap<number, number>;
}

export interface DeadLetter {
  readonly partition: number;
  readonly offset: number;
}

/** A record written to a retry tier, by the coordinates of the source record it carries. */
export interface Parked {
  readonly partition: number;
  readonly offset: number;
  /** When the tier write was made (the harness reads it from the tier record's headers). */
  readonly parkedAt: number;
}

export interface History {
  readonly ordering: Ordering;
  readonly produced: readonly Produced[];
  readonly deliveries: readonly Delivery[];
  readonly commits: readonly CommitSample[];
  readonly deadLetters: readonly DeadLetter[];
  /** Records written to retry tiers, one entry per tier write; absent for runs without tiers. */
  readonly parked?: readonly Parked[];
  /** false: any duplicate acknowledgement is a violation (graceful scenarios). */
  readonly duplicatesAllowed: boolean;
}

export interface Verdict {
  readonly produced: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  /** Records that went through a retry tier (set only when the history has `parked`). */
  readonly parked?: number;
  readonly violations: string[];
}

const id = (partition: number, offset: number) => `${partition}/${offset}`;
const ok = (d: Delivery) => d.status !== undefined && d.status >= 200 && d.status < 300;

export function check(history: History): Verdict {
  const violations: string[] = [];
  const acked = new Map<string, number>(); // record → first acknowledgement time
  const ackCount = new Map<string, number>();
  for (const d of history.deliveries) {
    if (!ok(d)) continue;
    const key = id(d.partition, d.offset);
    ackCount.set(key, (ackCount.get(key) ?? 0) + 1);
    const at = d.answeredAt ?? d.at;
    if (!acked.has(key) || at < (acked.get(key) as number)) acked.set(key, at);
  }
  const dead = new Set(history.deadLetters.map((d) => id(d.partition, d.offset)));
  const deadTwice = history.deadLetters.length - dead.size;
  if (deadTwice > 0) violations.push(`${deadTwice} record(s) dead-lettered more than once`);
  // Each record's first tier write: from then on its source partition may move on without it.
  const parkedAt = new Map<string, number>();
  for (const p of history.parked ?? []) {
    const key = id(p.partition, p.offset);
    if (!parkedAt.has(key) || p.parkedAt < (parkedAt.get(key) as number)) parkedAt.set(key, p.parkedAt);
  }
  const tiers = history.parked !== undefined;

  // Lost.
  const byPartition = new Map<number, Produced[]>();
  for (const p of history.produced) {
    const key = id(p.partition, p.offset);
    if (!acked.has(key) && !dead.has(key)) {
      violations.push(`lost: ${key} (key ${p.key}) was neither acknowledged nor dead-lettered${parkedAt.has(key) ? ' (it was parked in a retry tier)' : ''}`);
    }
    const list = byPartition.get(p.partition) ?? [];
    list.push(p);
    byPartition.set(p.partition, list);
  }
  for (const list of byPartition.values()) list.sort((a, b) => a.offset - b.offset);

  // Premature commits: at sample time, everything below the committed offset must be done, or
  // (with tiers) parked in a retry tier.
  for (const sample of history.commits) {
    for (const [partition, committed] of sample.offsets) {
      for (const p of byPartition.get(partition) ?? []) {
        if (p.offset >= committed) break;
        const key = id(partition, p.offset);
        const ackedAt = acked.get(key);
        const parked = parkedAt.get(key);
        if (!dead.has(key) && (ackedAt === undefined || ackedAt > sample.at) && (parked === undefined || parked > sample.at)) {
          const what = tiers ? 'acknowledged, dead-lettered or parked in a retry tier' : 'acknowledged or dead-lettered';
          violations.push(`premature commit: offset ${committed} of partition ${partition} seen at ${sample.at}, but ${key} was not ${what} by then`);
          break;
        }
      }
    }
  }

  // Order: a delivery below the highest offset already delivered in its lane must be a redelivery.
  // A record's deliveries from the time it was first parked on are exempt (they neither break nor
  // raise its lane's order): its attempts from the source came before that, in order; what comes
  // later is its tier delivering it after the records behind it, as tiers trade order for progress.
  if (history.ordering !== 'unordered') {
    const seen = new Set<string>();
    const highest = new Map<string, number>();
    const sorted = [...history.deliveries].sort((a, b) => a.at - b.at);
    for (const d of sorted) {
      const lane = history.ordering === 'partition' ? String(d.partition) : `${d.partition}/${d.key}`;
      const key = id(d.partition, d.offset);
      const parked = parkedAt.get(key);
      if (parked !== undefined && d.at >= parked) continue;
      const max = highest.get(lane) ?? -1;
      if (d.offset < max && !seen.has(key)) violations.push(`order: ${key} first delivered after offset ${max} of lane ${lane}`);
      seen.add(key);
      highest.set(lane, Math.max(max, d.offset));
    }
  }

  // Duplicates: an acknowledged record acknowledged again.
  let duplicates = 0;
  const firstAck = new Set<string>();
  const commitsByTime = [...history.commits].sort((a, b) => a.at - b.at);
  for (const d of [...history.deliveries].filter(ok).sort((a, b) => a.at - b.at)) {
    const key = id(d.partition, d.offset);
    if (!firstAck.has(key)) {
      firstAck.add(key);
      continue;
    }
    duplicates++;
    if (!history.duplicatesAllowed) {
      violations.push(`duplicate: ${key} acknowledged again in a scenario that allows none`);
      continue;
    }
    // Allowed only at or after the committed offset known when it was delivered again.
    let committed = -1;
    for (const sample of commitsByTime) {
      if (sample.at >= d.at) break;
      committed = Math.max(committed, sample.offsets.get(d.partition) ?? -1);
    }
    if (d.offset < committed) violations.push(`duplicate below the committed offset: ${key} delivered again after offset ${committed} was committed`);
  }

  return {
    produced: history.produced.length,
    delivered: acked.size,
    duplicates,
    deadLettered: dead.size,
    ...(tiers ? { parked: parkedAt.size } : {}),
    violations,
  };
}
