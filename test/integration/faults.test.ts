import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type FaultRun, startFaultRun } from '../faults/harness.js';
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

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seqOf = (body: Buffer) => (JSON.parse(body.toString()) as { seq: number }).seq;
const assignedCount = async (courier: CourierProcess) => (await courier.api('/v1/assignment')).body.partitions.length as number;

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
    const address = execFileSync('bash', ['scripts/kafka.sh', 'start', '--name', name], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    try {
      const run = await faultRun({ name: 'broker', bootstrap: address, partitions: 3, ordering: 'partition' });
      const courier = run.courier();
      await courier.ready();
      run.startProducing(50);
      await pause(2000);
      execFileSync('bash', ['scripts/kafka.sh', 'stop-process', '--name', name], { cwd: root, stdio: 'ignore' });
      await pause(3000);
      execFileSync('bash', ['scripts/kafka.sh', 'start', '--name', name], { cwd: root, stdio: 'ignore' });
      await pause(2000);
      const verdict = await judged(run, true);
      expect(verdict.delivered).toBe(verdict.produced);
      await run.close();
    } finally {
      execFileSync('bash', ['scripts/kafka.sh', 'stop', '--name', name], { cwd: root, stdio: 'ignore' });
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
});
