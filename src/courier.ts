import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { DeadLetterEntryBody } from './api/schemas.js';
import type { Operations } from './api/server.js';
import { AwsCredentialProvider } from './aws/credentials.js';
import { MskIamTokenProvider } from './aws/msk-iam.js';
import { bootstrapHint, type Config } from './config/index.js';
import { Pusher } from './delivery/push.js';
import { backoff } from './delivery/retry.js';
import { errorMessage } from './errors.js';
import { KafkaConditions } from './kafka/conditions.js';
import { KafkaSource } from './kafka/consumer.js';
import { dlqTopicMissing, retryTopicMissing, topicMissing } from './kafka/diagnosis.js';
import { DeadLetterProducer } from './kafka/dlq.js';
import { DeadLetterReader, matchesFilter } from './kafka/dlq-reader.js';
import { fromLibrdkafka, KafkaClientError } from './kafka/errors.js';
import { OidcTokenProvider } from './kafka/oidc.js';
import type { ParkedRecord } from './kafka/parked.js';
import { RecordPeeker } from './kafka/peek.js';
import { DEFAULT_REDRIVE_LIMIT, DEFAULT_REDRIVE_RATE, redrive } from './kafka/redrive.js';
import { FileTokenProvider, type KafkaTokenProvider, KafkaTokens } from './kafka/token.js';
import { LagMonitor, type LagSource } from './lag.js';
import { createMetrics } from './metrics.js';
import { Pipeline } from './pipeline/flow.js';
import type { KafkaRecord } from './record.js';
import type { Redactor } from './redact.js';
import { sleep } from './time.js';

const LAG_REFRESH_MS = 5000;
/** How often the topics' existence is checked again (a topic created later clears its reason). */
const TOPIC_CHECK_MS = 15_000;
const NOT_IN_METADATA = "not in the cluster's metadata";
/** How long one connection attempt waits for the cluster; librdkafka retries by itself within it. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Connecting to Kafka is retried on this backoff until the cluster answers. */
const CONNECT_RETRY = { initialMs: 500, maxMs: 10_000, jitter: 'none' } as const;

/** Builds every part from a validated Config. Nothing runs until `start`. */
export function createCourier(config: Config, logger: Logger, registry: Registry, redact: Redactor, onFatal: (error: Error) => void, version = 'dev') {
  const metrics = createMetrics(registry, {
    topics: config.routes.map((route) => route.topic),
    tiers: config.routes.flatMap((route) => route.tiers.map((tier) => ({ topic: route.topic, tier: tier.label }))),
  });
  const sourceTopics = config.routes.map((route) => route.topic);
  const retryTopics = config.routes.flatMap((route) => route.tiers.map((tier) => tier.topic));
  const pusher = new Pusher({ connections: Math.max(config.maxInFlight, 1), http2: config.appHttp2 });
  // What the Kafka clients find wrong (credentials, TLS, ACLs, missing topics), named for /readyz.
  const oauth = (config.consumer['sasl.mechanisms'] ?? config.consumer['sasl.mechanism'])?.toUpperCase() === 'OAUTHBEARER';
  const conditions = new KafkaConditions(logger, config.bootstrapServers, Date.now, {
    unreachable: bootstrapHint(config.bootstrapServers, config.runningInKubernetes),
    auth: oauth
      ? "check the token source (COURIER_KAFKA_TOKEN_PROVIDER, or KAFKA_SASL_OAUTHBEARER_*) and that the broker accepts its tokens (issuer, audience, expiry, the principal's claim)"
      : undefined,
  });
  const tokenProvider = kafkaTokenProvider(config, version);
  const tokens = tokenProvider
    ? new KafkaTokens(tokenProvider, {
        logger,
        conditions,
        onToken: (client, token) => metrics.kafkaTokenExpiry.set({ client }, token.expiresAtMs / 1000),
      })
    : undefined;
  const deadLetters = new DeadLetterProducer(config.producer, { conditions, logger, tokens });
  // The lag monitor looks at newly assigned partitions at once (the first-join notice).
  const pipeline = new Pipeline({ config, logger, metrics, deadLetters, pusher, onFatal, onAssigned: () => void lag.assignedNow().catch(() => undefined) });
  const source = new KafkaSource(
    {
      properties: config.consumer,
      // Courier reads its retry tiers back in the same group (DESIGN A7).
      topics: [...sourceTopics, ...retryTopics],
      logger,
      onPoll: (seconds) => metrics.pollLatency.observe(seconds),
      conditions,
      tokens,
    },
    pipeline,
  );
  const peeker = new RecordPeeker(config.consumer, logger, tokens);
  const lagSource: LagSource = {
    committed: (partitions, timeoutMs) => source.committed(partitions, timeoutMs),
    watermarks: (tp, timeoutMs) => source.watermarks(tp, timeoutMs),
    timestampsAt: (positions, timeoutMs) => peeker.timestampsAt(positions, timeoutMs),
  };
  const lag = new LagMonitor(lagSource, () => pipeline.assignedPartitions(), metrics, logger, {
    held: (tp) => pipeline.held(tp),
    groupId: config.groupId,
    offsetReset: config.consumer['auto.offset.reset'],
  });

  const dlqReader = new DeadLetterReader(config.consumer, logger, tokens);
  const routeOf = (topic: string) => config.routes.find((route) => route.topic === topic);
  let redriving = false;

  const operations: Operations = {
    // Error texts from librdkafka can quote configuration values: never answer a secret.
    failure: () => (pipeline.fatalError ? redact(pipeline.fatalError.message) : undefined),
    notReadyReasons: () =>
      [...conditions.reasons(), ...pipeline.operator.notReadyReasons()].map((reason) => ({ code: reason.code, message: redact(reason.message) })),
    lag: () => lag.refresh(),
    assignment: () => pipeline.operator.assignment(),
    routes: () => pipeline.operator.routes(),
    rebalances: () => pipeline.operator.rebalances(),
    adminPause: (topic, partitions, pause) => pipeline.operator.adminPause(topic, partitions, pause),
    async seek(request) {
      const route = routeOf(request.topic) ?? config.routes.find((r) => r.tiers.some((tier) => tier.topic === request.topic));
      if (!route) return { unknownTopic: true };
      const to = request.offset !== undefined ? { offset: request.offset } : { timestamp: timestampOf(request.timestamp ?? 0) };
      const tp = { topic: request.topic, partition: request.partition };
      return (await pipeline.seek(tp, to)) ?? { notAssigned: [tp] };
    },
    async redrive(request) {
      const route = routeOf(request.topic);
      if (!route) return { unknownTopic: true };
      if (redriving) return { busy: true };
      redriving = true;
      try {
        const counts = await redrive(dlqReader, deadLetters, {
          ...request,
          dlqTopic: request.dlqTopic ?? route.dlqTopic,
          limit: request.limit ?? DEFAULT_REDRIVE_LIMIT,
          dryRun: request.dryRun ?? false,
          ratePerSecond: request.ratePerSecond ?? DEFAULT_REDRIVE_RATE,
        });
        logger.info({ topic: request.topic, ...counts, dryRun: request.dryRun ?? false }, 'DLQ redrive finished');
        return { ...counts, dryRun: request.dryRun ?? false };
      } finally {
        redriving = false;
      }
    },
    async deadLetters(query) {
      const route = routeOf(query.topic);
      if (!route) return { unknownTopic: true };
      const dlqTopic = query.dlqTopic ?? route.dlqTopic;
      const limit = query.limit ?? 100;
      const records: DeadLetterEntryBody[] = [];
      await dlqReader.read(dlqTopic, query, ({ record, parked }) => {
        if (!matchesFilter(parked, query)) return true;
        records.push(deadLetterEntry(record, parked, redact));
        return records.length < limit;
      });
      return { dlqTopic, records };
    },
  };

  const dlqTopics = [...new Set(config.routes.map((route) => route.dlqTopic))];
  // Checked from the start, not when a record needs one: /readyz names each topic that is missing.
  const checkTopics = async () => {
    try {
      const missing = new Set(await deadLetters.missingTopics([...sourceTopics, ...dlqTopics, ...retryTopics], 5_000));
      conditions.checked(
        'consumer',
        'topic_missing',
        sourceTopics.filter((topic) => missing.has(topic)).map((topic) => topicMissing(topic, NOT_IN_METADATA)),
      );
      conditions.checked(
        'DLQ producer',
        'dlq_topic_missing',
        dlqTopics.filter((topic) => missing.has(topic)).map((topic) => dlqTopicMissing(topic, NOT_IN_METADATA)),
      );
      conditions.checked(
        'DLQ producer',
        'retry_topic_missing',
        retryTopics.filter((topic) => missing.has(topic)).map((topic) => retryTopicMissing(topic, NOT_IN_METADATA)),
      );
    } catch (error) {
      logger.debug({ err: errorMessage(error) }, 'topic check failed');
    }
  };
  let topicTimer: NodeJS.Timeout | undefined;

  let started = false;
  return {
    metrics,
    pipeline,
    operations,
    /** Connects both Kafka clients (retrying until the cluster answers or `signal` aborts) and starts consuming. */
    async start(signal: AbortSignal): Promise<boolean> {
      let producerUp = false;
      let consumerUp = false;
      for (let attempt = 1; !signal.aborted; attempt++) {
        try {
          // Both at once, so whatever stops either is reported at once; a client that connected
          // is not started again on the next try.
          const connecting: Array<Promise<void> | undefined> = [
            producerUp ? undefined : deadLetters.start(CONNECT_TIMEOUT_MS),
            consumerUp ? undefined : source.start(CONNECT_TIMEOUT_MS),
          ];
          const results = await Promise.allSettled(connecting);
          producerUp ||= results[0]?.status === 'fulfilled';
          consumerUp ||= results[1]?.status === 'fulfilled';
          const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
          if (failed) throw failed.reason;
          pipeline.attach(source);
          lag.start(LAG_REFRESH_MS);
          void checkTopics();
          topicTimer = setInterval(() => void checkTopics(), TOPIC_CHECK_MS);
          topicTimer.unref();
          started = true;
          logger.info({ groupId: config.groupId, topics: config.routes.map((r) => r.topic), ordering: config.ordering }, 'consuming');
          return true;
        } catch (error) {
          const named = error instanceof KafkaClientError ? error : fromLibrdkafka(error, { code: 'KAFKA_UNREACHABLE' });
          // A cause the clients named (credentials, TLS, an ACL, the address) is logged with its fix
          // already; "cannot reach" on top of it would blame the network for a refused password.
          if (conditions.reasons().length === 0) pipeline.onError(named, false);
          await sleep(backoff(attempt, CONNECT_RETRY), signal);
        }
      }
      return false;
    },
    async stop(): Promise<void> {
      if (topicTimer) clearInterval(topicTimer);
      lag.stop();
      await peeker.close();
      if (started) await pipeline.stop();
      // Stopped before both clients connected: a consumer that did is consuming, and would keep the process alive.
      else await source.close();
      await deadLetters.close(5_000);
      await tokenProvider?.close?.();
      await pusher.close();
    },
  };
}

/**
 * Epoch ms from the API's timestamp (epoch ms, or ISO-8601 already checked by the schema). A time
 * before 1970 is before every record: 0 (Kafka reads negative times as "latest" or "earliest").
 */
export function timestampOf(value: number | string): number {
  return Math.max(0, typeof value === 'number' ? value : Date.parse(value));
}

/** One DLQ record for `GET /v1/dlq`: where it came from and why, never its value. */
function deadLetterEntry(record: KafkaRecord, parked: ParkedRecord, redact: Redactor): DeadLetterEntryBody {
  const field = (name: string) => parked.fields.get(name) ?? null;
  const number = (name: string) => {
    const text = parked.fields.get(name);
    return text !== undefined && /^\d{1,16}$/.test(text) ? Number(text) : null;
  };
  const key = record.key?.toString('utf8');
  const message = field('error_message');
  return {
    dlqPartition: record.partition,
    dlqOffset: record.offset,
    originalTopic: field('original_topic'),
    originalPartition: number('original_partition'),
    originalOffset: number('original_offset'),
    errorType: field('error_type'),
    errorMessage: message === null ? null : redact(message),
    httpStatus: number('http_status'),
    attempts: number('attempts'),
    retryTier: field('retry_tier'),
    failedAt: field('failed_at'),
    redriveCount: parked.redriveCount,
    keyText: key !== undefined && record.key && Buffer.from(key, 'utf8').equals(record.key) ? key : null,
    valueBytes: record.value === null || parked.fields.has('dlq_value_omitted') ? null : record.value.length,
  };
}

/** The OAUTHBEARER token provider COURIER_KAFKA_TOKEN_PROVIDER names, if any. */
function kafkaTokenProvider(config: Config, version: string): KafkaTokenProvider | undefined {
  const token = config.kafkaToken;
  if (!token) return undefined;
  if (token.provider === 'file') return new FileTokenProvider(token.path);
  if (token.provider === 'oidc') return new OidcTokenProvider(token.oidc);
  return new MskIamTokenProvider(new AwsCredentialProvider(token.aws), token.aws.region, `courier/${version}`);
}
