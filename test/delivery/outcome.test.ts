import { describe, expect, it } from 'vitest';
import { type AttemptResult, classify, isUnreachableCode } from '../../src/delivery/outcome.js';

const response = (status: number): AttemptResult => ({ kind: 'response', status });

describe('classify (DESIGN A2 answer table)', () => {
  it.each([200, 201, 202, 204, 299])('HTTP %i acknowledges the record', (status) => {
    expect(classify(response(status))).toEqual({ action: 'ack' });
  });

  it.each([408, 429, 500, 502, 503, 504, 599])('HTTP %i is retried with reason http_<status>', (status) => {
    expect(classify(response(status))).toEqual({ action: 'retry', reason: `http_${status}` });
  });

  it.each([401, 403])('HTTP %i means the app refuses Courier itself: app-refused, never DLQ', (status) => {
    expect(classify(response(status))).toEqual({ action: 'app-refused', reason: `http_${status}` });
  });

  it.each([300, 301, 302, 303, 304, 307, 308, 400, 402, 404, 405, 409, 410, 413, 415, 422, 431, 451])('HTTP %i dead-letters the record at once', (status) => {
    expect(classify(response(status))).toEqual({ action: 'dead-letter', reason: `http_${status}` });
  });

  it('a Retry-After on the answer does not change the classification', () => {
    expect(classify({ kind: 'response', status: 503, retryAfter: '5' }).action).toBe('retry');
    expect(classify({ kind: 'response', status: 200, retryAfter: '5' }).action).toBe('ack');
  });

  it.each<[string, AttemptResult, string, string | undefined]>([
    ['a timeout', { kind: 'timeout' }, 'retry', 'timeout'],
    ['a connection lost after sending', { kind: 'connection-lost', code: 'ECONNRESET' }, 'retry', 'connection_lost'],
    ['an undici socket error', { kind: 'connection-lost', code: 'UND_ERR_SOCKET' }, 'retry', 'connection_lost'],
    ['connection refused', { kind: 'unreachable', code: 'ECONNREFUSED' }, 'app-down', 'ECONNREFUSED'],
    ['a DNS failure', { kind: 'unreachable', code: 'ENOTFOUND' }, 'app-down', 'ENOTFOUND'],
  ])('%s is classified as %s', (_what, result, action, reason) => {
    expect(classify(result)).toEqual({ action, reason });
  });

  it('no answer of any status is classified as app-down (only unreachable is)', () => {
    for (let status = 100; status <= 599; status++) expect(classify(response(status)).action).not.toBe('app-down');
  });
});

describe('isUnreachableCode', () => {
  it.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])('%s proves nothing reached the app', (code) => {
    expect(isUnreachableCode(code)).toBe(true);
  });

  it.each(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT', 'UNKNOWN', ''])(
    '%s may have reached the app, so it is not "unreachable"',
    (code) => {
      expect(isUnreachableCode(code)).toBe(false);
    },
  );
});
