import type { Logger } from 'pino';
import { bootstrapHint, type Config } from '../config/index.js';
import { errorMessage } from '../errors.js';
import type { ConsumerHandlers } from '../kafka/consumer.js';
import type { KafkaClientError } from '../kafka/errors.js';
import type { Metrics } from '../metrics.js';
import { Committer } from '../offsets/committer.js';
import { OffsetTracker } from '../offsets/tracker.js';
import { type KafkaRecord, type TopicPartition, tpKey } from '../record.js';
import { Attempts, type Settlement } from './attempts.js';
import { BatchAttempts } from './batches.js';
import { type FlowState, Operator } from './operator.js';
import { type Delivery, drainPartitions, OwnedPartition, type Unacknowledged } from './partition.js';
import type { DeadLetterPort, PushPort, SourcePort } from './ports.js';
import { buildRoutes, type Route } from './route.js';
import { Scheduler } from './scheduler.js';
import { seekPartition } from './seek.js';

/**
 * The whole flow, in one place:
 *
 *   fetched record → partition.accept (tracker ticket) → scheduler (ordering, in-flight cap)
 *     → attempts.settle: push, retry with backoff, hold while the app is down,
 *       ack | DLQ write (retried until the broker acks it) | abandoned (revoke, stop)
 *     → tracker.complete → committer commits the contiguous done prefix.
 *
 * An offset is committed only through the tracker, and the tracker only moves past records that
 * were acknowledged or whose DLQ write was acknowledged. Everything that stops early (revoke,
 * shutdown) leaves its record incomplete, so it is delivered again by whoever reads next.
 */

export interface PipelineDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly deadLetters: DeadLetterPort;
  readonly pusher: PushPort;
  /** Called when the Kafka client reports a fatal error: the process should stop. */
  readonly onFatal?: (error: Error) => void;
  /** Called after partitions were assigned (the lag monitor looks at them at once). */
  readonly onAssigned?: (partitions: TopicPartition[]) => void;
}

/** How often an idle app is probed, so readiness notices it is gone before a record does. */
const APP_WATCH_MS = 5000;
/** "cannot reach Kafka" is logged at most this often. */
const UNREACHABLE_LOG_MS = 30_000;

export class Pipeline implements ConsumerHandlers {
  private readonly tracker = new OffsetTracker();
  private readonly routes: Map<string, Route>;
  /** Retry tier topics (DESIGN A7): the route they belong to and which of its tiers they are. */
  private readonly tierTopics = new Map<string, { route: Route; index: number }>();
  private readonly partitions = new Map<string, OwnedPartition>();
  private readonly scheduler: Scheduler<Delivery>;
  private readonly attempts: Attempts;
  private readonly batches: BatchAttempts;
  private readonly committer: Committer;
  /** Rebalance history, readiness reasons, assignment snapshot, admin pause. */
  readonly operator: Operator;
  private source: SourcePort | undefined;
  private readonly state: FlowState = { attached: false, joined: false, stopping: false, fatalError: undefined };
  private pushesAborted = false;
  /** Fetching holds while this many records wait, until half of them started. */
  private readonly fetchHighWater: number;
  private fetchWaiters: Array<() => void> = [];
  private lastUnreachableLogAt = 0;
  private dispatchQueued = false;
  /** Partitions an operator's seek is moving; a revoke meanwhile removes them (the seek then gives up). */
  private readonly seeking = new Set<string>();

  constructor(private readonly deps: PipelineDeps) {
    const { config, metrics, logger } = deps;
    this.routes = buildRoutes(
      config.routes,
      metrics,
      config.maxInFlight,
      (origin, up, reason) => this.operator.appChanged(origin, up, reason),
      () => this.dispatchSoon(),
    );
    for (const route of this.routes.values()) {
      for (const [index, tier] of route.config.tiers.entries()) this.tierTopics.set(tier.topic, { route, index });
    }
    metrics.routeConcurrencyLimit.source.sample = () => [...this.routes.values()].map((route) => [{ topic: route.config.topic }, route.concurrencyLimit()]);
    metrics.appUp.set(1);
    this.fetchHighWater = Math.max(2000, 4 * config.maxInFlight);
    this.scheduler = new Scheduler<Delivery>({
      ordering: config.ordering,
      maxInFlight: config.maxInFlight,
      partitionBuffer: config.partitionBuffer,
      partitionBufferBytes: config.partitionBufferBytes,
      bufferBytes: config.bufferBytes,
      start: (delivery) => this.start(delivery),
      startBatch: (deliveries) => this.startBatch(deliveries),
      compare: (a, b) => a.ticket.offset - b.ticket.offset,
      backpressure: (tp, paused) => this.partitions.get(tpKey(tp))?.setPaused('backpressure', paused),
      // A retry tier's partition is paused in Kafka while its next record is not due: nothing more is fetched meanwhile.
      waitingForDue: (tp, waiting) => this.partitions.get(tpKey(tp))?.setPaused('retry_wait', waiting),
      drained: () => this.wakeFetch(),
    });
    this.committer = new Committer({ tracker: this.tracker, metrics, logger, intervalMs: config.commitIntervalMs, every: config.commitEvery });
    const attemptsDeps = {
      config,
      logger,
      metrics,
      pusher: deps.pusher,
      deadLetters: deps.deadLetters,
      owns: this.tracker.owns.bind(this.tracker),
      pushesAborted: () => this.pushesAborted,
      refused: (route: Route, reason: string | undefined) => this.operator.appRefused(route, reason),
    };
    this.attempts = new Attempts(attemptsDeps);
    this.batches = new BatchAttempts(attemptsDeps, this.attempts, config.ordering);
    const { groupId } = config;
    const view = { groupId, state: this.state, partitions: this.partitions, routes: this.routes, scheduler: this.scheduler, committer: this.committer };
    this.operator = new Operator(view, metrics, logger);
  }

  /** Starts committing through `source`; records arrive through the ConsumerHandlers methods. */
  attach(source: SourcePort): void {
    this.source = source;
    this.state.attached = true;
    for (const route of this.routes.values()) route.app.watch(APP_WATCH_MS);
    this.committer.start(source);
  }

  // ---- Kafka → pipeline ---------------------------------------------------------------------

  onAssign(partitions: TopicPartition[]): void {
    for (const tp of partitions) this.own(tp);
    this.state.joined = true;
    this.committer.rejoined();
    this.operator.recordRebalance('assign', partitions);
    this.deps.onAssigned?.(partitions);
  }

  /** Starts owning a partition (a new tracker generation, queue and pause state). */
  private own(tp: TopicPartition): OwnedPartition | undefined {
    const tier = this.tierTopics.get(tp.topic);
    const route = this.routes.get(tp.topic) ?? tier?.route;
    if (!route) return undefined; // only routed topics and their retry tiers are subscribed
    const partition = OwnedPartition.assign(
      tp,
      route,
      this.tracker,
      (owned) => this.scheduler.addPartition(owned, route.gate, route.batching),
      (owned, paused) => this.pauseFetching(owned, paused),
      tier?.index,
    );
    this.partitions.set(tpKey(tp), partition);
    if (!route.app.isUp) partition.setPaused('app_down', true);
    if (route.refused) partition.setPaused('app_refused', true);
    this.operator.assigned(partition);
    return partition;
  }

  async onRevoke(revoked: TopicPartition[], lost: boolean): Promise<void> {
    for (const tp of revoked) this.seeking.delete(tpKey(tp));
    const partitions = revoked.map((tp) => this.partitions.get(tpKey(tp))).filter((p): p is OwnedPartition => p !== undefined);
    for (const partition of partitions) {
      partition.revoke();
      // Lost: another member may own it already. Forget it now so no commit (periodic, or
      // triggered by an answer arriving while we drain) can be made for it.
      if (lost) this.tracker.revoke(partition.tp);
      this.scheduler.block(partition.queue, lost ? undefined : partition.gapFiller());
    }
    this.releaseFetch();
    // In-flight pushes of a revoked partition get the grace period; whatever finishes later is
    // fenced by the tracker (its partition, or its generation, is gone) and never committed.
    if (!lost) await drainPartitions(partitions, this.deps.config.shutdownGraceMs);
    const final = [];
    for (const partition of partitions) {
      const offset = this.tracker.revoke(partition.tp);
      if (offset && !lost) final.push(offset);
      this.scheduler.removePartition(partition.queue);
      this.partitions.delete(tpKey(partition.tp));
      this.operator.revoked(partition);
    }
    // Synchronous with the rebalance: the next owner starts from what we committed here.
    if (final.length > 0) await this.committer.commit(final);
    this.operator.recordRebalance(lost ? 'lost' : 'revoke', revoked);
  }

  onRecords(records: KafkaRecord[]): void {
    let lastTopic = '';
    let topicCount = 0;
    // A batch comes in runs of one partition: look its partition up once per run.
    let partition: OwnedPartition | undefined;
    const consumed = (topic: string, count: number) => {
      // A retry tier's records were consumed from their source already: they count as `due` when they start.
      if (count > 0 && this.routes.has(topic)) this.deps.metrics.recordsConsumed.inc({ topic }, count);
    };
    for (const record of records) {
      if (record.topic !== lastTopic) {
        consumed(lastTopic, topicCount);
        lastTopic = record.topic;
        topicCount = 0;
        partition = undefined;
      }
      topicCount++;
      if (partition?.tp.partition !== record.partition) partition = this.partitions.get(tpKey(record));
      const delivery = partition?.accept(record);
      if (delivery) this.scheduler.enqueue(delivery.partition.queue, delivery);
    }
    consumed(lastTopic, topicCount);
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

  onError(error: KafkaClientError, fatal: boolean): void {
    const { logger, config } = this.deps;
    const err = { message: error.message, code: error.code, librdkafkaCode: error.librdkafkaCode };
    if (fatal) {
      this.state.fatalError = error;
      logger.fatal({ err }, 'Kafka client failed fatally');
      this.deps.onFatal?.(error);
    } else if (error.code === 'KAFKA_UNREACHABLE') {
      // Say what the seed guide says about it, at most every 30 s.
      const now = Date.now();
      if (now - this.lastUnreachableLogAt <= UNREACHABLE_LOG_MS) return;
      this.lastUnreachableLogAt = now;
      logger.warn({ err, hint: bootstrapHint(config.bootstrapServers, config.runningInKubernetes) }, `cannot reach Kafka at ${config.bootstrapServers}`);
    } else if (error.code === 'KAFKA_MAX_POLL_EXCEEDED') {
      // librdkafka left the group: the partitions come back as `lost`, so nothing of this
      // generation is committed; the next assignment clears the flag.
      this.committer.maxPollExceeded();
      logger.error({ err }, 'max.poll.interval.ms exceeded: left the group; nothing of this generation will be committed');
    } else logger.warn({ err }, 'Kafka client error');
  }

  // ---- delivery -------------------------------------------------------------------------------

  private start(delivery: Delivery): void {
    this.starting(delivery);
    delivery.task = this.deliver(delivery).then(
      () => this.finished(delivery),
      (error) => {
        this.deps.logger.error({ err: error, offset: delivery.record.offset, ...delivery.partition.tp }, 'delivery failed unexpectedly');
        this.finished(delivery);
      },
    );
  }

  /** A batch route's batch: its records settle one by one, each finishing on its own. */
  private startBatch(deliveries: Delivery[]): void {
    for (const delivery of deliveries) this.starting(delivery);
    const task = this.batches
      .settle(deliveries, (delivery, settlement) => {
        this.settled(delivery, settlement);
        // A batch's records often settle together: one dispatch for all of them.
        this.finished(delivery, true);
      })
      .catch((error) => {
        const first = deliveries[0] as Delivery;
        this.deps.logger.error({ err: error, offset: first.record.offset, ...first.partition.tp }, 'batch delivery failed unexpectedly');
      });
    for (const delivery of deliveries) if (delivery.partition.inFlight.has(delivery)) delivery.task = task;
  }

  private starting(delivery: Delivery): void {
    this.deps.metrics.inFlight.hot.value++;
    delivery.partition.route.started++;
    delivery.startedAt = Date.now();
    delivery.partition.inFlight.add(delivery);
    if (delivery.tier) this.tierCount(delivery, 'due');
  }

  private tierCount(delivery: Delivery, state: 'due' | 'delivered'): void {
    const { route } = delivery.partition;
    const tier = route.config.tiers[(delivery.tier as { index: number }).index];
    if (tier) this.deps.metrics.retryTierRecords.inc({ topic: route.config.topic, tier: tier.label, state });
  }

  private async deliver(delivery: Delivery): Promise<void> {
    this.settled(delivery, await this.attempts.settle(delivery));
  }

  private settled(delivery: Delivery, settlement: Settlement): void {
    if (settlement === 'abandoned' || !this.tracker.complete(delivery.ticket)) return;
    const { route } = delivery.partition;
    if (settlement === 'ack') {
      route.delivered.inc();
      if (delivery.tier) this.tierCount(delivery, 'delivered');
    }
    route.processing.observe((Date.now() - delivery.record.fetchedAt) / 1000);
    this.committer.completed();
  }

  private finished(delivery: Delivery, dispatchSoon = false): void {
    delivery.partition.route.started--;
    delivery.partition.inFlight.delete(delivery);
    this.deps.metrics.inFlight.hot.value--;
    this.scheduler.finish(delivery);
    // While stopping, only the records kept to fill gaps wait (pipeline/partition.ts gapFiller).
    if (dispatchSoon) this.dispatchSoon();
    else this.scheduler.dispatch();
    this.releaseFetch();
  }

  /** A route's permit freed up for records not started yet: dispatch once the current turn ends. */
  private dispatchSoon(): void {
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    queueMicrotask(() => {
      this.dispatchQueued = false;
      this.scheduler.dispatch();
    });
  }

  private releaseFetch(): void {
    if (this.fetchWaiters.length > 0 && this.scheduler.totalWaiting <= this.fetchHighWater >> 1) this.wakeFetch();
  }

  private wakeFetch(): void {
    for (const wake of this.fetchWaiters.splice(0)) wake();
  }

  // ---- the app's state → partitions ----------------------------------------------------------

  private pauseFetching(tp: TopicPartition, paused: boolean): void {
    if (!this.source) return;
    try {
      if (paused) this.source.pause([tp]);
      else this.source.resume([tp]);
    } catch (error) {
      this.deps.logger.warn({ err: errorMessage(error), ...tp, paused }, 'pause/resume failed');
    }
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /**
   * SIGTERM: stop fetching, let in-flight pushes finish within the grace period, commit the
   * acknowledged prefix, leave the group.
   */
  async stop(): Promise<void> {
    if (this.state.stopping) return;
    this.state.stopping = true;
    const { logger, config } = this.deps;
    this.committer.stopCadence();
    await this.source?.stopFetching();
    const partitions = [...this.partitions.values()];
    for (const partition of partitions) {
      this.scheduler.block(partition.queue, partition.gapFiller());
      partition.soft.abort();
    }
    for (const route of this.routes.values()) route.app.stop();
    const inFlight = partitions.reduce((n, p) => n + p.inFlight.size, 0);
    logger.info({ inFlight, graceMs: config.shutdownGraceMs }, 'stopping: draining in-flight pushes');
    if (!(await drainPartitions(partitions, config.shutdownGraceMs))) {
      // Grace over: cancel what still runs (its records stay uncommitted and go to the next owner).
      for (const partition of partitions) this.scheduler.block(partition.queue);
      this.pushesAborted = true;
      await this.deps.pusher.abortAll();
      await Promise.allSettled(partitions.flatMap((p) => p.tasks()));
    }
    await this.committer.commit();
    await this.source?.close();
    logger.info('stopped: offsets committed, group left');
  }

  // ---- operator seek (DESIGN A7: pipeline/seek.ts) -----------------------------------------------

  seek(tp: TopicPartition, to: { offset: number } | { timestamp: number }): Promise<{ previous: number | null; now: number } | undefined> {
    const flow = this;
    return seekPartition(
      {
        partitions: this.partitions,
        seeking: this.seeking,
        source: this.source,
        get stopping() {
          return flow.state.stopping;
        },
        graceMs: this.deps.config.shutdownGraceMs,
        tracker: this.tracker,
        scheduler: this.scheduler,
        committer: this.committer,
        logger: this.deps.logger,
        pauseFetching: (owned, paused) => this.pauseFetching(owned, paused),
        releaseFetch: () => this.releaseFetch(),
        own: (owned) => this.own(owned),
      },
      tp,
      to,
    );
  }

  // ---- for the API (the rest is in `operator`) --------------------------------------------------

  commit(): Promise<void> {
    return this.committer.commit();
  }

  assignedPartitions(): TopicPartition[] {
    return [...this.partitions.values()].map((partition) => partition.tp);
  }

  /** What Courier holds of a partition it owns, for the ages in the lag report. */
  held(tp: TopicPartition): { position: number; oldest: Unacknowledged | undefined } | undefined {
    const partition = this.partitions.get(tpKey(tp));
    if (!partition) return undefined;
    return { position: partition.offsets.committable(), oldest: partition.oldestUnacknowledged(this.scheduler.waitingFronts(partition.queue)) };
  }

  get fatalError(): Error | undefined {
    return this.state.fatalError;
  }
}
