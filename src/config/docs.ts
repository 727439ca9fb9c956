import { KAFKA_VARIABLES } from './kafka.js';
import { CONFIG_FILE_VARIABLE, DECLARATIONS, type Setting } from './settings.js';

/** `--help`, rendered from the declarations so that it does not drift. */

/** The configuration lines of `courier --help`, indented, one per variable. */
export function settingsHelp(): string[] {
  const rows: [string, string][] = [
    ...DECLARATIONS.map((setting): [string, string] => [setting.env, `${setting.help}${bracketed(helpDetails(setting))}`]),
    [CONFIG_FILE_VARIABLE.env, CONFIG_FILE_VARIABLE.help],
    ...KAFKA_VARIABLES.map((variable): [string, string] => [
      variable.env,
      `${variable.help}${bracketed(['default' in variable && `default ${variable.default}`])}`,
    ]),
  ];
  const width = Math.max(...rows.map(([env]) => env.length));
  return rows.map(([env, text]) => `  ${env.padEnd(width)}  ${text}`);
}

function unsetText(setting: Setting): string | undefined {
  return setting.required ? 'required' : setting.whenUnset;
}

/** What is in brackets after a `--help` line: default or requirement, accepted values, where else it can be set. */
function helpDetails(setting: Setting): (string | false | undefined)[] {
  const { kind } = setting;
  const values = kind.values?.map((value) => (value === setting.default ? `${value} (default)` : value)).join(' | ');
  const fallback = unsetText(setting) ?? (setting.default === undefined || values ? undefined : `default ${setting.default}`);
  return [fallback, values ?? kind.accepts, setting.perRoute && 'also per route', setting.secret && `or ${setting.env}_FILE`];
}

function bracketed(details: readonly (string | false | undefined)[]): string {
  const present = details.filter(Boolean);
  return present.length > 0 ? ` [${present.join('; ')}]` : '';
}
