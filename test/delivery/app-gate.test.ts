import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppGate } from '../../src/delivery/app-gate.js';

const url = new URL('http://127.0.0.1:9/events');

/** Whether the promise has settled, after letting pending microtasks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe('AppGate', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is open at first: whenOpen resolves at once and no probe runs', async () => {
    const probe = vi.fn(async () => true);
    const gate = new AppGate({ url, probe });
    expect(gate.isUp).toBe(true);
    expect(gate.downReason).toBeUndefined();
    expect(await settled(gate.whenOpen())).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe).not.toHaveBeenCalled();
  });

  it('markDown closes the gate; a failing then succeeding probe opens it and reports false then true', async () => {
    const results = [false, false, true];
    const probe = vi.fn(async (_url: URL, _timeoutMs: number) => results.shift() ?? true);
    const onChange = vi.fn();
    const gate = new AppGate({ url, probe, onChange, probeInitialMs: 100, probeMaxMs: 1000 });

    gate.markDown('ECONNREFUSED');
    expect(gate.isUp).toBe(false);
    expect(gate.downReason).toBe('ECONNREFUSED');
    expect(onChange.mock.calls).toEqual([[false, 'ECONNREFUSED']]);

    const waiter = gate.whenOpen();
    expect(await settled(waiter)).toBe(false);

    await vi.advanceTimersByTimeAsync(100);
    expect(probe).toHaveBeenCalledTimes(1);
    expect(probe.mock.calls[0]![0]).toBe(url);
    expect(await settled(waiter)).toBe(false);

    // Backoff doubles: next probe 200 ms later, then 400 ms.
    await vi.advanceTimersByTimeAsync(199);
    expect(probe).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(probe).toHaveBeenCalledTimes(2);
    expect(gate.isUp).toBe(false);

    await vi.advanceTimersByTimeAsync(400);
    expect(probe).toHaveBeenCalledTimes(3);
    expect(await settled(waiter)).toBe(true);
    expect(gate.isUp).toBe(true);
    expect(gate.downReason).toBeUndefined();
    expect(onChange.mock.calls).toEqual([
      [false, 'ECONNREFUSED'],
      [true, undefined],
    ]);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe).toHaveBeenCalledTimes(3);
  });

  it('caps the probe backoff at probeMaxMs', async () => {
    const probe = vi.fn(async () => false);
    const gate = new AppGate({ url, probe, probeInitialMs: 100, probeMaxMs: 300 });
    gate.markDown('ENOTFOUND');
    await vi.advanceTimersByTimeAsync(100 + 200 + 300);
    expect(probe).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(300);
    expect(probe).toHaveBeenCalledTimes(4);
    await vi.advanceTimersByTimeAsync(300);
    expect(probe).toHaveBeenCalledTimes(5);
    gate.stop();
  });

  it('markDown is idempotent while down: one onChange, one prober, first reason kept', async () => {
    const probe = vi.fn(async () => false);
    const onChange = vi.fn();
    const gate = new AppGate({ url, probe, onChange, probeInitialMs: 100, probeMaxMs: 100 });
    gate.markDown('ECONNREFUSED');
    const first = gate.whenOpen();
    gate.markDown('ENOTFOUND');
    gate.markDown('ECONNREFUSED');
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(gate.downReason).toBe('ECONNREFUSED');
    expect(gate.whenOpen()).toBe(first);
    await vi.advanceTimersByTimeAsync(500);
    expect(probe).toHaveBeenCalledTimes(5);
    gate.stop();
  });

  it('stop() releases every waiter without reporting the app up, and stops probing', async () => {
    const probe = vi.fn(async () => false);
    const onChange = vi.fn();
    const gate = new AppGate({ url, probe, onChange, probeInitialMs: 100 });
    gate.markDown('ECONNREFUSED');
    const waiters = [gate.whenOpen(), gate.whenOpen()];
    await vi.advanceTimersByTimeAsync(100);
    expect(probe).toHaveBeenCalledTimes(1);
    gate.stop();
    expect(await settled(Promise.all(waiters))).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probe).toHaveBeenCalledTimes(1);
    expect(onChange.mock.calls).toEqual([[false, 'ECONNREFUSED']]);
  });

  it('markDown after stop() does nothing', async () => {
    const probe = vi.fn(async () => true);
    const onChange = vi.fn();
    const gate = new AppGate({ url, probe, onChange });
    gate.stop();
    gate.markDown('ECONNREFUSED');
    expect(gate.isUp).toBe(true);
    expect(onChange).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe).not.toHaveBeenCalled();
  });

  it('can go down again after coming back up', async () => {
    const probe = vi.fn(async () => true);
    const onChange = vi.fn();
    const gate = new AppGate({ url, probe, onChange, probeInitialMs: 50 });
    gate.markDown('ECONNREFUSED');
    await vi.advanceTimersByTimeAsync(50);
    expect(gate.isUp).toBe(true);
    gate.markDown('EHOSTUNREACH');
    expect(gate.isUp).toBe(false);
    const waiter = gate.whenOpen();
    await vi.advanceTimersByTimeAsync(50);
    expect(await settled(waiter)).toBe(true);
    expect(onChange.mock.calls).toEqual([
      [false, 'ECONNREFUSED'],
      [true, undefined],
      [false, 'EHOSTUNREACH'],
      [true, undefined],
    ]);
  });
});
