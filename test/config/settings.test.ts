import { describe, expect, it } from 'vitest';
import { DECLARATIONS, DEFAULTS, SETTINGS } from '../../src/config/index.js';
import { BASE, load } from './helpers.js';

describe('the setting declarations', () => {
  it('declare the variables of the contract (DESIGN.md A1), which are never renamed', () => {
    const contract = [
      'COURIER_GROUP_ID',
      'COURIER_TOPICS',
      'COURIER_TARGET_URL',
      'COURIER_ORDERING',
      'COURIER_MAX_IN_FLIGHT',
      'COURIER_MAX_ATTEMPTS',
      'COURIER_RETRY_INITIAL_MS',
      'COURIER_RETRY_MAX_MS',
      'COURIER_REQUEST_TIMEOUT_MS',
      'COURIER_DLQ_TOPIC',
      'COURIER_HOST',
      'COURIER_PORT',
      'COURIER_ADMIN_TOKEN',
      'COURIER_APP_TOKEN',
      'COURIER_SIGNING_SECRET',
      'COURIER_LOG_LEVEL',
    ];
    expect(DECLARATIONS.map((setting) => setting.env)).toEqual(expect.arrayContaining(contract));
  });

  it('name each variable and each file key once', () => {
    expect(new Set(DECLARATIONS.map((setting) => setting.env)).size).toBe(DECLARATIONS.length);
    expect(new Set(DECLARATIONS.map((setting) => setting.key)).size).toBe(DECLARATIONS.length);
  });

  it.each(DECLARATIONS.filter((setting) => setting.default !== undefined).map((setting) => [setting.env, setting] as const))(
    'give %s a default its own kind accepts',
    (_, setting) => {
      const raw = Array.isArray(setting.default) ? setting.default.join(',') : setting.default;
      expect(setting.kind.parse(raw, setting.key)).toEqual({ value: setting.default });
    },
  );

  it('give DEFAULTS from the declarations', () => {
    expect(DEFAULTS).toMatchObject({ port: 8080, maxAttempts: 8, commitEvery: 1000, dlqTopic: '{topic}.dlq', ordering: 'partition' });
    expect(Object.keys(DEFAULTS)).toEqual(SETTINGS.filter((setting) => 'default' in setting).map((setting) => setting.key));
  });

  it('put every value where it is declared to land: a Config field of the same name, limits, or the routes', () => {
    const config = load(BASE) as unknown as Record<string, unknown> & { limits: object; routes: object[] };
    for (const setting of DECLARATIONS) {
      if (setting.perRoute) expect(config.routes[0], setting.key).toHaveProperty(setting.key);
      else if (setting.lands === 'limits') expect(config.limits, setting.key).toHaveProperty(setting.key);
      else if (setting.lands === undefined) expect(Object.keys(config), setting.key).toContain(setting.key);
    }
    expect(config).not.toHaveProperty('commitEveryRecords');
  });
});
