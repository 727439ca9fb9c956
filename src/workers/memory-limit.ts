/**
 * The container's memory limit and the V8 heap that fits in it. Node sizes V8's heap from the
 * cgroup limit, but never below about 256 MB: in a 256 MiB container the heap may grow to the whole
 * limit before V8 collects hard, and the kernel kills the process first. Half the limit leaves the
 * other half to librdkafka, sockets and Node itself (README: sizing).
 */

/**
 * The limit from Node's `process.constrainedMemory()` (libuv reads the process's own cgroup, v1 or
 * v2): 0, or a number near 2^64 or 2^63, when there is none.
 */
export function memoryLimit(constrained: number | undefined): number | undefined {
  if (constrained === undefined || !Number.isFinite(constrained) || constrained <= 0 || constrained >= 2 ** 60) return undefined;
  return constrained;
}

/** Whether the node flags or NODE_OPTIONS already set the old-space limit (then it is the user's choice). */
export function heapLimitGiven(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) => /^--max[-_]old[-_]space[-_]size(=|$)/.test(flag));
}

/** The old-space limit (MiB) for each of `processes` Node processes sharing `limitBytes`: half of their share, at least 64. */
export function heapMiBFor(limitBytes: number, processes: number): number {
  return Math.max(64, Math.floor(limitBytes / 2 / Math.max(1, processes) / (1024 * 1024)));
}
