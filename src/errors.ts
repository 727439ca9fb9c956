/**
 * Every failure Courier reports carries a stable `code` (for logs, metrics and API answers) and
 * whether retrying the same operation can help. Codes are part of the operator-facing contract.
 */
export type CourierErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_FILE_UNREADABLE'
  | 'KAFKA_UNREACHABLE'
  | 'KAFKA_COMMIT_FAILED'
  | 'KAFKA_CONSUMER_FATAL'
  | 'KAFKA_MAX_POLL_EXCEEDED'
  | 'KAFKA_RECORD_TOO_LARGE'
  | 'KAFKA_CLIENT_ERROR'
  | 'DLQ_WRITE_FAILED'
  | 'TOPIC_NOT_FOUND'
  | 'SHUTDOWN';

export interface CourierErrorOptions {
  cause?: unknown;
  retriable?: boolean;
}

export class CourierError extends Error {
  override readonly name = 'CourierError';
  readonly code: CourierErrorCode;
  readonly retriable: boolean;

  constructor(code: CourierErrorCode, message: string, options: CourierErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** One problem found while validating configuration, with what to do about it. */
export interface ConfigProblem {
  readonly setting: string;
  readonly problem: string;
  readonly fix: string;
}

export class ConfigError extends CourierError {
  readonly problems: readonly ConfigProblem[];
  /** Warnings found on the way (e.g. an unknown variable and the name it is close to): often the cause. */
  readonly notes: readonly string[];

  constructor(problems: readonly ConfigProblem[], notes: readonly string[] = []) {
    super(
      'CONFIG_INVALID',
      [
        `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):`,
        ...problems.map((p) => `  - ${p.setting}: ${p.problem}. Fix: ${p.fix}`),
        ...notes.map((note) => `  note: ${note}`),
      ].join('\n'),
    );
    this.problems = problems;
    this.notes = notes;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
