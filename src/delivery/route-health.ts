/**
 * What a route's recent answers say about the app as a whole, as opposed to one record (DESIGN A2
 * v2). Pure: the clock is passed in.
 *
 * - Outage: every record fails and none succeeds for `outageAfterMs` → the route is held (one probe
 *   at a time) and failures stop costing attempts; the first success ends it. A poison record among
 *   successes never opens it, since every success closes it.
 * - Misrouted: a misroute answer (3xx, 404, 405, 415) and no 2xx since → the URL is wrong, not the
 *   record: held, never dead-lettered. A 2xx after a record's first misroute answer shows the app
 *   works for others; that record's next misroute answer is then its own (rejected).
 */
export type RouteCondition =
  | { readonly state: 'ok' }
  | { readonly state: 'app_failing'; readonly since: number; readonly reason: string }
  | { readonly state: 'app_misrouted'; readonly since: number; readonly status: number; readonly location: string | undefined };

export class RouteHealth {
  private lastAckAt = Number.NEGATIVE_INFINITY;
  private failing: { since: number; reason: string } | undefined;
  private misroute: { since: number; status: number; location: string | undefined } | undefined;
  /** One promise shared by everyone waiting for the next success, so waiting costs nothing per wait. */
  private success: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(private readonly outageAfterMs: number) {}

  ack(now: number): void {
    this.lastAckAt = now;
    this.failing = undefined;
    this.misroute = undefined;
    this.success?.resolve();
    this.success = undefined;
  }

  /** A failure (5xx, timeout, connection lost): the outage clock starts at the first one since a success. */
  failed(now: number, reason: string): void {
    if (this.failing) this.failing.reason = reason;
    else this.failing = { since: now, reason };
  }

  misrouted(now: number, status: number, location: string | undefined): void {
    if (this.misroute) {
      this.misroute.status = status;
      this.misroute.location = location;
    } else this.misroute = { since: now, status, location };
  }

  /** Whether a 2xx arrived after `time`. */
  succeededSince(time: number): boolean {
    return this.lastAckAt > time;
  }

  /** Failures now stop costing attempts: the app is failing as a whole. */
  inOutage(now: number): boolean {
    return this.failing !== undefined && now - this.failing.since >= this.outageAfterMs;
  }

  /** Held routes push one record at a time (a probe) until a success. */
  held(now: number): boolean {
    return this.misroute !== undefined || this.inOutage(now);
  }

  condition(now: number): RouteCondition {
    if (this.misroute) return { state: 'app_misrouted', ...this.misroute };
    if (this.failing && this.inOutage(now)) return { state: 'app_failing', ...this.failing };
    return { state: 'ok' };
  }

  /** Resolves at the route's next success. */
  nextSuccess(): Promise<void> {
    if (!this.success) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.success = { promise, resolve };
    }
    return this.success.promise;
  }
}
