import { describe, expect, it } from 'vitest';
import { diagnoseError, diagnoseLog, logLevelOf, withoutPrefix } from '../../src/kafka/diagnosis.js';

// librdkafka 2.15's own words, as its clients log them.
const REFUSED = '[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)';
const BAD_PASSWORD =
  '[thrd:sasl_ssl://127.0.0.1:41117/bootstrap]: sasl_ssl://127.0.0.1:41117/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 305ms in state AUTH_REQ)';
const BAD_CA =
  '[thrd:ssl://127.0.0.1:9093/bootstrap]: ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 5ms in state SSL_HANDSHAKE)';

describe('diagnoseLog', () => {
  it('names a refused connection, a refused password and an untrusted certificate apart, each with its fix', () => {
    expect(diagnoseLog({ severity: 3, fac: 'FAIL', message: REFUSED })).toMatchObject({
      code: 'kafka_unreachable',
      detail: 'Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)',
      fix: expect.stringContaining('KAFKA_BOOTSTRAP_SERVERS'),
    });
    expect(diagnoseLog({ severity: 3, fac: 'FAIL', message: BAD_PASSWORD })).toMatchObject({
      code: 'kafka_auth_failed',
      detail: expect.stringMatching(/^SASL authentication error: .*invalid credentials/),
      fix: expect.stringContaining('KAFKA_SASL_PASSWORD'),
    });
    expect(diagnoseLog({ severity: 3, fac: 'FAIL', message: BAD_CA })).toMatchObject({
      code: 'kafka_tls_failed',
      detail: expect.stringMatching(/^SSL handshake failed: .*certificate verify failed/),
      fix: expect.stringContaining('KAFKA_SSL_CA_LOCATION'),
    });
  });

  it("reads librdkafka 2.15's other forms: the bare TLS line, the FATAL line of an idempotent producer refused by the cluster", () => {
    const bareTls =
      '[thrd:ssl://127.0.0.1:9093/bootstrap]: ssl://127.0.0.1:9093/bootstrap: error:0A000086:SSL routines::certificate verify failed (after 25ms in state SSL_HANDSHAKE)';
    expect(diagnoseLog({ severity: 3, fac: 'FAIL', message: bareTls })?.code).toBe('kafka_tls_failed');
    const fatal =
      '[thrd:main]: Fatal error: Broker: Cluster authorization failed: Failed to acquire idempotence PID from broker sasl_plaintext://127.0.0.1:33107/1: Broker: Cluster authorization failed';
    expect(diagnoseLog({ severity: 0, fac: 'FATAL', message: fatal })).toMatchObject({ code: 'kafka_not_authorized', resource: 'cluster' });
  });

  it('reads only warnings and errors: debug lines never raise a problem', () => {
    expect(diagnoseLog({ severity: 7, fac: 'BROKERFAIL', message: REFUSED })).toBeUndefined();
    expect(diagnoseLog({ severity: 6, fac: 'INIT', message: 'librdkafka v2.15.1 initialized' })).toBeUndefined();
  });
});

describe('diagnoseError', () => {
  it('names the refused resource and the ACL to grant', () => {
    expect(diagnoseError({ code: 29, message: 'Broker: Topic authorization failed' }, 'orders.dlq')).toMatchObject({
      code: 'kafka_not_authorized',
      resource: 'topic orders.dlq',
      fix: expect.stringContaining('WRITE'),
    });
    expect(diagnoseError({ code: 30, message: 'Broker: Group authorization failed' })).toMatchObject({ code: 'kafka_not_authorized', resource: 'group' });
    // The idempotent DLQ producer's start on a cluster without IDEMPOTENT_WRITE for the principal.
    expect(
      diagnoseError({ code: -150, message: 'Fatal error: Broker: Cluster authorization failed: Failed to acquire transactional PID from broker' }),
    ).toMatchObject({
      code: 'kafka_not_authorized',
      resource: 'cluster',
      fix: expect.stringContaining('IDEMPOTENT_WRITE'),
    });
  });

  it("names the binding's terse error events (code -1): authentication failure, ssl error", () => {
    expect(diagnoseError({ code: -1, message: 'authentication failure' })?.code).toBe('kafka_auth_failed');
    expect(diagnoseError({ code: -1, message: 'ssl error' })?.code).toBe('kafka_tls_failed');
  });

  it('names a subscribed topic that does not exist', () => {
    expect(diagnoseError({ code: 3, message: 'Subscribed topic not available: orders: Broker: Unknown topic or partition' })).toMatchObject({
      code: 'topic_missing',
      resource: 'topic orders',
      fix: 'create topic orders (or fix COURIER_TOPICS)',
    });
  });

  it('says nothing about errors that name no cause', () => {
    expect(diagnoseError({ code: -185, message: 'Local: Timed out' })).toBeUndefined();
    expect(diagnoseError({ code: -1, message: 'broker transport failure' })).toBeUndefined();
  });
});

describe('withoutPrefix and logLevelOf', () => {
  it("drops librdkafka's thread and broker prefix, keeps the rest", () => {
    expect(withoutPrefix('[thrd:main]: Starting re-bootstrap sequence')).toBe('Starting re-bootstrap sequence');
    expect(withoutPrefix('plain text: with a colon')).toBe('plain text: with a colon');
  });

  it('maps syslog severities to log levels: a failed broker connection (3) is a warning, retried by librdkafka', () => {
    expect([0, 2, 3, 4, 5, 6, 7].map(logLevelOf)).toEqual(['error', 'error', 'warn', 'warn', 'info', 'info', 'debug']);
  });
});
