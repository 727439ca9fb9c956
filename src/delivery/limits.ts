import type { KafkaRecord } from '../record.js';
import type { PreparedPush } from './push.js';

/**
 * What Courier refuses to push, decided before any attempt (pure). Such records go to the DLQ
 * with the reason as `error_type`: the app never sees them, and nothing unbounded is buffered.
 */
export interface PushLimits {
  /** Largest record value pushed, in bytes. */
  readonly maxRecordBytes: number;
  /** Most record headers forwarded as kafka-header-*. */
  readonly maxHeaders: number;
  /** Largest total size of the forwarded kafka-header-* lines (names and encoded values). */
  readonly maxHeaderBytes: number;
}

export interface LimitViolation {
  readonly errorType: 'record_too_large' | 'too_many_headers' | 'headers_too_large';
  readonly message: string;
}

/** The value's size limit alone: all a batch entry (DESIGN A6) has to meet, its headers being in the body. */
export function checkValueSize(record: KafkaRecord, limits: Pick<PushLimits, 'maxRecordBytes'>): LimitViolation | undefined {
  const size = record.value?.length ?? 0;
  if (size <= limits.maxRecordBytes) return undefined;
  return { errorType: 'record_too_large', message: `value is ${size} bytes, above COURIER_MAX_RECORD_BYTES (${limits.maxRecordBytes})` };
}

export function checkLimits(record: KafkaRecord, prepared: PreparedPush, limits: PushLimits): LimitViolation | undefined {
  const tooLarge = checkValueSize(record, limits);
  if (tooLarge) return tooLarge;
  if (prepared.forwardedHeaders > limits.maxHeaders) {
    return { errorType: 'too_many_headers', message: `${prepared.forwardedHeaders} record headers, above COURIER_MAX_HEADERS (${limits.maxHeaders})` };
  }
  if (prepared.forwardedHeaderBytes > limits.maxHeaderBytes) {
    return {
      errorType: 'headers_too_large',
      message: `record headers take ${prepared.forwardedHeaderBytes} bytes as HTTP headers, above COURIER_MAX_HEADER_BYTES (${limits.maxHeaderBytes})`,
    };
  }
  return undefined;
}
