import type { RouteConfig } from '../config/index.js';
import { AppGate } from '../delivery/app-gate.js';
import { AdaptiveLimit, Permits, TokenBucket } from '../delivery/concurrency.js';
import type { RouteView } from '../delivery/outcome.js';
import type { Backoff } from '../delivery/retry.js';
import { RouteHealth } from '../delivery/route-health.js';
import type { HotCounter, HotHistogramChild, Metrics } from '../metrics.js';
import type { BatchLimits } from './scheduler.js';

/**
 * One topic's way to the app: its settings, URL, backoff, the gate of its app's origin (shared by
 * routes to the same origin), whether the app refuses Courier, what its answers say about the app
 * (health), how many pushes it may have out (adaptive limit and permits), and its metric children,
 * looked up once (label hashing per record shows in profiles).
 */
export class Route {
  readonly url: URL;
  readonly policy: Backoff;
  readonly ackStatuses: ReadonlySet<number>;
  readonly health: RouteHealth;
  readonly limit: AdaptiveLimit;
  /** A held route (outage, misroute) pushes one record at a time: the probe. */
  readonly permits: Permits;
  readonly overloads: HotCounter;
  /** A batch route's limits (DESIGN A6); undefined: one request per record. */
  readonly batching: BatchLimits | undefined;
  /** Records of the route started and not finished (pushing or waiting). */
  started = 0;
  /** The scheduler found no permit for a record: dispatch again when one frees up. */
  starved = false;
  private readonly rate: TokenBucket | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  /** For the scheduler: a record not started yet may start now (and takes a permit). */
  readonly gate: { tryAcquire(): boolean; release(): void };
  /** Why the app refuses Courier (`http_401`…), while it does. */
  refused: string | undefined;
  readonly delivered: HotCounter;
  readonly duration: HotHistogramChild;
  /** Records per request of a batch route. */
  readonly batchSize: HotHistogramChild;
  readonly processing: HotHistogramChild;
  private readonly attemptCounters = new Map<string, HotCounter>();

  constructor(
    readonly config: RouteConfig,
    readonly app: AppGate,
    private readonly metrics: Metrics,
    maxInFlight: number,
    onPermitFree: () => void,
  ) {
    this.url = new URL(config.targetUrl);
    // Equal jitter gives the waits a floor (config warns when it is below the outage window).
    this.policy = { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs, jitter: 'equal' };
    this.ackStatuses = new Set(config.ackStatuses);
    this.health = new RouteHealth(config.outageAfterMs);
    this.limit = new AdaptiveLimit(maxInFlight);
    this.permits = new Permits(
      () => this.concurrencyLimit(),
      () => {
        if (!this.starved) return;
        this.starved = false;
        onPermitFree();
      },
    );
    this.batching =
      config.delivery === 'batch' ? { maxRecords: config.batchMaxRecords, maxBytes: config.batchMaxBytes, lingerMs: config.batchLingerMs } : undefined;
    this.rate = config.rateLimit > 0 ? new TokenBucket(config.rateLimit, Date.now()) : undefined;
    this.gate = {
      // A held route lets no new record start while one of its records probes or waits.
      tryAcquire: () => {
        const now = Date.now();
        if (this.started > 0 && this.health.held(now)) {
          this.starved = true;
          return false;
        }
        if (this.rate && this.rate.waitMs(now) > 0) {
          this.wakeForRate(now, onPermitFree);
          return false;
        }
        if (!this.permits.tryAcquire()) {
          this.starved = true;
          return false;
        }
        this.rate?.take(now);
        return true;
      },
      release: () => this.permits.release(),
    };
    const topic = config.topic;
    this.overloads = metrics.overloads.hot({ topic });
    this.delivered = metrics.recordsDelivered.hot({ topic });
    this.duration = metrics.deliveryDuration.labels({ topic });
    this.batchSize = metrics.batchSize.labels({ topic });
    this.processing = metrics.recordProcessing.labels({ topic });
  }

  /** Out of tokens: dispatch again when the next one is due. */
  private wakeForRate(now: number, dispatch: () => void): void {
    if (this.rateTimer || !this.rate) return;
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      dispatch();
    }, this.rate.waitMs(now));
    this.rateTimer.unref();
  }

  /** Pushes at once: the adaptive limit, or 1 (the probe) while the route is held. */
  concurrencyLimit(now = Date.now()): number {
    return this.health.held(now) ? 1 : this.limit.current;
  }

  /** What classifying a record's answer needs to know of the route. */
  view(firstMisrouteAt: number | undefined): RouteView {
    return { ackStatuses: this.ackStatuses, succeededSinceMisroute: firstMisrouteAt !== undefined && this.health.succeededSince(firstMisrouteAt) };
  }

  /** `courier_delivery_attempts_total{topic,result}` for one result label. */
  attempts(result: string): HotCounter {
    let counter = this.attemptCounters.get(result);
    if (!counter) {
      counter = this.metrics.deliveryAttempts.hot({ topic: this.config.topic, result });
      this.attemptCounters.set(result, counter);
    }
    return counter;
  }
}

/** Routes by topic; one app gate per origin, which reports its changes to `onAppChange`. */
export function buildRoutes(
  routes: readonly RouteConfig[],
  metrics: Metrics,
  maxInFlight: number,
  onAppChange: (origin: string, up: boolean, reason: string | undefined) => void,
  onPermitFree: () => void,
): Map<string, Route> {
  const gates = new Map<string, AppGate>();
  const byTopic = new Map<string, Route>();
  for (const config of routes) {
    const url = new URL(config.targetUrl);
    let gate = gates.get(url.origin);
    if (!gate) {
      gate = new AppGate({ url, onChange: (up, reason) => onAppChange(url.origin, up, reason) });
      gates.set(url.origin, gate);
    }
    byTopic.set(config.topic, new Route(config, gate, metrics, maxInFlight, onPermitFree));
  }
  return byTopic;
}
