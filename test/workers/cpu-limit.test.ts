import { describe, expect, it } from 'vitest';
import { cpuLimit, defaultWorkers } from '../../src/workers/cpu-limit.js';

describe('cpuLimit', () => {
  it.each([
    [{ cpuMax: '200000 100000\n' }, 2],
    [{ cpuMax: '150000 100000' }, 1.5],
    [{ cpuMax: '50000 100000' }, 0.5],
    [{ cpuMax: 'max 100000\n' }, undefined],
    [{ cpuMax: '' }, undefined],
    [{ cfsQuotaUs: '300000\n', cfsPeriodUs: '100000\n' }, 3],
    [{ cfsQuotaUs: '-1', cfsPeriodUs: '100000' }, undefined],
    [{}, undefined],
  ])('%j → %s', (files, limit) => {
    expect(cpuLimit(files)).toBe(limit);
  });
});

describe('defaultWorkers', () => {
  it('is one per whole CPU of the limit, at least one, and one without a limit', () => {
    expect(defaultWorkers(undefined)).toBe(1);
    expect(defaultWorkers(0.5)).toBe(1);
    expect(defaultWorkers(1.5)).toBe(1);
    expect(defaultWorkers(2)).toBe(2);
    expect(defaultWorkers(4.9)).toBe(4);
    expect(defaultWorkers(500)).toBe(64);
  });
});
