import type { Logger } from 'pino';
import { type ClientLogLine, diagnoseError, diagnoseLog, type KafkaProblem, logLevelOf } from './diagnosis.js';

/** Which of Courier's Kafka clients saw it. */
export type KafkaClientName = 'consumer' | 'DLQ producer' | 'lag reader' | 'DLQ reader';

/** What a client that reached the cluster and was accepted no longer has. */
const CONNECTION_PROBLEMS: readonly KafkaProblem['code'][] = ['kafka_unreachable', 'kafka_auth_failed', 'kafka_tls_failed'];

/** A problem not seen again for this long is over (librdkafka repeats them on every reconnect, at most every 10 s). */
const PROBLEM_EXPIRES_MS = 30_000;
/** The same problem is logged again at most this often. */
const RELOG_MS = 30_000;

interface Seen {
  readonly client: KafkaClientName;
  problem: KafkaProblem;
  readonly since: number;
  lastSeen: number;
  loggedAt: number;
}

/**
 * What Courier's Kafka clients found wrong, for `/readyz` and the log: each client's librdkafka log
 * lines and errors are read here (kafka/diagnosis.ts names them), librdkafka's own lines go to
 * Courier's log at a mapped level, and a client that works again (`healthy`) clears its problems.
 */
export class KafkaConditions {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly logger: Logger,
    private readonly bootstrapServers: string,
    private readonly now: () => number = Date.now,
    /** Fixes that know the configuration better than librdkafka's words do. */
    private readonly fixes: {
      /** When the address itself is the likely mistake (config/kafka.ts bootstrapHint). */
      readonly unreachable?: string | undefined;
      /** For the configured SASL mechanism (a refused OAUTHBEARER token is no password problem). */
      readonly auth?: string | undefined;
    } = {},
  ) {}

  /** librdkafka's own log line: into Courier's log, and read for a cause. */
  clientLog(client: KafkaClientName, line: ClientLogLine): void {
    this.logger[logLevelOf(line.severity)]({ kafka: { client, facility: line.fac } }, `librdkafka: ${line.message}`);
    const problem = diagnoseLog(line);
    if (problem) this.report(client, problem);
  }

  /** An error from the client; returns what it means, when it names a cause. */
  clientError(client: KafkaClientName, error: { code?: number | undefined; message: string }, topic?: string): KafkaProblem | undefined {
    const problem = diagnoseError(error, topic);
    if (problem) this.report(client, problem);
    return problem;
  }

  report(client: KafkaClientName, problem: KafkaProblem): void {
    const now = this.now();
    const key = `${client}|${problem.code}|${problem.resource ?? ''}`;
    const known = this.seen.get(key);
    if (known) {
      // librdkafka says the same thing twice: a detailed log line and a terse error event. Keep the detail.
      if (problem.detail.length >= known.problem.detail.length) known.problem = problem;
      known.lastSeen = now;
      if (now - known.loggedAt < RELOG_MS) return;
      known.loggedAt = now;
      this.log(known, now);
      return;
    }
    // A more specific cause replaces "unreachable": a refused password also drops the connection.
    if (problem.code !== 'kafka_unreachable') this.seen.delete(`${client}|kafka_unreachable|`);
    else if ([...this.seen.values()].some((s) => s.client === client && (s.problem.code === 'kafka_auth_failed' || s.problem.code === 'kafka_tls_failed')))
      return;
    const entry: Seen = { client, problem, since: now, lastSeen: now, loggedAt: now };
    this.seen.set(key, entry);
    this.log(entry, now);
  }

  /**
   * The client works (connected, fetched, wrote): its connection problems are over. Problems of one
   * resource (a missing topic, an ACL) are not: another topic working says nothing of it; a check
   * (`checked`) or expiry clears them.
   */
  healthy(client: KafkaClientName, codes: readonly KafkaProblem['code'][] = CONNECTION_PROBLEMS): void {
    for (const [key, entry] of this.seen) {
      if (entry.client !== client || !codes.includes(entry.problem.code)) continue;
      this.seen.delete(key);
      this.logger.info({ kafka: { client, code: entry.problem.code } }, `${client}: ${entry.problem.code} is over`);
    }
  }

  /**
   * The result of a check of `code` for several resources: reports the failing ones, clears the
   * others (a topic created since is no longer missing).
   */
  checked(client: KafkaClientName, code: KafkaProblem['code'], failing: readonly KafkaProblem[]): void {
    const keep = new Set(failing.map((problem) => `${client}|${code}|${problem.resource ?? ''}`));
    for (const [key, entry] of this.seen) {
      if (entry.client !== client || entry.problem.code !== code || keep.has(key)) continue;
      this.seen.delete(key);
      this.logger.info({ kafka: { client, code, resource: entry.problem.resource } }, `${entry.problem.resource ?? code}: ${code} is over`);
    }
    for (const problem of failing) this.report(client, problem);
  }

  /** The problems seen lately, as `/readyz` reasons. */
  reasons(): Array<{ code: string; message: string }> {
    const now = this.now();
    const reasons: Array<{ code: string; message: string }> = [];
    for (const [key, entry] of this.seen) {
      if (now - entry.lastSeen > PROBLEM_EXPIRES_MS) {
        this.seen.delete(key);
        continue;
      }
      reasons.push({ code: entry.problem.code, message: this.describe(entry, now) });
    }
    return reasons;
  }

  private log(entry: Seen, now: number): void {
    const { problem, client } = entry;
    this.logger.error({ kafka: { client, code: problem.code, resource: problem.resource }, fix: problem.fix }, this.describe(entry, now));
  }

  private describe({ client, problem, since }: Seen, now: number): string {
    const seconds = Math.round((now - since) / 1000);
    const lasting = seconds > 0 ? ` (for ${seconds} s)` : '';
    switch (problem.code) {
      case 'kafka_unreachable':
        return `${client} cannot reach Kafka at ${this.bootstrapServers}${lasting}: ${problem.detail}. Fix: ${this.fixes.unreachable ?? problem.fix}`;
      case 'kafka_auth_failed':
        return `${client}: Kafka at ${this.bootstrapServers} refused the credentials${lasting}: ${problem.detail}. Fix: ${this.fixes.auth ?? problem.fix}`;
      case 'kafka_tls_failed':
        return `${client}: TLS with Kafka at ${this.bootstrapServers} failed${lasting}: ${problem.detail}. Fix: ${problem.fix}`;
      case 'kafka_not_authorized':
        return `${client}: not authorized on ${problem.resource ?? 'a resource'}${lasting}: ${problem.detail}. Fix: ${problem.fix}`;
      case 'kafka_token_failed':
        return `${client}: no valid OAUTHBEARER token${lasting}: ${problem.detail}. Fix: ${problem.fix}`;
      case 'topic_missing':
        return `${client}: ${problem.resource ?? 'a topic'} does not exist${lasting}. Fix: ${problem.fix}`;
      case 'dlq_topic_missing':
        return `${problem.resource ?? 'a DLQ topic'} does not exist${lasting}: a record that must be dead-lettered would hold its partition. Fix: ${problem.fix}`;
      case 'retry_topic_missing':
        return `${problem.resource ?? 'a retry topic'} does not exist${lasting}: a record that must wait in that tier would hold its partition, and the tier is not read. Fix: ${problem.fix}`;
    }
  }
}
