import { describe, expect, it } from 'vitest';
import { heapLimitGiven, heapMiBFor, memoryLimit } from '../../src/workers/memory-limit.js';

describe('memoryLimit', () => {
  it.each([
    [268_435_456, 268_435_456],
    [0, undefined],
    [2 ** 64, undefined],
    // cgroup v1 without a limit: 9223372036854771712 (about 2^63), read as a double.
    [Number('9223372036854771712'), undefined],
    [undefined, undefined],
  ])('%s → %s', (constrained, limit) => {
    expect(memoryLimit(constrained)).toBe(limit);
  });
});

describe('heapLimitGiven', () => {
  it('finds the flag in node arguments or NODE_OPTIONS, in either spelling', () => {
    expect(heapLimitGiven(['--max-old-space-size=128'], undefined)).toBe(true);
    expect(heapLimitGiven([], '--enable-source-maps --max_old_space_size=200')).toBe(true);
    expect(heapLimitGiven(['--max-semi-space-size=2'], '--enable-source-maps')).toBe(false);
    expect(heapLimitGiven([], undefined)).toBe(false);
  });
});

describe('heapMiBFor', () => {
  it('gives each process half of its share of the limit, at least 64 MiB', () => {
    expect(heapMiBFor(256 * 1024 * 1024, 1)).toBe(128);
    expect(heapMiBFor(512 * 1024 * 1024, 2)).toBe(128);
    expect(heapMiBFor(100 * 1024 * 1024, 2)).toBe(64);
  });
});
