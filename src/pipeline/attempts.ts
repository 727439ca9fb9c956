import type { Logger } from 'pino';
import type { Config, RetryTier } from '../config/index.js';
import { checkLimits } from '../delivery/limits.js';
import { type AttemptResult, classify, resultLabel } from '../delivery/outcome.js';
import { attemptHeaders, type PushSettings, preparePush } from '../delivery/push.js';
import { backoff, decideRetry, overloadDelay } from '../delivery/retry.js';
import { errorMessage } from '../errors.js';
import { type BodyRedactor, createBodyRedactor, describeAnswer } from '../kafka/app-response.js';
import { type DeadLetterReason, isRecordTooLarge } from '../kafka/dlq.js';
import type { Metrics } from '../metrics.js';
import type { RecordTicket } from '../offsets/tracker.js';
import { sleep, untilAborted } from '../time.js';
import type { Delivery } from './partition.js';
import type { DeadLetterPort, PushPort } from './ports.js';
import type { Route } from './route.js';

/**
 * How one record ended: acknowledged, skipped (a tombstone, by configuration), parked in its next
 * retry tier or dead-lettered (the write acknowledged), or given up (revoke, stop).
 */
export type Settlement = 'ack' | 'skipped' | 'retried' | 'dead-lettered' | 'abandoned';

export interface AttemptsDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly pusher: PushPort;
  readonly deadLetters: DeadLetterPort;
  /** Whether the ticket's partition (and generation) is still ours. */
  readonly owns: (ticket: RecordTicket) => boolean;
  /** Whether the pushes were cancelled by our own shutdown (their failures are not the app's). */
  readonly pushesAborted: () => boolean;
  /** The app refuses Courier (reason), or accepts it again (undefined). */
  readonly refused: (route: Route, reason: string | undefined) => void;
}

/** DLQ and retry-tier writes that fail are retried on this backoff, with the partition paused meanwhile. */
const DLQ_RETRY = { initialMs: 500, maxMs: 5000, jitter: 'none' } as const;

type Verdict = { readonly kind: 'ack' } | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason } | { readonly kind: 'abandoned' };

/**
 * One record until it is settled: push, classify the answer (delivery/outcome.ts), wait and retry
 * (delivery/retry.ts), give up into the DLQ, write the DLQ record until the broker acknowledges it.
 */
export class Attempts {
  readonly pushSettings: PushSettings;
  /** The app's answer body reaches the DLQ redacted like the logs. */
  readonly redactBody: BodyRedactor;

  constructor(private readonly deps: AttemptsDeps) {
    this.pushSettings = { appToken: deps.config.appToken, signingKeys: deps.config.signingKeys };
    this.redactBody = createBodyRedactor(deps.config.secrets);
  }

  async settle(delivery: Delivery): Promise<Settlement> {
    const { record, partition } = delivery;
    if (record.value === null && partition.route.config.tombstones === 'skip') {
      partition.route.permits.release(); // the scheduler's permit: nothing goes out
      this.deps.metrics.tombstonesSkipped.inc({ topic: record.topic });
      return 'skipped';
    }
    const verdict = await this.pushUntilSettled(delivery);
    if (verdict.kind === 'ack') return 'ack';
    if (verdict.kind === 'abandoned') return 'abandoned';
    return this.park(delivery, verdict.reason);
  }

  /**
   * Pushes until the answer settles the record. The record holds one of its route's permits only
   * while a request is out (the scheduler took the first one); it gives the permit back to wait
   * and takes one again before the next push. Only failures cost attempts (DESIGN A2 v2).
   */
  private async pushUntilSettled(delivery: Delivery): Promise<Verdict> {
    const { record, partition } = delivery;
    const { route } = partition;
    const signal = partition.soft.signal;
    let holdsPermit = true;
    try {
      const prepared = preparePush(record, this.pushSettings, route.config.defaultContentType);
      if (prepared.droppedHeaders > 0) this.deps.metrics.droppedHeaders.inc({ topic: record.topic }, prepared.droppedHeaders);
      const violation = checkLimits(record, prepared, this.deps.config.limits);
      if (violation) {
        return { kind: 'dead-letter', reason: { errorType: violation.errorType, errorMessage: violation.message, attempts: 0, failedAt: new Date() } };
      }
      let attempt = 1;
      let pushes = 0;
      /** Waits in a row that cost no attempt (overload, refused, misrouted, outage), for their backoff. */
      let holds = 0;
      let firstMisrouteAt: number | undefined;
      let lastClass: string | undefined;
      /** Gives the permit back and waits `ms`, or until `until` settles (whichever first; only `until` when ms is null). */
      const wait = async (ms: number | null, until?: Promise<void>) => {
        route.permits.release();
        holdsPermit = false;
        if (ms === null) await untilAborted(until ?? Promise.resolve(), signal);
        else if (until) await untilAborted(Promise.race([until, sleep(ms, signal)]), signal);
        else await sleep(ms, signal);
      };
      for (;;) {
        if (!holdsPermit) {
          if (!(await route.permits.acquire(signal))) return { kind: 'abandoned' };
          holdsPermit = true;
        }
        if (!route.app.isUp) {
          await wait(null, route.app.whenOpen());
          continue;
        }
        // Revoking or stopping: a record's first push still goes (it fills a gap below records
        // already acknowledged, pipeline/partition.ts gapFiller); a retry does not.
        if (signal.aborted && pushes > 0) return { kind: 'abandoned' };
        const sentAt = Date.now();
        const started = performance.now();
        // courier-attempt counts the pushes that may have reached the app.
        const headers = attemptHeaders(prepared, record.value, (delivery.tier?.priorAttempts ?? 0) + pushes + 1, this.pushSettings, Math.floor(sentAt / 1000));
        const result = await this.deps.pusher.push(route.url, headers, record.value, route.config.requestTimeoutMs);
        const now = Date.now();
        const answeredAt = performance.now();
        const outcome = classify(result, route.view(firstMisrouteAt));
        if (outcome.class !== 'down') {
          pushes++;
          route.duration.observe((answeredAt - started) / 1000);
        }
        route.attempts(resultLabel(result)).inc();
        if (outcome.class !== lastClass) holds = 0;
        lastClass = outcome.class;
        switch (outcome.class) {
          case 'ack':
            route.health.ack(now);
            route.limit.success({ sentAt: started, now: answeredAt, inFlight: route.permits.inUse });
            if (route.refused) this.deps.refused(route, undefined);
            return { kind: 'ack' };
          case 'down':
            // Nothing reached the app: not an attempt. The gate probes and lets us through again.
            route.app.markDown(outcome.reason);
            continue;
          case 'refused':
            // The app refuses Courier itself (token, signature): hold, report, never dead-letter.
            this.deps.refused(route, outcome.reason);
            await wait(backoff(++holds, route.policy));
            continue;
          case 'overload': {
            // The app asks for less: fewer pushes at once, wait as long as it says; no attempt.
            route.overloads.inc();
            route.limit.overload({ sentAt: started, now: answeredAt });
            const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
            await wait(overloadDelay(retryAfter, ++holds, route.policy, route.config.retryAfterMaxMs, now));
            continue;
          }
          case 'misrouted':
            // A wrong URL, not a bad record: hold until the route succeeds for someone (then this
            // record's next misroute answer is its own) or a probe is due; never an attempt.
            firstMisrouteAt ??= now;
            route.health.misrouted(now, result.kind === 'response' ? result.status : 0, result.kind === 'response' ? result.location : undefined);
            await wait(backoff(++holds, route.policy), route.health.nextSuccess());
            continue;
          case 'rejected':
            return { kind: 'dead-letter', reason: deadLetterReason('rejected_by_app', result, attempt, this.redactBody) };
          case 'failure': {
            // Cancelled by our own shutdown: not the app's failure, never a DLQ write.
            if (this.deps.pushesAborted()) return { kind: 'abandoned' };
            route.health.failed(now, outcome.reason);
            if (route.health.inOutage(now)) {
              // Everything of the route fails: an outage, not this record. With a retry tier left
              // the record waits there and its partition moves on; else probe, count nothing.
              if (nextTier(delivery)) return { kind: 'dead-letter', reason: deadLetterReason('app_failing', result, attempt, this.redactBody) };
              await wait(backoff(++holds, route.policy));
              continue;
            }
            const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
            const decision = decideRetry(attempt, route.config.maxAttempts, route.policy, retryAfter, now);
            if (!decision.retry) return { kind: 'dead-letter', reason: deadLetterReason('retries_exhausted', result, attempt, this.redactBody) };
            this.deps.logger.debug(
              { topic: record.topic, partition: record.partition, offset: record.offset, attempt, reason: outcome.reason, delay: decision.delayMs },
              'retrying',
            );
            await wait(decision.delayMs);
            attempt++;
          }
        }
      }
    } finally {
      if (holdsPermit) route.permits.release();
    }
  }

  /**
   * A record that will not be acknowledged: a failure that used up its in-memory attempts goes to
   * the route's next retry tier (DESIGN A7), anything else, or a failure after the last tier, to
   * the DLQ. `attempts` and `retry_history` count every stay; the source offset moves only once the
   * write is acknowledged (the caller completes the record with what this returns).
   */
  async park(delivery: Delivery, reason: DeadLetterReason): Promise<Settlement> {
    const { route } = delivery.partition;
    const { tiers, dlqTopic } = route.config;
    const stay = delivery.tier;
    const current = stay ? tiers[stay.index] : undefined;
    const attempts = (stay?.priorAttempts ?? 0) + reason.attempts;
    const history =
      tiers.length > 0 || stay
        ? [
            ...(stay?.history ?? []),
            {
              tier: current?.label ?? null,
              attempts: reason.attempts,
              errorType: reason.errorType,
              httpStatus: reason.httpStatus,
              failedAt: reason.failedAt.toISOString(),
            },
          ]
        : undefined;
    const next = TIERED.has(reason.errorType) ? nextTier(delivery) : undefined;
    if (next) {
      const parked = await this.write(
        delivery,
        next.topic,
        () => ({ ...reason, attempts, retryTier: next.label, retryDueAt: Date.now() + next.delayMs, history }),
        {
          blocked: 'retry_blocked',
          omitTooLarge: false,
        },
      );
      if (parked === 'written') {
        this.deps.metrics.retryTierRecords.inc({ topic: route.config.topic, tier: next.label, state: 'written' });
        this.deps.logger.info(
          { ...coordinates(delivery), retryTopic: next.topic, tier: next.label, attempts, dueInMs: next.delayMs },
          'record parked in its next retry tier; its partition moves on',
        );
        return 'retried';
      }
      if (parked === 'gone') return 'abandoned';
      // The tier topic refuses the record as too large: the DLQ keeps what it can of it.
    }
    const dead = { ...reason, attempts, retryTier: current?.label, history };
    if ((await this.write(delivery, dlqTopic, () => dead, { blocked: 'dlq_blocked', omitTooLarge: true })) !== 'written') return 'abandoned';
    this.deps.metrics.recordsDeadLettered.inc({ topic: route.config.topic, reason: reason.errorType });
    this.deps.logger.warn(
      { ...coordinates(delivery), dlqTopic, errorType: reason.errorType, httpStatus: reason.httpStatus, attempts, retryTier: current?.label },
      'record dead-lettered',
    );
    return 'dead-lettered';
  }

  /** Writes a parked record until the broker acknowledges it; while it cannot, the partition is paused. */
  private async write(
    delivery: Delivery,
    topic: string,
    reason: () => DeadLetterReason,
    options: { blocked: 'dlq_blocked' | 'retry_blocked'; omitTooLarge: boolean },
  ): Promise<'written' | 'too_large' | 'gone'> {
    const { record, partition } = delivery;
    let failures = 0;
    try {
      for (;;) {
        // The first write is made even while stopping: the push finished within the grace period,
        // so its outcome should land. Only retrying a failing write gives way to a revoke or stop,
        // and nothing is written for a partition (or generation) that is no longer ours.
        if ((failures > 0 && partition.soft.signal.aborted) || !this.deps.owns(delivery.ticket)) return 'gone';
        try {
          await this.deps.deadLetters.send(topic, record, reason(), options.omitTooLarge);
          return 'written';
        } catch (error) {
          if (!options.omitTooLarge && isRecordTooLarge(error)) return 'too_large';
          if (failures++ === 0) partition.setPaused(options.blocked, true);
          this.deps.logger.error(
            { ...coordinates(delivery), to: topic, err: errorMessage(error), failures },
            `${options.blocked === 'dlq_blocked' ? 'DLQ' : 'retry tier'} write failed; partition paused, offset held, retrying`,
          );
          await sleep(backoff(failures, DLQ_RETRY), partition.soft.signal);
        }
      }
    } finally {
      if (failures > 0) partition.setPaused(options.blocked, false);
    }
  }
}

/** Failures that move a record to its next retry tier; any other reason goes to the DLQ. */
const TIERED = new Set(['retries_exhausted', 'app_failing']);

/** The retry tier a record goes to next, if its route has one left (DESIGN A7). */
export function nextTier(delivery: Delivery): RetryTier | undefined {
  const { tiers } = delivery.partition.route.config;
  return tiers[delivery.tier ? delivery.tier.index + 1 : 0];
}

/** The record's source coordinates, for log lines. */
function coordinates({ record }: Delivery): { topic: string; partition: number; offset: number } {
  return { topic: record.topic, partition: record.partition, offset: record.offset };
}

/** The last attempt decides the reason: an HTTP answer brings its status and the app's own words. */
export function deadLetterReason(errorType: string, result: AttemptResult, attempts: number, redactBody: BodyRedactor): DeadLetterReason {
  let last: string;
  let httpStatus: number | undefined;
  let appResponse: string | undefined;
  if (result.kind === 'response') {
    const answer = describeAnswer(result.status, result.body, redactBody);
    last = answer.message;
    httpStatus = result.status;
    appResponse = answer.appResponse;
  } else {
    last = result.kind === 'timeout' ? 'no answer within the request timeout' : `connection lost (${result.code})`;
  }
  const errorMessage = errorType === 'retries_exhausted' ? `${attempts} attempts failed; last: ${last}` : last;
  return { errorType, errorMessage, httpStatus, appResponse, attempts, failedAt: new Date() };
}
