import { describe, expect, it } from 'vitest';
import { BASE, load, problemsOf, settingsOf } from './helpers.js';

const WORKER = { COURIER_WORKER_INDEX: '1', COURIER_WORKER_COUNT: '3' };

describe('loadConfig: workers (COURIER_WORKERS)', () => {
  it('is unset by default (main then follows the CPU limit) and takes 1–64', () => {
    expect(load(BASE).workers).toBeUndefined();
    expect(load({ ...BASE, COURIER_WORKERS: '2' }).workers).toBe(2);
    expect(settingsOf(problemsOf({ ...BASE, COURIER_WORKERS: '0' }))).toEqual(['COURIER_WORKERS']);
    expect(settingsOf(problemsOf({ ...BASE, COURIER_WORKERS: '65' }))).toEqual(['COURIER_WORKERS']);
  });

  it('is not a worker unless the supervisor said so', () => {
    expect(load(BASE).worker).toBeUndefined();
    expect(load({ ...BASE, COURIER_WORKER_INDEX: '3', COURIER_WORKER_COUNT: '3' }).worker).toBeUndefined();
    expect(load({ ...BASE, COURIER_WORKER_INDEX: '0', COURIER_WORKER_COUNT: '1' }).worker).toBeUndefined();
  });

  it('gives a worker its share of the app-facing limits, so N workers push no more than one Courier would', () => {
    const config = load({ ...BASE, ...WORKER, COURIER_MAX_IN_FLIGHT: '256', COURIER_RATE_LIMIT: '100' });
    expect(config.worker).toEqual({ index: 1, count: 3 });
    expect(config.maxInFlight).toBe(86);
    expect(config.routes[0]?.rateLimit).toBe(34);
    // No limit stays no limit; a limit never rounds down to nothing.
    expect(load({ ...BASE, ...WORKER }).routes[0]?.rateLimit).toBe(0);
    expect(load({ ...BASE, ...WORKER, COURIER_MAX_IN_FLIGHT: '1' }).maxInFlight).toBe(1);
  });

  it('makes each worker its own static member: group.instance.id and client.id get the index', () => {
    const config = load({ ...BASE, ...WORKER, COURIER_INSTANCE_ID: 'orders-7f9c' });
    expect(config.instanceId).toBe('orders-7f9c-1');
    expect(config.consumer['group.instance.id']).toBe('orders-7f9c-1');
    expect(config.consumer['client.id']).toBe('courier-orders-7f9c-1');
    expect(load({ ...BASE, COURIER_INSTANCE_ID: 'orders-7f9c' }).consumer['group.instance.id']).toBe('orders-7f9c');
  });

  it('does not warn about the variables the supervisor sets', () => {
    expect(load({ ...BASE, ...WORKER }).warnings).toEqual([]);
  });
});
