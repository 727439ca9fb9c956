import type { Operations } from './server.js';

/** Operations of a Courier with nothing assigned and no Kafka: for the OpenAPI document, and a base for stubs. */
export const OFFLINE_OPERATIONS: Operations = Object.freeze({
  failure: () => undefined,
  notReadyReasons: () => [],
  lag: async () => ({ partitions: [], totalLag: 0, refreshedAt: null }),
  assignment: () => [],
  routes: () => [],
  rebalances: () => ({ events: [], counts: { assign: 0, revoke: 0, lost: 0 } }),
  adminPause: () => null,
  seek: async () => ({ unknownTopic: true as const }),
  redrive: async () => ({ unknownTopic: true as const }),
  deadLetters: async () => ({ unknownTopic: true as const }),
});
