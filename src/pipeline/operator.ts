import type { Logger } from 'pino';
import type { PartitionStatus, RebalanceEvent, RebalancesReport, RebalanceType, RouteStatus } from '../api/schemas.js';
import type { Metrics } from '../metrics.js';
import type { Committer } from '../offsets/committer.js';
import { type TopicPartition, tpKey } from '../record.js';
import type { Delivery, OwnedPartition } from './partition.js';
import type { Route } from './route.js';
import type { Scheduler } from './scheduler.js';

const HISTORY_LIMIT = 200;
/** An operator's pause survives a revoke followed by an assign of the same partition within this. */
const ADMIN_PAUSE_MEMORY_MS = 60_000;

/** The flow's lifecycle, as the flow sets it and readiness reads it. */
export interface FlowState {
  /** Attached to the Kafka consumer (connected and subscribed). */
  attached: boolean;
  /** Has had an assignment. */
  joined: boolean;
  stopping: boolean;
  fatalError: Error | undefined;
}

/** What the operator view reads and steers of the flow. */
export interface FlowView {
  readonly groupId: string;
  readonly state: Readonly<FlowState>;
  readonly partitions: ReadonlyMap<string, OwnedPartition>;
  readonly routes: ReadonlyMap<string, Route>;
  readonly scheduler: Scheduler<Delivery>;
  readonly committer: Committer;
}

/**
 * What operators see and steer: rebalance history, readiness reasons, the assignment snapshot, and
 * admin pause (remembered across a quick revoke and re-assign of the same partition).
 */
export class Operator {
  private readonly history: RebalanceEvent[] = [];
  private readonly counts = { assign: 0, revoke: 0, lost: 0 };
  /**
   * Partitions an operator paused, with when they were last revoked (undefined while owned). They
   * stay paused across rebalances while they stay ours: with the eager protocol a partition we keep
   * is revoked and assigned again in the same rebalance, so a recent revoke does not forget it.
   */
  private readonly adminPaused = new Map<string, number | undefined>();

  constructor(
    private readonly view: FlowView,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  recordRebalance(type: RebalanceType, partitions: readonly TopicPartition[]): void {
    this.history.push({ at: new Date().toISOString(), type, partitions: partitions.map(({ topic, partition }) => ({ topic, partition })) });
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    this.counts[type]++;
    this.metrics.rebalances.inc({ type });
    this.logger.info({ type, partitions: partitions.map((tp) => `${tp.topic}-${tp.partition}`) }, 'rebalance');
  }

  rebalances(): RebalancesReport {
    return { events: [...this.history], counts: { ...this.counts } };
  }

  /** A partition was assigned: pause it again if an operator had paused it recently. */
  assigned(partition: OwnedPartition): void {
    const key = tpKey(partition.tp);
    if (!this.adminPaused.has(key)) return;
    const revokedAt = this.adminPaused.get(key);
    if (revokedAt === undefined || Date.now() - revokedAt < ADMIN_PAUSE_MEMORY_MS) {
      this.adminPaused.set(key, undefined);
      partition.setPaused('admin', true);
      this.view.scheduler.hold(partition.queue, true);
    } else this.adminPaused.delete(key);
  }

  revoked(partition: OwnedPartition): void {
    const key = tpKey(partition.tp);
    if (this.adminPaused.has(key)) this.adminPaused.set(key, Date.now());
  }

  /**
   * Operator pause/resume. `partitions` omitted: every partition of the topic we own. Returns null
   * when Courier does not consume the topic.
   */
  adminPause(topic: string, partitions: readonly number[] | undefined, pause: boolean): { changed: TopicPartition[]; notAssigned: TopicPartition[] } | null {
    if (!this.view.routes.has(topic)) return null;
    const owned = [...this.view.partitions.values()].filter((partition) => partition.tp.topic === topic);
    const wanted = partitions ?? owned.map((partition) => partition.tp.partition);
    const changed: TopicPartition[] = [];
    const notAssigned: TopicPartition[] = [];
    for (const number of new Set(wanted)) {
      const tp = { topic, partition: number };
      const key = tpKey(tp);
      const partition = this.view.partitions.get(key);
      if (!partition) {
        notAssigned.push(tp);
        continue;
      }
      if (this.adminPaused.has(key) === pause) continue;
      if (pause) this.adminPaused.set(key, undefined);
      else this.adminPaused.delete(key);
      partition.setPaused('admin', pause);
      this.view.scheduler.hold(partition.queue, pause);
      changed.push(tp);
    }
    if (!pause) this.view.scheduler.dispatch();
    if (changed.length > 0)
      this.logger.info({ topic, partitions: changed.map((tp) => tp.partition), pause }, pause ? 'paused by operator' : 'resumed by operator');
    return { changed, notAssigned };
  }

  // ---- the app's state → partitions --------------------------------------------------------------

  private partitionsOfOrigin(origin: string): OwnedPartition[] {
    return [...this.view.partitions.values()].filter((partition) => partition.route.url.origin === origin);
  }

  /** An app origin's gate went down or up: its partitions pause or resume (app_down). */
  appChanged(origin: string, up: boolean, reason: string | undefined): void {
    // The gate has already changed state when it calls back.
    this.metrics.appUp.set([...this.view.routes.values()].every((route) => route.app.isUp) ? 1 : 0);
    if (up) this.logger.info({ app: origin }, 'app reachable again; resuming');
    else this.logger.warn({ app: origin, reason }, 'app unreachable; holding records and pausing until it answers');
    for (const partition of this.partitionsOfOrigin(origin)) {
      if (partition.isPausedFor('app_down') !== !up) partition.setPaused('app_down', !up);
    }
  }

  /** The app refuses Courier (401/403, `reason`) or accepts it again (undefined): its partitions pause or resume. */
  appRefused(route: Route, reason: string | undefined): void {
    if (route.refused === reason) return;
    const wasRefused = route.refused !== undefined;
    route.refused = reason;
    this.metrics.appRefused.set([...this.view.routes.values()].some((r) => r.refused !== undefined) ? 1 : 0);
    if (reason) this.logger.error({ app: route.url.origin, reason }, 'app refuses Courier (check COURIER_APP_TOKEN / signing secret); holding records');
    else this.logger.info({ app: route.url.origin }, 'app accepts Courier again');
    for (const partition of this.partitionsOfOrigin(route.url.origin)) {
      if (reason && !wasRefused) partition.setPaused('app_refused', true);
      if (!reason && wasRefused) partition.setPaused('app_refused', false);
    }
  }

  /** Every owned partition with its state, in-flight count, age of the oldest in flight, pause reasons. */
  assignment(now = Date.now()): PartitionStatus[] {
    return [...this.view.partitions.values()].map((partition) => {
      const oldest = partition.oldestStartedAt();
      const pausedReasons = [...partition.pauseReasons.keys()];
      return {
        topic: partition.tp.topic,
        partition: partition.tp.partition,
        state: partition.revoking ? 'draining' : pausedReasons.length > 0 ? 'paused' : 'active',
        inFlight: partition.inFlight.size,
        queued: this.view.scheduler.queuedOf(partition.queue),
        oldestInFlightMs: oldest === undefined ? null : now - oldest,
        pausedReason: pausedReasons[0] ?? null,
        pausedReasons,
      };
    });
  }

  /** Each route's state, adaptive concurrency limit and load. */
  routes(now = Date.now()): RouteStatus[] {
    return [...this.view.routes.values()].map((route) => {
      const condition = route.health.condition(now);
      return {
        topic: route.config.topic,
        url: route.url.href,
        state: condition.state,
        concurrencyLimit: route.concurrencyLimit(now),
        pushing: route.permits.inUse,
        started: route.started,
        since: condition.state === 'ok' ? null : new Date(condition.since).toISOString(),
        status: condition.state === 'app_misrouted' ? condition.status : null,
        location: condition.state === 'app_misrouted' ? (condition.location ?? null) : null,
      };
    });
  }

  /** Why Courier is not ready, as stable codes with a sentence each; empty when ready. */
  notReadyReasons(): Array<{ code: string; message: string }> {
    const { view } = this;
    const { state } = view;
    const reasons: Array<{ code: string; message: string }> = [];
    if (state.fatalError) reasons.push({ code: 'consumer_failed', message: `the Kafka consumer failed: ${state.fatalError.message}` });
    if (state.stopping) reasons.push({ code: 'stopping', message: 'shutting down' });
    if (!state.attached) reasons.push({ code: 'not_subscribed', message: 'not connected to Kafka yet' });
    else if (!state.joined) reasons.push({ code: 'not_joined', message: `subscribed, waiting for the first assignment of group ${view.groupId}` });
    const seen = new Set<string>();
    for (const route of view.routes.values()) {
      // The app gate and refusals are per origin; outage and misroute per route.
      const firstOfOrigin = !seen.has(route.url.origin);
      seen.add(route.url.origin);
      if (firstOfOrigin && !route.app.isUp)
        reasons.push({ code: 'app_down', message: `nothing answers at ${route.url.origin} (${route.app.downReason}); records are held` });
      const condition = route.health.condition(Date.now());
      if (condition.state === 'app_failing') {
        const seconds = Math.round((Date.now() - condition.since) / 1000);
        reasons.push({
          code: 'app_failing',
          message: `every record of ${route.config.topic} fails at ${route.url.href} (last: ${condition.reason}) and none succeeded for ${seconds} s; records are held, one probe at a time, no attempts counted`,
        });
      }
      if (condition.state === 'app_misrouted') {
        const where = condition.location ? ` to ${condition.location}` : '';
        reasons.push({
          code: 'app_misrouted',
          message: `${route.url.href} answers HTTP ${condition.status}${where} and nothing of ${route.config.topic} succeeded since: check the route's URL, path, method or content type; records are held, none dead-lettered`,
        });
      }
      if (firstOfOrigin && route.refused)
        reasons.push({
          code: 'app_refused',
          message: `${route.url.origin} answers ${route.refused.replace('http_', 'HTTP ')}: check COURIER_APP_TOKEN / COURIER_SIGNING_SECRET`,
        });
    }
    const exceededAt = view.committer.maxPollExceededAt;
    if (exceededAt) {
      reasons.push({ code: 'max_poll_exceeded', message: `max.poll.interval.ms was exceeded at ${exceededAt}; rejoining the group` });
    }
    for (const [code, what] of [
      ['dlq_blocked', 'DLQ'],
      ['retry_blocked', 'retry tier'],
    ] as const) {
      const blocked = [...view.partitions.values()].filter((partition) => partition.isPausedFor(code));
      if (blocked.length > 0) {
        reasons.push({ code, message: `${what} writes fail for ${blocked.map((partition) => partition.name).join(', ')}; their offsets are held` });
      }
    }
    return reasons;
  }
}
