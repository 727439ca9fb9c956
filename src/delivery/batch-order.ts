import type { Ordering } from '../config/index.js';

/**
 * Which records of a batch are sent again after an answer (DESIGN A6, pure): those that must be
 * retried, and, so that no record overtakes one it must follow, every later record of the batch
 * that follows one of them: of its partition (`partition` mode; a batch holds one partition) or of
 * its key (`key` mode; a null key follows nothing). `unordered` sends again only what must be
 * retried. Records sent again "whatever the answer listed" for them: their own verdict waits.
 */
export function goAgain(mustRetry: readonly boolean[], keys: readonly (Buffer | null)[], ordering: Ordering): boolean[] {
  if (ordering === 'unordered') return [...mustRetry];
  if (ordering === 'partition') {
    const first = mustRetry.indexOf(true);
    return mustRetry.map((_, index) => first >= 0 && index >= first);
  }
  const heldKeys = new Set<string>();
  return mustRetry.map((retry, index) => {
    const key = keys[index];
    if (key === null || key === undefined) return retry;
    const id = key.toString('latin1');
    if (retry) heldKeys.add(id);
    return retry || heldKeys.has(id);
  });
}

/** The halves a failing batch of n > 1 is sent as next: ⌈n/2⌉ then ⌊n/2⌋, in order. */
export function halves<T>(entries: readonly T[]): [T[], T[]] {
  const cut = Math.ceil(entries.length / 2);
  return [entries.slice(0, cut), entries.slice(cut)];
}
