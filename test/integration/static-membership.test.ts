import { describe, expect, inject, it } from 'vitest';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

describe('static membership (COURIER_INSTANCE_ID)', () => {
  it('a member restarted within the session timeout gets its partitions back without a rebalance of the others', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({ partitions: 4, env: { KAFKA_SESSION_TIMEOUT_MS: '20000' } });
    const stay = courier({ COURIER_INSTANCE_ID: 'courier-b' }).start();
    const restarting = courier({ COURIER_INSTANCE_ID: 'courier-a' }).start();
    const owned = async (c: typeof stay) => (await c.api('/v1/assignment')).body.partitions.map((p: { partition: number }) => p.partition) as number[];
    await waitFor(
      'both members own partitions',
      async () => (await owned(stay)).length > 0 && (await owned(restarting)).length > 0 && (await owned(stay)).length + (await owned(restarting)).length === 4,
    );
    const before = (await stay.api('/v1/rebalances')).body.counts;
    const ownedBefore = await owned(restarting);

    expect(await restarting.stop()).toBe(0);
    const again = courier({ COURIER_INSTANCE_ID: 'courier-a' }).start();
    await waitFor('the restarted member owns its partitions again', async () => (await owned(again)).length > 0);
    expect((await owned(again)).sort()).toEqual(ownedBefore.sort());
    expect((await stay.api('/v1/rebalances')).body.counts).toEqual(before);

    await produce(
      bootstrap,
      topic,
      Array.from({ length: 40 }, (_, i) => ({ value: `v${i}`, partition: i % 4 })),
    );
    await waitFor('all delivered and committed', committedAtEnd);
    expect(new Set(app.receipts.map((r) => `${r.partition}/${r.offset}`)).size).toBe(40);
  });
});
