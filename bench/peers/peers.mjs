// The benchmark's peers: how bench/run.mjs starts each one (command, arguments, configuration),
// once bench/peers/build.sh has built or installed it (.bench/peers/<peer>.json gives its `bin`).
// Every peer reads the bench topic from the beginning with its own group and POSTs each record to
// the app, committing an offset only after the app's 2xx (bench/README.md, "The peers").
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../lib.mjs';

/** A configuration file with its ${NAME} placeholders filled in from values (others left as they are). */
export function template(path, values) {
  return readFileSync(path, 'utf8').replace(/\$\{(\w+)\}/g, (whole, name) => values[name] ?? whole);
}

/** Fills in bench/peers/<source> and writes it as <dir>/<name>; returns its path. */
function configFile(root, dir, source, name, values) {
  const path = join(dir, name);
  writeFileSync(path, template(join(root, 'bench/peers', source), values));
  return path;
}

/** A Benthos-engine binary (Redpanda Connect, Benthos, Bento): `-c config.yaml`. */
const benthosEngine =
  (source) =>
  ({ root, dir, status, values }) => ({ command: status.bin, args: ['-c', configFile(root, dir, source, 'config.yaml', values)] });

// mq-bridge's runner: its Python API runs a route from a YAML file; warnings of the Rust core go
// to stderr through Python's logging.
const MQ_BRIDGE_MAIN = [
  'import logging, sys, mq_bridge',
  'logging.basicConfig(level=logging.WARNING)',
  'mq_bridge.init_logging("warn")',
  'mq_bridge.Route.from_file(sys.argv[1]).run()',
].join('\n');

/**
 * Each peer's start({ root, dir, status, values, sink }) → { command, args, env? }: root is the
 * repository, dir the peer's own folder of this run, status its build.sh outcome, values the
 * placeholders (BOOTSTRAP, TOPIC, GROUP, TARGET_URL, MAX_IN_FLIGHT, PARTITIONS), sink the app.
 * cleanExitCodes: exit codes that mean a clean stop on SIGTERM besides 0 (a JVM's 143).
 */
export const PEERS = {
  'redpanda-connect': { start: benthosEngine('redpanda-connect.yaml') },
  daprd: {
    async start({ root, dir, status, values, sink }) {
      const resources = join(dir, 'resources');
      mkdirSync(resources, { recursive: true });
      for (const file of ['kafka-pubsub.yaml', 'subscription.yaml']) configFile(root, resources, `daprd/${file}`, file, values);
      const [httpPort, grpcPort, internalPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      return {
        command: status.bin,
        args: [
          '--app-id',
          'courier-bench',
          '--mode',
          'standalone',
          '--app-port',
          String(sink.port),
          '--app-protocol',
          'http',
          '--app-channel-address',
          '127.0.0.1',
          '--dapr-listen-addresses',
          '127.0.0.1',
          '--dapr-http-port',
          String(httpPort),
          '--dapr-grpc-port',
          String(grpcPort),
          '--dapr-internal-grpc-port',
          String(internalPort),
          '--metrics-port',
          String(metricsPort),
          '--resources-path',
          resources,
          '--log-level',
          'warn',
        ],
      };
    },
  },
  // Benthos and Bento run the same configuration: Bento is a fork of Benthos with the same
  // kafka_franz and http_client components.
  benthos: { start: benthosEngine('benthos.yaml') },
  bento: { start: benthosEngine('benthos.yaml') },
  camel: {
    // The JVM's default settings (no heap flags): the benchmark measures Camel as it runs out of
    // the box; on a 24 GiB machine that is G1 with a heap of up to a quarter of the memory.
    start({ root, dir, status, values }) {
      const route = configFile(root, dir, 'camel/route.yaml', 'route.yaml', values);
      return {
        command: status.bin,
        args: [
          `-Dcamel.main.routesIncludePattern=file:${route}`,
          '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
          '-cp',
          `${join(root, '.bench/peers/camel/lib')}/*`,
          'org.apache.camel.main.Main',
        ],
      };
    },
    cleanExitCodes: [143],
  },
  'mq-bridge': {
    start: ({ root, dir, status, values }) => ({
      command: status.bin,
      args: ['-c', MQ_BRIDGE_MAIN, configFile(root, dir, 'mq-bridge.yaml', 'route.yaml', values)],
    }),
  },
};

/** Every peer, in the order scripts/bench.sh builds and runs them. */
export const PEER_NAMES = Object.keys(PEERS);

/** The ratio of Courier's best per-record mode to a peer: vs_<peer>, - as _ (vs_redpanda_connect). */
export const ratioKey = (peer) => `vs_${peer.replaceAll('-', '_')}`;
