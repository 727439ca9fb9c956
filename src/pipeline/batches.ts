import type { Ordering } from '../config/index.js';
import { BATCH_ANSWER_MAX_BYTES, type BatchAnswer, batchBody, type ListedFailure, parseBatchAnswer } from '../delivery/batch.js';
import { goAgain, halves } from '../delivery/batch-order.js';
import { checkValueSize } from '../delivery/limits.js';
import { type AttemptResult, classify, type Outcome, resultLabel } from '../delivery/outcome.js';
import { identify, type RecordIdentity, signatureOf } from '../delivery/push.js';
import { backoff, decideRetry, overloadDelay } from '../delivery/retry.js';
import type { DeadLetterReason } from '../kafka/dlq.js';
import { sleep, untilAborted } from '../time.js';
import { type Attempts, type AttemptsDeps, deadLetterReason, nextTier, type Settlement } from './attempts.js';
import type { Delivery } from './partition.js';
import type { Route } from './route.js';

/** One record of a batch on its way. */
interface Entry {
  readonly delivery: Delivery;
  readonly identity: RecordIdentity;
  /** This record's own attempt: failures it met alone or listed by its own status count against COURIER_MAX_ATTEMPTS. */
  attempt: number;
  /** Failures of whole batches it shared: they set the backoff of the split, never its budget. */
  sharedFailures: number;
  /** Requests that may have reached the app: the body's `attempt` is this + 1. */
  pushes: number;
}

/** What one record's part of an answer asks for. */
type Verdict =
  | { readonly kind: 'ack' }
  | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason }
  /** Send again after `delayMs`; `attempt`: whether it failed (costs an attempt). */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly failed: boolean };

/** A group of records to send, and how long to wait first. */
interface Send {
  readonly entries: Entry[];
  readonly delayMs: number;
}

/** Seen by a listed record: the app answered the batch with 2xx, so a misroute status is about the record. */
const ROUTED = { succeededSinceMisroute: true } as const;

/**
 * One batch of a batch route until every record in it is settled (DESIGN A6): push the batch, read
 * the answer per record or for the whole, send again what must be retried (with what must follow
 * it), split a failing batch into halves until a poison record stands alone, dead-letter only a
 * record that fails or is rejected on its own. Records settle one by one (`settled`), so the
 * offsets of acknowledged records move on while a neighbour is retried.
 */
export class BatchAttempts {
  constructor(
    private readonly deps: AttemptsDeps,
    private readonly records: Attempts,
    private readonly ordering: Ordering,
  ) {}

  async settle(deliveries: readonly Delivery[], settled: (delivery: Delivery, settlement: Settlement) => void): Promise<void> {
    const first = deliveries[0];
    if (!first) return;
    const { route } = first.partition;
    const signal = first.partition.soft.signal;
    const open = new Set(deliveries);
    const done = (delivery: Delivery, settlement: Settlement) => {
      if (open.delete(delivery)) settled(delivery, settlement);
    };
    let holdsPermit = true;
    try {
      const entries = await this.admit(deliveries, done);
      const work: Send[] = entries.length > 0 ? [{ entries, delayMs: 0 }] : [];
      /** Waits in a row that cost no attempt, for their backoff. */
      let holds = 0;
      let lastClass: string | undefined;
      let firstMisrouteAt: number | undefined;
      let sentOnce = false;
      while (work.length > 0) {
        const send = work[0] as Send;
        if (send.delayMs > 0) {
          if (holdsPermit) route.permits.release();
          holdsPermit = false;
          await sleep(send.delayMs, signal);
          work[0] = { entries: send.entries, delayMs: 0 };
        }
        if (!holdsPermit) {
          if (!(await route.permits.acquire(signal))) return;
          holdsPermit = true;
        }
        if (!route.app.isUp) {
          route.permits.release();
          holdsPermit = false;
          await untilAborted(route.app.whenOpen(), signal);
          continue;
        }
        // Revoking or stopping: the first push still goes (see Attempts.pushUntilSettled), a retry does not.
        if (signal.aborted && sentOnce) return;
        sentOnce = true;
        const group = send.entries;
        const { result, sentAt, answeredAt } = await this.push(route, group);
        const now = Date.now();
        const outcome = classify(result, route.view(firstMisrouteAt));
        if (outcome.class !== 'down') {
          for (const entry of group) entry.pushes++;
          route.duration.observe((answeredAt - sentAt) / 1000);
          route.batchSize.observe(group.length);
        }
        if (outcome.class !== lastClass) holds = 0;
        lastClass = outcome.class;
        // Only a 2xx body can list failures (ackStatuses acknowledge without one).
        const listing = outcome.class === 'ack' && result.kind === 'response' && result.status < 300 ? result.body : undefined;
        const answer: BatchAnswer | undefined =
          listing === undefined ? undefined : parseBatchAnswer(listing, new Set(group.map((entry) => entry.identity.messageId)));
        if (answer?.kind === 'invalid') {
          this.deps.logger.warn(
            { topic: route.config.topic, reason: answer.reason, records: group.length },
            'the app answered a batch with a body that breaks the contract; treating it as a failure',
          );
        }
        if (outcome.class === 'ack' && answer?.kind !== 'invalid') {
          // A 2xx that lists every record as failed acknowledges nothing: no sign the app works.
          if (answer?.kind !== 'listed' || group.some((entry) => !answer.failures.has(entry.identity.messageId))) route.health.ack(now);
          if (route.refused) this.deps.refused(route, undefined);
          if (answer?.kind === 'listed') {
            const next = await this.applyListed(route, group, answer.failures, now, sentAt, answeredAt, done);
            work.shift();
            if (next) work.unshift(next);
          } else {
            route.attempts(resultLabel(result)).inc(group.length);
            route.limit.success({ sentAt, now: answeredAt, inFlight: route.permits.inUse, records: group.length });
            for (const entry of group) done(entry.delivery, 'ack');
            work.shift();
          }
          continue;
        }
        route.attempts(resultLabel(result)).inc(group.length);
        const whole: Outcome = answer?.kind === 'invalid' ? { class: 'failure', reason: 'invalid_batch_answer' } : outcome;
        switch (whole.class) {
          case 'down':
            route.app.markDown(whole.reason);
            continue;
          case 'refused':
            this.deps.refused(route, whole.reason);
            work[0] = { entries: group, delayMs: backoff(++holds, route.policy) };
            continue;
          case 'overload': {
            route.overloads.inc();
            route.limit.overload({ sentAt, now: answeredAt });
            const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
            work[0] = { entries: group, delayMs: overloadDelay(retryAfter, ++holds, route.policy, route.config.retryAfterMaxMs, now) };
            continue;
          }
          case 'misrouted':
            firstMisrouteAt ??= now;
            route.health.misrouted(now, result.kind === 'response' ? result.status : 0, result.kind === 'response' ? result.location : undefined);
            if (holdsPermit) route.permits.release();
            holdsPermit = false;
            await untilAborted(Promise.race([route.health.nextSuccess(), sleep(backoff(++holds, route.policy), signal)]), signal);
            continue;
          default: {
            // failure or rejection of the whole batch
            if (whole.class === 'failure') {
              if (this.deps.pushesAborted()) return;
              route.health.failed(now, whole.reason);
              if (route.health.inOutage(now)) {
                // Everything of the route fails: an outage, not these records. Those with a retry
                // tier left wait there (their partition moves on); the others probe, counting nothing.
                const held: Entry[] = [];
                for (const entry of group) {
                  if (nextTier(entry.delivery))
                    await this.deadLetter(entry, deadLetterReason('app_failing', result, entry.attempt, this.records.redactBody), done);
                  else held.push(entry);
                }
                if (held.length > 0) work[0] = { entries: held, delayMs: backoff(++holds, route.policy) };
                else work.shift();
                continue;
              }
            }
            if (group.length > 1) {
              // A shared answer is nobody's own: it costs no attempt and dead-letters nobody (a
              // neighbour of a poison record reaches its own tries with its whole budget). Send
              // the halves: a rejection at once, a failure after a backoff that grows per split.
              let shared = 0;
              if (whole.class === 'failure') for (const entry of group) shared = Math.max(shared, ++entry.sharedFailures);
              const wait = whole.class === 'failure' ? backoff(shared, route.policy) : 0;
              const [left, right] = halves(group);
              work.splice(0, 1, { entries: left, delayMs: wait }, { entries: right, delayMs: 0 });
              continue;
            }
            // Alone: its own answer, as in record delivery.
            const entry = group[0] as Entry;
            if (whole.class === 'rejected') {
              work.shift();
              await this.deadLetter(entry, deadLetterReason('rejected_by_app', result, entry.attempt, this.records.redactBody), done);
              continue;
            }
            const retryAfter = result.kind === 'response' ? result.retryAfter : undefined;
            const decision = decideRetry(entry.attempt, route.config.maxAttempts, route.policy, retryAfter, now);
            if (decision.retry) {
              entry.attempt++;
              work[0] = { entries: group, delayMs: decision.delayMs };
              continue;
            }
            work.shift();
            await this.deadLetter(entry, this.exhausted(result, answer, entry.attempt), done);
          }
        }
      }
    } finally {
      if (holdsPermit) route.permits.release();
      // Whatever did not settle (revoke, stop) is abandoned: delivered again by whoever reads next.
      for (const delivery of [...open]) done(delivery, 'abandoned');
    }
  }

  /** Settles what needs no push (skipped tombstones, records over the size limit); returns the rest. */
  private async admit(deliveries: readonly Delivery[], done: (delivery: Delivery, settlement: Settlement) => void): Promise<Entry[]> {
    const entries: Entry[] = [];
    for (const delivery of deliveries) {
      const { record, partition } = delivery;
      const { route } = partition;
      if (record.value === null && route.config.tombstones === 'skip') {
        this.deps.metrics.tombstonesSkipped.inc({ topic: record.topic });
        done(delivery, 'skipped');
        continue;
      }
      const identity = identify(record, route.config.defaultContentType);
      // Headers travel in the JSON body, so only the value's size limit applies to a batch.
      const violation = checkValueSize(record, this.deps.config.limits);
      if (violation) {
        const reason = { errorType: violation.errorType, errorMessage: violation.message, attempts: 0, failedAt: new Date() };
        await this.deadLetter({ delivery, identity, attempt: 0, sharedFailures: 0, pushes: 0 }, reason, done);
        continue;
      }
      entries.push({ delivery, identity, attempt: 1, sharedFailures: 0, pushes: 0 });
    }
    return entries;
  }

  private async push(route: Route, group: readonly Entry[]): Promise<{ result: AttemptResult; sentAt: number; answeredAt: number }> {
    const body = batchBody(
      group.map((entry) => ({
        record: entry.delivery.record,
        identity: entry.identity,
        attempt: (entry.delivery.tier?.priorAttempts ?? 0) + entry.pushes + 1,
      })),
    );
    const headers: Record<string, string> = { 'content-type': 'application/json', 'courier-batch-size': String(group.length) };
    const { appToken, signingKeys } = this.records.pushSettings;
    if (appToken) headers.authorization = `Bearer ${appToken}`;
    if (signingKeys.length > 0) {
      // The signature covers the whole body; the batch is named after its first record.
      const id = (group[0] as Entry).identity.messageId;
      const seconds = Math.floor(Date.now() / 1000);
      headers['webhook-id'] = id;
      headers['webhook-timestamp'] = String(seconds);
      headers['webhook-signature'] = signingKeys.map((key) => signatureOf(key, id, seconds, body)).join(' ');
    }
    const sentAt = performance.now();
    const result = await this.deps.pusher.push(route.url, headers, body, route.config.requestTimeoutMs, BATCH_ANSWER_MAX_BYTES);
    return { result, sentAt, answeredAt: performance.now() };
  }

  /**
   * A 2xx that lists failures: each listed record by its own status (A2), the others acknowledged;
   * what must be retried goes again with what must follow it. Returns the next send, if any.
   */
  private async applyListed(
    route: Route,
    group: Entry[],
    failures: ReadonlyMap<string, ListedFailure>,
    now: number,
    sentAt: number,
    answeredAt: number,
    done: (delivery: Delivery, settlement: Settlement) => void,
  ): Promise<Send | undefined> {
    let unlisted = 0;
    const verdicts = group.map((entry) => {
      const listed = failures.get(entry.identity.messageId);
      if (listed) return this.listedVerdict(route, entry, listed, now);
      unlisted++;
      return { kind: 'ack' } as const;
    });
    route.attempts('2xx').inc(unlisted);
    let overloaded = false;
    for (const verdict of verdicts) if (verdict.kind === 'retry' && !verdict.failed) overloaded = true;
    if (overloaded) route.limit.overload({ sentAt, now: answeredAt });
    else route.limit.success({ sentAt, now: answeredAt, inFlight: route.permits.inUse, records: group.length });
    const again = goAgain(
      verdicts.map((verdict) => verdict.kind === 'retry'),
      group.map((entry) => entry.delivery.record.key),
      this.ordering,
    );
    const retry: Entry[] = [];
    let delayMs = 0;
    for (const [index, entry] of group.entries()) {
      const verdict = verdicts[index] as Verdict;
      if (verdict.kind === 'retry') {
        if (verdict.failed) entry.attempt++;
        delayMs = Math.max(delayMs, verdict.delayMs);
      }
      if (again[index]) retry.push(entry);
      else if (verdict.kind === 'ack') done(entry.delivery, 'ack');
      else if (verdict.kind === 'dead-letter') await this.deadLetter(entry, verdict.reason, done);
    }
    return retry.length > 0 ? { entries: retry, delayMs } : undefined;
  }

  /** One listed record's verdict by the A2 table; its `retryAfterMs` counts only for overload. */
  private listedVerdict(route: Route, entry: Entry, listed: ListedFailure, now: number): Verdict {
    const result: AttemptResult = {
      kind: 'response',
      status: listed.status,
      // Only its presence matters to classify (503 with it is overload); the wait is retryAfterMs.
      retryAfter: listed.retryAfterMs === undefined ? undefined : String(Math.ceil(listed.retryAfterMs / 1000)),
      body: listed.reason === undefined ? undefined : Buffer.from(listed.reason),
    };
    route.attempts(resultLabel(result)).inc();
    const outcome = classify(result, { ackStatuses: route.ackStatuses, ...ROUTED });
    switch (outcome.class) {
      case 'ack':
        return { kind: 'ack' };
      case 'overload': {
        route.overloads.inc();
        const delayMs =
          listed.retryAfterMs === undefined
            ? overloadDelay(undefined, 1, route.policy, route.config.retryAfterMaxMs, now)
            : Math.min(listed.retryAfterMs, route.config.retryAfterMaxMs);
        return { kind: 'retry', delayMs, failed: false };
      }
      case 'refused':
        this.deps.refused(route, outcome.reason);
        return { kind: 'retry', delayMs: backoff(1, route.policy), failed: false };
      case 'failure': {
        route.health.failed(now, outcome.reason);
        if (route.health.inOutage(now)) {
          if (nextTier(entry.delivery)) return { kind: 'dead-letter', reason: deadLetterReason('app_failing', result, entry.attempt, this.records.redactBody) };
          return { kind: 'retry', delayMs: backoff(1, route.policy), failed: false };
        }
        const decision = decideRetry(entry.attempt, route.config.maxAttempts, route.policy, undefined, now);
        if (!decision.retry) return { kind: 'dead-letter', reason: deadLetterReason('retries_exhausted', result, entry.attempt, this.records.redactBody) };
        return { kind: 'retry', delayMs: decision.delayMs, failed: true };
      }
      default:
        // rejected (misrouted cannot happen: the batch itself was answered 2xx)
        return { kind: 'dead-letter', reason: deadLetterReason('rejected_by_app', result, entry.attempt, this.records.redactBody) };
    }
  }

  private exhausted(result: AttemptResult, answer: BatchAnswer | undefined, attempt: number): DeadLetterReason {
    const reason = deadLetterReason('retries_exhausted', result, attempt, this.records.redactBody);
    if (answer?.kind !== 'invalid') return reason;
    return { ...reason, errorMessage: `${attempt} attempts failed; last: the app's batch answer broke the contract: ${answer.reason}` };
  }

  private async deadLetter(entry: Entry, reason: DeadLetterReason, done: (delivery: Delivery, settlement: Settlement) => void): Promise<void> {
    done(entry.delivery, await this.records.park(entry.delivery, reason));
  }
}
