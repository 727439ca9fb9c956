import { describe, expect, inject, it } from 'vitest';
import { produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const scenario = scenarioFactory(inject('bootstrap'));

describe('the app is down', () => {
  it('holds records while nothing listens for 10 s, then delivers them all: no DLQ write, no attempt counted', async () => {
    const { topic, dlqTopic, app, courier, committed, committedAtEnd } = await scenario({ partitions: 2, env: { COURIER_MAX_ATTEMPTS: '2' } });
    const port = app.port;
    await app.close(); // the port is known and nothing listens on it
    await produce(
      inject('bootstrap'),
      topic,
      Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
    );
    const courierProcess = courier().start();
    await waitFor('Courier to notice the app is down', () => courierProcess.hasLog((l) => l.msg.startsWith('app unreachable')));

    // The scenario is "down for 10 seconds": with two attempts allowed, any counted attempt or
    // dead-lettering would have happened many times over by then.
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    // Nothing past the first record (offset 0 may be committed: it pins where to start).
    const heldOffsets = await committed();
    expect(
      [...heldOffsets.values()].every((offset) => offset <= 0),
      JSON.stringify([...heldOffsets]),
    ).toBe(true);
    expect(await readAll(inject('bootstrap'), dlqTopic)).toEqual([]);

    await app.listen(port);
    await waitFor('every record committed', committedAtEnd);
    expect(courierProcess.hasLog((l) => l.msg.startsWith('app reachable again'))).toBe(true);
    expect(new Set(app.receipts.map((r) => `${r.partition}/${r.offset}`)).size).toBe(50);
    expect(app.receipts.every((r) => r.attempt === 1)).toBe(true);
    expect(await readAll(inject('bootstrap'), dlqTopic)).toEqual([]);
  });
});
