import { describe, expect, inject, it } from 'vitest';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

/** POST /v1/seek on the real broker (DESIGN A7): replay a time range, skip a bad range. */

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const token = 'seek-admin-token';

const deliveries = (receipts: ReadonlyArray<{ offset: number }>, offset: number) => receipts.filter((r) => r.offset === offset).length;

describe('seek', () => {
  it('seeks back by timestamp: the records from that time are delivered again, and the group is committed there first', async () => {
    const { topic, app, courier, committed } = await scenario({ partitions: 1, env: { COURIER_ADMIN_TOKEN: token } });
    const base = Date.now() - 60_000;
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 0, timestamp: String(base + i * 1000) })),
    );
    const c = await courier().start().ready();
    await waitFor('all five committed', async () => (await committed()).get(0) === 5);

    const answer = await c.api('/v1/seek', { method: 'POST', token, body: { topic, partition: 0, timestamp: new Date(base + 2000).toISOString() } });
    expect(answer).toEqual({ status: 200, body: { previous: 5, now: 2 } });
    await waitFor('records 2–4 delivered again', () => [2, 3, 4].every((offset) => deliveries(app.receipts, offset) === 2));
    await waitFor('committed at the end again', async () => (await committed()).get(0) === 5);
    expect([0, 1].map((offset) => deliveries(app.receipts, offset))).toEqual([1, 1]);

    // A time after the last record: the end.
    expect((await c.api('/v1/seek', { method: 'POST', token, body: { topic, partition: 0, timestamp: Date.now() + 3_600_000 } })).body).toEqual({
      previous: 5,
      now: 5,
    });
  });

  it('seeks forward past a bad range: it is never delivered, and the new position is committed at once', async () => {
    const { topic, app, courier, committed } = await scenario({ partitions: 1, env: { COURIER_ADMIN_TOKEN: token } });
    const c = await courier().start().ready();
    // Paused first, so nothing of the range is fetched before the seek.
    expect((await c.api('/v1/pause', { method: 'POST', token, body: { topic, partitions: [0] } })).status).toBe(200);
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })),
    );
    const answer = await c.api('/v1/seek', { method: 'POST', token, body: { topic, partition: 0, offset: 7 } });
    expect(answer).toEqual({ status: 200, body: { previous: null, now: 7 } });
    expect((await committed()).get(0)).toBe(7);
    // The operator's pause survives the seek.
    expect((await c.api('/v1/assignment')).body.partitions[0].pausedReasons).toContain('admin');

    expect((await c.api('/v1/resume', { method: 'POST', token, body: { topic, partitions: [0] } })).status).toBe(200);
    await waitFor('committed at the end', async () => (await committed()).get(0) === 10);
    expect(app.receipts.map((r) => r.offset).sort((a, b) => a - b)).toEqual([7, 8, 9]);
  });

  it('answers notAssigned for a partition another instance owns, and 400 without offset or timestamp', async () => {
    const { topic, courier } = await scenario({ partitions: 2, env: { COURIER_ADMIN_TOKEN: token } });
    const first = await courier().start().ready();
    const second = courier().start();
    await waitFor('each instance to own one partition', async () => {
      const [a, b] = await Promise.all([first.api('/v1/assignment'), second.api('/v1/assignment')]);
      return a.body.partitions?.length === 1 && b.body.partitions?.length === 1;
    });
    const theirs = (await second.api('/v1/assignment')).body.partitions[0].partition as number;
    const answer = await first.api('/v1/seek', { method: 'POST', token, body: { topic, partition: theirs, offset: 0 } });
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ error: 'notAssigned', partitions: [{ topic, partition: theirs }] });

    expect((await first.api('/v1/seek', { method: 'POST', token, body: { topic, partition: 0 } })).status).toBe(400);
    expect((await first.api('/v1/seek', { method: 'POST', token, body: { topic: 'not-ours', partition: 0, offset: 1 } })).status).toBe(404);
    expect((await first.api('/v1/seek', { method: 'POST', body: { topic, partition: 0, offset: 1 } })).status).toBe(401);
  });
});
