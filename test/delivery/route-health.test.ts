import { describe, expect, it } from 'vitest';
import { RouteHealth } from '../../src/delivery/route-health.js';

describe('RouteHealth: outage', () => {
  it('opens after outageAfterMs of failures with no success, and the first success closes it', () => {
    const health = new RouteHealth(30_000);
    health.failed(1_000, 'http_503');
    expect(health.inOutage(30_999)).toBe(false);
    expect(health.condition(30_999)).toEqual({ state: 'ok' });
    expect(health.inOutage(31_000)).toBe(true);
    expect(health.held(31_000)).toBe(true);
    health.failed(40_000, 'http_502');
    expect(health.condition(40_000)).toEqual({ state: 'app_failing', since: 1_000, reason: 'http_502' });
    health.ack(41_000);
    expect(health.inOutage(41_000)).toBe(false);
    expect(health.condition(41_000)).toEqual({ state: 'ok' });
  });

  it('never opens for a poison record among successes: every success restarts the clock', () => {
    const health = new RouteHealth(30_000);
    for (let t = 0; t < 600_000; t += 10_000) {
      health.failed(t, 'http_500');
      health.ack(t + 5_000);
      expect(health.inOutage(t + 9_999)).toBe(false);
    }
  });
});

describe('RouteHealth: misroute', () => {
  it('is misrouted from the first misroute answer until a 2xx, reporting the latest status and Location', () => {
    const health = new RouteHealth(30_000);
    health.misrouted(100, 404, undefined);
    health.misrouted(200, 307, 'http://app/orders/');
    expect(health.condition(300)).toEqual({ state: 'app_misrouted', since: 100, status: 307, location: 'http://app/orders/' });
    expect(health.held(300)).toBe(true);
    expect(health.succeededSince(100)).toBe(false);
    health.ack(400);
    expect(health.succeededSince(100)).toBe(true);
    expect(health.condition(400)).toEqual({ state: 'ok' });
  });

  it('wakes whoever waits for the next success', async () => {
    const health = new RouteHealth(30_000);
    let woken = false;
    const waiting = health.nextSuccess().then(() => {
      woken = true;
    });
    health.failed(1, 'timeout');
    await Promise.resolve();
    expect(woken).toBe(false);
    health.ack(2);
    await waiting;
    expect(woken).toBe(true);
  });
});
