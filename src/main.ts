#!/usr/bin/env node
import { fork, type Serializable } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { type Logger, pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { OFFLINE_OPERATIONS } from './api/offline.js';
import { buildServer, type MetricsSource, type Operations } from './api/server.js';
import {
  ADMIN_COMMANDS,
  type AdminCommand,
  adminRequest,
  apiBaseUrl,
  formatDeadLetters,
  formatLag,
  formatRedrive,
  formatSeek,
  formatStatus,
  statusExitCode,
} from './cli.js';
import { type Config, DEFAULTS, loadConfig, settingsHelp, WORKER_COUNT_VARIABLE, WORKER_INDEX_VARIABLE } from './config/index.js';
import type { createCourier } from './courier.js';
import { ConfigError } from './errors.js';
import { runInjector } from './inject/index.js';
import { createRedactor } from './redact.js';
import { cpuLimit, defaultWorkers } from './workers/cpu-limit.js';
import { heapLimitGiven, heapMiBFor, memoryLimit } from './workers/memory-limit.js';
import { answerCalls, type Channel } from './workers/protocol.js';
import { Supervisor } from './workers/supervisor.js';

/** Composition root: the only file that touches `process`. */

const EXIT_CONFIG = 78; // sysexits EX_CONFIG

function help(): string {
  return [
    'courier: Kafka → HTTP sidecar. Consumes topics, POSTs each record to your app, retries,',
    'dead-letters, and commits an offset only after the app answered 2xx or the DLQ write landed.',
    '',
    'Usage:',
    '  courier                         run the sidecar (configured by the environment below)',
    '  courier lag [--url U] [--json]  lag per partition of a running Courier (default U: http://$COURIER_HOST:$COURIER_PORT, loopback for 0.0.0.0)',
    '  courier status [--url U] [--json]  partitions, state, lag and the last rebalances of a running Courier; exits 0 ready, 1 not ready or unreachable',
    `  ${ADMIN_COMMANDS.seek.usage}`,
    '                                  replay from a time or skip past a bad range, on the instance that owns the partition (admin: COURIER_ADMIN_TOKEN)',
    `  ${ADMIN_COMMANDS['dlq list'].usage}`,
    '                                  dead-lettered records of a topic: where from, why, attempts, tier (admin)',
    `  ${ADMIN_COMMANDS['dlq redrive'].usage}`,
    '                                  write them back to their topic once the cause is fixed; --dry-run counts only (admin)',
    '  courier openapi                 print the OpenAPI document',
    '  courier inject                  serve the sidecar-injecting admission webhook over HTTPS (COURIER_INJECT_*; docs/deploy.md)',
    '  courier --help | --version',
    '',
    'Configuration (environment; COURIER_CONFIG may name a YAML/JSON file, environment wins):',
    ...settingsHelp(),
    '',
    `Exit codes: 0 stopped cleanly, ${EXIT_CONFIG} invalid configuration (every problem listed), 1 fatal error.`,
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `courier lag` / `courier status`: read a running instance's API. */
async function inspect(command: 'lag' | 'status', args: string[]): Promise<number> {
  const target = apiBaseUrl(args, process.env, DEFAULTS.port);
  if ('error' in target) {
    process.stderr.write(`courier ${command}: ${target.error}\n`);
    return 2;
  }
  const base = target.url;
  const get = async (path: string) => {
    const response = await fetch(new URL(path, base));
    return response.json() as Promise<never>;
  };
  try {
    if (command === 'lag') {
      const lag = await get('/v1/lag');
      process.stdout.write(`${args.includes('--json') ? JSON.stringify(lag, null, 2) : formatLag(lag)}\n`);
      return 0;
    }
    const [readiness, assignment, lag, rebalances] = await Promise.all([get('/readyz'), get('/v1/assignment'), get('/v1/lag'), get('/v1/rebalances')]);
    const view = { readiness, assignment, lag, rebalances };
    process.stdout.write(`${args.includes('--json') ? JSON.stringify(view, null, 2) : formatStatus(view)}\n`);
    return statusExitCode(view);
  } catch (error) {
    process.stderr.write(`courier ${command}: cannot read ${base}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/** `courier seek` / `courier dlq list|redrive`: an admin request to a running instance. */
async function admin(command: AdminCommand, args: string[]): Promise<number> {
  const parsed = adminRequest(command, args);
  const target = apiBaseUrl(args, process.env, DEFAULTS.port);
  const problem = 'error' in parsed ? parsed.error : 'error' in target ? target.error : undefined;
  if (problem !== undefined || !('request' in parsed) || !('url' in target)) {
    process.stderr.write(`courier ${command}: ${problem}\n`);
    return 2;
  }
  const token = process.env.COURIER_ADMIN_TOKEN?.trim();
  if (!token) {
    process.stderr.write(`courier ${command}: set COURIER_ADMIN_TOKEN to the running Courier's admin token\n`);
    return 2;
  }
  const { method, path } = ADMIN_COMMANDS[command];
  const url = new URL(path, target.url);
  if (method === 'GET') for (const [name, value] of Object.entries(parsed.request)) url.searchParams.set(name, String(value));
  try {
    const response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      body: method === 'POST' ? JSON.stringify(parsed.request) : undefined,
    });
    const body = (await response.json()) as never;
    if (!response.ok) {
      const { error, message } = body as { error?: string; message?: string };
      process.stderr.write(`courier ${command}: ${response.status} ${error ?? ''}: ${message ?? JSON.stringify(body)}\n`);
      return 1;
    }
    const text = args.includes('--json')
      ? JSON.stringify(body, null, 2)
      : command === 'seek'
        ? formatSeek(parsed.request, body)
        : command === 'dlq list'
          ? formatDeadLetters(body)
          : formatRedrive(body);
    process.stdout.write(`${text}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`courier ${command}: cannot reach ${target.url}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${help()}\n`);
    return 0;
  }
  if (args[0] === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (args[0] === 'lag' || args[0] === 'status') return inspect(args[0], args.slice(1));
  if (args[0] === 'seek') return admin('seek', args.slice(1));
  if (args[0] === 'dlq') {
    const command = `dlq ${args[1] ?? ''}`;
    if (command === 'dlq list' || command === 'dlq redrive') return admin(command, args.slice(2));
    process.stderr.write(`courier dlq: say list or redrive\n  ${ADMIN_COMMANDS['dlq list'].usage}\n  ${ADMIN_COMMANDS['dlq redrive'].usage}\n`);
    return 2;
  }
  if (args[0] === 'inject') {
    const onStop = (stop: () => void) => {
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    };
    return runInjector({ env: process.env, stderr: process.stderr, onStop });
  }
  if (args[0] === 'openapi') {
    process.stdout.write(`${await openapiDocument()}\n`);
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(`courier: unknown argument ${args[0]}\n\n${help()}\n`);
    return 2;
  }

  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ env: process.env, readFile: (path) => readFileSync(path, 'utf8') });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`courier: ${error.message}\n`);
      return EXIT_CONFIG;
    }
    throw error;
  }

  const redact = createRedactor(config.secrets);
  const inWorker = config.worker !== undefined && typeof process.send === 'function';
  const logger = pino(
    { level: config.logLevel, base: { service: 'courier', ...(inWorker ? { worker: config.worker?.index } : {}) }, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (line: string) => process.stdout.write(redact(line)) },
  );
  // The supervisor has said them already.
  if (!inWorker) for (const warning of config.warnings) logger.warn(warning);

  const workers = config.worker ? 1 : (config.workers ?? defaultWorkers(cpuLimit(cgroupCpuFiles())));
  const containerMemory = memoryLimit(process.constrainedMemory?.());
  if (!inWorker && workers > 1) return supervise(config, workers, logger, containerMemory);
  warnAboutHeap(logger, containerMemory);

  let exitCode = 0;
  const stopping = new AbortController();
  const registry = new Registry();
  // Loaded here, not above: a supervisor never loads the Kafka client (librdkafka) and stays small.
  const { createCourier } = await import('./courier.js');
  let courier: ReturnType<typeof createCourier>;
  try {
    courier = createCourier(
      config,
      logger,
      registry,
      redact,
      (error) => {
        exitCode = 1;
        logger.fatal({ err: error }, 'stopping after a fatal Kafka error');
        stopping.abort();
      },
      version(),
    );
  } catch (error) {
    // librdkafka validates property names and values when a client is created.
    process.stderr.write(
      `courier: invalid configuration:\n  - KAFKA_*: ${redact(error instanceof Error ? error.message : String(error))}. Fix: check the property against librdkafka's CONFIGURATION.md\n`,
    );
    return EXIT_CONFIG;
  }

  // A worker hears a terminal's Ctrl-C (sent to the whole process group) and the supervisor's
  // SIGTERM: the second one must not cut its drain short. The supervisor kills it after the grace.
  onStopSignals(logger, () => stopping.abort(), { secondExits: !inWorker });

  let server: Awaited<ReturnType<typeof buildServer>> | undefined;
  if (inWorker) {
    // The supervisor serves the API: it asks this worker over the IPC channel. Without it, stop.
    answerCalls(ipcChannel(process), courier.operations, registry);
    process.once('disconnect', () => stopping.abort());
  } else {
    server = await serveApi(config, logger, courier.operations, registry);
    if (!server) return 1;
  }

  if (await courier.start(stopping.signal)) {
    // A signal during the last connection attempt has fired already: its listener would wait for ever.
    if (!stopping.signal.aborted) await new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await courier.stop();
  await server?.close();
  if (inWorker) process.disconnect?.();
  return exitCode;
}

/** COURIER_WORKERS > 1: start the workers (this same program, each told its share), serve one API for them, stop them on a signal. */
async function supervise(config: Config, count: number, logger: Logger, containerMemory: number | undefined): Promise<number> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const script = process.argv[1] ?? fileURLToPath(import.meta.url);
  // The workers share the container's memory: each gets half of its share as V8 heap (over a
  // NODE_OPTIONS one, meant for one process: deploy/ sets it), unless node's own flags chose.
  const heap =
    containerMemory !== undefined && !heapLimitGiven(process.execArgv, undefined) ? [`--max-old-space-size=${heapMiBFor(containerMemory, count)}`] : [];
  const supervisor = new Supervisor({
    count,
    logger,
    registry,
    spawn: (index) => {
      const child = fork(script, [], {
        env: { ...process.env, [WORKER_INDEX_VARIABLE]: String(index), [WORKER_COUNT_VARIABLE]: String(count) },
        execArgv: [...process.execArgv, ...heap],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      return {
        channel: ipcChannel(child),
        onExit: (listener) => child.once('exit', listener),
        kill: (signal) => child.kill(signal),
      };
    },
  });
  const server = await serveApi(config, logger, supervisor.operations, supervisor.metrics, { workers: count });
  if (!server) return 1;
  supervisor.start();
  await new Promise<void>((resolve) => onStopSignals(logger, resolve));
  // Each worker drains within the grace period; the margin covers its own start-up and commit.
  await supervisor.stop(config.shutdownGraceMs + 5_000);
  await server.close();
  return 0;
}

/** Builds the API and listens on COURIER_HOST:COURIER_PORT; undefined (logged) when it cannot. */
async function serveApi(config: Config, logger: Logger, operations: Operations, metrics: MetricsSource, logFields: Record<string, unknown> = {}) {
  const server = await buildServer({ operations, registry: metrics, adminToken: config.adminToken, version: version() });
  try {
    await server.listen({ host: config.host, port: config.port });
  } catch (error) {
    logger.fatal({ err: error }, `cannot listen on ${config.host}:${config.port}`);
    return undefined;
  }
  const address = server.server.address();
  logger.info({ host: config.host, port: typeof address === 'object' && address ? address.port : config.port, ...logFields }, 'api listening');
  return server;
}

function onStopSignals(logger: Logger, stop: () => void, { secondExits } = { secondExits: true }): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      if (!secondExits) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Node's IPC, in either direction, as a workers/protocol Channel. */
function ipcChannel(end: {
  connected?: boolean;
  send?: (message: Serializable, callback: (error: Error | null) => void) => boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}): Channel {
  return {
    // A message to a process that just exited is dropped: the supervisor learns of the exit and
    // fails what was waiting; a worker whose supervisor is gone stops.
    send: (message) => {
      if (end.connected) end.send?.(message as unknown as Serializable, () => undefined);
    },
    onMessage: (listener) => {
      end.on('message', listener);
    },
  };
}

/** A V8 heap allowed to outgrow the container is collected too late: the kernel kills the process first. */
function warnAboutHeap(logger: Logger, containerMemory: number | undefined): void {
  if (containerMemory === undefined || heapLimitGiven(process.execArgv, process.env.NODE_OPTIONS)) return;
  const heapLimit = getHeapStatistics().heap_size_limit;
  if (heapLimit <= containerMemory * 0.75) return;
  const mib = (bytes: number) => Math.round(bytes / (1024 * 1024));
  logger.warn(
    { heapLimitMiB: mib(heapLimit), containerMemoryMiB: mib(containerMemory) },
    `V8 may grow its heap to ${mib(heapLimit)} MiB in a container limited to ${mib(containerMemory)} MiB: ` +
      `set NODE_OPTIONS=--max-old-space-size=${heapMiBFor(containerMemory, 1)} (deploy/ sets half of its limit)`,
  );
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup files that give the container's CPU limit (v2, else v1); absent outside a container. */
function cgroupCpuFiles(): Parameters<typeof cpuLimit>[0] {
  return {
    cpuMax: readOptional('/sys/fs/cgroup/cpu.max'),
    cfsQuotaUs: readOptional('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),
    cfsPeriodUs: readOptional('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),
  };
}

/** The document the API serves, built from the route schemas (no Kafka, no listening). */
async function openapiDocument(): Promise<string> {
  const server = await buildServer({ operations: OFFLINE_OPERATIONS, registry: new Registry(), adminToken: undefined, version: version() });
  await server.ready();
  const document = JSON.stringify(server.swagger(), null, 2);
  await server.close();
  return document;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`courier: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
