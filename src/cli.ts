import type { LagReport, PartitionStatus, ReadinessReport, RebalancesReport } from './api/schemas.js';

/** Terminal views of a running Courier's API (`courier lag`, `courier status`). Pure formatting. */

export function table(headers: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  // Numbers (also written with decimals, and '-' for "none") align right.
  const isNumber = (cell: string | number | undefined) => typeof cell === 'number' || cell === '-' || /^\d+\.\d+$/.test(cell ?? '');
  const numeric = headers.map((_, column) => rows.length > 0 && rows.every((row) => isNumber(row[column])));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Seconds with one decimal; '-' for unknown or none. */
export function seconds(value: number | null): string {
  return value === null ? '-' : value.toFixed(1);
}

export function formatLag(report: LagReport): string {
  const rows = report.partitions.map(
    (p) =>
      [
        p.topic,
        p.partition,
        p.committedOffset ?? '-',
        p.highWatermark,
        p.lag,
        seconds(p.lagSeconds),
        seconds(p.oldestUnackedAgeMs === null ? null : p.oldestUnackedAgeMs / 1000),
      ] as const,
  );
  const headers = ['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH WATERMARK', 'LAG', 'LAG S', 'OLDEST UNACKED S'];
  return `${table(headers, rows)}\n\ntotal lag: ${report.totalLag}`;
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

/**
 * The API `courier lag` / `courier status` read: --url U (or --url=U), else the one a Courier started
 * with the same environment listens on. COURIER_PORT, unless it is a Kubernetes service link
 * ("tcp://…", which Courier ignores too) or 0 (a free port: only --url can find it); COURIER_HOST when
 * it names one address, loopback when it is unset or a wildcard (0.0.0.0, ::). A COURIER_CONFIG file
 * is not read: the inspecting shell need not have Courier's whole configuration.
 */
export function apiBaseUrl(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  defaultPort: number,
): { url: string } | { error: string } {
  const flag = args.findIndex((arg) => arg === '--url' || arg.startsWith('--url='));
  if (flag >= 0) {
    const url = args[flag] === '--url' ? args[flag + 1] : args[flag]?.slice('--url='.length);
    return url && !url.startsWith('--') ? { url } : { error: '--url needs a value, e.g. --url http://127.0.0.1:8080' };
  }
  const portText = env.COURIER_PORT?.trim();
  const port = !portText || portText.startsWith('tcp://') ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) return { error: `COURIER_PORT=${portText} is not a port: give --url` };
  if (port === 0) return { error: 'COURIER_PORT=0 lets Courier pick a free port: give --url (Courier logs the port as "api listening")' };
  const host = env.COURIER_HOST?.trim().replace(/^\[(.*)\]$/, '$1');
  const address = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return { url: `http://${address.includes(':') ? `[${address}]` : address}:${port}` };
}

/** `courier status`'s exit code, so that scripts can wait on it (like `kubectl wait`): 0 ready, 1 not ready. */
export function statusExitCode(view: Pick<StatusView, 'readiness'>): number {
  return view.readiness.ready ? 0 : 1;
}
