import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { bootstrapHint, type Config, type RouteConfig } from './config/index.js';
import { AppGate } from './delivery/app-gate.js';
import { checkLimits } from './delivery/limits.js';
import type { AttemptResult } from './delivery/outcome.js';
import { classify } from './delivery/outcome.js';
import { attemptHeaders, type PushSettings, preparePush } from './delivery/push.js';
import { nextDelay } from './delivery/retry.js';
import { errorMessage } from './errors.js';
import type { ConsumerHandlers } from './kafka/consumer.js';
import type { DeadLetterReason } from './kafka/dlq.js';
import type { HotCounter, HotHistogramChild, Metrics } from './metrics.js';
import { OffsetTracker, type RecordTicket } from './offsets/tracker.js';
import { type KafkaRecord, type TopicPartition, type TopicPartitionOffset, tpKey } from './record.js';
import { Scheduler } from './scheduler.js';
import { sleep, untilAborted } from './time.js';

/**
 * The whole flow, in one place:
 *
 *   fetched record → tracker.track → scheduler (ordering, in-flight cap)
 *     → push attempts (retry with backoff; hold while the app is down)
 *     → 2xx: ack | rejected or retries exhausted: DLQ write (retried until the broker acks it)
 *     → tracker.complete → commit cadence commits the contiguous done prefix.
 *
 * An offset is committed only through the tracker, and the tracker only moves past records that
 * were acknowledged or whose DLQ write was acknowledged. Everything that stops early (revoke,
 * shutdown) leaves its record incomplete, so it is delivered again by whoever reads next.
 */

/** What the pipeline needs from Kafka (kafka/consumer.ts). */
export interface SourcePort {
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  stopFetching(): Promise<void>;
  close(): Promise<void>;
}

/** What the pipeline needs from the DLQ producer (kafka/dlq.ts). */
export interface DeadLetterPort {
  send(topic: string, record: KafkaRecord, reason: DeadLetterReason): Promise<void>;
}

/** What the pipeline needs from HTTP (delivery/push.ts). */
export interface PushPort {
  push(url: URL, headers: Record<string, string | string[]>, body: Buffer | null, timeoutMs: number): Promise<AttemptResult>;
  /** Cancels every request still running: only at shutdown, once the grace period is over. */
  abortAll(): Promise<void>;
}

export interface PipelineDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly deadLetters: DeadLetterPort;
  readonly pusher: PushPort;
  /** Called when the Kafka client reports a fatal error: the process should stop. */
  readonly onFatal?: (error: Error) => void;
}

/** A route's metric children, looked up once: label hashing per record shows in profiles. */
interface RouteMetrics {
  readonly delivered: HotCounter;
  readonly duration: HotHistogramChild;
  readonly processing: HotHistogramChild;
  readonly attempts: Map<string, HotCounter>;
}

interface Route {
  readonly config: RouteConfig;
  readonly metrics: RouteMetrics;
  readonly url: URL;
  /** The route's backoff (delivery/retry.ts), made once. */
  readonly policy: { readonly initialMs: number; readonly maxMs: number };
  readonly gate: AppGate;
  refused: string | undefined;
}

interface Entry {
  readonly record: KafkaRecord;
  readonly ticket: RecordTicket;
  readonly route: Route;
  readonly runtime: PartitionRuntime;
  readonly key: Buffer | null;
  readonly size: number;
  /** Set when the record starts: when, and the delivery's promise (for draining). */
  startedAt: number;
  task: Promise<void> | undefined;
  scheduled?: unknown;
}

export type PauseReason = 'admin' | 'app_down' | 'app_refused' | 'dlq_blocked' | 'backpressure';

interface PartitionRuntime {
  readonly tp: TopicPartition;
  /** Aborted on revoke or shutdown: waits (backoff, app down, DLQ retries) give up at once. */
  readonly soft: AbortController;
  /** Records being delivered (their task, and start time for the age of the oldest). */
  readonly inFlight: Set<Entry>;
  readonly pauseReasons: Map<PauseReason, number>;
  pausedInKafka: boolean;
  revoking: boolean;
}

export interface RebalanceEvent {
  readonly at: string;
  readonly type: 'assign' | 'revoke' | 'lost';
  readonly partitions: readonly TopicPartition[];
}

type Settled = { readonly kind: 'ack' } | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason } | { readonly kind: 'abandoned' };

const HISTORY_LIMIT = 200;
const ERR_MAX_POLL_EXCEEDED = -147;
/** How often an idle app is probed, so readiness notices it is gone before a record does. */
const APP_WATCH_MS = 5000;
/** An operator's pause survives a revoke followed by an assign of the same partition within this. */
const ADMIN_PAUSE_MEMORY_MS = 60_000;

export class Pipeline implements ConsumerHandlers {
  private readonly tracker = new OffsetTracker();
  private readonly scheduler: Scheduler<Entry>;
  private readonly routes = new Map<string, Route>();
  private readonly partitions = new Map<string, PartitionRuntime>();
  private readonly pushSettings: PushSettings;
  private readonly history: RebalanceEvent[] = [];
  private readonly rebalanceCounts = { assign: 0, revoke: 0, lost: 0 };
  /**
   * Partitions an operator paused, with when they were last revoked (undefined while owned). They
   * stay paused across rebalances while they stay ours: with the eager protocol a partition we keep
   * is revoked and assigned again in the same rebalance, so a recent revoke does not forget it.
   */
  private readonly adminPaused = new Map<string, number | undefined>();
  private joined = false;
  private maxPollExceededAt: string | undefined;
  private source: SourcePort | undefined;
  private commitChain: Promise<void> = Promise.resolve();
  /** A cadence commit queued behind the one running, not yet started. */
  private cadenceCommit: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private completedSinceCommit = 0;
  private stopping = false;
  private pushesAborted = false;
  /** Fetching holds while this many records wait, until half of them started. */
  private readonly fetchHighWater: number;
  private fetchWaiters: Array<() => void> = [];
  private lastHintAt = 0;
  fatalError: Error | undefined;

  constructor(private readonly deps: PipelineDeps) {
    const { config } = deps;
    this.pushSettings = { appToken: config.appToken, signingKeys: config.signingKeys };
    const gates = new Map<string, AppGate>();
    for (const routeConfig of config.routes) {
      const url = new URL(routeConfig.targetUrl);
      let gate = gates.get(url.origin);
      if (!gate) {
        gate = new AppGate({ url, onChange: (up, reason) => this.appChanged(url.origin, up, reason) });
        gates.set(url.origin, gate);
      }
      const topic = routeConfig.topic;
      const routeMetrics: RouteMetrics = {
        delivered: deps.metrics.recordsDelivered.hot({ topic }),
        duration: deps.metrics.deliveryDuration.labels({ topic }),
        processing: deps.metrics.recordProcessing.labels({ topic }),
        attempts: new Map(),
      };
      const policy = { initialMs: routeConfig.retryInitialMs, maxMs: routeConfig.retryMaxMs };
      this.routes.set(topic, { config: routeConfig, metrics: routeMetrics, url, policy, gate, refused: undefined });
    }
    deps.metrics.appUp.set(1);
    this.fetchHighWater = Math.max(2000, 4 * config.maxInFlight);
    this.scheduler = new Scheduler<Entry>({
      ordering: config.ordering,
      maxInFlight: config.maxInFlight,
      partitionBuffer: config.partitionBuffer,
      partitionBufferBytes: config.partitionBufferBytes,
      start: (entry, tp) => this.start(entry, tp),
      backpressure: (tp, paused) => this.setPaused(tp, 'backpressure', paused),
      drained: () => this.wakeFetch(),
    });
  }

  /** Starts committing through `source`; records arrive through the ConsumerHandlers methods. */
  attach(source: SourcePort): void {
    this.source = source;
    for (const route of this.routes.values()) route.gate.watch(APP_WATCH_MS);
    this.commitTimer = setInterval(() => void this.commit(), this.deps.config.commitIntervalMs);
    this.commitTimer.unref();
  }

  // ---- Kafka → pipeline ---------------------------------------------------------------------

  onAssign(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const key = tpKey(tp);
      this.tracker.assign(tp);
      this.scheduler.addPartition(tp);
      const runtime: PartitionRuntime = {
        tp,
        soft: softController(),
        inFlight: new Set(),
        pauseReasons: new Map(),
        pausedInKafka: false,
        revoking: false,
      };
      this.partitions.set(key, runtime);
      const route = this.routes.get(tp.topic);
      if (route && !route.gate.isUp) this.setPaused(tp, 'app_down', true);
      if (route?.refused) this.setPaused(tp, 'app_refused', true);
      const revokedAt = this.adminPaused.get(key);
      if (this.adminPaused.has(key) && (revokedAt === undefined || Date.now() - revokedAt < ADMIN_PAUSE_MEMORY_MS)) {
        this.adminPaused.set(key, undefined);
        this.setPaused(tp, 'admin', true);
        this.scheduler.hold(tp, true);
      } else this.adminPaused.delete(key);
    }
    this.joined = true;
    this.maxPollExceededAt = undefined;
    this.recordRebalance('assign', partitions);
  }

  async onRevoke(partitions: TopicPartition[], lost: boolean): Promise<void> {
    const runtimes = partitions.map((tp) => this.partitions.get(tpKey(tp))).filter((r): r is PartitionRuntime => r !== undefined);
    for (const runtime of runtimes) {
      runtime.revoking = true;
      this.scheduler.block(runtime.tp);
      runtime.soft.abort();
      if (lost) {
        // Another member may own it already: forget it now so no commit (periodic, or triggered
        // by an answer arriving while we drain) can be made for it.
        this.tracker.revoke(runtime.tp);
      }
    }
    this.releaseFetch();
    // In-flight pushes of a revoked partition get the grace period; whatever finishes later is
    // fenced by the tracker (its partition, or its generation, is gone) and never committed.
    if (!lost) await this.drain(runtimes, this.deps.config.shutdownGraceMs);
    const final: TopicPartitionOffset[] = [];
    for (const runtime of runtimes) {
      const offset = this.tracker.revoke(runtime.tp);
      if (offset && !lost) final.push(offset);
      const key = tpKey(runtime.tp);
      this.scheduler.removePartition(runtime.tp);
      this.partitions.delete(key);
      if (this.adminPaused.has(key)) this.adminPaused.set(key, Date.now());
    }
    // Synchronous with the rebalance: the next owner starts from what we committed here.
    if (final.length > 0) await this.commit(final);
    this.recordRebalance(lost ? 'lost' : 'revoke', partitions);
  }

  onRecords(records: KafkaRecord[]): void {
    const { metrics } = this.deps;
    let lastTopic = '';
    let topicCount = 0;
    // A batch comes in runs of one partition: look its runtime up once per run.
    let runtime: PartitionRuntime | undefined;
    let route: Route | undefined;
    for (const record of records) {
      if (record.topic !== lastTopic) {
        if (topicCount > 0) metrics.recordsConsumed.inc({ topic: lastTopic }, topicCount);
        lastTopic = record.topic;
        topicCount = 0;
        route = this.routes.get(record.topic);
        runtime = undefined;
      }
      topicCount++;
      if (runtime?.tp.partition !== record.partition) runtime = this.partitions.get(tpKey(record));
      if (!runtime || runtime.revoking || !route) continue;
      const ticket = this.tracker.track(runtime.tp, record.offset);
      if (!ticket) continue;
      const size = (record.value?.length ?? 0) + (record.key?.length ?? 0);
      this.scheduler.enqueue(runtime.tp, { record, ticket, route, runtime, key: record.key, size, startedAt: 0, task: undefined, scheduled: undefined });
    }
    if (topicCount > 0) metrics.recordsConsumed.inc({ topic: lastTopic }, topicCount);
    this.scheduler.dispatch();
  }

  /**
   * Holds the next fetch while enough records wait and every partition that can run has some:
   * fetching then would only make librdkafka pause (and purge) the partitions that are full. A
   * partition with nothing waiting must not starve behind busier ones (partition parallelism
   * would collapse exactly when the app is slow), so an idle one lets the fetch go at once.
   */
  beforeFetch(): Promise<void> | undefined {
    if (this.scheduler.totalWaiting < this.fetchHighWater || this.scheduler.hasIdlePartition()) return undefined;
    return new Promise((resolve) => this.fetchWaiters.push(resolve));
  }

  private releaseFetch(): void {
    if (this.fetchWaiters.length > 0 && this.scheduler.totalWaiting <= this.fetchHighWater >> 1) this.wakeFetch();
  }

  private wakeFetch(): void {
    for (const wake of this.fetchWaiters.splice(0)) wake();
  }

  onError(error: Error, fatal: boolean): void {
    const { logger, config } = this.deps;
    const code = (error as { code?: number }).code;
    if (fatal) {
      this.fatalError = error;
      logger.fatal({ err: error }, 'Kafka client failed fatally');
      this.deps.onFatal?.(error);
      return;
    }
    // Transport, all brokers down, resolve failure: say what the seed guide says about it.
    if (code === -195 || code === -187 || code === -193) {
      const hint = bootstrapHint(config.bootstrapServers, config.runningInKubernetes);
      const now = Date.now();
      if (now - this.lastHintAt > 30_000) {
        this.lastHintAt = now;
        logger.warn({ err: { message: error.message, code }, hint }, `cannot reach Kafka at ${config.bootstrapServers}`);
      }
      return;
    }
    if (code === ERR_MAX_POLL_EXCEEDED) {
      // librdkafka left the group: the partitions come back as `lost`, so nothing of this
      // generation is committed; the next assignment clears the flag.
      this.maxPollExceededAt = new Date().toISOString();
      this.deps.metrics.maxPollExceeded.inc();
      logger.error({ err: { message: error.message, code } }, 'max.poll.interval.ms exceeded: left the group; nothing of this generation will be committed');
      return;
    }
    logger.warn({ err: { message: error.message, code } }, 'Kafka client error');
  }

  // ---- delivery -------------------------------------------------------------------------------

  private start(entry: Entry, tp: TopicPartition): void {
    const runtime = entry.runtime;
    this.deps.metrics.inFlight.hot.value++;
    entry.startedAt = Date.now();
    runtime.inFlight.add(entry);
    entry.task = this.deliver(entry, runtime).then(
      () => this.finished(entry),
      (error) => {
        this.deps.logger.error({ err: error, offset: entry.record.offset, ...tp }, 'delivery failed unexpectedly');
        this.finished(entry);
      },
    );
  }

  private finished(entry: Entry): void {
    entry.runtime.inFlight.delete(entry);
    this.deps.metrics.inFlight.hot.value--;
    this.scheduler.finish(entry);
    if (!this.stopping) this.scheduler.dispatch();
    this.releaseFetch();
  }

  private async deliver(entry: Entry, runtime: PartitionRuntime): Promise<void> {
    const settled = await this.pushUntilSettled(entry, runtime);
    if (settled.kind === 'abandoned') return;
    if (settled.kind === 'dead-letter' && !(await this.writeDeadLetter(entry, runtime, settled.reason))) return;
    if (this.tracker.complete(entry.ticket)) {
      if (settled.kind === 'ack') entry.route.metrics.delivered.inc();
      entry.route.metrics.processing.observe((Date.now() - entry.record.fetchedAt) / 1000);
      if (++this.completedSinceCommit >= this.deps.config.commitEvery) {
        this.completedSinceCommit = 0;
        void this.commit();
      }
    }
  }

  private async pushUntilSettled(entry: Entry, runtime: PartitionRuntime): Promise<Settled> {
    const { record, route } = entry;
    const { metrics, logger } = this.deps;
    const policy = route.policy;
    const prepared = preparePush(record, this.pushSettings);
    if (prepared.droppedHeaders > 0) metrics.droppedHeaders.inc({ topic: record.topic }, prepared.droppedHeaders);
    const violation = checkLimits(record, prepared, this.deps.config.limits);
    if (violation) {
      return { kind: 'dead-letter', reason: { errorType: violation.errorType, errorMessage: violation.message, attempts: 0, failedAt: new Date() } };
    }
    let attempt = 1;
    let refusals = 0;
    for (;;) {
      if (!route.gate.isUp) await untilAborted(route.gate.whenOpen(), runtime.soft.signal);
      if (runtime.soft.signal.aborted) return { kind: 'abandoned' };
      const started = performance.now();
      const headers = attemptHeaders(prepared, record.value, attempt, this.pushSettings, Math.floor(Date.now() / 1000));
      const result = await this.deps.pusher.push(route.url, headers, record.value, route.config.requestTimeoutMs);
      const outcome = classify(result);
      if (outcome.action !== 'app-down') {
        route.metrics.duration.observe((performance.now() - started) / 1000);
      }
      const label = resultLabel(result);
      let attempts = route.metrics.attempts.get(label);
      if (!attempts) {
        attempts = metrics.deliveryAttempts.hot({ topic: record.topic, result: label });
        route.metrics.attempts.set(label, attempts);
      }
      attempts.inc();
      switch (outcome.action) {
        case 'ack':
          if (route.refused) this.appRefused(route, undefined);
          return { kind: 'ack' };
        case 'app-down':
          // Nothing reached the app: not an attempt. The gate probes and lets us through again.
          route.gate.markDown(outcome.reason);
          continue;
        case 'app-refused':
          // The app refuses Courier itself (token, signature): hold, report, never dead-letter.
          this.appRefused(route, outcome.reason);
          await sleep(nextDelay(++refusals, policy, undefined), runtime.soft.signal);
          continue;
        case 'dead-letter':
          return { kind: 'dead-letter', reason: deadLetterReason('rejected_by_app', result, attempt) };
        case 'retry': {
          // Cancelled by our own shutdown: not the app's failure, never a DLQ write.
          if (this.pushesAborted) return { kind: 'abandoned' };
          if (attempt >= route.config.maxAttempts) {
            return { kind: 'dead-letter', reason: deadLetterReason('retries_exhausted', result, attempt) };
          }
          const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
          const delay = nextDelay(attempt, policy, retryAfter);
          logger.debug({ topic: record.topic, partition: record.partition, offset: record.offset, attempt, reason: outcome.reason, delay }, 'retrying');
          await sleep(delay, runtime.soft.signal);
          attempt++;
        }
      }
    }
  }

  /** Writes to the DLQ until the broker acknowledges; while it cannot, the partition is paused. */
  private async writeDeadLetter(entry: Entry, runtime: PartitionRuntime, reason: DeadLetterReason): Promise<boolean> {
    const { record, route } = entry;
    const { metrics, logger } = this.deps;
    let failures = 0;
    for (;;) {
      // The first write is made even while stopping: the push finished within the grace period,
      // so its outcome should land. Only retrying a failing write gives way to a revoke or stop,
      // and nothing is written for a partition (or generation) that is no longer ours.
      if ((failures > 0 && runtime.soft.signal.aborted) || !this.tracker.owns(entry.ticket)) return false;
      try {
        await this.deps.deadLetters.send(route.config.dlqTopic, record, reason);
        break;
      } catch (error) {
        if (failures++ === 0) this.setPaused(runtime.tp, 'dlq_blocked', true);
        logger.error(
          { topic: record.topic, partition: record.partition, offset: record.offset, dlqTopic: route.config.dlqTopic, err: errorMessage(error), failures },
          'DLQ write failed; partition paused, offset held, retrying',
        );
        await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)), runtime.soft.signal);
      }
    }
    if (failures > 0) this.setPaused(runtime.tp, 'dlq_blocked', false);
    metrics.recordsDeadLettered.inc({ topic: record.topic, reason: reason.errorType });
    logger.warn(
      {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        dlqTopic: route.config.dlqTopic,
        errorType: reason.errorType,
        httpStatus: reason.httpStatus,
        attempts: reason.attempts,
      },
      'record dead-lettered',
    );
    return true;
  }

  // ---- pause / resume --------------------------------------------------------------------------

  /** Reasons are counted, so two DLQ writes failing in one partition need two successes to resume. */
  private setPaused(tp: TopicPartition, reason: PauseReason, on: boolean): void {
    const runtime = this.partitions.get(tpKey(tp));
    if (!runtime || !this.source) return;
    const count = (runtime.pauseReasons.get(reason) ?? 0) + (on ? 1 : -1);
    if (count > 0) runtime.pauseReasons.set(reason, count);
    else runtime.pauseReasons.delete(reason);
    const shouldPause = runtime.pauseReasons.size > 0;
    if (shouldPause === runtime.pausedInKafka || runtime.revoking) return;
    runtime.pausedInKafka = shouldPause;
    try {
      if (shouldPause) this.source.pause([tp]);
      else this.source.resume([tp]);
    } catch (error) {
      this.deps.logger.warn({ err: errorMessage(error), ...tp, reason }, 'pause/resume failed');
    }
  }

  private partitionsOfOrigin(origin: string): PartitionRuntime[] {
    return [...this.partitions.values()].filter((runtime) => this.routes.get(runtime.tp.topic)?.url.origin === origin);
  }

  private appChanged(origin: string, up: boolean, reason: string | undefined): void {
    // The gate has already changed state when it calls back.
    this.deps.metrics.appUp.set([...this.routes.values()].every((route) => route.gate.isUp) ? 1 : 0);
    if (up) this.deps.logger.info({ app: origin }, 'app reachable again; resuming');
    else this.deps.logger.warn({ app: origin, reason }, 'app unreachable; holding records and pausing until it answers');
    for (const runtime of this.partitionsOfOrigin(origin)) {
      if (runtime.pauseReasons.has('app_down') !== !up) this.setPaused(runtime.tp, 'app_down', !up);
    }
  }

  private appRefused(route: Route, reason: string | undefined): void {
    if (route.refused === reason) return;
    const wasRefused = route.refused !== undefined;
    route.refused = reason;
    this.deps.metrics.appRefused.set([...this.routes.values()].some((r) => r.refused !== undefined) ? 1 : 0);
    if (reason) this.deps.logger.error({ app: route.url.origin, reason }, 'app refuses Courier (check COURIER_APP_TOKEN / signing secret); holding records');
    else this.deps.logger.info({ app: route.url.origin }, 'app accepts Courier again');
    for (const runtime of this.partitionsOfOrigin(route.url.origin)) {
      if (reason && !wasRefused) this.setPaused(runtime.tp, 'app_refused', true);
      if (!reason && wasRefused) this.setPaused(runtime.tp, 'app_refused', false);
    }
  }

  // ---- commits ---------------------------------------------------------------------------------

  /**
   * Commits `offsets`, or every partition whose committable offset moved. One commit at a time,
   * each waiting for the broker's answer; a cadence commit asked for while one is already waiting
   * to start is the same commit (it reads the tracker when it starts).
   */
  commit(offsets?: readonly TopicPartitionOffset[]): Promise<void> {
    if (!offsets && this.cadenceCommit) return this.cadenceCommit;
    const run = async () => {
      if (!offsets) this.cadenceCommit = undefined;
      const source = this.source;
      // Out of the group after max.poll.interval.ms: this generation's offsets are not ours to commit.
      if (!source || this.maxPollExceededAt) return;
      const candidates = offsets ? offsets.map((o) => ({ ...o, generation: -1 })) : this.tracker.commitCandidates();
      if (candidates.length === 0) return;
      try {
        await source.commit(candidates.map(({ topic, partition, offset }) => ({ topic, partition, offset })));
        for (const c of candidates) if (c.generation >= 0) this.tracker.markCommitted(c, c.offset, c.generation);
        this.deps.metrics.commits.inc({ result: 'success' });
      } catch (error) {
        this.deps.metrics.commits.inc({ result: 'failure' });
        this.deps.logger.warn({ err: errorMessage(error) }, 'offset commit failed; will retry');
      }
    };
    this.commitChain = this.commitChain.then(run, run);
    if (!offsets) this.cadenceCommit = this.commitChain;
    return this.commitChain;
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /**
   * SIGTERM: stop fetching, let in-flight pushes finish within the grace period, commit the
   * acknowledged prefix, leave the group.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { logger, config } = this.deps;
    if (this.commitTimer) clearInterval(this.commitTimer);
    await this.source?.stopFetching();
    const runtimes = [...this.partitions.values()];
    for (const runtime of runtimes) {
      this.scheduler.block(runtime.tp);
      runtime.soft.abort();
    }
    for (const route of this.routes.values()) route.gate.stop();
    const inFlight = runtimes.reduce((n, r) => n + r.inFlight.size, 0);
    logger.info({ inFlight, graceMs: config.shutdownGraceMs }, 'stopping: draining in-flight pushes');
    if (!(await this.drain(runtimes, config.shutdownGraceMs))) {
      // Grace over: cancel what still runs (its records stay uncommitted and go to the next owner).
      this.pushesAborted = true;
      await this.deps.pusher.abortAll();
      await Promise.allSettled(tasksOf(runtimes));
    }
    await this.commit();
    await this.source?.close();
    logger.info('stopped: offsets committed, group left');
  }

  /** Waits for the partitions' tasks, up to `graceMs`; true when they all finished. */
  private async drain(runtimes: readonly PartitionRuntime[], graceMs: number): Promise<boolean> {
    const tasks = tasksOf(runtimes);
    if (tasks.length === 0) return true;
    const graceOver = new AbortController();
    const finished = await Promise.race([Promise.allSettled(tasks).then(() => true), sleep(graceMs, graceOver.signal).then(() => false)]);
    graceOver.abort(); // clears the timer, which would otherwise keep the process alive
    return finished;
  }

  // ---- state for the API -----------------------------------------------------------------------

  private recordRebalance(type: RebalanceEvent['type'], partitions: readonly TopicPartition[]): void {
    this.history.push({ at: new Date().toISOString(), type, partitions: partitions.map(({ topic, partition }) => ({ topic, partition })) });
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    this.rebalanceCounts[type]++;
    this.deps.metrics.rebalances.inc({ type });
    this.deps.logger.info({ type, partitions: partitions.map((tp) => `${tp.topic}-${tp.partition}`) }, 'rebalance');
  }

  rebalances(): { events: readonly RebalanceEvent[]; counts: Readonly<Record<RebalanceEvent['type'], number>> } {
    return { events: this.history, counts: { ...this.rebalanceCounts } };
  }

  assignedPartitions(): TopicPartition[] {
    return [...this.partitions.values()].map((runtime) => runtime.tp);
  }

  /** Every owned partition with its state, in-flight count, age of the oldest in flight, pause reasons. */
  assignment(now = Date.now()): PartitionStatus[] {
    return [...this.partitions.values()].map((runtime) => {
      let oldest: number | undefined;
      for (const entry of runtime.inFlight) if (oldest === undefined || entry.startedAt < oldest) oldest = entry.startedAt;
      const pausedReasons = [...runtime.pauseReasons.keys()];
      return {
        topic: runtime.tp.topic,
        partition: runtime.tp.partition,
        state: runtime.revoking ? 'draining' : pausedReasons.length > 0 ? 'paused' : 'active',
        inFlight: runtime.inFlight.size,
        queued: this.scheduler.queuedOf(runtime.tp),
        oldestInFlightMs: oldest === undefined ? null : now - oldest,
        pausedReason: pausedReasons[0] ?? null,
        pausedReasons,
      };
    });
  }

  /** Why Courier is not ready, as stable codes with a sentence each; empty when ready. */
  notReadyReasons(): Array<{ code: string; message: string }> {
    const reasons: Array<{ code: string; message: string }> = [];
    if (this.fatalError) reasons.push({ code: 'consumer_failed', message: `the Kafka consumer failed: ${this.fatalError.message}` });
    if (this.stopping) reasons.push({ code: 'stopping', message: 'shutting down' });
    if (!this.source) reasons.push({ code: 'not_subscribed', message: 'not connected to Kafka yet' });
    else if (!this.joined) reasons.push({ code: 'not_joined', message: `subscribed, waiting for the first assignment of group ${this.deps.config.groupId}` });
    const seen = new Set<string>();
    for (const route of this.routes.values()) {
      if (seen.has(route.url.origin)) continue;
      seen.add(route.url.origin);
      if (!route.gate.isUp) reasons.push({ code: 'app_down', message: `nothing answers at ${route.url.origin} (${route.gate.downReason}); records are held` });
      if (route.refused)
        reasons.push({
          code: 'app_refused',
          message: `${route.url.origin} answers ${route.refused.replace('http_', 'HTTP ')}: check COURIER_APP_TOKEN / COURIER_SIGNING_SECRET`,
        });
    }
    if (this.maxPollExceededAt) {
      reasons.push({ code: 'max_poll_exceeded', message: `max.poll.interval.ms was exceeded at ${this.maxPollExceededAt}; rejoining the group` });
    }
    const blocked = [...this.partitions.values()].filter((runtime) => runtime.pauseReasons.has('dlq_blocked'));
    if (blocked.length > 0) {
      reasons.push({
        code: 'dlq_blocked',
        message: `DLQ writes fail for ${blocked.map((r) => `${r.tp.topic}-${r.tp.partition}`).join(', ')}; their offsets are held`,
      });
    }
    return reasons;
  }

  get failed(): boolean {
    return this.fatalError !== undefined;
  }

  /**
   * Operator pause/resume. `partitions` omitted: every partition of the topic we own. Returns null
   * when Courier does not consume the topic.
   */
  adminPause(topic: string, partitions: readonly number[] | undefined, pause: boolean): { changed: TopicPartition[]; notAssigned: TopicPartition[] } | null {
    if (!this.routes.has(topic)) return null;
    const owned = [...this.partitions.values()].filter((runtime) => runtime.tp.topic === topic);
    const wanted = partitions ?? owned.map((runtime) => runtime.tp.partition);
    const changed: TopicPartition[] = [];
    const notAssigned: TopicPartition[] = [];
    for (const partition of new Set(wanted)) {
      const tp = { topic, partition };
      const runtime = this.partitions.get(tpKey(tp));
      if (!runtime) {
        notAssigned.push(tp);
        continue;
      }
      if (this.adminPaused.has(tpKey(tp)) === pause) continue;
      if (pause) this.adminPaused.set(tpKey(tp), undefined);
      else this.adminPaused.delete(tpKey(tp));
      this.setPaused(tp, 'admin', pause);
      this.scheduler.hold(tp, pause);
      changed.push(tp);
    }
    if (changed.length > 0)
      this.deps.logger.info({ topic, partitions: changed.map((tp) => tp.partition), pause }, pause ? 'paused by operator' : 'resumed by operator');
    if (!pause) this.scheduler.dispatch();
    return { changed, notAssigned };
  }
}

export interface PartitionStatus {
  readonly topic: string;
  readonly partition: number;
  readonly state: 'active' | 'paused' | 'draining';
  readonly inFlight: number;
  readonly queued: number;
  readonly oldestInFlightMs: number | null;
  readonly pausedReason: PauseReason | null;
  readonly pausedReasons: PauseReason[];
}

function tasksOf(runtimes: readonly PartitionRuntime[]): Promise<void>[] {
  const tasks: Promise<void>[] = [];
  for (const runtime of runtimes) for (const entry of runtime.inFlight) if (entry.task) tasks.push(entry.task);
  return tasks;
}

/** Every record waiting (backoff, app down, DLQ retry) listens on its partition's signal. */
function softController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

function resultLabel(result: AttemptResult): string {
  switch (result.kind) {
    case 'response':
      return `${Math.floor(result.status / 100)}xx`;
    case 'timeout':
      return 'timeout';
    case 'unreachable':
      return 'unreachable';
    case 'connection-lost':
      return 'connection_lost';
  }
}

function deadLetterReason(errorType: string, result: AttemptResult, attempts: number): DeadLetterReason {
  const httpStatus = result.kind === 'response' ? result.status : undefined;
  const last =
    result.kind === 'response'
      ? `app answered HTTP ${result.status}`
      : result.kind === 'timeout'
        ? 'no answer within the request timeout'
        : `connection lost (${result.code})`;
  const errorMessage = errorType === 'retries_exhausted' ? `${attempts} attempts failed; last: ${last}` : last;
  return { errorType, errorMessage, httpStatus, attempts, failedAt: new Date() };
}
