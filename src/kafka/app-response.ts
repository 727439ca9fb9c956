import { isUtf8 } from 'node:buffer';
import { APP_RESPONSE_MAX_BYTES } from '../delivery/outcome.js';
import { createRedactor, REDACTED } from '../redact.js';

/**
 * The app's own reason in a DLQ record (DESIGN A2, A3): the start of its answer body becomes the
 * `app_response` header and is quoted in `error_message`. Pure; secrets are replaced as in logs.
 */

/** Starts an `app_response` value that is base64 of bytes, not text. */
export const BASE64_PREFIX = 'base64:';

/** How many characters of the body `error_message` quotes; `app_response` carries all of it. */
export const QUOTE_MAX_CHARS = 256;

export type BodyRedactor = (body: Buffer) => Buffer;

/**
 * Replaces the UTF-8 bytes of every secret with [REDACTED], in text and binary bodies alike: the
 * log redactor runs over the latin1 view of the bytes (one character per byte, so nothing is
 * decoded or lost). A body cut at APP_RESPONSE_MAX_BYTES can end with the start of a secret: that
 * start is redacted too (from 4 bytes, the redactor's own floor).
 */
export function createBodyRedactor(secrets: readonly string[]): BodyRedactor {
  const views = secrets.filter((secret) => secret.length >= 4).map((secret) => Buffer.from(secret, 'utf8').toString('latin1'));
  const redact = createRedactor(views);
  return (body) => {
    const text = body.toString('latin1');
    let out = redact(text);
    if (body.length >= APP_RESPONSE_MAX_BYTES) out = redactCutSecret(out, views);
    return out === text ? body : Buffer.from(out, 'latin1');
  };
}

function redactCutSecret(text: string, secrets: readonly string[]): string {
  let longest = 0;
  for (const secret of secrets) {
    for (let length = Math.min(secret.length - 1, text.length); length >= 4 && length > longest; length--) {
      if (text.endsWith(secret.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest === 0 ? text : text.slice(0, text.length - longest) + REDACTED;
}

/** What a DLQ record says about an HTTP answer. */
export interface AnswerDescription {
  /** The `app_response` header; undefined for an empty body. */
  readonly appResponse: string | undefined;
  /** `app answered HTTP 422`, then `: ` and the body on one line when it is readable text. */
  readonly message: string;
}

/**
 * `app_response` is the redacted body as UTF-8 text, byte for byte, when it is valid UTF-8; else
 * (or when the text itself starts with `base64:`, so a reader never has to guess) `base64:` and the
 * base64 of the redacted bytes. The message quotes the text on one line: control characters and
 * line breaks become single spaces, and it stops after QUOTE_MAX_CHARS with `…`.
 */
export function describeAnswer(status: number, body: Buffer | undefined, redact: BodyRedactor): AnswerDescription {
  const answered = `app answered HTTP ${status}`;
  if (body === undefined || body.length === 0) return { appResponse: undefined, message: answered };
  const bytes = redact(body);
  // The cut at APP_RESPONSE_MAX_BYTES can split a character: text stays text without that part.
  const textBytes = bytes.length >= APP_RESPONSE_MAX_BYTES ? withoutCutCharacter(bytes) : bytes;
  if (!isUtf8(textBytes)) {
    return {
      appResponse: BASE64_PREFIX + bytes.toString('base64'),
      message: `${answered} with ${bytes.length} bytes that are not UTF-8 text (base64 in app_response)`,
    };
  }
  const text = textBytes.toString('utf8');
  const quote = quoteOf(text);
  return {
    appResponse: text.startsWith(BASE64_PREFIX) ? BASE64_PREFIX + bytes.toString('base64') : text,
    message: quote === '' ? answered : `${answered}: ${quote}`,
  };
}

/** Drops a trailing incomplete UTF-8 sequence (a lead byte and fewer continuation bytes than it needs). */
export function withoutCutCharacter(bytes: Buffer): Buffer {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: its lead is further back
    const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needs > back ? bytes.subarray(0, bytes.length - back) : bytes;
  }
  return bytes;
}

/** One line for a header read by people: no CR/LF or other control characters, bounded. */
export function quoteOf(text: string): string {
  const line = text.replace(/[\p{Cc}\s]+/gu, ' ').trim();
  const chars = Array.from(line); // code points: a cut never splits a surrogate pair
  return chars.length <= QUOTE_MAX_CHARS ? line : `${chars.slice(0, QUOTE_MAX_CHARS).join('')}…`;
}
