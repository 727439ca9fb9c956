import { expect } from 'vitest';
import { type Config, type ConfigSources, loadConfig } from '../../src/config/index.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';

export const BASE = { COURIER_GROUP_ID: 'orders-processor', COURIER_TOPICS: 'orders', COURIER_TARGET_URL: 'http://localhost:3000/events' };
/** Every per-route setting at Courier's default, spelled out: a changed default fails the tests that use it. */
export const ROUTE_DEFAULTS = {
  maxAttempts: 8,
  retryInitialMs: 1000,
  retryMaxMs: 20_000,
  requestTimeoutMs: 15_000,
  retryAfterMaxMs: 3_600_000,
  outageAfterMs: 30_000,
  defaultContentType: 'application/octet-stream',
  tombstones: 'deliver',
  delivery: 'record',
  batchMaxRecords: 100,
  batchMaxBytes: 1024 * 1024,
  batchLingerMs: 5,
  rateLimit: 0,
  ackStatuses: [],
  retryTiers: [],
  retryTopic: '{topic}.retry-{delay}',
  tiers: [],
} as const;
export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export const noFile = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

/** A readFile over the given files; any other path fails as a missing file does. */
export const reader = (files: Record<string, string>) => (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
  return text;
};

export function load(env: Record<string, string | undefined>, readFile: ConfigSources['readFile'] = noFile): Config {
  return loadConfig({ env, readFile });
}

/** The ConfigError that loading must throw. */
export function configErrorOf(env: Record<string, string | undefined>, readFile: ConfigSources['readFile'] = noFile): ConfigError {
  try {
    load(env, readFile);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.code).toBe('CONFIG_INVALID');
    for (const p of configError.problems) {
      expect(p.problem.length).toBeGreaterThan(0);
      expect(p.fix.length).toBeGreaterThan(0);
    }
    return configError;
  }
  return expect.fail('expected loadConfig to throw a ConfigError');
}

/** The problems of the ConfigError that loading must throw. */
export function problemsOf(env: Record<string, string | undefined>, readFile: ConfigSources['readFile'] = noFile): readonly ConfigProblem[] {
  return configErrorOf(env, readFile).problems;
}

export const settingsOf = (problems: readonly ConfigProblem[]) => problems.map((p) => p.setting);
