/** Configuration: declarations (settings.ts), loading (load.ts), librdkafka properties (kafka.ts), docs (docs.ts). */
export { readmeSettingsTable, SETTINGS_TABLE_END, SETTINGS_TABLE_START, settingsHelp, settingsTable, withSettingsTable } from './docs.js';
export { bootstrapHint, CONSUMER_DEFAULTS, DEFAULT_BOOTSTRAP_SERVERS, KAFKA_VARIABLES, kafkaEnvToProperty, prefetchProperties } from './kafka.js';
export type { Kind, Parsed } from './kinds.js';
export { loadConfig, WORKER_COUNT_VARIABLE, WORKER_INDEX_VARIABLE } from './load.js';
export { ROUTE_KEYS, retryTopicName } from './routes.js';
export {
  CONFIG_FILE_VARIABLE,
  DECLARATIONS,
  DEFAULTS,
  LOG_LEVELS,
  type LogLevel,
  ORDERINGS,
  type Ordering,
  SETTINGS,
  type Setting,
  type SettingKey,
  type SettingValues,
} from './settings.js';
export type { Config, ConfigSources, RetryTier, RouteConfig, WorkerShare } from './types.js';
