import { describe, expect, inject, it } from 'vitest';
import type { Receipt } from '../helpers/app.js';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const PARTITIONS = 4;

function deliveries(receipts: Receipt[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of receipts) if (r.answer?.status === 200) counts.set(`${r.partition}/${r.offset}`, (counts.get(`${r.partition}/${r.offset}`) ?? 0) + 1);
  return counts;
}

const records = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: `v${from + i}`, partition: (from + i) % PARTITIONS }));

/** Which worker owns which partitions now, from the workers' own rebalance log lines. */
function ownersFromLogs(logs: Array<Record<string, unknown>>): Map<number, Set<string>> {
  const owners = new Map<number, Set<string>>();
  for (const line of logs) {
    if (line.msg !== 'rebalance' || typeof line.worker !== 'number') continue;
    const owned = owners.get(line.worker) ?? new Set<string>();
    for (const partition of line.partitions as string[]) line.type === 'assign' ? owned.add(partition) : owned.delete(partition);
    owners.set(line.worker, owned);
  }
  return owners;
}

describe('COURIER_WORKERS=2: two consumer processes in one group behind one API', () => {
  it('spreads the partitions over both, answers one assignment, lag and /metrics for all, and stops both on a Ctrl-C', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: PARTITIONS, handler: () => ({ status: 200 }) });
    const sidecar = courier({ COURIER_WORKERS: '2', COURIER_MAX_IN_FLIGHT: '8' }).start({ processGroup: true });
    await waitFor('both workers own partitions', () => {
      const owners = ownersFromLogs(sidecar.logs);
      return owners.get(0)?.size && owners.get(1)?.size && [...owners.values()].reduce((sum, owned) => sum + owned.size, 0) === PARTITIONS;
    });
    expect(sidecar.childPids()).toHaveLength(2);

    await produce(bootstrap, topic, records(0, 400));
    await waitFor('every record committed', committedAtEnd);
    expect([...deliveries(app.receipts).values()].filter((n) => n !== 1)).toEqual([]);
    expect(deliveries(app.receipts).size).toBe(400);

    const assignment = await sidecar.api('/v1/assignment');
    expect(assignment.body.partitions.map((p: { partition: number }) => p.partition)).toEqual([0, 1, 2, 3]);
    // Each worker's share of COURIER_MAX_IN_FLIGHT, added up: the app sees the limit it was promised.
    expect(assignment.body.routes).toEqual([expect.objectContaining({ topic, concurrencyLimit: 8 })]);
    const lag = await waitFor('lag of every partition, read after the last commit', async () => {
      const { body } = await sidecar.api('/v1/lag');
      return body.partitions.length === PARTITIONS && body.totalLag === 0 ? body : undefined;
    });
    expect(lag.partitions.map((p: { partition: number }) => p.partition)).toEqual([0, 1, 2, 3]);
    expect((await sidecar.api('/readyz')).status).toBe(200);
    const metrics = (await sidecar.api('/metrics')).body as string;
    expect(metrics).toMatch(new RegExp(`^courier_records_delivered_total\\{topic="${topic}"\\} 400$`, 'm'));
    expect(metrics).toMatch(/^courier_workers 2$/m);

    // A terminal's Ctrl-C reaches every process of the group: each worker hears it and the
    // supervisor's SIGTERM after it, and must still drain and commit, not exit at the second signal.
    sidecar.signalGroup('SIGINT');
    expect(await sidecar.wait()).toBe(0);
    expect(
      sidecar.logs
        .filter((l) => l.msg === 'stopped: offsets committed, group left')
        .map((l) => l.worker)
        .sort(),
    ).toEqual([0, 1]);
    expect(sidecar.logs.filter((l) => l.msg === 'second signal: exiting now')).toEqual([]);
  });

  it('restarts a worker killed with -9: its partitions move to the other and come back; nothing is lost', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: PARTITIONS, handler: () => ({ status: 200, delayMs: 2 }) });
    const sidecar = courier({ COURIER_WORKERS: '2' }).start();
    await waitFor('both workers own partitions', () => {
      const owners = ownersFromLogs(sidecar.logs);
      return owners.get(0)?.size && owners.get(1)?.size;
    });
    await produce(bootstrap, topic, records(0, 300));
    await waitFor('some records delivered', () => app.receipts.length >= 50);

    const [victim] = sidecar.childPids();
    process.kill(victim as number, 'SIGKILL');
    await waitFor('the supervisor to see the exit', () =>
      sidecar.hasLog((l) => l.msg === 'worker exited; its partitions go to the other workers until it is back'),
    );
    await produce(bootstrap, topic, records(300, 300));
    await waitFor('the worker restarted', () => sidecar.childPids().length === 2 && !sidecar.childPids().includes(victim as number));
    await waitFor('every record committed', committedAtEnd);
    expect(deliveries(app.receipts).size).toBe(600);
    await waitFor('ready again with both workers', async () => (await sidecar.api('/readyz')).status === 200);
    expect((await sidecar.api('/metrics')).body).toMatch(/^courier_worker_restarts_total 1$/m);
    expect(await sidecar.stop()).toBe(0);
  });
});
