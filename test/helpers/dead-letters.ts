import type { DeadLetterEntryBody } from '../../src/api/schemas.js';

/** One `GET /v1/dlq` entry, for the API's and the CLI's tests. */
export function deadLetterEntry(overrides: Partial<DeadLetterEntryBody> = {}): DeadLetterEntryBody {
  return {
    dlqPartition: 0,
    dlqOffset: 4,
    originalTopic: 'orders',
    originalPartition: 1,
    originalOffset: 77,
    errorType: 'rejected_by_app',
    errorMessage: 'HTTP 422',
    httpStatus: 422,
    attempts: 1,
    retryTier: null,
    failedAt: '2026-11-30T00:00:00.000Z',
    redriveCount: 0,
    keyText: 'order-7',
    valueBytes: 12,
    ...overrides,
  };
}
