import type { LagReport, PartitionStatus, ReadinessReport, RebalancesReport } from './api/schemas.js';

/** Terminal views of a running Courier's API (`courier lag`, `courier status`). Pure formatting. */

export function table(headers: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  // Numbers (and '-' for "none") align right.
  const numeric = headers.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number' || row[column] === '-'));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatLag(report: LagReport): string {
  const rows = report.partitions.map((p) => [p.topic, p.partition, p.committedOffset ?? '-', p.highWatermark, p.lag] as const);
  return `${table(['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH WATERMARK', 'LAG'], rows)}\n\ntotal lag: ${report.totalLag}`;
}

export interface StatusView {
  readonly readiness: ReadinessReport;
  readonly assignment: { partitions: PartitionStatus[] };
  readonly lag: LagReport;
  readonly rebalances: RebalancesReport;
}

export function formatStatus(view: StatusView, recent = 5): string {
  const lagOf = new Map(view.lag.partitions.map((p) => [`${p.topic}/${p.partition}`, p.lag]));
  const lines = [
    view.readiness.ready ? 'ready' : `NOT READY: ${view.readiness.reasons.map((r) => `${r.code} (${r.message})`).join('; ')}`,
    '',
    table(
      ['TOPIC', 'PARTITION', 'STATE', 'IN FLIGHT', 'OLDEST MS', 'QUEUED', 'LAG', 'PAUSED BECAUSE'],
      view.assignment.partitions.map((p) => [
        p.topic,
        p.partition,
        p.state,
        p.inFlight,
        p.oldestInFlightMs ?? '-',
        p.queued,
        lagOf.get(`${p.topic}/${p.partition}`) ?? '-',
        p.pausedReasons.join(',') || '-',
      ]),
    ),
    '',
    `rebalances: ${Object.entries(view.rebalances.counts)
      .map(([type, count]) => `${type} ${count}`)
      .join(', ')}`,
    ...view.rebalances.events
      .slice(-recent)
      .map((event) => `  ${event.at}  ${event.type.padEnd(6)}  ${event.partitions.map((tp) => `${tp.topic}-${tp.partition}`).join(' ') || '(none)'}`),
  ];
  return lines.join('\n');
}
