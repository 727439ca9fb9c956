import { describe, expect, inject, it } from 'vitest';
import type { Receipt } from '../helpers/app.js';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const TOTAL = 600;

function deliveriesByRecord(receipts: Receipt[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of receipts) if (r.answer?.status === 200) counts.set(`${r.partition}/${r.offset}`, (counts.get(`${r.partition}/${r.offset}`) ?? 0) + 1);
  return counts;
}

describe('stopping mid-stream', () => {
  it('SIGTERM lets in-flight pushes finish, commits, exits 0; the restart delivers the rest: nothing lost, nothing twice', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 3, handler: () => ({ status: 200, delayMs: 5 }) });
    await produce(
      bootstrap,
      topic,
      Array.from({ length: TOTAL }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 })),
    );

    const first = courier().start();
    await waitFor('a third of the records delivered', () => app.receipts.length >= TOTAL / 3);
    expect(await first.stop()).toBe(0);
    const deliveredBeforeRestart = app.receipts.length;
    expect(deliveredBeforeRestart).toBeLessThan(TOTAL);
    expect(first.hasLog((l) => l.msg === 'stopped: offsets committed, group left')).toBe(true);

    const second = courier().start();
    await waitFor('every record committed', committedAtEnd);
    await second.stop();

    const counts = deliveriesByRecord(app.receipts);
    expect(counts.size).toBe(TOTAL);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
  });

  it('kill -9 loses nothing; duplicates only at or after the last committed offset', async () => {
    const { topic, app, courier, committed, committedAtEnd } = await scenario({ partitions: 3, handler: () => ({ status: 200, delayMs: 5 }) });
    await produce(
      bootstrap,
      topic,
      Array.from({ length: TOTAL }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 })),
    );

    const first = courier({ COURIER_COMMIT_INTERVAL_MS: '100' }).start();
    await waitFor('a third of the records delivered', () => app.receipts.length >= TOTAL / 3);
    await first.kill();
    const committedAtCrash = await committed();
    // The crash happened after commits, so the duplicate bound below is a real constraint.
    expect([...committedAtCrash.values()].reduce((sum, offset) => sum + Math.max(offset, 0), 0)).toBeGreaterThan(0);
    const receivedBeforeCrash = app.receipts.length;

    const second = courier().start();
    await waitFor('every record committed', committedAtEnd);
    await second.stop();

    const counts = deliveriesByRecord(app.receipts);
    expect(counts.size).toBe(TOTAL);
    for (const [record, n] of counts) {
      if (n === 1) continue;
      const [partition, offset] = record.split('/').map(Number) as [number, number];
      expect(offset, `duplicate of ${record} below the committed offset`).toBeGreaterThanOrEqual(committedAtCrash.get(partition) ?? 0);
    }
    // The duplicates are bounded by what was in flight or acknowledged but not yet committed.
    expect(app.receipts.length - TOTAL).toBeLessThanOrEqual(receivedBeforeCrash);
  });
});
