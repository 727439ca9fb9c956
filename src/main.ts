#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadConfig, SETTINGS } from './config.js';
import { createCourier } from './courier.js';
import { ConfigError } from './errors.js';

/** Composition root: the only file that touches `process`. */

const EXIT_CONFIG = 78; // sysexits EX_CONFIG

function help(): string {
  const width = Math.max(...SETTINGS.map(([name]) => name.length));
  return [
    'courier: Kafka → HTTP sidecar. Consumes topics, POSTs each record to your app, retries,',
    'dead-letters, and commits an offset only after the app answered 2xx or the DLQ write landed.',
    '',
    'Usage: courier [--help] [--version]',
    '',
    'Configuration (environment; COURIER_CONFIG may name a YAML/JSON file, environment wins):',
    ...SETTINGS.map(([name, , text]) => `  ${name.padEnd(width)}  ${text}`),
    `  ${'KAFKA_BOOTSTRAP_SERVERS'.padEnd(width)}  brokers (default localhost:9092)`,
    `  ${'KAFKA_*'.padEnd(width)}  any librdkafka property: KAFKA_SESSION_TIMEOUT_MS=45000 → session.timeout.ms`,
    '',
    `Exit codes: 0 stopped cleanly, ${EXIT_CONFIG} invalid configuration (every problem listed), 1 fatal error.`,
  ].join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${help()}\n`);
    return 0;
  }
  if (args.includes('--version')) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
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

  const logger = pino({ level: config.logLevel, base: { service: 'courier' }, timestamp: pino.stdTimeFunctions.isoTime });
  for (const warning of config.warnings) logger.warn(warning);

  let exitCode = 0;
  const stopping = new AbortController();
  let courier: ReturnType<typeof createCourier>;
  try {
    courier = createCourier(config, logger, new Registry(), (error) => {
      exitCode = 1;
      logger.fatal({ err: error }, 'stopping after a fatal Kafka error');
      stopping.abort();
    });
  } catch (error) {
    // librdkafka validates property names and values when a client is created.
    process.stderr.write(
      `courier: invalid configuration:\n  - KAFKA_*: ${error instanceof Error ? error.message : String(error)}. Fix: check the property against librdkafka's CONFIGURATION.md\n`,
    );
    return EXIT_CONFIG;
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    stopping.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  if (await courier.start(stopping.signal)) {
    await new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await courier.stop();
  return exitCode;
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
