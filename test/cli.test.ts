import { describe, expect, it } from 'vitest';
import { adminRequest, apiBaseUrl, formatDeadLetters, formatLag, formatRedrive, formatSeek, formatStatus, seconds, statusExitCode, table } from '../src/cli.js';
import { deadLetterEntry } from './helpers/dead-letters.js';

describe('terminal views', () => {
  it('aligns text left and numbers right', () => {
    expect(
      table(
        ['NAME', 'N'],
        [
          ['a', 1],
          ['bbb', 100],
        ],
      ).split('\n'),
    ).toEqual(['NAME    N', 'a       1', 'bbb   100']);
  });

  it('formats lag per partition with the total and the backlog ages in seconds, showing - for none', () => {
    const text = formatLag({
      partitions: [
        { topic: 'orders', partition: 0, committedOffset: 40, highWatermark: 100, lag: 60, lagSeconds: 125.04, oldestUnackedAgeMs: 3450 },
        { topic: 'orders', partition: 1, committedOffset: null, highWatermark: 7, lag: 7, lagSeconds: null, oldestUnackedAgeMs: null },
      ],
      totalLag: 67,
      refreshedAt: null,
    });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^TOPIC\s+PARTITION\s+COMMITTED\s+HIGH WATERMARK\s+LAG\s+LAG S\s+OLDEST UNACKED S$/);
    expect(lines[1]).toMatch(/^orders\s+0\s+40\s+100\s+60\s+125\.0\s+3\.5$/);
    expect(lines[2]).toMatch(/^orders\s+1\s+-\s+7\s+7\s+-\s+-$/);
    // Right-aligned like the other numbers.
    expect(lines[2]?.length).toBe(lines[1]?.length);
    expect(text.endsWith('total lag: 67')).toBe(true);
  });

  it('writes seconds with one decimal and - for none', () => {
    expect([seconds(0), seconds(0.04), seconds(59.96), seconds(null)]).toEqual(['0.0', '0.0', '60.0', '-']);
  });

  it('status shows readiness reasons, partition states with lag, and the last rebalances', () => {
    const text = formatStatus({
      readiness: { ready: false, reasons: [{ code: 'app_down', message: 'nothing answers' }] },
      assignment: {
        partitions: [
          {
            topic: 'orders',
            partition: 0,
            state: 'paused',
            inFlight: 1,
            queued: 2,
            oldestInFlightMs: 30,
            pausedReason: 'app_down',
            pausedReasons: ['app_down'],
          },
        ],
      },
      lag: {
        partitions: [{ topic: 'orders', partition: 0, committedOffset: 1, highWatermark: 5, lag: 4, lagSeconds: 2, oldestUnackedAgeMs: 30 }],
        totalLag: 4,
        refreshedAt: null,
      },
      rebalances: {
        events: [{ at: '2026-11-26T00:00:00.000Z', type: 'assign', partitions: [{ topic: 'orders', partition: 0 }] }],
        counts: { assign: 1, revoke: 0, lost: 0 },
      },
    });
    expect(text.split('\n')[0]).toBe('NOT READY: app_down (nothing answers)');
    expect(text).toMatch(/orders\s+0\s+paused\s+1\s+30\s+2\s+4\s+app_down/);
    expect(text).toContain('rebalances: assign 1, revoke 0, lost 0');
    expect(text).toContain('2026-11-26T00:00:00.000Z  assign  orders-0');
  });
});

describe('courier lag / courier status: which API they read', () => {
  const url = (env: Record<string, string>, args: string[] = []) => apiBaseUrl(args, env, 8080);

  it('reads --url when given, in either form', () => {
    expect(url({ COURIER_PORT: '9000' }, ['--url', 'http://courier:8081'])).toEqual({ url: 'http://courier:8081' });
    expect(url({}, ['--json', '--url=http://courier:8081'])).toEqual({ url: 'http://courier:8081' });
    expect(url({}, ['--url'])).toEqual({ error: expect.stringContaining('--url needs a value') });
    expect(url({}, ['--url', '--json'])).toEqual({ error: expect.stringContaining('--url needs a value') });
  });

  it("else follows COURIER_PORT, and COURIER_HOST when it names one address, as the instance's own environment would", () => {
    expect(url({})).toEqual({ url: 'http://127.0.0.1:8080' });
    expect(url({ COURIER_PORT: '9000' })).toEqual({ url: 'http://127.0.0.1:9000' });
    expect(url({ COURIER_PORT: '9000', COURIER_HOST: '0.0.0.0' })).toEqual({ url: 'http://127.0.0.1:9000' });
    expect(url({ COURIER_HOST: '::' })).toEqual({ url: 'http://127.0.0.1:8080' });
    expect(url({ COURIER_HOST: '[::]' })).toEqual({ url: 'http://127.0.0.1:8080' });
    expect(url({ COURIER_HOST: '10.1.2.3', COURIER_PORT: '9000' })).toEqual({ url: 'http://10.1.2.3:9000' });
    expect(url({ COURIER_HOST: '::1' })).toEqual({ url: 'http://[::1]:8080' });
    expect(url({ COURIER_HOST: 'localhost' })).toEqual({ url: 'http://localhost:8080' });
  });

  it('ignores a Kubernetes service link in COURIER_PORT, as Courier does, and asks for --url when no port can be known', () => {
    expect(url({ COURIER_PORT: 'tcp://10.96.0.12:8080' })).toEqual({ url: 'http://127.0.0.1:8080' });
    expect(url({ COURIER_PORT: '0' })).toEqual({ error: expect.stringContaining('give --url') });
    expect(url({ COURIER_PORT: 'eighty' })).toEqual({ error: expect.stringContaining('give --url') });
    expect(url({ COURIER_PORT: '70000' })).toEqual({ error: expect.stringContaining('give --url') });
  });

  it('status exits 0 only when Courier is ready, so that scripts can wait on it', () => {
    expect(statusExitCode({ readiness: { ready: true, reasons: [] } })).toBe(0);
    expect(statusExitCode({ readiness: { ready: false, reasons: [{ code: 'app_down', message: 'nothing answers' }] } })).toBe(1);
  });
});

describe('admin commands', () => {
  it('turn seek flags into the request, with ISO or epoch times', () => {
    expect(adminRequest('seek', ['--topic', 'orders', '--partition', '3', '--offset', '1207'])).toEqual({
      request: { topic: 'orders', partition: 3, offset: 1207 },
    });
    expect(adminRequest('seek', ['--topic=orders', '--partition=0', '--timestamp=2026-11-30T10:00:00+01:00', '--url', 'http://x:1'])).toEqual({
      request: { topic: 'orders', partition: 0, timestamp: '2026-11-30T09:00:00.000Z' },
    });
    expect(adminRequest('seek', ['--topic', 'o', '--partition', '0', '--timestamp', '1764400000000'])).toEqual({
      request: { topic: 'o', partition: 0, timestamp: 1_764_400_000_000 },
    });
  });

  it.each([
    [['--partition', '0', '--offset', '1'], '--topic is required'],
    [['--topic', 'o', '--offset', '1'], '--partition is required'],
    [['--topic', 'o', '--partition', '0'], 'either --offset or --timestamp'],
    [['--topic', 'o', '--partition', '0', '--offset', '1', '--timestamp', '5'], 'either --offset or --timestamp'],
    [['--topic', 'o', '--partition', 'x', '--offset', '1'], 'whole number'],
    [['--topic', 'o', '--partition', '0', '--timestamp', 'noon'], 'ISO-8601'],
    [['--topic', '--partition', '0'], '--topic needs a value'],
    [['--topic', 'o', '--force'], 'unknown argument --force'],
  ])('refuse seek %j with a usage hint', (args, message) => {
    const parsed = adminRequest('seek', args);
    expect('error' in parsed && parsed.error).toContain(message);
  });

  it('turn dlq flags into the filter, --dry-run and --rate for a redrive', () => {
    expect(adminRequest('dlq list', ['--topic', 'orders', '--error-type', 'rejected_by_app', '--http-status', '422', '--limit', '5', '--json'])).toEqual({
      request: { topic: 'orders', errorType: 'rejected_by_app', httpStatus: 422, limit: 5 },
    });
    expect(
      adminRequest('dlq redrive', ['--topic', 'orders', '--partition', '1', '--from-offset', '10', '--to-offset', '20', '--dry-run', '--rate', '50']),
    ).toEqual({
      request: { topic: 'orders', partition: 1, fromOffset: 10, toOffset: 20, dryRun: true, ratePerSecond: 50 },
    });
    expect('error' in adminRequest('dlq list', ['--topic', 'orders', '--dry-run'])).toBe(true);
  });

  it('print what an operator needs to read', () => {
    expect(formatSeek({ topic: 'orders', partition: 0 }, { previous: 5, now: 2 })).toBe('orders-0: 5 → 2 (committed; delivery resumes there)');
    expect(formatRedrive({ matched: 3, redriven: 2, skipped: 1, dryRun: true })).toContain('2 would be redriven (dry run: nothing written), 1 skipped');
    const list = formatDeadLetters({
      dlqTopic: 'orders.dlq',
      records: [deadLetterEntry({ errorType: 'retries_exhausted', httpStatus: 503, attempts: 12, retryTier: '1h', redriveCount: 1 })],
    });
    expect(list.split('\n')[2]).toMatch(/^0:4\s+orders-1@77\s+retries_exhausted\s+503\s+12\s+1h\s+1\s+2026-11-30T00:00:00.000Z\s+order-7$/);
    expect(formatDeadLetters({ dlqTopic: 'orders.dlq', records: [] })).toBe('no matching records in orders.dlq');
  });
});
