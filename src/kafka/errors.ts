import { CourierError, type CourierErrorCode } from '../errors.js';

/**
 * librdkafka's numeric error codes, named where they enter Courier: no file outside kafka/ decodes
 * a number. (librdkafka's `rdkafka.h`: negative codes are the client's own, positive ones the
 * broker's.)
 */
export const LIBRDKAFKA = Object.freeze({
  UNKNOWN_TOPIC_OR_PART: 3,
  MSG_SIZE_TOO_LARGE: 10,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  SASL_AUTHENTICATION_FAILED: 58,
  FATAL: -150,
  MAX_POLL_EXCEEDED: -147,
  AUTHENTICATION: -169,
  NO_OFFSET: -168,
  REVOKE_PARTITIONS: -174,
  ASSIGN_PARTITIONS: -175,
  SSL: -181,
  TIMED_OUT: -185,
  ALL_BROKERS_DOWN: -187,
  UNKNOWN_TOPIC: -188,
  PARTITION_EOF: -191,
  RESOLVE: -193,
  TRANSPORT: -195,
});

/** A librdkafka error as Courier reports it: a stable code, and librdkafka's number for the log. */
export class KafkaClientError extends CourierError {
  readonly librdkafkaCode: number | undefined;
  constructor(code: CourierErrorCode, message: string, options: { cause?: unknown; retriable?: boolean; librdkafkaCode?: number | undefined }) {
    super(code, message, options);
    this.librdkafkaCode = options.librdkafkaCode;
  }
}

/** The Courier code for a librdkafka error code. */
export function kindOf(librdkafkaCode: number | undefined): CourierErrorCode {
  switch (librdkafkaCode) {
    case LIBRDKAFKA.TRANSPORT:
    case LIBRDKAFKA.ALL_BROKERS_DOWN:
    case LIBRDKAFKA.RESOLVE:
      return 'KAFKA_UNREACHABLE';
    case LIBRDKAFKA.MAX_POLL_EXCEEDED:
      return 'KAFKA_MAX_POLL_EXCEEDED';
    case LIBRDKAFKA.MSG_SIZE_TOO_LARGE:
      return 'KAFKA_RECORD_TOO_LARGE';
    default:
      return 'KAFKA_CLIENT_ERROR';
  }
}

/** Wraps an error from the client. `code` overrides the kind when the context knows better (connecting). */
export function fromLibrdkafka(error: unknown, options: { prefix?: string; code?: CourierErrorCode; fatal?: boolean } = {}): KafkaClientError {
  const raw = error as { code?: unknown; message?: unknown; isFatal?: boolean } | undefined;
  const librdkafkaCode = typeof raw?.code === 'number' ? raw.code : undefined;
  const message = typeof raw?.message === 'string' ? raw.message : String(error);
  const fatal = options.fatal ?? Boolean(raw?.isFatal);
  const code = fatal ? 'KAFKA_CONSUMER_FATAL' : (options.code ?? kindOf(librdkafkaCode));
  return new KafkaClientError(code, options.prefix ? `${options.prefix}: ${message}` : message, { cause: error, retriable: !fatal, librdkafkaCode });
}
