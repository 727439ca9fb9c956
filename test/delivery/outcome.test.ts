import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AttemptResult, classify, FRESH_ROUTE, isMisrouteStatus, isUnreachableCode, type RouteView } from '../../src/delivery/outcome.js';

const response = (status: number, retryAfter?: string): AttemptResult => ({ kind: 'response', status, retryAfter });
const route = (view: Partial<RouteView> = {}): RouteView => ({ ...FRESH_ROUTE, ...view });
const working = route({ succeededSinceMisroute: true });

describe('classify (DESIGN A2 v2 answer table)', () => {
  it.each([200, 201, 202, 204, 299])('HTTP %i acknowledges the record', (status) => {
    expect(classify(response(status))).toEqual({ class: 'ack' });
  });

  it('a status in the route’s ackStatuses acknowledges too (409 for an idempotent handler), others do not', () => {
    const idempotent = route({ ackStatuses: new Set([409]) });
    expect(classify(response(409), idempotent)).toEqual({ class: 'ack' });
    expect(classify(response(409))).toEqual({ class: 'rejected', reason: 'http_409' });
    expect(classify(response(410), idempotent)).toEqual({ class: 'rejected', reason: 'http_410' });
  });

  it('429 is overload with or without Retry-After; 503 only with it', () => {
    expect(classify(response(429))).toEqual({ class: 'overload', reason: 'http_429' });
    expect(classify(response(429, '2'))).toEqual({ class: 'overload', reason: 'http_429' });
    expect(classify(response(503, '2'))).toEqual({ class: 'overload', reason: 'http_503' });
    expect(classify(response(503))).toEqual({ class: 'failure', reason: 'http_503' });
  });

  it.each([408, 500, 502, 504, 599])('HTTP %i is a failure (an attempt) with reason http_<status>', (status) => {
    expect(classify(response(status))).toEqual({ class: 'failure', reason: `http_${status}` });
    expect(classify(response(status, '5')).class).toBe('failure'); // Retry-After makes only 503 an overload
  });

  it.each([401, 403])('HTTP %i means the app refuses Courier itself: refused, never DLQ', (status) => {
    expect(classify(response(status), working)).toEqual({ class: 'refused', reason: `http_${status}` });
  });

  it.each([300, 301, 302, 303, 304, 307, 308, 404, 405, 415])(
    'HTTP %i is misrouted while the route has had no 2xx since, rejected once others succeed',
    (status) => {
      expect(classify(response(status))).toEqual({ class: 'misrouted', reason: `http_${status}` });
      expect(classify(response(status), working)).toEqual({ class: 'rejected', reason: `http_${status}` });
    },
  );

  it.each([400, 402, 406, 409, 410, 413, 422, 431, 451])('HTTP %i is rejected at once, whatever the route has seen', (status) => {
    expect(classify(response(status))).toEqual({ class: 'rejected', reason: `http_${status}` });
    expect(classify(response(status), working)).toEqual({ class: 'rejected', reason: `http_${status}` });
  });

  it.each<[string, AttemptResult, string, string | undefined]>([
    ['a timeout', { kind: 'timeout' }, 'failure', 'timeout'],
    ['a connection lost after sending', { kind: 'connection-lost', code: 'ECONNRESET' }, 'failure', 'connection_lost'],
    ['an undici socket error', { kind: 'connection-lost', code: 'UND_ERR_SOCKET' }, 'failure', 'connection_lost'],
    ['connection refused', { kind: 'unreachable', code: 'ECONNREFUSED' }, 'down', 'ECONNREFUSED'],
    ['a DNS failure', { kind: 'unreachable', code: 'ENOTFOUND' }, 'down', 'ENOTFOUND'],
  ])('%s is classified as %s', (_what, result, klass, reason) => {
    expect(classify(result)).toEqual({ class: klass, reason });
  });

  it('only an unreachable app is down; only 2xx and ackStatuses acknowledge; only misroute statuses depend on the route (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 599 }),
        fc.option(fc.constantFrom('0', '2', 'Wed, 15 Jan 2025 12:00:30 GMT'), { nil: undefined }),
        fc.uniqueArray(fc.integer({ min: 300, max: 599 }), { maxLength: 3 }),
        (status, retryAfter, acks) => {
          const fresh = classify(response(status, retryAfter), route({ ackStatuses: new Set(acks) }));
          const seen = classify(response(status, retryAfter), route({ ackStatuses: new Set(acks), succeededSinceMisroute: true }));
          expect(fresh.class).not.toBe('down');
          expect(fresh.class === 'ack').toBe((status >= 200 && status < 300) || acks.includes(status));
          if (fresh.class !== seen.class) {
            expect(isMisrouteStatus(status)).toBe(true);
            expect([fresh.class, seen.class]).toEqual(['misrouted', 'rejected']);
          }
        },
      ),
    );
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
