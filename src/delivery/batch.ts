import { isUtf8 } from 'node:buffer';
import type { KafkaRecord } from '../record.js';
import type { RecordIdentity } from './push.js';

/**
 * Batch delivery (DESIGN A6): the request body that carries many records, and the reading of the
 * app's 2xx answer that lists the ones that failed. Pure; both run once per batch on the hot path.
 */

export interface BatchEntry {
  readonly record: KafkaRecord;
  /** The record's id, content type, traceparent and tracestate, as its A2 push has them. */
  readonly identity: RecordIdentity;
  readonly attempt: number;
}

// ---------------------------------------------------------------------------------------------
// JSON validation

/** Bytes a JSON string holds as they are: not `"`, not `\`, not a control character (one lookup per byte). */
const PLAIN = new Uint8Array(256);
for (let byte = 0x20; byte < 256; byte++) if (byte !== 0x22 && byte !== 0x5c) PLAIN[byte] = 1;
const HEX = new Uint8Array(256);
for (const byte of Buffer.from('0123456789abcdefABCDEF', 'latin1')) HEX[byte] = 1;
/** The characters allowed after `\` besides `u`. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const byte of Buffer.from('"\\/bfnrt', 'latin1')) SHORT_ESCAPE[byte] = 1;

const TRUE = Buffer.from('true', 'latin1');
const FALSE = Buffer.from('false', 'latin1');
const NULL = Buffer.from('null', 'latin1');

const IN_ARRAY = 1;
const IN_OBJECT = 2;

/**
 * Whether `bytes` are one JSON text (RFC 8259) in valid UTF-8: exactly the bytes for which
 * `JSON.parse(bytes.toString('utf8'))` succeeds and the decoding is lossless. A UTF-8 byte order
 * mark is refused, as JSON.parse refuses U+FEFF. Nothing is allocated for the value: the bytes
 * are scanned once by a grammar check, after the native UTF-8 check (outside strings only ASCII
 * is valid, so the scanner can treat every byte from 0x80 as an ordinary string character).
 * Iterative, so nesting depth costs memory for a small stack, never the call stack.
 */
export function isJsonText(bytes: Uint8Array): boolean {
  return isUtf8(bytes) && scanJson(bytes);
}

function scanJson(b: Uint8Array): boolean {
  const n = b.length;
  const open: number[] = [];
  let i = skipWhitespace(b, 0);
  for (;;) {
    // A value starts at i.
    if (i >= n) return false;
    const c = b[i]!;
    if (c === 0x7b) {
      i = skipWhitespace(b, i + 1);
      if (i < n && b[i] === 0x7d) i++;
      else {
        i = scanMemberName(b, i);
        if (i < 0) return false;
        open.push(IN_OBJECT);
        continue;
      }
    } else if (c === 0x5b) {
      i = skipWhitespace(b, i + 1);
      if (i < n && b[i] === 0x5d) i++;
      else {
        open.push(IN_ARRAY);
        continue;
      }
    } else if (c === 0x22) i = scanString(b, i + 1);
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) i = scanNumber(b, i);
    else if (c === 0x74) i = scanLiteral(b, i, TRUE);
    else if (c === 0x66) i = scanLiteral(b, i, FALSE);
    else if (c === 0x6e) i = scanLiteral(b, i, NULL);
    else return false;
    if (i < 0) return false;

    // A value ended at i: close containers until a comma asks for the next value.
    for (;;) {
      i = skipWhitespace(b, i);
      const depth = open.length;
      if (depth === 0) return i === n;
      if (i >= n) return false;
      const inObject = open[depth - 1] === IN_OBJECT;
      const d = b[i]!;
      if (d === 0x2c) {
        i = skipWhitespace(b, i + 1);
        if (inObject) i = scanMemberName(b, i);
        if (i < 0) return false;
        break;
      }
      if (d !== (inObject ? 0x7d : 0x5d)) return false;
      open.pop();
      i++;
    }
  }
}

// The helpers never read past the end: an out-of-bounds typed array read makes V8's code slower.

function skipWhitespace(b: Uint8Array, i: number): number {
  const n = b.length;
  // Every JSON whitespace byte is at most 0x20: most calls return after one comparison.
  while (i < n && b[i]! <= 0x20) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `"name"` then `:` and whitespace: the index where the member's value starts, or -1. */
function scanMemberName(b: Uint8Array, i: number): number {
  if (i >= b.length || b[i] !== 0x22) return -1;
  i = scanString(b, i + 1);
  if (i < 0) return -1;
  i = skipWhitespace(b, i);
  if (i >= b.length || b[i] !== 0x3a) return -1;
  return skipWhitespace(b, i + 1);
}

/** From just after the opening quote: the index after the closing one, or -1. */
function scanString(b: Uint8Array, i: number): number {
  const n = b.length;
  for (;;) {
    while (i < n && PLAIN[b[i]!] === 1) i++;
    if (i >= n) return -1;
    const c = b[i++]!;
    if (c === 0x22) return i;
    if (c !== 0x5c) return -1; // a control character
    if (i >= n) return -1;
    const escaped = b[i++]!;
    if (escaped === 0x75) {
      // \uXXXX; a lone surrogate is valid JSON.
      if (i + 4 > n) return -1;
      if (HEX[b[i]!]! + HEX[b[i + 1]!]! + HEX[b[i + 2]!]! + HEX[b[i + 3]!]! !== 4) return -1;
      i += 4;
    } else if (SHORT_ESCAPE[escaped] === 0) return -1;
  }
}

/** `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: the index after it, or -1. */
function scanNumber(b: Uint8Array, i: number): number {
  const n = b.length;
  if (b[i] === 0x2d) i++;
  if (i >= n) return -1;
  const first = b[i]!;
  if (first === 0x30) i++;
  else if (first >= 0x31 && first <= 0x39) i = skipDigits(b, i + 1);
  else return -1;
  if (i < n && b[i] === 0x2e) {
    const start = i + 1;
    i = skipDigits(b, start);
    if (i === start) return -1;
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    const start = i;
    i = skipDigits(b, start);
    if (i === start) return -1;
  }
  return i;
}

function skipDigits(b: Uint8Array, i: number): number {
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) break;
    i++;
  }
  return i;
}

/** From a literal's first byte, already matched: the index after it, or -1. */
function scanLiteral(b: Uint8Array, i: number, literal: Uint8Array): number {
  if (i + literal.length > b.length) return -1;
  for (let k = 1; k < literal.length; k++) if (b[i + k] !== literal[k]) return -1;
  return i + literal.length;
}

/**
 * `application/json` or any `*+json` (RFC 6839), by the media type before any parameters, in any
 * case: the content types whose values the body embeds as JSON.
 */
export function isJsonMediaType(contentType: string): boolean {
  if (contentType === 'application/json') return true;
  const semicolon = contentType.indexOf(';');
  const type = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  if (type === 'application/json') return true;
  const slash = type.indexOf('/');
  return slash > 0 && type.endsWith('+json') && type.length - 5 > slash + 1;
}

// ---------------------------------------------------------------------------------------------
// The request body

/**
 * The A6 body: `{"records":[…]}` with one object per entry, in entry order.
 *
 * The JSON around the values is built as short strings that are pure ASCII (every string is escaped
 * to ASCII, base64 is ASCII), so it is written with latin1, a plain copy: V8's UTF-8 encoding of a
 * long string, and flattening one long string made of the values' base64, each cost more than the
 * rest of the body together. A JSON value's own bytes go in as they are, once the validator has
 * accepted them, so no value is parsed or re-serialised. The parts are measured first and copied
 * once into a buffer of exactly the body's size.
 */
export function batchBody(entries: readonly BatchEntry[]): Buffer {
  const parts: (string | Buffer)[] = [];
  let length = 0;
  let text = '{"records":[';
  // Records of a batch mostly share topic and content type: escape and classify them once.
  let topic: string | undefined;
  let topicJson = '';
  let contentType: string | undefined;
  let contentTypeJson = '';
  let jsonContent = false;
  for (let k = 0; k < entries.length; k++) {
    const { record, identity, attempt } = entries[k]!;
    if (record.topic !== topic) {
      topic = record.topic;
      topicJson = jsonString(topic);
    }
    const type = identity.contentType;
    if (type !== contentType) {
      contentType = type;
      contentTypeJson = jsonString(type);
      jsonContent = isJsonMediaType(type);
    }
    text +=
      `${k === 0 ? '' : ','}{"id":${jsonString(identity.messageId)},"topic":${topicJson},"partition":${jsonNumber(record.partition)},` +
      `"offset":"${record.offset}","timestamp":${jsonNumber(record.timestamp)},${keyFields(record.key)},` +
      `"headers":${headersJson(record.headers)},"contentType":${contentTypeJson},`;
    const value = record.value;
    if (value === null) text += '"tombstone":true';
    else {
      // The value is a part of its own, never appended to the text around it.
      const raw = jsonContent && isJsonText(value);
      text += raw ? '"value":' : '"valueBase64":"';
      const valuePart = raw ? value : value.toString('base64');
      parts.push(text, valuePart);
      length += text.length + valuePart.length;
      text = raw ? '' : '"';
    }
    text += `,"attempt":${jsonNumber(attempt)}${traceFields(identity)}}`;
  }
  text += ']}';
  parts.push(text);
  length += text.length;
  return joined(parts, length);
}

/** Strings are ASCII (one byte per character), so `length` is the exact byte count. */
function joined(parts: readonly (string | Buffer)[], length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let offset = 0;
  for (const part of parts) offset += typeof part === 'string' ? out.write(part, offset, 'latin1') : part.copy(out, offset);
  return out;
}

/** Printable ASCII but `"` and `\`: a string of only these is its own JSON string body. */
const JSON_SAFE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const NON_ASCII = /[\u0080-\uffff]/g;

/** A JSON string in ASCII only: what JSON.stringify writes, with every non-ASCII unit as `\uXXXX`. */
export function jsonString(text: string): string {
  if (JSON_SAFE.test(text)) return `"${text}"`;
  return JSON.stringify(text).replace(NON_ASCII, unicodeEscape);
}

function unicodeEscape(unit: string): string {
  return `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A number as JSON: a non-finite one (never expected) becomes null rather than invalid JSON. */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

function keyFields(key: Buffer | null): string {
  if (key === null) return '"key":null';
  const base64 = `"key":"${key.toString('base64')}"`;
  return isUtf8(key) ? `${base64},"keyText":${jsonString(key.toString('utf8'))}` : base64;
}

function headersJson(headers: KafkaRecord['headers']): string {
  if (headers.length === 0) return '[]';
  let out = '[';
  for (let h = 0; h < headers.length; h++) {
    const [name, value] = headers[h]!;
    out += `${h === 0 ? '' : ','}[${jsonString(name)},"${value.toString('base64')}"]`;
  }
  return `${out}]`;
}

/** `traceparent` and `tracestate` as validated for the A2 push (tracestate may hold `"` and `\`). */
function traceFields({ traceparent, tracestate }: RecordIdentity): string {
  let out = '';
  if (traceparent !== undefined) out += `,"traceparent":${jsonString(traceparent)}`;
  if (tracestate !== undefined) out += `,"tracestate":${jsonString(tracestate)}`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The answer

/**
 * How much of a 2xx answer body the pusher keeps for parseBatchAnswer. A full listing of a default
 * batch (100 records), each failure with an id, status, retryAfterMs and a reason of
 * REASON_MAX_CHARS, is about 120 KiB; 256 KiB covers that twice over, for long ids, escaped
 * reasons or larger batches, while a kept answer stays a bounded, short-lived buffer.
 */
export const BATCH_ANSWER_MAX_BYTES = 256 * 1024;

/** How much of a listed `reason` is kept (it goes to the DLQ's error_message). */
export const REASON_MAX_CHARS = 1024;

export interface ListedFailure {
  readonly status: number;
  readonly retryAfterMs?: number;
  readonly reason?: string;
}

export type BatchAnswer =
  /** Every record acknowledged. */
  | { readonly kind: 'all' }
  /** The records that failed, by id; the others are acknowledged. Never empty. */
  | { readonly kind: 'listed'; readonly failures: ReadonlyMap<string, ListedFailure> }
  /** The app's answer breaks the contract; `reason` is one line naming the problem. */
  | { readonly kind: 'invalid'; readonly reason: string };

const ALL: BatchAnswer = Object.freeze({ kind: 'all' });

/**
 * Reads a 2xx answer body (DESIGN A6). Anything that does not try to list failures acknowledges
 * the batch: an empty body, text that is not JSON (`OK`, a framework's default page), JSON without
 * a `failures` member, `failures: []`, or a listing whose statuses are all 2xx. A listing that is
 * there but malformed is `invalid`: guessing which records it meant could acknowledge a failure.
 * A body of BATCH_ANSWER_MAX_BYTES or more that does not parse was probably cut by the pusher, so
 * it is `invalid` too (one that parses is read: a complete answer of exactly that size), and so is
 * text that starts with `{` but does not parse: it was meant as an object, maybe a listing.
 * A leading UTF-8 byte order mark is ignored, so that it cannot turn a listing into "not JSON".
 */
export function parseBatchAnswer(body: Buffer | undefined, ids: ReadonlySet<string>): BatchAnswer {
  if (body === undefined || body.length === 0) return ALL;
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return ALL;
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    if (body.length >= BATCH_ANSWER_MAX_BYTES) return invalid(`answer longer than ${BATCH_ANSWER_MAX_BYTES} bytes`);
    // Text that starts like an object was meant as one: it may have listed failures.
    return text.trimStart().startsWith('{') ? invalid('answer is not valid JSON although it starts like an object') : ALL;
  }
  if (!isObject(answer) || !Object.hasOwn(answer, 'failures')) return ALL;
  const listed = answer.failures;
  if (!Array.isArray(listed)) return invalid(`failures must be an array, got ${shown(listed)}`);
  const failures = new Map<string, ListedFailure>();
  for (let i = 0; i < listed.length; i++) {
    const entry: unknown = listed[i];
    const where = `failures[${i}]`;
    if (!isObject(entry)) return invalid(`${where} must be an object, got ${shown(entry)}`);
    const { id, status, retryAfterMs, reason } = entry;
    if (typeof id !== 'string') return invalid(`${where}.id must be a string, got ${shown(id)}`);
    if (!ids.has(id)) return invalid(`${where}.id ${shown(id)} is not a record of this batch`);
    if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) {
      return invalid(`${where}.status must be an integer HTTP status, got ${shown(status)}`);
    }
    if (retryAfterMs !== undefined && !(typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs >= 0)) {
      return invalid(`${where}.retryAfterMs must be a number of milliseconds ≥ 0, got ${shown(retryAfterMs)}`);
    }
    if (reason !== undefined && typeof reason !== 'string') return invalid(`${where}.reason must be a string, got ${shown(reason)}`);
    // A 2xx listing says the record is fine; a later listing of the same id replaces an earlier one.
    if ((status as number) < 300 && (status as number) >= 200) failures.delete(id);
    else failures.set(id, listedFailure(status as number, retryAfterMs, reason));
  }
  return failures.size === 0 ? ALL : { kind: 'listed', failures };
}

function listedFailure(status: number, retryAfterMs: number | undefined, reason: string | undefined): ListedFailure {
  const failure: { status: number; retryAfterMs?: number; reason?: string } = { status };
  if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
  if (reason !== undefined) failure.reason = truncate(reason, REASON_MAX_CHARS);
  return failure;
}

/** At most `max` UTF-16 units, without splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const high = text.charCodeAt(max - 1);
  return text.slice(0, high >= 0xd800 && high <= 0xdbff ? max - 1 : max);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(reason: string): BatchAnswer {
  return { kind: 'invalid', reason };
}

/** A JSON value in a one-line message, cut short. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value); // 1e999 parses to Infinity
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
