import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { checkLimits } from '../delivery/limits.js';
import { type AttemptResult, classify, resultLabel } from '../delivery/outcome.js';
import { attemptHeaders, type PushSettings, preparePush } from '../delivery/push.js';
import { backoff, decideRetry } from '../delivery/retry.js';
import { errorMessage } from '../errors.js';
import { type BodyRedactor, createBodyRedactor, describeAnswer } from '../kafka/app-response.js';
import type { DeadLetterReason } from '../kafka/dlq.js';
import type { Metrics } from '../metrics.js';
import type { RecordTicket } from '../offsets/tracker.js';
import { sleep, untilAborted } from '../time.js';
import type { Delivery } from './partition.js';
import type { DeadLetterPort, PushPort } from './ports.js';
import type { Route } from './route.js';

/** How one record ended: acknowledged, dead-lettered (the write acknowledged), or given up (revoke, stop). */
export type Settlement = 'ack' | 'dead-lettered' | 'abandoned';

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

/** DLQ writes that fail are retried on this backoff, with the partition paused meanwhile. */
const DLQ_RETRY = { initialMs: 500, maxMs: 5000, jitter: 'none' } as const;

type Verdict = { readonly kind: 'ack' } | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason } | { readonly kind: 'abandoned' };

/**
 * One record until it is settled: push, classify the answer (delivery/outcome.ts), wait and retry
 * (delivery/retry.ts), give up into the DLQ, write the DLQ record until the broker acknowledges it.
 */
export class Attempts {
  private readonly pushSettings: PushSettings;
  /** The app's answer body reaches the DLQ redacted like the logs. */
  private readonly redactBody: BodyRedactor;

  constructor(private readonly deps: AttemptsDeps) {
    this.pushSettings = { appToken: deps.config.appToken, signingKeys: deps.config.signingKeys };
    this.redactBody = createBodyRedactor(deps.config.secrets);
  }

  async settle(delivery: Delivery): Promise<Settlement> {
    const verdict = await this.pushUntilSettled(delivery);
    if (verdict.kind === 'ack') return 'ack';
    if (verdict.kind === 'abandoned') return 'abandoned';
    return (await this.writeDeadLetter(delivery, verdict.reason)) ? 'dead-lettered' : 'abandoned';
  }

  private async pushUntilSettled(delivery: Delivery): Promise<Verdict> {
    const { record, partition } = delivery;
    const { route } = partition;
    const signal = partition.soft.signal;
    const prepared = preparePush(record, this.pushSettings);
    if (prepared.droppedHeaders > 0) this.deps.metrics.droppedHeaders.inc({ topic: record.topic }, prepared.droppedHeaders);
    const violation = checkLimits(record, prepared, this.deps.config.limits);
    if (violation) {
      return { kind: 'dead-letter', reason: { errorType: violation.errorType, errorMessage: violation.message, attempts: 0, failedAt: new Date() } };
    }
    let attempt = 1;
    let refusals = 0;
    for (;;) {
      if (!route.gate.isUp) await untilAborted(route.gate.whenOpen(), signal);
      if (signal.aborted) return { kind: 'abandoned' };
      const started = performance.now();
      const headers = attemptHeaders(prepared, record.value, attempt, this.pushSettings, Math.floor(Date.now() / 1000));
      const result = await this.deps.pusher.push(route.url, headers, record.value, route.config.requestTimeoutMs);
      const outcome = classify(result);
      if (outcome.action !== 'app-down') route.duration.observe((performance.now() - started) / 1000);
      route.attempts(resultLabel(result)).inc();
      switch (outcome.action) {
        case 'ack':
          if (route.refused) this.deps.refused(route, undefined);
          return { kind: 'ack' };
        case 'app-down':
          // Nothing reached the app: not an attempt. The gate probes and lets us through again.
          route.gate.markDown(outcome.reason);
          continue;
        case 'app-refused':
          // The app refuses Courier itself (token, signature): hold, report, never dead-letter.
          this.deps.refused(route, outcome.reason);
          await sleep(backoff(++refusals, route.policy), signal);
          continue;
        case 'dead-letter':
          return { kind: 'dead-letter', reason: deadLetterReason('rejected_by_app', result, attempt, this.redactBody) };
        case 'retry': {
          // Cancelled by our own shutdown: not the app's failure, never a DLQ write.
          if (this.deps.pushesAborted()) return { kind: 'abandoned' };
          const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
          const decision = decideRetry(attempt, route.config.maxAttempts, route.policy, retryAfter);
          if (!decision.retry) return { kind: 'dead-letter', reason: deadLetterReason('retries_exhausted', result, attempt, this.redactBody) };
          this.deps.logger.debug(
            { topic: record.topic, partition: record.partition, offset: record.offset, attempt, reason: outcome.reason, delay: decision.delayMs },
            'retrying',
          );
          await sleep(decision.delayMs, signal);
          attempt++;
        }
      }
    }
  }

  /** Writes to the DLQ until the broker acknowledges; while it cannot, the partition is paused. */
  private async writeDeadLetter(delivery: Delivery, reason: DeadLetterReason): Promise<boolean> {
    const { record, partition } = delivery;
    const { dlqTopic } = partition.route.config;
    const { logger } = this.deps;
    let failures = 0;
    for (;;) {
      // The first write is made even while stopping: the push finished within the grace period,
      // so its outcome should land. Only retrying a failing write gives way to a revoke or stop,
      // and nothing is written for a partition (or generation) that is no longer ours.
      if ((failures > 0 && partition.soft.signal.aborted) || !this.deps.owns(delivery.ticket)) return false;
      try {
        await this.deps.deadLetters.send(dlqTopic, record, reason);
        break;
      } catch (error) {
        if (failures++ === 0) partition.setPaused('dlq_blocked', true);
        logger.error(
          { topic: record.topic, partition: record.partition, offset: record.offset, dlqTopic, err: errorMessage(error), failures },
          'DLQ write failed; partition paused, offset held, retrying',
        );
        await sleep(backoff(failures, DLQ_RETRY), partition.soft.signal);
      }
    }
    if (failures > 0) partition.setPaused('dlq_blocked', false);
    this.deps.metrics.recordsDeadLettered.inc({ topic: record.topic, reason: reason.errorType });
    logger.warn(
      {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        dlqTopic,
        errorType: reason.errorType,
        httpStatus: reason.httpStatus,
        attempts: reason.attempts,
      },
      'record dead-lettered',
    );
    return true;
  }
}

/** The last attempt decides the reason: an HTTP answer brings its status and the app's own words. */
function deadLetterReason(errorType: string, result: AttemptResult, attempts: number, redactBody: BodyRedactor): DeadLetterReason {
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
