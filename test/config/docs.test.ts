import { describe, expect, it } from 'vitest';
import { CONFIG_FILE_VARIABLE, DECLARATIONS, KAFKA_VARIABLES, settingsHelp } from '../../src/config/index.js';

describe('courier --help (configuration part)', () => {
  const lines = settingsHelp();
  const lineOf = (env: string) => lines.find((line) => line.trimStart().startsWith(`${env} `));

  it('has a line for every declared setting, with its help text', () => {
    for (const setting of DECLARATIONS) expect(lineOf(setting.env), setting.env).toContain(setting.help);
    for (const env of [CONFIG_FILE_VARIABLE.env, ...KAFKA_VARIABLES.map((variable) => variable.env)]) expect(lineOf(env), env).toBeDefined();
    expect(lines).toHaveLength(DECLARATIONS.length + 1 + KAFKA_VARIABLES.length);
  });

  it('gives the default, the accepted range and where else a setting may be written', () => {
    expect(lineOf('COURIER_MAX_ATTEMPTS')).toMatch(/\[default 5; 1–1000; also per route\]$/);
    expect(lineOf('COURIER_LOG_LEVEL')).toContain('info (default) | debug');
    expect(lineOf('COURIER_GROUP_ID')).toMatch(/\[required\]$/);
    expect(lineOf('COURIER_APP_TOKEN')).toContain('or COURIER_APP_TOKEN_FILE');
  });
});
