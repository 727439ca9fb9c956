import { KAFKA_VARIABLES } from './kafka.js';
import { CONFIG_FILE_VARIABLE, DECLARATIONS, type Setting } from './settings.js';

/** `--help` and the README table, both rendered from the declarations so that neither drifts. */

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

/** The README's configuration table (markdown, columns aligned). */
export function settingsTable(): string {
  const rows: string[][] = [
    ['variable', 'file key', 'default', 'accepts', 'meaning'],
    ...DECLARATIONS.map((setting) => [
      code(setting.env),
      setting.perRoute ? `${code(setting.key)}, also ${code(`routes[].${setting.key}`)}` : code(setting.key),
      readmeDefault(setting),
      [setting.kind.values?.map(code).join(' · ') ?? setting.kind.accepts, setting.secret && `secret, or ${code(`${setting.env}_FILE`)}`]
        .filter(Boolean)
        .join('; '),
      setting.doc ?? setting.help,
    ]),
    [code(CONFIG_FILE_VARIABLE.env), '', '', 'file path', CONFIG_FILE_VARIABLE.help],
    ...KAFKA_VARIABLES.map((variable) => [
      code(variable.env),
      code(variable.fileKey),
      'default' in variable ? code(variable.default) : '',
      'accepts' in variable ? variable.accepts : '',
      'doc' in variable ? variable.doc : variable.help,
    ]),
  ].map((row) => row.map((cell) => cell.replaceAll('|', '\\|')));
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(rows[0]!), line(widths.map((width) => '-'.repeat(width))), ...rows.slice(1).map(line)].join('\n');
}

export const SETTINGS_TABLE_START = '<!-- settings:start (generated from src/config/settings.ts: npm run readme:settings) -->';
export const SETTINGS_TABLE_END = '<!-- settings:end -->';

/** The README text with the table between the markers replaced by the rendered one. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(SETTINGS_TABLE_START);
  const end = readme.indexOf(SETTINGS_TABLE_END);
  if (start < 0 || end < start) throw new Error(`the README lacks the lines ${SETTINGS_TABLE_START} and ${SETTINGS_TABLE_END}`);
  return `${readme.slice(0, start + SETTINGS_TABLE_START.length)}\n\n${settingsTable()}\n\n${readme.slice(end)}`;
}

/** The table between the markers as the README has it, or undefined without the markers. */
export function readmeSettingsTable(readme: string): string | undefined {
  const start = readme.indexOf(SETTINGS_TABLE_START);
  const end = readme.indexOf(SETTINGS_TABLE_END);
  return start < 0 || end < start ? undefined : readme.slice(start + SETTINGS_TABLE_START.length, end).trim();
}

const code = (text: string) => `\`${text}\``;

function unsetText(setting: Setting): string | undefined {
  return setting.required ? 'required' : setting.whenUnset;
}

/** What is in brackets after a `--help` line: default or requirement, accepted values, where else it can be set. */
function helpDetails(setting: Setting): (string | false | undefined)[] {
  const { kind } = setting;
  const values = kind.values?.map((value) => (value === setting.default ? `${value} (default)` : value)).join(' | ');
  const fallback = unsetText(setting) ?? (setting.default === undefined || values ? undefined : `default ${defaultText(setting.default) || 'none'}`);
  return [fallback, values ?? kind.accepts, setting.perRoute && 'also per route', setting.secret && `or ${setting.env}_FILE`];
}

function readmeDefault(setting: Setting): string {
  const unset = unsetText(setting);
  if (unset) return `(${unset})`;
  if (setting.default === undefined) return '';
  const text = defaultText(setting.default);
  if (text === '') return 'none';
  return typeof setting.default === 'number' ? text : code(text);
}

/** A default as written: a list comma-separated (empty: none), e.g. retry tiers by their labels. */
function defaultText(value: unknown): string {
  if (!Array.isArray(value)) return String(value);
  return value.map((item) => (typeof item === 'object' && item !== null && 'label' in item ? String(item.label) : String(item))).join(',');
}

function bracketed(details: readonly (string | false | undefined)[]): string {
  const present = details.filter(Boolean);
  return present.length > 0 ? ` [${present.join('; ')}]` : '';
}
