import { LIBRDKAFKA } from './errors.js';

/**
 * What stops Courier from using Kafka, named so an operator knows what to fix. librdkafka's own
 * connect error says only "broker transport failure" for a refused port, a wrong password and an
 * untrusted certificate alike; the cause is in its log lines and error events, read here.
 */
export type KafkaProblemCode =
  | 'kafka_unreachable'
  | 'kafka_auth_failed'
  | 'kafka_tls_failed'
  | 'kafka_not_authorized'
  | 'kafka_token_failed'
  | 'topic_missing'
  | 'dlq_topic_missing'
  | 'retry_topic_missing';

export interface KafkaProblem {
  readonly code: KafkaProblemCode;
  /** librdkafka's words, without its thread and broker prefix. */
  readonly detail: string;
  /** What is refused (`topic orders`, `group billing`, `cluster`), for kafka_not_authorized and topic_missing. */
  readonly resource?: string;
  /** The likely fix, in terms of Courier's settings. */
  readonly fix: string;
}

/** A librdkafka log line as the client emits it (syslog severity: 3 error, 4 warning, 7 debug). */
export interface ClientLogLine {
  readonly severity: number;
  readonly fac: string;
  readonly message: string;
}

const AUTH_FIX =
  'check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD and that KAFKA_SASL_MECHANISM is one the broker enables for this user (SCRAM credentials are per mechanism)';
const TLS_FIX =
  'set KAFKA_SSL_CA_LOCATION to the PEM file of the CA that signed the broker certificate (and check KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM if the certificate does not name the host)';
const UNREACHABLE_FIX =
  'check KAFKA_BOOTSTRAP_SERVERS (host:port of a listener this pod can reach) and KAFKA_SECURITY_PROTOCOL (a TLS listener spoken to in plaintext closes the connection)';

/** The Kafka ACLs Courier needs, by the resource a refusal names. */
function aclFix(resource: string): string {
  if (resource.startsWith('group ')) return `grant the principal READ on ${resource} (Courier commits offsets in its group)`;
  if (resource === 'cluster')
    return 'grant the principal IDEMPOTENT_WRITE on the cluster (the DLQ producer is idempotent, so no write is ever duplicated) and WRITE on the DLQ topics';
  if (resource.startsWith('topic ')) return `grant the principal READ and DESCRIBE on ${resource} (a source topic) or WRITE and DESCRIBE (a DLQ topic)`;
  return 'grant the principal READ on the topics and the group, WRITE on the DLQ topics, IDEMPOTENT_WRITE on the cluster';
}

/** A source topic the cluster does not have. */
export function topicMissing(topic: string, detail: string): KafkaProblem {
  return { code: 'topic_missing', detail, resource: `topic ${topic}`, fix: `create topic ${topic} (or fix COURIER_TOPICS)` };
}

/** A DLQ topic the cluster does not have: said before a record needs it. */
export function dlqTopicMissing(topic: string, detail: string): KafkaProblem {
  return { code: 'dlq_topic_missing', detail, resource: `DLQ topic ${topic}`, fix: `create topic ${topic} (or set COURIER_DLQ_TOPIC to an existing topic)` };
}

/** A retry tier's topic the cluster does not have. */
export function retryTopicMissing(topic: string, detail: string): KafkaProblem {
  return {
    code: 'retry_topic_missing',
    detail,
    resource: `retry topic ${topic}`,
    fix: `create topic ${topic} (with the partitions and retention of its source), or change COURIER_RETRY_TIERS / COURIER_RETRY_TOPIC`,
  };
}

/** librdkafka prefixes lines with "[thrd:…]: broker/id: "; the rest is what happened. */
export function withoutPrefix(message: string): string {
  return message.replace(/^\[thrd:[^\]]*\]:\s*/, '').replace(/^\S+\/(?:bootstrap|\d+):\s+/, '');
}

function authorizationResource(text: string): string | undefined {
  if (/cluster authorization failed/i.test(text)) return 'cluster';
  const group = /group authorization failed(?:[^"']*["']([^"']+)["'])?/i.exec(text);
  if (group) return group[1] ? `group ${group[1]}` : 'group';
  const topic = /topic authorization failed(?:[^"']*["']([^"']+)["'])?/i.exec(text);
  if (topic) return topic[1] ? `topic ${topic[1]}` : 'topic';
  return undefined;
}

/** What an error from the client (an error event, a failed connect or commit) says is wrong, if anything. */
export function diagnoseError(error: { code?: number | undefined; message: string }, topic?: string): KafkaProblem | undefined {
  const detail = withoutPrefix(error.message);
  switch (error.code) {
    case LIBRDKAFKA.AUTHENTICATION:
    case LIBRDKAFKA.SASL_AUTHENTICATION_FAILED:
      return { code: 'kafka_auth_failed', detail, fix: AUTH_FIX };
    case LIBRDKAFKA.SSL:
      return { code: 'kafka_tls_failed', detail, fix: TLS_FIX };
    case LIBRDKAFKA.TOPIC_AUTHORIZATION_FAILED: {
      const resource = topic ? `topic ${topic}` : (authorizationResource(detail) ?? 'topic');
      return { code: 'kafka_not_authorized', detail, resource, fix: aclFix(resource) };
    }
    case LIBRDKAFKA.GROUP_AUTHORIZATION_FAILED:
      return { code: 'kafka_not_authorized', detail, resource: authorizationResource(detail) ?? 'group', fix: aclFix('group') };
    case LIBRDKAFKA.CLUSTER_AUTHORIZATION_FAILED:
      return { code: 'kafka_not_authorized', detail, resource: 'cluster', fix: aclFix('cluster') };
    case LIBRDKAFKA.UNKNOWN_TOPIC:
    case LIBRDKAFKA.UNKNOWN_TOPIC_OR_PART:
      return topic ? topicMissing(topic, detail) : diagnoseText(detail);
    default:
      return diagnoseText(detail);
  }
}

/** What a librdkafka log line says is wrong, if anything (warnings and errors only). */
export function diagnoseLog(line: ClientLogLine): KafkaProblem | undefined {
  if (line.severity > 4) return undefined;
  return diagnoseText(withoutPrefix(line.message));
}

function diagnoseText(detail: string): KafkaProblem | undefined {
  const missing = /topic not available: ([^\s:]+)|Unknown topic[^:]*: ([^\s:]+)/i.exec(detail);
  const missingTopic = missing?.[1] ?? missing?.[2];
  if (missingTopic) return topicMissing(missingTopic, detail);
  // The binding's error events say only "authentication failure" / "ssl error"; the log lines say more.
  if (/SASL authentication error|Authentication failed|authentication failure|invalid credentials|SASL .*(handshake|mechanism).*failed/i.test(detail))
    return { code: 'kafka_auth_failed', detail, fix: AUTH_FIX };
  if (/SSL handshake failed|certificate verify failed|SSL routines|ssl\.ca\.location|^ssl error$/i.test(detail))
    return { code: 'kafka_tls_failed', detail, fix: TLS_FIX };
  const resource = authorizationResource(detail);
  if (resource) return { code: 'kafka_not_authorized', detail, resource, fix: aclFix(resource) };
  if (/Connection refused|Connect to .* failed|Failed to resolve|Name or service not known|Connection reset|Disconnected/i.test(detail))
    return { code: 'kafka_unreachable', detail, fix: UNREACHABLE_FIX };
  return undefined;
}

/**
 * librdkafka's syslog severity as a pino level. Its errors (3) are a broker connection failing, which
 * it retries: a warning; what Courier concludes from them (readiness, its own log) is the error.
 */
export function logLevelOf(severity: number): 'error' | 'warn' | 'info' | 'debug' {
  if (severity <= 2) return 'error';
  if (severity <= 4) return 'warn';
  if (severity <= 6) return 'info';
  return 'debug';
}
