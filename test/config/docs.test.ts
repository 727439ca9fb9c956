import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_FILE_VARIABLE,
  DECLARATIONS,
  KAFKA_VARIABLES,
  readmeSettingsTable,
  settingsHelp,
  settingsTable,
  withSettingsTable,
} from '../../src/config/index.js';

const README = new URL('../../README.md', import.meta.url);

describe('courier --help (configuration part)', () => {
  const lines = settingsHelp();
  const lineOf = (env: string) => lines.find((line) => line.trimStart().startsWith(`${env} `));

  it('has a line for every declared setting, with its help text', () => {
    for (const setting of DECLARATIONS) expect(lineOf(setting.env), setting.env).toContain(setting.help);
    for (const env of [CONFIG_FILE_VARIABLE.env, ...KAFKA_VARIABLES.map((variable) => variable.env)]) expect(lineOf(env), env).toBeDefined();
    expect(lines).toHaveLength(DECLARATIONS.length + 1 + KAFKA_VARIABLES.length);
  });

  it('gives the default, the accepted range and where else a setting may be written', () => {
    expect(lineOf('COURIER_MAX_ATTEMPTS')).toMatch(/\[default 8; 1–1000; also per route\]$/);
    expect(lineOf('COURIER_LOG_LEVEL')).toContain('info (default) | debug');
    expect(lineOf('COURIER_GROUP_ID')).toMatch(/\[required\]$/);
    expect(lineOf('COURIER_APP_TOKEN')).toContain('or COURIER_APP_TOKEN_FILE');
  });
});

describe('the README configuration table', () => {
  it('is the one the declarations render (regenerate: npm run readme:settings)', () => {
    const expected = settingsTable();
    const actual = readmeSettingsTable(readFileSync(README, 'utf8'));
    expect(actual, `README.md's settings table differs from the declarations; run \`npm run readme:settings\` or paste:\n\n${expected}\n`).toBe(expected);
  });

  it('has a row for every declared setting', () => {
    const rows = settingsTable().split('\n');
    for (const setting of DECLARATIONS)
      expect(
        rows.some((row) => row.startsWith(`| \`${setting.env}\` `)),
        setting.env,
      ).toBe(true);
  });

  it('is replaced between the markers only', () => {
    const readme = [
      '# Title',
      '<!-- settings:start (generated from src/config/settings.ts: npm run readme:settings) -->',
      'old',
      '<!-- settings:end -->',
      'after',
    ].join('\n');
    const updated = withSettingsTable(readme);
    expect(updated.startsWith('# Title\n')).toBe(true);
    expect(updated.endsWith('<!-- settings:end -->\nafter')).toBe(true);
    expect(readmeSettingsTable(updated)).toBe(settingsTable());
    expect(withSettingsTable(updated)).toBe(updated);
    expect(() => withSettingsTable('# no markers')).toThrow(/settings:start/);
  });
});
