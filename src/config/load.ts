import { parse as parseYaml } from 'yaml';
import { shortestRetryWaits } from '../delivery/retry.js';
import { ConfigError, type ConfigProblem, errorMessage } from '../errors.js';
import { isServiceLink, kafkaProperties } from './kafka.js';
import type { Report } from './kinds.js';
import { buildRoutes } from './routes.js';
import { CONFIG_FILE_VARIABLE, DECLARATIONS, ENV, ROUTE_SETTINGS, type RouteSettings, type SettingKey, type SettingValues } from './settings.js';
import { didYouMean, unknownKeyFix } from './suggest.js';
import { kafkaTokenConfig } from './token.js';
import type { Config, ConfigSources, WorkerShare } from './types.js';

/**
 * Configuration, read once: environment first (12-factor), optional YAML/JSON file for more
 * (`COURIER_CONFIG`), environment wins. Every problem is collected and reported at once, each with
 * its fix; the result is deeply frozen. Nothing here touches `process`: main passes env and a
 * file reader in.
 */

type FileData = Record<string, unknown>;
type Env = Record<string, string | undefined>;

/** Set by the supervisor in each worker's environment (COURIER_WORKERS > 1), not by users. */
export const WORKER_INDEX_VARIABLE = 'COURIER_WORKER_INDEX';
export const WORKER_COUNT_VARIABLE = 'COURIER_WORKER_COUNT';
const ENV_NAMES: readonly string[] = [...DECLARATIONS.map((setting) => setting.env), CONFIG_FILE_VARIABLE.env];
const INTERNAL_NAMES: readonly string[] = [WORKER_INDEX_VARIABLE, WORKER_COUNT_VARIABLE];
const FILE_KEYS: readonly string[] = [...DECLARATIONS.map((setting) => setting.key), 'kafka', 'routes'];
/** Secrets may come from a mounted file instead: `<NAME>_FILE=/path` (and any KAFKA_*_FILE). */
const FILE_VARIANTS = new Set<string>(DECLARATIONS.filter((setting) => setting.secret).map((setting) => setting.env));

export function loadConfig(sources: ConfigSources): Config {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const report: Report = (setting, problem, fix) => problems.push({ setting, problem, fix });

  const env = withSecretFiles(sources, report);
  const { file, configPath } = readConfigFile(env, sources.readFile, report);
  warnAboutUnknownVariables(env, warnings);
  const { values, origins, secrets } = readSettings(env, file, configPath, report);

  if (values.retryInitialMs > values.retryMaxMs) {
    report(
      origins.retryInitialMs ?? ENV.retryInitialMs,
      `${values.retryInitialMs} is above ${ENV.retryMaxMs} (${values.retryMaxMs})`,
      'make the initial delay at most the maximum',
    );
  }
  const worker = workerShare(env);
  // Static membership: each worker is its own member of the group.
  const instanceId = worker && values.instanceId !== undefined ? `${values.instanceId}-${worker.index}` : values.instanceId;
  const kafka = kafkaProperties(
    { env, fileKafka: file.kafka, configPath, groupId: values.groupId, instanceId, bufferBytes: values.bufferBytes, readFile: sources.readFile },
    report,
    warnings,
  );
  const kafkaToken = kafkaTokenConfig(
    {
      provider: values.kafkaTokenProvider,
      file: values.kafkaTokenFile,
      env,
      properties: kafka.consumer,
      bootstrapServers: kafka.bootstrapServers,
      readFile: sources.readFile,
    },
    report,
  );
  // Courier runs what these configure (OIDC): librdkafka would refuse them or fetch tokens twice.
  for (const property of kafkaToken.taken) {
    delete kafka.consumer[property];
    delete kafka.producer[property];
  }
  const routes = buildRoutes(
    {
      fileRoutes: file.routes,
      configPath,
      topics: values.topics ?? [],
      topicsFrom: origins.topics,
      targetUrl: values.targetUrl,
      targetUrlFrom: origins.targetUrl,
      defaults: Object.fromEntries(ROUTE_SETTINGS.map((setting) => [setting.key, values[setting.key as SettingKey]])) as RouteSettings,
      dlqTopicFrom: origins.dlqTopic,
      maxPollIntervalMs: kafka.maxPollIntervalMs,
    },
    report,
  );

  for (const route of routes) {
    // Not an error (short retries can be a deliberate choice), but worth saying before an outage proves it.
    // With retry tiers the DLQ comes after every tier: their delays and their own attempts count too.
    const stays = route.tiers.length + 1;
    const floor =
      stays * shortestRetryWaits(route.maxAttempts, route.retryInitialMs, route.retryMaxMs) + route.tiers.reduce((sum, tier) => sum + tier.delayMs, 0);
    if (floor < route.outageAfterMs) {
      const waits = route.tiers.length > 0 ? `retry waits and tiers` : `${route.maxAttempts - 1} retry waits`;
      warnings.push(
        `route ${route.topic}: its ${waits} can take as little as ${floor} ms, less than the outage window ${route.outageAfterMs} ms: ` +
          `an app failing every record for longer can send healthy records to the DLQ before the route is held (raise ${ENV.maxAttempts} or ${ENV.retryInitialMs}, add ${ENV.retryTiers}, or lower ${ENV.outageAfterMs})`,
      );
    }
  }

  // The warnings go with the problems: an unknown variable is often the cause ("did you mean …").
  if (problems.length > 0) throw new ConfigError(problems, warnings);

  const { groupId, ordering, partitionBuffer, partitionBufferBytes, bufferBytes, commitIntervalMs, commitEvery, shutdownGraceMs, appHttp2, workers } = values;
  const { host, port, adminToken, appToken, logLevel, maxRecordBytes, maxHeaders, maxHeaderBytes, signingSecret } = values;
  return deepFreeze({
    groupId,
    routes: worker ? routes.map((route) => ({ ...route, rateLimit: shareOf(route.rateLimit, worker.count) })) : routes,
    ordering,
    maxInFlight: worker ? shareOf(values.maxInFlight, worker.count) : values.maxInFlight,
    workers,
    worker,
    partitionBuffer,
    partitionBufferBytes,
    bufferBytes,
    appHttp2,
    limits: { maxRecordBytes, maxHeaders, maxHeaderBytes },
    commitIntervalMs,
    commitEvery,
    shutdownGraceMs,
    host,
    port,
    adminToken,
    appToken,
    signingKeys: signingSecret ?? [],
    logLevel,
    bootstrapServers: kafka.bootstrapServers,
    consumer: kafka.consumer,
    producer: kafka.producer,
    kafkaToken: kafkaToken.token,
    runningInKubernetes: Boolean(env.KUBERNETES_SERVICE_HOST),
    instanceId,
    secrets: [...secrets, ...kafka.secrets, ...kafkaToken.secrets].filter((value) => value !== ''),
    warnings,
  });
}

/**
 * Each declared setting from the environment, else the file, through its kind; the default when
 * unset or invalid. `origins` says where each given value came from (also when it was invalid).
 */
function readSettings(env: Env, file: FileData, configPath: string | undefined, report: Report) {
  const values: Record<string, unknown> = {};
  const origins: Partial<Record<SettingKey, string>> = {};
  const secrets: string[] = [];
  for (const setting of DECLARATIONS) {
    values[setting.key] = setting.default;
    const fromEnv = env[setting.env];
    const found =
      fromEnv !== undefined && fromEnv !== ''
        ? { raw: fromEnv as unknown, from: setting.env }
        : file[setting.key] !== undefined
          ? { raw: file[setting.key], from: `${configPath}: ${setting.key}` }
          : undefined;
    if (!found) {
      if (setting.required) report(setting.env, 'is required', setting.required);
      continue;
    }
    const parsed = setting.kind.parse(found.raw, setting.key);
    if ('problem' in parsed) {
      report(found.from, parsed.problem, parsed.fix);
      origins[setting.key as SettingKey] = found.from;
    } else if (parsed.value !== undefined) {
      values[setting.key] = parsed.value;
      origins[setting.key as SettingKey] = found.from;
      if (setting.secret) secrets.push(...String(found.raw).trim().split(/\s+/));
    } else if (setting.required) {
      report(setting.env, 'is required', setting.required);
    }
  }
  // A required setting is missing only when a problem was reported, and then loadConfig throws.
  return { values: values as SettingValues, origins, secrets };
}

/** Kubernetes Secrets mounted as files: COURIER_APP_TOKEN_FILE, KAFKA_SASL_PASSWORD_FILE, … */
function withSecretFiles(sources: ConfigSources, report: Report): Env {
  const env: Env = { ...sources.env };
  for (const [name, path] of Object.entries(sources.env)) {
    if (!name.endsWith('_FILE') || path === undefined) continue;
    const base = name.slice(0, -'_FILE'.length);
    if (!FILE_VARIANTS.has(base) && !base.startsWith('KAFKA_')) continue;
    delete env[name];
    if (sources.env[base] !== undefined && sources.env[base] !== '') {
      report(name, `both ${base} and ${name} are set`, `keep one: ${name} (a mounted secret file) or ${base}`);
      continue;
    }
    try {
      env[base] = sources.readFile(path).replace(/\r?\n$/, '');
    } catch (error) {
      report(name, `cannot read ${path}: ${errorMessage(error).split('\n')[0]}`, 'mount the secret file there, or unset the variable');
    }
  }
  return env;
}

function readConfigFile(env: Env, readFile: ConfigSources['readFile'], report: Report): { file: FileData; configPath: string | undefined } {
  const configPath = env[CONFIG_FILE_VARIABLE.env]?.trim();
  if (!configPath) return { file: {}, configPath: undefined };
  let file: FileData = {};
  try {
    const parsed: unknown = parseYaml(readFile(configPath));
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        report('COURIER_CONFIG', `${configPath} does not hold a mapping of settings`, 'write the file as a YAML/JSON object, e.g. `groupId: my-service`');
      } else file = parsed as FileData;
    }
  } catch (error) {
    report(
      'COURIER_CONFIG',
      `cannot read ${configPath}: ${errorMessage(error).split('\n')[0]}`,
      'point COURIER_CONFIG at a readable YAML or JSON file, or unset it',
    );
  }
  for (const key of Object.keys(file)) {
    if (!FILE_KEYS.includes(key)) report(`${configPath}: ${key}`, 'unknown key', unknownKeyFix(key, FILE_KEYS));
  }
  return { file, configPath };
}

/** A worker's place (COURIER_WORKER_INDEX of COURIER_WORKER_COUNT), when the supervisor started this process. */
function workerShare(env: Env): WorkerShare | undefined {
  const index = Number(env[WORKER_INDEX_VARIABLE]);
  const count = Number(env[WORKER_COUNT_VARIABLE]);
  if (env[WORKER_INDEX_VARIABLE] === undefined || !Number.isInteger(index) || !Number.isInteger(count) || count < 2 || index < 0 || index >= count)
    return undefined;
  return { index, count };
}

/** A limit shared out among workers, rounded up so none is left with nothing; 0 (no limit) stays 0. */
function shareOf(limit: number, count: number): number {
  return limit === 0 ? 0 : Math.max(1, Math.ceil(limit / count));
}

function warnAboutUnknownVariables(env: Env, warnings: string[]): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('COURIER_') || ENV_NAMES.includes(name) || INTERNAL_NAMES.includes(name)) continue;
    if (isServiceLink(name)) warnings.push(`ignoring ${name}: it looks like a Kubernetes service link (set enableServiceLinks: false to drop it)`);
    else warnings.push(`ignoring unknown variable ${name}${didYouMean(name, ENV_NAMES)}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
