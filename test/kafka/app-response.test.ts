import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { APP_RESPONSE_MAX_BYTES } from '../../src/delivery/outcome.js';
import { BASE64_PREFIX, createBodyRedactor, describeAnswer, QUOTE_MAX_CHARS, quoteOf, withoutCutCharacter } from '../../src/kafka/app-response.js';

const none = createBodyRedactor([]);
const TOKEN = 'app-token-0123456789';

/** Text made of the characters that matter here: multi-byte ones, control characters, line breaks (up to 1.6 KiB). */
const textish = fc
  .array(fc.constantFrom('a', '{', '"', ' ', 'é', '✓', '💸', '\r', '\n', '\t', '\u0000', '\u001b', '\u0085', '\u2028'), { maxLength: 400 })
  .map((chars) => Buffer.from(chars.join('')).subarray(0, APP_RESPONSE_MAX_BYTES));

/** The bytes an `app_response` value stands for. */
function bytesOf(appResponse: string): Buffer {
  return appResponse.startsWith(BASE64_PREFIX) ? Buffer.from(appResponse.slice(BASE64_PREFIX.length), 'base64') : Buffer.from(appResponse, 'utf8');
}

describe('describeAnswer', () => {
  it('quotes a UTF-8 body in the message and carries it whole as app_response', () => {
    const body = Buffer.from('{"error":"missing field amount"}');
    expect(describeAnswer(422, body, none)).toEqual({
      appResponse: '{"error":"missing field amount"}',
      message: 'app answered HTTP 422: {"error":"missing field amount"}',
    });
  });

  it('says what it said before, with no app_response, for an empty or absent body', () => {
    expect(describeAnswer(400, undefined, none)).toEqual({ appResponse: undefined, message: 'app answered HTTP 400' });
    expect(describeAnswer(400, Buffer.alloc(0), none)).toEqual({ appResponse: undefined, message: 'app answered HTTP 400' });
  });

  it('keeps non-ASCII text as text', () => {
    const result = describeAnswer(422, Buffer.from('montant manquant: « amount » ✗ 💸'), none);
    expect(result.appResponse).toBe('montant manquant: « amount » ✗ 💸');
    expect(result.message).toBe('app answered HTTP 422: montant manquant: « amount » ✗ 💸');
  });

  it('writes bytes that are not UTF-8 as base64: with the prefix, and does not quote them', () => {
    const body = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff]);
    const result = describeAnswer(415, body, none);
    expect(result.appResponse).toBe(`base64:${body.toString('base64')}`);
    expect(bytesOf(result.appResponse!)).toEqual(body);
    expect(result.message).toBe('app answered HTTP 415 with 9 bytes that are not UTF-8 text (base64 in app_response)');
  });

  it('writes text that itself starts with "base64:" as base64 too, so a reader never has to guess', () => {
    const result = describeAnswer(400, Buffer.from('base64:aGVsbG8='), none);
    expect(result.appResponse).toBe(`base64:${Buffer.from('base64:aGVsbG8=').toString('base64')}`);
    expect(result.message).toBe('app answered HTTP 400: base64:aGVsbG8=');
  });

  it('keeps app_response byte-exact (control characters included) but gives the message one line without control characters', () => {
    const body = Buffer.from('{\r\n  "error": "bad\tinput",\n  "at": "\u0000\u001b[31m\u007f\u0085"\n}\u2028end');
    const result = describeAnswer(422, body, none);
    expect(result.appResponse).toBe(body.toString('utf8'));
    expect(result.message).toBe('app answered HTTP 422: { "error": "bad input", "at": " [31m " } end');
    expect(result.message).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
  });

  it('keeps the message as before when the body is only whitespace, but app_response has it', () => {
    expect(describeAnswer(400, Buffer.from('\r\n\t '), none)).toEqual({ appResponse: '\r\n\t ', message: 'app answered HTTP 400' });
  });

  it('quotes at most QUOTE_MAX_CHARS characters, then …', () => {
    const text = 'x'.repeat(QUOTE_MAX_CHARS + 50);
    const result = describeAnswer(400, Buffer.from(text), none);
    expect(result.appResponse).toBe(text);
    expect(result.message).toBe(`app answered HTTP 400: ${'x'.repeat(QUOTE_MAX_CHARS)}…`);
  });

  it('keeps a body cut at the limit in the middle of a character as text, without the broken character', () => {
    // 1022 ASCII bytes, then the first 2 of the 3 bytes of "✗": what the pusher keeps of a longer body.
    const body = Buffer.concat([Buffer.from('e'.repeat(APP_RESPONSE_MAX_BYTES - 2)), Buffer.from('✗').subarray(0, 2)]);
    expect(body).toHaveLength(APP_RESPONSE_MAX_BYTES);
    expect(describeAnswer(400, body, none).appResponse).toBe('e'.repeat(APP_RESPONSE_MAX_BYTES - 2));
    // The same bytes in a short body were sent that way by the app: not text.
    expect(describeAnswer(400, body.subarray(-5), none).appResponse).toMatch(/^base64:/);
  });

  it('replaces every configured secret in a text body, in app_response and the message', () => {
    const redact = createBodyRedactor([TOKEN, 'whsec_c2VjcmV0LXNpZ25pbmcta2V5']);
    const body = Buffer.from(`{"error":"bad auth header Bearer ${TOKEN}","key":"whsec_c2VjcmV0LXNpZ25pbmcta2V5","again":"${TOKEN}"}`);
    const result = describeAnswer(400, body, redact);
    expect(result.appResponse).toBe('{"error":"bad auth header Bearer [REDACTED]","key":"[REDACTED]","again":"[REDACTED]"}');
    expect(result.message).toBe(`app answered HTTP 400: ${result.appResponse}`);
    expect(result.message).not.toContain(TOKEN);
  });

  it('replaces a secret in a binary body before it is base64-encoded', () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(TOKEN), Buffer.from([0x80])]);
    const result = describeAnswer(400, body, createBodyRedactor([TOKEN]));
    expect(result.appResponse).toMatch(/^base64:/);
    const decoded = bytesOf(result.appResponse!);
    expect(decoded.includes(Buffer.from(TOKEN))).toBe(false);
    expect(decoded).toEqual(Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('[REDACTED]'), Buffer.from([0x80])]));
  });

  it('replaces a non-ASCII secret by its UTF-8 bytes', () => {
    const secret = 'pässwörd-ünïcode';
    const result = describeAnswer(400, Buffer.from(`{"echo":"${secret}"}`), createBodyRedactor([secret]));
    expect(result.appResponse).toBe('{"echo":"[REDACTED]"}');
  });

  it('replaces the start of a secret that the 1 KiB cut left at the end of the body', () => {
    const prefix = `{"error":"${'p'.repeat(APP_RESPONSE_MAX_BYTES - 20)}`;
    const body = Buffer.from(prefix + TOKEN).subarray(0, APP_RESPONSE_MAX_BYTES);
    expect(body.toString().endsWith(TOKEN.slice(0, 10))).toBe(true);
    const result = describeAnswer(400, body, createBodyRedactor([TOKEN]));
    expect(result.appResponse).toBe(`${prefix}[REDACTED]`);
    expect(result.message).not.toContain(TOKEN.slice(0, 10));
    // Not cut: the same ending is the app's own text, not a secret's start.
    expect(describeAnswer(400, Buffer.from(`x ${TOKEN.slice(0, 10)}`), createBodyRedactor([TOKEN])).appResponse).toBe(`x ${TOKEN.slice(0, 10)}`);
  });

  it('ignores secrets shorter than 4 characters, as the log redaction does', () => {
    expect(describeAnswer(400, Buffer.from('abc def'), createBodyRedactor(['abc'])).appResponse).toBe('abc def');
  });

  it('for arbitrary bytes: app_response stands for the body exactly (up to a cut character) and the message is one line (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: APP_RESPONSE_MAX_BYTES }), textish), (raw) => {
        const body = Buffer.from(raw);
        const status = 400 + (body.length % 100);
        const result = describeAnswer(status, body, none);
        expect(result.message.startsWith(`app answered HTTP ${status}`)).toBe(true);
        expect(result.message).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
        if (body.length === 0) {
          expect(result.appResponse).toBeUndefined();
          return;
        }
        const decoded = bytesOf(result.appResponse!);
        // Buffer#equals: toEqual walks a buffer byte by byte, which is slow for a KiB.
        const expected = body.length < APP_RESPONSE_MAX_BYTES ? body : body.subarray(0, decoded.length);
        expect(decoded.equals(expected)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('withoutCutCharacter', () => {
  it('drops only an incomplete trailing sequence', () => {
    const check = '✓'; // E2 9C 93
    const emoji = '💸'; // F0 9F 92 B8
    expect(withoutCutCharacter(Buffer.from(`ab${check}`))).toEqual(Buffer.from(`ab${check}`));
    expect(withoutCutCharacter(Buffer.from(`ab${check}`).subarray(0, 4))).toEqual(Buffer.from('ab'));
    expect(withoutCutCharacter(Buffer.from(`ab${check}`).subarray(0, 3))).toEqual(Buffer.from('ab'));
    expect(withoutCutCharacter(Buffer.from(`a${emoji}`).subarray(0, 4))).toEqual(Buffer.from('a'));
    expect(withoutCutCharacter(Buffer.from(`a${emoji}`))).toEqual(Buffer.from(`a${emoji}`));
    expect(withoutCutCharacter(Buffer.from('abc'))).toEqual(Buffer.from('abc'));
    expect(withoutCutCharacter(Buffer.alloc(0))).toEqual(Buffer.alloc(0));
  });
});

describe('quoteOf', () => {
  it('does not split a surrogate pair at the bound', () => {
    const quote = quoteOf('💸'.repeat(QUOTE_MAX_CHARS + 1));
    expect(quote).toBe(`${'💸'.repeat(QUOTE_MAX_CHARS)}…`);
  });
});
