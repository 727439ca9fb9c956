import { type Static, Type } from '@sinclair/typebox';

/** The admin routes' schemas (pause, resume, seek, DLQ list and redrive); schemas.ts re-exports them. */

export const TopicPartitionRef = Type.Object({ topic: Type.String(), partition: Type.Integer({ minimum: 0 }) });

export const PauseRequest = Type.Object(
  {
    topic: Type.String({ minLength: 1, maxLength: 249 }),
    partitions: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0, maximum: 1_000_000 }), {
        maxItems: 1000,
        description: 'omitted: every partition of the topic this instance owns',
      }),
    ),
  },
  { additionalProperties: false },
);
export type PauseRequestBody = Static<typeof PauseRequest>;

export const PauseResult = Type.Object({
  changed: Type.Array(TopicPartitionRef, { description: 'partitions whose state this request changed' }),
  notAssigned: Type.Array(TopicPartitionRef, { description: 'requested partitions this instance does not own (nothing done for them)' }),
});
export type PauseResultBody = Static<typeof PauseResult>;

const seekTarget = { topic: Type.String({ minLength: 1, maxLength: 249 }), partition: Type.Integer({ minimum: 0, maximum: 1_000_000 }) };
export const SeekRequest = Type.Union(
  [
    Type.Object(
      { ...seekTarget, offset: Type.Integer({ minimum: 0, description: 'the next record to deliver' }) },
      { additionalProperties: false, title: 'to an offset' },
    ),
    Type.Object(
      {
        ...seekTarget,
        timestamp: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ format: 'date-time' })], {
          description: 'the first record at or after this time (epoch ms, or ISO-8601) is delivered next; past the end: the end',
        }),
      },
      { additionalProperties: false, title: 'to a time' },
    ),
  ],
  { description: 'a partition and either offset or timestamp' },
);
export type SeekRequestBody = Static<typeof SeekRequest> & { offset?: number; timestamp?: number | string };

/** A Kafka topic name (letters, digits, `.`, `_`, `-`). */
function topicName(description: string) {
  return Type.String({ pattern: '^[a-zA-Z0-9._-]{1,249}$', description });
}

export const SeekResult = Type.Object({
  previous: Type.Union([Type.Integer(), Type.Null()], {
    description: 'where the partition stood: the offset that would have been committed (null: nothing committed yet)',
  }),
  now: Type.Integer({ description: 'the new position, committed: the next record delivered' }),
});
export type SeekResultBody = Static<typeof SeekResult>;

export const NotAssigned = Type.Object(
  {
    error: Type.Literal('notAssigned'),
    message: Type.String(),
    partitions: Type.Array(TopicPartitionRef),
  },
  { additionalProperties: false },
);

export const RedriveRequest = Type.Object(
  {
    topic: Type.String({ minLength: 1, maxLength: 249, description: 'a source topic this Courier consumes: its DLQ is read' }),
    dlqTopic: Type.Optional(topicName("the DLQ topic to read; default: the route's")),
    errorType: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'only records with this error_type' })),
    httpStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'only records with this http_status' })),
    partition: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'only this DLQ partition' })),
    fromOffset: Type.Optional(Type.Integer({ minimum: 0, description: 'first DLQ offset read, in each partition read (inclusive)' })),
    toOffset: Type.Optional(Type.Integer({ minimum: 0, description: 'last DLQ offset read, in each partition read (inclusive)' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'at most this many matching records (default 1000)' })),
    dryRun: Type.Optional(Type.Boolean({ description: 'count only, write nothing' })),
    ratePerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'records written per second at most (default 100)' })),
  },
  { additionalProperties: false },
);
export type RedriveRequestBody = Static<typeof RedriveRequest>;

export const RedriveResult = Type.Object({
  matched: Type.Integer({ minimum: 0, description: 'records that passed the filters: redriven + skipped' }),
  redriven: Type.Integer({ minimum: 0, description: 'written to their original_topic (0 in a dry run)' }),
  skipped: Type.Integer({ minimum: 0, description: 'not written: redriven 3 times already (the loop guard), or without an original_topic' }),
  dryRun: Type.Boolean(),
});
export type RedriveResultBody = Static<typeof RedriveResult>;

export const DeadLetterQuery = Type.Object(
  {
    topic: Type.String({ minLength: 1, maxLength: 249 }),
    dlqTopic: Type.Optional(topicName("the DLQ topic to read; default: the route's")),
    errorType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    httpStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    partition: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    fromOffset: Type.Optional(Type.Integer({ minimum: 0 })),
    toOffset: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'default 100' })),
  },
  { additionalProperties: false },
);
export type DeadLetterQueryParams = Static<typeof DeadLetterQuery>;

export const DeadLetterEntry = Type.Object({
  dlqPartition: Type.Integer(),
  dlqOffset: Type.Integer(),
  originalTopic: Type.Union([Type.String(), Type.Null()]),
  originalPartition: Type.Union([Type.Integer(), Type.Null()]),
  originalOffset: Type.Union([Type.Integer(), Type.Null()]),
  errorType: Type.Union([Type.String(), Type.Null()]),
  errorMessage: Type.Union([Type.String(), Type.Null()]),
  httpStatus: Type.Union([Type.Integer(), Type.Null()]),
  attempts: Type.Union([Type.Integer(), Type.Null()]),
  retryTier: Type.Union([Type.String(), Type.Null()]),
  failedAt: Type.Union([Type.String(), Type.Null()]),
  redriveCount: Type.Integer({ minimum: 0 }),
  keyText: Type.Union([Type.String(), Type.Null()], { description: 'the key, when it is UTF-8 text' }),
  valueBytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'size of the value; null for a tombstone or an omitted value' }),
});
export type DeadLetterEntryBody = Static<typeof DeadLetterEntry>;

export const DeadLetterList = Type.Object({ dlqTopic: Type.String(), records: Type.Array(DeadLetterEntry) });
export type DeadLetterListBody = Static<typeof DeadLetterList>;
