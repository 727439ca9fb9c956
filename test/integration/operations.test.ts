import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { describe, expect, inject, it } from 'vitest';
import { committedOffsets, endOffsets, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const root = resolve(import.meta.dirname, '../..');

const records = (count: number, partitions: number, timestamp?: number) =>
  Array.from({ length: count }, (_, i) => ({
    key: `k${i}`,
    value: `v${i}`,
    partition: i % partitions,
    ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }),
  }));

interface LagRow {
  partition: number;
  lag: number;
  lagSeconds: number | null;
  oldestUnackedAgeMs: number | null;
}

describe("Courier's operations API against a real broker", () => {
  it('reports lag and its age while the app holds every request, and 0 once it answers; the first join says what it will push', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { topic, groupId, app, courier } = await scenario({
      partitions: 2,
      handler: async () => {
        await held;
        return { status: 200 };
      },
    });
    // Produced a minute ago, as far as their timestamps say: the backlog's age is known from the start.
    const producedAt = Date.now() - 60_000;
    await produce(bootstrap, topic, records(100, 2, producedAt));
    const instance = courier().start();
    await waitFor('one held request per partition', () => app.receipts.length === 2);

    // Courier commits the position of the first fetched record (offset 0) within a commit interval,
    // so compare with the broker once both have seen the same state.
    const lag = await waitFor('/v1/lag to match the broker', async () => {
      const [{ body }, ends, committed] = await Promise.all([
        instance.api('/v1/lag'),
        endOffsets(bootstrap, topic),
        committedOffsets(bootstrap, groupId, topic),
      ]);
      const matches = body.partitions.every(
        (row: { partition: number; highWatermark: number; committedOffset: number | null }) =>
          row.highWatermark === ends.get(row.partition) && (row.committedOffset ?? -1) === (committed.get(row.partition) ?? -1),
      );
      return body.partitions.length === 2 && matches ? body : undefined;
    });
    expect(lag.totalLag).toBe(100);
    for (const row of lag.partitions) expect(row.lag).toBe(row.highWatermark - (row.committedOffset ?? 0));
    const { body: assignment } = await instance.api('/v1/assignment');
    expect(assignment.partitions.map((p: { inFlight: number }) => p.inFlight)).toEqual([1, 1]);

    // The group had no committed offsets: one line said what would be pushed.
    const notice = `group ${groupId} has no committed offsets: 100 records on 2 partitions will be pushed from the beginning (auto.offset.reset=earliest)`;
    await waitFor('the first-join notice', () => instance.hasLog((line) => line.msg === notice));
    expect(instance.logs.filter((line) => line.msg.includes('has no committed offsets'))).toEqual([
      expect.objectContaining({ level: 30, msg: notice, records: 100 }),
    ]);

    // The held records are the oldest unacknowledged ones: lagSeconds ages their timestamps,
    // oldestUnackedAgeMs how long Courier has held them, and it grows while they stay held.
    const aged: LagRow[] = (
      await waitFor('ages on both partitions', async () => {
        const { body } = await instance.api('/v1/lag');
        return body.partitions.every((p: LagRow) => (p.lagSeconds ?? 0) >= 60 && (p.oldestUnackedAgeMs ?? 0) > 0) ? body : undefined;
      })
    ).partitions;
    for (const row of aged) expect(row.lagSeconds).toBeLessThan((Date.now() - producedAt) / 1000 + 1);
    const heldFor = Math.max(...aged.map((row) => row.oldestUnackedAgeMs ?? 0));
    await waitFor('oldestUnackedAgeMs to grow', async () =>
      (await instance.api('/v1/lag')).body.partitions.every((p: LagRow) => (p.oldestUnackedAgeMs ?? 0) > heldFor),
    );
    const families = parsePrometheus(await (await fetch(`${await instance.apiUrl()}/metrics`)).text());
    const gauge = (name: string, partition: number) =>
      Number(families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.topic === topic && m.labels?.partition === String(partition))?.value);
    for (const partition of [0, 1]) {
      expect(gauge('courier_lag_seconds', partition)).toBeGreaterThanOrEqual(60);
      expect(gauge('courier_oldest_unacked_age_seconds', partition)).toBeGreaterThan(heldFor / 1000);
    }

    // The CLI reads the same numbers.
    const cli = JSON.parse(
      execFileSync(process.execPath, ['dist/main.js', 'lag', '--url', await instance.apiUrl(), '--json'], { cwd: root, encoding: 'utf8' }),
    );
    expect(cli.totalLag).toBe(100);
    const table = execFileSync(process.execPath, ['dist/main.js', 'lag', '--url', await instance.apiUrl()], { cwd: root, encoding: 'utf8' });
    expect(table.split('\n')[0]).toMatch(/LAG\s+LAG S\s+OLDEST UNACKED S$/);
    // Without --url: the API of a Courier started with the same COURIER_HOST and COURIER_PORT.
    const { hostname, port } = new URL(await instance.apiUrl());
    const status = execFileSync(process.execPath, ['dist/main.js', 'status'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, COURIER_HOST: hostname, COURIER_PORT: port },
    });
    expect(status).toContain(topic);
    expect(status).toMatch(/rebalances: assign 1/);

    release();
    await waitFor('lag 0, and no age: nothing waits, nothing unacknowledged', async () => {
      const { body } = await instance.api('/v1/lag');
      return body.totalLag === 0 && body.partitions.every((p: LagRow) => p.lagSeconds === 0 && p.oldestUnackedAgeMs === null);
    });
  });

  it('/readyz is 503 with app_down while the app is not listening and 200 after; admin routes are off without a token', async () => {
    const { app, courier } = await scenario({ partitions: 1 });
    const port = app.port;
    await app.close();
    const instance = courier().start();
    const down = await waitFor('503 app_down', async () => {
      const answer = await instance.api('/readyz');
      return answer.status === 503 && answer.body.reasons.some((r: { code: string }) => r.code === 'app_down') ? answer : undefined;
    });
    expect(down.body.ready).toBe(false);
    // `courier status` exits 1 while not ready, so that scripts can wait on it.
    const notReady = spawnSync(process.execPath, ['dist/main.js', 'status', '--url', await instance.apiUrl()], { cwd: root, encoding: 'utf8' });
    expect(notReady.status, notReady.stderr).toBe(1);
    expect(notReady.stdout).toMatch(/^NOT READY: .*app_down/);
    expect((await instance.api('/healthz')).status).toBe(200);
    expect((await instance.api('/v1/pause', { method: 'POST', body: { topic: 'x' }, token: 'anything' })).status).toBe(404);

    await app.listen(port);
    await waitFor('200 ready', async () => (await instance.api('/readyz')).status === 200);
    expect(spawnSync(process.execPath, ['dist/main.js', 'status', '--url', await instance.apiUrl()], { cwd: root }).status).toBe(0);
  });

  it('/metrics parses as Prometheus text and its delivered and dead-lettered counters equal what the app and the DLQ saw', async () => {
    const { topic, dlqTopic, app, courier, committedAtEnd } = await scenario({
      partitions: 2,
      handler: (r) => ({ status: Number(r.body.toString().slice(1)) % 10 === 3 ? 422 : 200 }),
    });
    await produce(bootstrap, topic, records(60, 2));
    const instance = courier().start();
    await waitFor('all committed', committedAtEnd);

    const response = await fetch(`${await instance.apiUrl()}/metrics`);
    const families = parsePrometheus(await response.text());
    const value = (name: string, labels: Record<string, string>) =>
      families
        .find((f) => f.name === name)
        ?.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
        .reduce((sum, m) => sum + Number(m.value), 0);
    const deadLetters = await readAll(bootstrap, dlqTopic);
    expect(deadLetters).toHaveLength(6);
    expect(value('courier_records_delivered_total', { topic })).toBe(app.acknowledged().length);
    expect(value('courier_records_dead_lettered_total', { topic, reason: 'rejected_by_app' })).toBe(deadLetters.length);
    expect(value('courier_records_consumed_total', { topic })).toBe(60);
    expect(value('courier_delivery_attempts_total', { topic, result: '4xx' })).toBe(6);
    expect(value('courier_app_up', {})).toBe(1);
    expect(value('courier_commits_total', { result: 'success' })).toBeGreaterThan(0);
  });

  it('a second instance joining shows up as revoke + assign, and both together own every partition exactly once', async () => {
    const { topic, courier } = await scenario({ partitions: 4 });
    const first = courier().start();
    await waitFor('first owns 4 partitions', async () => (await first.api('/v1/assignment')).body.partitions.length === 4);
    const second = courier().start();
    const owned = async () => {
      const [a, b] = await Promise.all([first.api('/v1/assignment'), second.api('/v1/assignment')]);
      return [...a.body.partitions, ...b.body.partitions].map((p: { topic: string; partition: number }) => `${p.topic}/${p.partition}`).sort();
    };
    await waitFor('both own partitions', async () => (await second.api('/v1/assignment')).body.partitions.length > 0 && (await owned()).length === 4);
    expect(await owned()).toEqual([0, 1, 2, 3].map((p) => `${topic}/${p}`));
    const { body: history } = await first.api('/v1/rebalances');
    expect(history.counts.assign).toBeGreaterThanOrEqual(1);
    expect(history.counts.revoke).toBeGreaterThanOrEqual(1);
    expect(history.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['assign', 'revoke']));
  });

  it('an idle member (more instances than partitions) is joined and ready, with nothing assigned', async () => {
    const { courier } = await scenario({ partitions: 1 });
    const first = courier().start();
    await waitFor('first ready', async () => (await first.api('/readyz')).status === 200);
    const second = courier().start();
    await waitFor('second ready', async () => (await second.api('/readyz')).status === 200);
    const [a, b] = await Promise.all([first.api('/v1/assignment'), second.api('/v1/assignment')]);
    expect(a.body.partitions.length + b.body.partitions.length).toBe(1);
  });

  it('an admin pause holds one partition (its lag grows while the other drains); resume drains it; 401 without the token', async () => {
    const token = 'test-admin-token';
    const { topic, courier } = await scenario({ partitions: 2, env: { COURIER_ADMIN_TOKEN: token } });
    const instance = courier().start();
    await waitFor('2 partitions assigned', async () => (await instance.api('/v1/assignment')).body.partitions.length === 2);

    expect((await instance.api('/v1/pause', { method: 'POST', body: { topic, partitions: [0] } })).status).toBe(401);
    expect((await instance.api('/v1/pause', { method: 'POST', body: { topic, partitions: [0] }, token: 'wrong' })).status).toBe(401);
    const paused = await instance.api('/v1/pause', { method: 'POST', body: { topic, partitions: [0] }, token });
    expect(paused).toEqual({ status: 200, body: { changed: [{ topic, partition: 0 }], notAssigned: [] } });

    // Two minutes old by their timestamps.
    await produce(bootstrap, topic, records(100, 2, Date.now() - 120_000));
    const rowOf = async (partition: number): Promise<LagRow | undefined> =>
      (await instance.api('/v1/lag')).body.partitions.find((p: LagRow) => p.partition === partition);
    const lagOf = async (partition: number) => (await rowOf(partition))?.lag;
    await waitFor('partition 1 drained', async () => (await lagOf(1)) === 0);
    expect(await lagOf(0)).toBe(50);
    // Courier fetched nothing of partition 0: its age comes from the record at the committed offset, read from the broker.
    const unfetched = await rowOf(0);
    expect(unfetched?.oldestUnackedAgeMs).toBeNull();
    expect(unfetched?.lagSeconds).toBeGreaterThanOrEqual(120);
    expect(await rowOf(1)).toMatchObject({ lagSeconds: 0, oldestUnackedAgeMs: null });
    const { body: assignment } = await instance.api('/v1/assignment');
    expect(assignment.partitions.find((p: { partition: number }) => p.partition === 0)).toMatchObject({ state: 'paused', pausedReason: 'admin' });

    expect((await instance.api('/v1/resume', { method: 'POST', body: { topic }, token })).status).toBe(200);
    await waitFor('partition 0 drained', async () => (await lagOf(0)) === 0);
    expect(await rowOf(0)).toMatchObject({ lagSeconds: 0, oldestUnackedAgeMs: null });
  });
});
