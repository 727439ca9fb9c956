import type { DeadLetterListBody, LagReport, PartitionStatus, ReadinessReport, RebalancesReport, RedriveResultBody, SeekResultBody } from './api/schemas.js';

/** Terminal views of a running Courier's API (`courier lag`, `status`, `seek`, `dlq …`): argument parsing and formatting, no IO. */

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

/** A flag of an admin command: its name after `--`, the request field it fills, and its type. */
interface FlagSpec {
  readonly flag: string;
  readonly field: string;
  readonly type: 'text' | 'integer' | 'switch' | 'time';
}

const FILTER_FLAGS: readonly FlagSpec[] = [
  { flag: 'topic', field: 'topic', type: 'text' },
  { flag: 'dlq-topic', field: 'dlqTopic', type: 'text' },
  { flag: 'error-type', field: 'errorType', type: 'text' },
  { flag: 'http-status', field: 'httpStatus', type: 'integer' },
  { flag: 'partition', field: 'partition', type: 'integer' },
  { flag: 'from-offset', field: 'fromOffset', type: 'integer' },
  { flag: 'to-offset', field: 'toOffset', type: 'integer' },
  { flag: 'limit', field: 'limit', type: 'integer' },
];

/** The admin commands: how each is written and which API request it becomes. */
export const ADMIN_COMMANDS = {
  seek: {
    usage: 'courier seek --topic T --partition P (--offset N | --timestamp 2026-11-30T10:00:00Z) [--url U] [--json]',
    method: 'POST',
    path: '/v1/seek',
    flags: [
      { flag: 'topic', field: 'topic', type: 'text' },
      { flag: 'partition', field: 'partition', type: 'integer' },
      { flag: 'offset', field: 'offset', type: 'integer' },
      { flag: 'timestamp', field: 'timestamp', type: 'time' },
    ],
  },
  'dlq list': {
    usage: 'courier dlq list --topic T [--error-type X] [--http-status N] [--partition P] [--from-offset N] [--to-offset N] [--limit N] [--url U] [--json]',
    method: 'GET',
    path: '/v1/dlq',
    flags: FILTER_FLAGS,
  },
  'dlq redrive': {
    usage: 'courier dlq redrive --topic T [filters as for list] [--dry-run] [--rate N] [--url U] [--json]',
    method: 'POST',
    path: '/v1/dlq/redrive',
    flags: [...FILTER_FLAGS, { flag: 'dry-run', field: 'dryRun', type: 'switch' }, { flag: 'rate', field: 'ratePerSecond', type: 'integer' }],
  },
} as const satisfies Record<string, { usage: string; method: 'GET' | 'POST'; path: string; flags: readonly FlagSpec[] }>;
export type AdminCommand = keyof typeof ADMIN_COMMANDS;

/**
 * An admin command's flags as its request body (or query). `--url` and `--json` are left to the
 * caller; anything else unknown, a missing value or a non-number is an error naming the usage.
 */
export function adminRequest(command: AdminCommand, args: readonly string[]): { request: Record<string, string | number | boolean> } | { error: string } {
  const { flags, usage } = ADMIN_COMMANDS[command];
  const request: Record<string, string | number | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [name, inline] = arg.startsWith('--') ? (arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]) : [arg, undefined];
    if (name === 'json') continue;
    if (name === 'url') {
      if (inline === undefined) i++;
      continue;
    }
    const spec = (flags as readonly FlagSpec[]).find((f) => f.flag === name && arg.startsWith('--'));
    if (!spec) return { error: `unknown argument ${arg}\nusage: ${usage}` };
    if (spec.type === 'switch') {
      request[spec.field] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) return { error: `--${name} needs a value\nusage: ${usage}` };
    if (spec.type === 'integer') {
      if (!/^\d+$/.test(value)) return { error: `--${name} must be a whole number, not "${value}"` };
      request[spec.field] = Number(value);
    } else if (spec.type === 'time') {
      if (/^\d+$/.test(value)) request[spec.field] = Number(value);
      else if (Number.isNaN(Date.parse(value)))
        return { error: `--${name} must be epoch milliseconds or an ISO-8601 time such as 2026-11-30T10:00:00Z, not "${value}"` };
      else request[spec.field] = new Date(value).toISOString();
    } else request[spec.field] = value;
  }
  if (request.topic === undefined) return { error: `--topic is required\nusage: ${usage}` };
  if (command === 'seek') {
    if (request.partition === undefined) return { error: `--partition is required\nusage: ${usage}` };
    if ((request.offset === undefined) === (request.timestamp === undefined)) return { error: `give either --offset or --timestamp\nusage: ${usage}` };
  }
  return { request };
}

/** `courier dlq list`'s table. */
export function formatDeadLetters(list: DeadLetterListBody): string {
  if (list.records.length === 0) return `no matching records in ${list.dlqTopic}`;
  const rows = list.records.map((r) => [
    `${r.dlqPartition}:${r.dlqOffset}`,
    r.originalTopic === null ? '-' : `${r.originalTopic}-${r.originalPartition ?? '?'}@${r.originalOffset ?? '?'}`,
    r.errorType ?? '-',
    r.httpStatus ?? '-',
    r.attempts ?? '-',
    r.retryTier ?? '-',
    r.redriveCount,
    r.failedAt ?? '-',
    r.keyText ?? '-',
  ]);
  return `${list.dlqTopic}\n${table(['DLQ AT', 'FROM', 'ERROR', 'HTTP', 'ATTEMPTS', 'TIER', 'REDRIVEN', 'FAILED AT', 'KEY'], rows)}`;
}

export function formatRedrive(result: RedriveResultBody): string {
  const what = result.dryRun ? 'would be redriven (dry run: nothing written)' : 'redriven';
  return `matched ${result.matched}: ${result.redriven} ${what}, ${result.skipped} skipped (redriven 3 times already, or value omitted)`;
}

export function formatSeek(request: { topic?: unknown; partition?: unknown }, result: SeekResultBody): string {
  return `${String(request.topic)}-${String(request.partition)}: ${result.previous ?? 'nothing committed'} → ${result.now} (committed; delivery resumes there)`;
}
