import type { RouteConfig } from '../config/index.js';
import { AppGate } from '../delivery/app-gate.js';
import type { Backoff } from '../delivery/retry.js';
import type { HotCounter, HotHistogramChild, Metrics } from '../metrics.js';

/**
 * One topic's way to the app: its settings, URL, backoff, the gate of its app's origin (shared by
 * routes to the same origin), whether the app refuses Courier, and its metric children, looked up
 * once (label hashing per record shows in profiles).
 */
export class Route {
  readonly url: URL;
  readonly policy: Backoff;
  /** Why the app refuses Courier (`http_401`…), while it does. */
  refused: string | undefined;
  readonly delivered: HotCounter;
  readonly duration: HotHistogramChild;
  readonly processing: HotHistogramChild;
  private readonly attemptCounters = new Map<string, HotCounter>();

  constructor(
    readonly config: RouteConfig,
    readonly gate: AppGate,
    private readonly metrics: Metrics,
  ) {
    this.url = new URL(config.targetUrl);
    this.policy = { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs };
    const topic = config.topic;
    this.delivered = metrics.recordsDelivered.hot({ topic });
    this.duration = metrics.deliveryDuration.labels({ topic });
    this.processing = metrics.recordProcessing.labels({ topic });
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
  onAppChange: (origin: string, up: boolean, reason: string | undefined) => void,
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
    byTopic.set(config.topic, new Route(config, gate, metrics));
  }
  return byTopic;
}
