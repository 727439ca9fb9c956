/**
 * What a setting accepts and how its raw value (environment text, or a YAML/JSON value from the
 * file) becomes a typed value. Environment values, file values and per-route values all go through
 * the same kind, so each is validated once, the same way, wherever it is written.
 */

/** A value, `value: undefined` when the text is blank (the setting then counts as unset), or what is wrong. */
export type Parsed<T> = { readonly value: T | undefined } | { readonly problem: string; readonly fix: string };

export interface Kind<T> {
  /** Accepted values in a few words for `--help` and the README, e.g. `1–1000`; empty when any text goes. */
  readonly accepts: string;
  /** The accepted values of an enumeration, for marking the default among them. */
  readonly values?: readonly string[];
  /** `key` is the file key, named in fixes for values of the wrong YAML type. */
  parse(raw: unknown, key: string): Parsed<T>;
}

/** Adds a problem to the ones reported together; `setting` says where (a variable, or a file location). */
export type Report = (setting: string, problem: string, fix: string) => void;

function asText(raw: unknown, key: string): Parsed<string> {
  if (typeof raw === 'string') return { value: raw.trim() || undefined };
  if (typeof raw === 'number' || typeof raw === 'boolean') return { value: String(raw) };
  return { problem: 'must be a string', fix: `write it as text, e.g. ${key}: "value"` };
}

/** Text that passes `check` (which returns what is wrong, or undefined). */
function checkedText(accepts: string, check: (text: string) => { problem: string; fix: string } | undefined): Kind<string> {
  return {
    accepts,
    parse(raw, key) {
      const parsed = asText(raw, key);
      if (!('value' in parsed) || parsed.value === undefined) return parsed;
      return check(parsed.value) ?? parsed;
    },
  };
}

export function text(accepts = ''): Kind<string> {
  return { accepts, parse: asText };
}

export function matching(pattern: RegExp, accepts: string, what: string, fix: string): Kind<string> {
  return checkedText(accepts, (value) => (pattern.test(value) ? undefined : { problem: `"${value}" is not ${what}`, fix }));
}

export function oneOf<const V extends string>(values: readonly V[], what: string): Kind<V> {
  return {
    accepts: values.join(' | '),
    values,
    parse(raw, key) {
      const parsed = asText(raw, key);
      if (!('value' in parsed)) return parsed;
      if (parsed.value === undefined) return { value: undefined };
      const found = values.find((value) => value === parsed.value);
      return found ? { value: found } : { problem: `"${parsed.value}" is not ${what}`, fix: `use one of ${values.join(', ')}` };
    },
  };
}

/** A whole number in [min, max]; a blank value is not a number (only an empty variable counts as unset). */
/** true or false (a YAML boolean too). */
export function flag(): Kind<boolean> {
  return {
    accepts: 'true | false',
    parse(raw) {
      if (typeof raw === 'boolean') return { value: raw };
      const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      if (text === '') return { value: undefined };
      if (text === 'true' || text === 'false') return { value: text === 'true' };
      return { problem: `"${String(raw)}" is not true or false`, fix: 'write true or false' };
    },
  };
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Kind<number> {
  const fix = `write a whole number between ${min} and ${max}`;
  return {
    accepts: max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}–${max}`,
    parse(raw) {
      const digits = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : undefined;
      if (digits === undefined || !/^\d+$/.test(digits)) return { problem: `"${String(raw)}" is not a whole number`, fix };
      const n = Number(digits);
      return n < min || n > max ? { problem: `${n} is out of range`, fix } : { value: n };
    },
  };
}

/** Kubernetes sets COURIER_PORT=tcp://10.0.0.7:8080 when a Service is named "courier". */
export function port(): Kind<number> {
  const number = int(0, 65_535);
  return {
    accepts: number.accepts,
    parse(raw, key) {
      if (typeof raw === 'string' && raw.startsWith('tcp://')) {
        return {
          problem: `"${raw}" is a Kubernetes service link, not a port`,
          fix: 'set COURIER_PORT to a number explicitly, or enableServiceLinks: false in the pod spec',
        };
      }
      return number.parse(raw, key);
    },
  };
}

export function httpUrl(): Kind<string> {
  return checkedText('http(s) URL', (value) => {
    const problem = urlProblem(value);
    return problem ? { problem, fix: 'give an absolute http:// or https:// URL, e.g. http://localhost:3000/events' } : undefined;
  });
}

/** Sent as a bearer token, so it must fit in an HTTP header. */
export function headerToken(): Kind<string> {
  return checkedText('printable ASCII, no spaces', (value) =>
    /^[\x21-\x7e]+$/.test(value)
      ? undefined
      : {
          problem: 'contains spaces or characters that cannot go in an HTTP header',
          fix: 'use printable ASCII without spaces (e.g. `openssl rand -hex 32`)',
        },
  );
}

/** Comma-separated in the environment; the file may also give a YAML list. */
export function topicList(): Kind<readonly string[]> {
  return {
    accepts: 'topic,topic,…',
    parse(raw) {
      const names = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) && raw.every((t) => typeof t === 'string') ? (raw as string[]) : undefined;
      if (!names) return { problem: 'must be a comma-separated string or a list of topic names', fix: 'write e.g. COURIER_TOPICS=orders,payments' };
      return { value: names.map((name) => name.trim()).filter(Boolean) };
    },
  };
}

/** HTTP statuses, comma-separated in the environment; the file may also give a YAML list. */
export function statusList(min: number, max: number): Kind<readonly number[]> {
  const fix = `write statuses between ${min} and ${max}, e.g. 409 or 409,410`;
  return {
    accepts: `statuses ${min}–${max}, comma-separated`,
    parse(raw) {
      const items =
        typeof raw === 'string'
          ? raw
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : typeof raw === 'number'
            ? [raw]
            : Array.isArray(raw)
              ? raw
              : undefined;
      if (!items) return { problem: 'must be a comma-separated string or a list of HTTP statuses', fix };
      const statuses: number[] = [];
      for (const item of items) {
        const text = String(item).trim();
        const status = Number(text);
        if (!/^\d{3}$/.test(text) || status < min || status > max) return { problem: `"${text}" is not an HTTP status between ${min} and ${max}`, fix };
        statuses.push(status);
      }
      return { value: [...new Set(statuses)] };
    },
  };
}

/** Standard Webhooks secrets, space-separated during a rotation; the value is the decoded keys, the first signs. */
export function signingSecrets(): Kind<readonly Buffer[]> {
  return {
    accepts: 'whsec_… (space-separated)',
    parse(raw, key) {
      const parsed = asText(raw, key);
      if (!('value' in parsed)) return parsed;
      if (parsed.value === undefined) return { value: undefined };
      const keys: Buffer[] = [];
      for (const secret of parsed.value.split(/\s+/)) {
        const bytes = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.alloc(0);
        if (bytes.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret.slice(6))) {
          return { problem: 'each secret must be whsec_ followed by base64 key bytes', fix: 'generate one with `echo whsec_$(openssl rand -base64 32)`' };
        }
        keys.push(bytes);
      }
      return { value: keys };
    },
  };
}

function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${value}" is not http or https`;
  if (url.username || url.password) return 'credentials in the URL would be sent in clear; use COURIER_APP_TOKEN';
  if (url.hash) return `"${value}" has a #fragment, which is never sent`;
  return undefined;
}

/** A retry tier as written (`30s`, `5m`, `1h`): its label names its topic, its delay is in ms. */
export interface RetryTierSpec {
  readonly label: string;
  readonly delayMs: number;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Longer than any topic's usual retention: a record would expire before it is due. */
const MAX_TIER_MS = 7 * 86_400_000;
const MAX_TIERS = 10;

/** Retry tiers, comma-separated in the environment (`30s,5m,1h`); the file may also give a YAML list. */
export function tierList(): Kind<readonly RetryTierSpec[]> {
  const fix = 'write delays such as 30s,5m,1h (units ms, s, m, h, d; each at most 7d, no repeats, at most 10)';
  return {
    accepts: 'delays, e.g. 30s,5m,1h',
    parse(raw) {
      const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw.map(String) : undefined;
      if (!items) return { problem: 'must be a comma-separated string or a list of delays', fix };
      const tiers: RetryTierSpec[] = [];
      for (const item of items.map((text) => text.trim()).filter(Boolean)) {
        const match = /^(\d+)(ms|s|m|h|d)$/.exec(item);
        const delayMs = match ? Number(match[1]) * (DURATION_UNITS[match[2] as string] as number) : 0;
        if (!match || delayMs <= 0 || delayMs > MAX_TIER_MS) return { problem: `"${item}" is not a delay between 1ms and 7d`, fix };
        if (tiers.some((tier) => tier.label === item)) return { problem: `"${item}" is given twice (each tier has its own topic)`, fix };
        tiers.push({ label: item, delayMs });
      }
      if (tiers.length > MAX_TIERS) return { problem: `${tiers.length} tiers`, fix };
      return { value: tiers };
    },
  };
}
