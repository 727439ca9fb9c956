import { describe, expect, it } from 'vitest';
import { fromLibrdkafka, KafkaClientError, kindOf, LIBRDKAFKA } from '../../src/kafka/errors.js';

describe('librdkafka error codes are named where they enter', () => {
  it('maps the transport, all-brokers-down and resolve codes to KAFKA_UNREACHABLE', () => {
    for (const code of [LIBRDKAFKA.TRANSPORT, LIBRDKAFKA.ALL_BROKERS_DOWN, LIBRDKAFKA.RESOLVE]) expect(kindOf(code)).toBe('KAFKA_UNREACHABLE');
  });

  it('names max.poll.interval.ms exceeded and message too large; anything else is a client error', () => {
    expect(kindOf(-147)).toBe('KAFKA_MAX_POLL_EXCEEDED');
    expect(kindOf(10)).toBe('KAFKA_RECORD_TOO_LARGE');
    expect(kindOf(-185)).toBe('KAFKA_CLIENT_ERROR');
    expect(kindOf(undefined)).toBe('KAFKA_CLIENT_ERROR');
  });

  it('keeps the message and librdkafka number, marks fatal errors not retriable, and lets the context name a connect failure', () => {
    const transport = fromLibrdkafka({ code: -195, message: 'broker transport failure' });
    expect(transport).toBeInstanceOf(KafkaClientError);
    expect([transport.code, transport.librdkafkaCode, transport.retriable, transport.message]).toEqual([
      'KAFKA_UNREACHABLE',
      -195,
      true,
      'broker transport failure',
    ]);
    const fatal = fromLibrdkafka({ code: -150, message: 'fenced', isFatal: true });
    expect([fatal.code, fatal.retriable]).toEqual(['KAFKA_CONSUMER_FATAL', false]);
    const connect = fromLibrdkafka(new Error('timed out'), { prefix: 'cannot reach Kafka', code: 'KAFKA_UNREACHABLE' });
    expect([connect.code, connect.message]).toEqual(['KAFKA_UNREACHABLE', 'cannot reach Kafka: timed out']);
  });
});
