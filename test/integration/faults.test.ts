import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type FaultRun, failingFor, startFaultRun } from '../faults/harness.js';
import type { Receipt } from '../helpers/app.js';
import { batchRecords, type ListedFailure, listed } from '../helpers/batch.js';
import type { CourierProcess } from '../helpers/courier.js';
import { headerOf, readAll } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The fault suite: each scenario runs under continuous production against a real broker, then the
 * history checker (test/faults/history.ts) judges the whole run and its counts are printed.
 */
const bootstrap = inject('bootstrap');
const root = resolve(import.meta.dirname, '../..');
const runs: FaultRun[] = [];
afterEach(async () => {
  for (const run of runs.splice(0)) await run.close();
});

async function faultRun(options: Omit<Parameters<typeof startFaultRun>[0], 'bootstrap'> & { bootstrap?: string }) {
  const run = await startFaultRun({ bootstrap, ...options });
  runs.push(run);
  return run;
}

/** Stops producing, waits until every record is delivered or dead-lettered, and judges the history. */
async function judged(run: FaultRun, duplicatesAllowed: boolean, drainMs?: number) {
  await run.stopProducing();
  await run.drained(drainMs);
  const verdict = await run.verdict(duplicatesAllowed);
  expect(verdict.violations).toEqual([]);
  return verdict;
}

/**
 * scripts/kafka.sh, without blocking this process: the Couriers it started write their logs to pipes
 * it must keep reading (a full pipe blocks a Courier's log writes, and with them its event loop).
 */
async function kafkaScript(...args: string[]): Promise<string> {
  return (await promisify(execFile)('bash', ['scripts/kafka.sh', ...args], { cwd: root, encoding: 'utf8' })).stdout;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seqOf = (body: Buffer) => (JSON.parse(body.toString()) as { seq: number }).seq;
const assignedCount = async (courier: CourierProcess) => (await courier.api('/v1/assignment')).body.partitions.length as number;
/** This member's courier_retry_tier_records of one state, summed over its tiers. */
const tierRecords = async (courier: CourierProcess, state: 'written' | 'due' | 'delivered') => {
  const { body } = await courier.api('/metrics');
  const lines = String(body).matchAll(new RegExp(`^courier_retry_tier_records\\{[^}]*state="${state}"[^}]*\\} (\\d+)$`, 'gm'));
  return [...lines].reduce((sum, match) => sum + Number(match[1]), 0);
};
/** Tier partitions this member holds paused until their next record is due. */
const waitingInTiers = async (courier: CourierProcess) =>
  ((await courier.api('/v1/assignment')).body.partitions as Array<{ pausedReasons: string[] }>).filter((p) => p.pausedReasons.includes('retry_wait')).length;

describe('fault suite (real broker, continuous production, history checker)', () => {
  it.each(['partition', 'key', 'unordered'] as const)(
    '1. scales 1 → 3 → 1 Courier processes (%s mode): nothing lost, nothing twice, order per the mode',
    async (ordering) => {
      const run = await faultRun({ name: `scale-${ordering}`, partitions: 6, ordering });
      const first = run.courier();
      await first.ready();
      run.startProducing();
      await pause(1500);
      const second = run.courier();
      const third = run.courier();
      await waitFor('three members sharing the partitions', async () => (await assignedCount(second)) > 0 && (await assignedCount(third)) > 0);
      await pause(1500);
      expect(await second.stop()).toBe(0);
      expect(await third.stop()).toBe(0);
      await waitFor('the first member owning every partition again', async () => (await assignedCount(first)) === 6);
      await pause(1000);
      const verdict = await judged(run, false);
      expect(verdict.delivered).toBe(verdict.produced);
    },
  );

  it('2. kill -9 of one of three: nothing lost; duplicates only at or after the committed offset', async () => {
    const run = await faultRun({ name: 'kill9', partitions: 6, ordering: 'partition' });
    const members = [run.courier(), run.courier(), run.courier()];
    await waitFor('three members with partitions', async () => (await Promise.all(members.map(assignedCount))).every((n) => n > 0));
    run.startProducing();
    await pause(2000);
    await members[1]?.kill();
    await pause(2000);
    const verdict = await judged(run, true);
    expect(verdict.delivered).toBe(verdict.produced);
  });

  it('3. SIGTERM while the app holds a request longer than the grace period: exits 0 in time, the held record is delivered by the next member', async () => {
    let heldSeq: number | undefined;
    const run = await faultRun({
      name: 'grace',
      partitions: 3,
      ordering: 'partition',
      env: { COURIER_SHUTDOWN_GRACE_MS: '1000' },
      handler: (receipt) => {
        const seq = seqOf(receipt.body);
        if (heldSeq === undefined && seq >= 20) heldSeq = seq;
        return seq === heldSeq && receipt.attempt === 1 && run.app.receipts.filter((r) => seqOf(r.body) === seq).length === 1
          ? { status: 200, delayMs: 5000 }
          : { status: 200 };
      },
    });
    const first = run.courier();
    await first.ready();
    run.startProducing();
    await waitFor('the app to hold a request', () => heldSeq !== undefined);
    const stopping = Date.now();
    expect(await first.stop()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(4000);
    run.courier();
    await pause(1000);
    await judged(run, false);
    expect(run.app.receipts.filter((r) => seqOf(r.body) === heldSeq).length).toBe(2);
  });

  it('4. the broker process stops and restarts mid-stream: nothing lost', async () => {
    const name = 'faults-broker';
    const address = (await kafkaScript('start', '--name', name)).trim();
    try {
      const run = await faultRun({ name: 'broker', bootstrap: address, partitions: 3, ordering: 'partition' });
      const courier = run.courier();
      await courier.ready();
      run.startProducing(50);
      await pause(2000);
      await kafkaScript('stop-process', '--name', name);
      await pause(3000);
      await kafkaScript('start', '--name', name);
      await pause(2000);
      const verdict = await judged(run, true);
      expect(verdict.delivered).toBe(verdict.produced);
      await run.close();
    } finally {
      await kafkaScript('stop', '--name', name);
    }
  });

  it('5. the app flaps (down 5 s, up 5 s, down again): no DLQ, nothing lost, nothing twice', async () => {
    const run = await faultRun({ name: 'flap', partitions: 3, ordering: 'partition', env: { COURIER_MAX_ATTEMPTS: '2' } });
    const courier = run.courier();
    await courier.ready();
    run.startProducing();
    await pause(1000);
    const port = run.app.port;
    for (let cycle = 0; cycle < 2; cycle++) {
      await run.app.close();
      await pause(5000);
      await run.app.listen(port);
      await pause(cycle === 0 ? 5000 : 1000);
    }
    const verdict = await judged(run, false);
    expect(verdict.deadLettered).toBe(0);
    expect(verdict.delivered).toBe(verdict.produced);
  });

  it('6. a poison record in key mode delays only its own key; it reaches the DLQ while other keys flow', async () => {
    const run = await faultRun({
      name: 'poison',
      partitions: 2,
      ordering: 'key',
      keys: 8,
      env: { COURIER_MAX_ATTEMPTS: '4', COURIER_RETRY_INITIAL_MS: '200', COURIER_RETRY_MAX_MS: '400' },
      handler: (receipt) => ({ status: receipt.headers['kafka-key'] === 'poison' ? 500 : 200 }),
    });
    const courier = run.courier();
    await courier.ready();
    run.startProducing();
    await run.send('poison', JSON.stringify({ seq: -1 }));
    const poison = run.produced.find((p) => p.key === 'poison');
    await pause(2000);
    await judged(run, false);
    const dead = await readAll(bootstrap, run.dlqTopic);
    expect(dead.map((d) => [headerOf(d, 'original_offset'), headerOf(d, 'error_type'), headerOf(d, 'attempts')])).toEqual([
      [String(poison?.offset), 'retries_exhausted', '4'],
    ]);
    const poisonAttempts = run.app.receipts.filter((r) => r.headers['kafka-key'] === 'poison');
    const lastAttempt = Math.max(...poisonAttempts.map((r) => r.at));
    const overtaking = run.app.acknowledged().filter((r) => r.partition === poison?.partition && r.offset > (poison?.offset ?? 0) && r.at < lastAttempt);
    expect(overtaking.length).toBeGreaterThan(0);
  });

  it('7. an app slower than a small max.poll.interval.ms: the member stays in the group, nothing lost or twice', async () => {
    const run = await faultRun({
      name: 'slow',
      partitions: 2,
      ordering: 'partition',
      handler: () => ({ status: 200, delayMs: 250 }),
      env: {
        KAFKA_MAX_POLL_INTERVAL_MS: '7000',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        COURIER_REQUEST_TIMEOUT_MS: '3000',
        COURIER_MAX_ATTEMPTS: '2',
      },
    });
    const courier = run.courier();
    await courier.ready();
    run.startProducing(10);
    await pause(8000);
    // About 40 records per partition at 250 ms each: well past max.poll.interval.ms in total.
    const verdict = await judged(run, false, 60_000);
    expect(verdict.delivered).toBe(verdict.produced);
    const { body } = await courier.api('/v1/rebalances');
    expect(body.counts).toMatchObject({ revoke: 0, lost: 0 });
    expect(courier.hasLog((l) => String(l.msg).startsWith('max.poll.interval.ms exceeded'))).toBe(false);
  });

  it('8. a record that makes the app drop the connection every time reaches the DLQ after COURIER_MAX_ATTEMPTS; everything else flows', async () => {
    let crashSeq: number | undefined;
    const run = await faultRun({
      name: 'crashloop',
      partitions: 3,
      ordering: 'partition',
      env: { COURIER_MAX_ATTEMPTS: '3' },
      handler: (receipt) => {
        const seq = seqOf(receipt.body);
        if (crashSeq === undefined && seq >= 30) crashSeq = seq;
        return seq === crashSeq ? { status: 200, drop: true } : { status: 200 };
      },
    });
    const courier = run.courier();
    await courier.ready();
    run.startProducing();
    await pause(3000);
    const verdict = await judged(run, false);
    const dead = await readAll(bootstrap, run.dlqTopic);
    expect(dead).toHaveLength(1);
    expect(seqOf(dead[0]?.value ?? Buffer.from('{}'))).toBe(crashSeq);
    expect([headerOf(dead[0]!, 'error_type'), headerOf(dead[0]!, 'attempts')]).toEqual(['retries_exhausted', '3']);
    expect(headerOf(dead[0]!, 'error_message')).toMatch(/connection lost/);
    expect(verdict.delivered).toBe(verdict.produced - 1);
  });

  it.each(['partition', 'key', 'unordered'] as const)(
    '9. an app that mixes overload (429), failures (503), a wrong answer for one record (422) and successes (%s mode): nothing lost, the 422 only in the DLQ, order per the mode',
    async (ordering) => {
      let poisonSeq: number | undefined;
      const run = await faultRun({
        name: `answers-${ordering}`,
        partitions: 4,
        ordering,
        handler: (receipt) => {
          const seq = seqOf(receipt.body);
          if (poisonSeq === undefined && seq >= 40) poisonSeq = seq;
          if (seq === poisonSeq) return { status: 422, body: 'amount missing' };
          if (receipt.attempt === 1 && seq % 5 === 0) return { status: 429, headers: { 'retry-after': '1' } };
          if (receipt.attempt === 1 && seq % 7 === 0) return { status: 503 };
          return { status: 200 };
        },
      });
      await run.courier().ready();
      run.startProducing();
      await pause(4000);
      const verdict = await judged(run, false);
      const dead = await readAll(bootstrap, run.dlqTopic);
      expect(dead.map((d) => seqOf(d.value ?? Buffer.from('{}')))).toEqual([poisonSeq]);
      expect(headerOf(dead[0]!, 'app_response')).toBe('amount missing');
      expect(verdict.delivered).toBe(verdict.produced - 1);
    },
  );

  it.each(['partition', 'key', 'unordered'] as const)(
    '10. batch delivery, the same mix listed per record (429, 503, one 422) and a whole-batch 503 now and then (%s mode): nothing lost, the 422 only in the DLQ, order per the mode',
    async (ordering) => {
      let poisonSeq: number | undefined;
      let requests = 0;
      const run = await faultRun({
        name: `batch-${ordering}`,
        partitions: 4,
        ordering,
        env: { COURIER_DELIVERY: 'batch', COURIER_BATCH_MAX_RECORDS: '20', COURIER_BATCH_LINGER_MS: '100', COURIER_DEFAULT_CONTENT_TYPE: 'application/json' },
        handler: (receipt) => {
          if (requests++ % 9 === 4) return { status: 503 };
          const failures: ListedFailure[] = [];
          for (const record of batchRecords(receipt)) {
            const seq = (record.value as { seq: number }).seq;
            if (poisonSeq === undefined && seq >= 40) poisonSeq = seq;
            if (seq === poisonSeq) failures.push({ id: record.id, status: 422, reason: 'amount missing' });
            else if (record.attempt === 1 && seq % 5 === 0) failures.push({ id: record.id, status: 429, retryAfterMs: 500 });
            else if (record.attempt === 1 && seq % 7 === 0) failures.push({ id: record.id, status: 503 });
          }
          return listed(failures);
        },
      });
      await run.courier().ready();
      run.startProducing();
      await pause(4000);
      // Duplicates by design (A6): in partition and key mode the records after a retried one are
      // sent again after it whatever the answer said of them; none is committed before that.
      const verdict = await judged(run, true);
      const dead = await readAll(bootstrap, run.dlqTopic);
      expect(dead.map((d) => seqOf(d.value ?? Buffer.from('{}')))).toEqual([poisonSeq]);
      expect(headerOf(dead[0]!, 'app_response')).toBe('amount missing');
      expect(verdict.delivered).toBe(verdict.produced - 1);
      expect(Math.max(...run.app.receipts.map((r) => Number(r.headers['courier-batch-size'])))).toBeGreaterThan(1);
    },
  );

  it('11. kill -9 of one of two during batch delivery: nothing lost; duplicates only at or after the committed offset', async () => {
    const run = await faultRun({
      name: 'batch-kill9',
      partitions: 6,
      ordering: 'key',
      env: { COURIER_DELIVERY: 'batch' },
      // Slow enough that batches are in flight when the member dies.
      handler: () => ({ status: 200, delayMs: 100 }),
    });
    const members = [run.courier(), run.courier()];
    await waitFor('two members with partitions', async () => (await Promise.all(members.map(assignedCount))).every((n) => n > 0));
    run.startProducing(200);
    await waitFor('batches in flight', () => run.app.receipts.length > 5);
    await members[1]?.kill();
    await pause(2000);
    const verdict = await judged(run, true);
    expect(verdict.delivered).toBe(verdict.produced);
  });

  it('12. scales 1 → 3 → 1 with records in retry tiers: nothing lost, no commit past an unparked record', async () => {
    // Two attempts from the source (50 ms apart), then the tiers. Every 10th record fails for 2 s
    // from its first attempt: the 1s tier fails it again, the 3s tier delivers it. Every 10th + 5
    // fails for 0.5 s: the 1s tier delivers it. A few fail for ever: the DLQ after the 3s tier.
    const forever = (seq: number) => seq % 200 === 33;
    const failMs = (seq: number) => (forever(seq) ? Number.POSITIVE_INFINITY : seq % 10 === 0 ? 2000 : seq % 10 === 5 ? 500 : 0);
    const run = await faultRun({ name: 'scale-tiers', partitions: 6, ordering: 'partition', tiers: ['1s', '3s'], handler: failingFor(failMs) });
    const first = run.courier();
    await first.ready();
    run.startProducing();
    await waitFor('records sitting in a tier', () => run.sittingInTiers() > 0);
    const added = [run.courier(), run.courier()];
    // Each new member parks records of its source partitions and delivers records of its tier partitions.
    await waitFor('the new members parking records and delivering them from tiers', async () => {
      for (const member of added) if ((await tierRecords(member, 'written')) === 0 || (await tierRecords(member, 'delivered')) === 0) return false;
      return true;
    });
    // Each is stopped while it holds a tier partition whose next record is not due yet.
    for (const member of added) {
      await waitFor('the member holding a record in a tier', async () => (await waitingInTiers(member)) > 0 && run.sittingInTiers() > 0);
      expect(await member.stop()).toBe(0);
    }
    // 6 source partitions and 6 of each tier.
    await waitFor('the first member owning every partition again', async () => (await assignedCount(first)) === 18);
    const deliveredBefore = await tierRecords(first, 'delivered');
    await waitFor('the first member delivering from the tiers it took over', async () => (await tierRecords(first, 'delivered')) > deliveredBefore);

    // No duplicate is allowed, of tier records either: nothing here cuts a hand-over short. A member
    // stopped by SIGTERM, or giving partitions away on the scale-up, lets its in-flight pushes finish
    // (the grace period, 20 s, is far longer than any push here) and commits what they settled before
    // it lets the partitions go (Pipeline.stop, Pipeline.onRevoke). So a tier record the app
    // acknowledged is committed in its tier partition before the next owner reads it; one not yet due,
    // or waiting between attempts, is left unpushed and the next owner's push is its only success; and
    // a record whose last attempt failed while its member let go still gets its tier (or DLQ) write
    // (the first try is made even while stopping) and the source commit behind it, so the source is
    // never read again past a landed tier write (which would deliver the record from both). A tier
    // record is acknowledged twice only after a kill -9, a grace period running out, or a lost commit
    // or tier write; none of them happens here. (A tier record pushed again after a 500 is another
    // attempt, not a second acknowledgement: the checker counts only 2xx.)
    const verdict = await judged(run, false);
    expect(verdict.parked).toBeGreaterThan(0);
    const foreverSeqs = Array.from({ length: run.sent }, (_, seq) => seq).filter(forever);
    expect(foreverSeqs.length).toBeGreaterThan(0);
    expect(verdict.delivered).toBe(verdict.produced - foreverSeqs.length);
    const dead = await readAll(bootstrap, run.dlqTopic);
    expect(dead.map((d) => [seqOf(d.value ?? Buffer.from('{}')), headerOf(d, 'retry_tier')]).sort(([a], [b]) => Number(a) - Number(b))).toEqual(
      foreverSeqs.map((seq) => [seq, '3s']),
    );
    // Records were parked in both tiers.
    const tiers = await run.readTiers();
    expect(new Set(tiers.map((t) => t.tier))).toEqual(new Set(['1s', '3s']));
  });

  it('13. key mode with a slow key whose records queue below acknowledged ones: scales 1 → 2 → 1 with nothing twice', async () => {
    // key-0 takes 25 ms a record and gets 1/8 of 400 records/s: its lane backs up while the other
    // keys of its partition are acknowledged past it. The revoke and the stop deliver the waiting
    // key-0 records below those before they commit; dropping them would hand the next owner a
    // committed offset below records already acknowledged, delivered again.
    const slowKey = (receipt: Receipt) => receipt.headers['kafka-key'] === 'key-0';
    const run = await faultRun({
      name: 'scale-key-gaps',
      partitions: 2,
      ordering: 'key',
      keys: 8,
      handler: (r) => ({ status: 200, delayMs: slowKey(r) ? 25 : 0 }),
    });
    const first = run.courier();
    await first.ready();
    run.startProducing(400);
    await waitFor('key-0 records waiting for over a second', async () =>
      ((await first.api('/v1/lag')).body.partitions as Array<{ oldestUnackedAgeMs: number | null }>).some((p) => (p.oldestUnackedAgeMs ?? 0) > 1000),
    );
    const second = run.courier();
    await waitFor('both members owning a partition', async () => (await assignedCount(second)) > 0);
    await pause(1500);
    expect(await second.stop()).toBe(0);
    await waitFor('the first member owning both partitions again', async () => (await assignedCount(first)) === 2);
    const verdict = await judged(run, false);
    expect(verdict.delivered).toBe(verdict.produced);
  });
});
