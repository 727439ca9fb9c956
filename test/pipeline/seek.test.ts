import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics.js';
import { Pipeline } from '../../src/pipeline/flow.js';
import type { TopicPartition } from '../../src/record.js';
import { deferred, FakeDeadLetters, FakePusher, FakeSource, ok200, ProbeTarget, record, until } from '../helpers/fakes.js';

/** An operator's seek in the pipeline, with fakes; the real broker is in test/integration/seek.test.ts. */

const p0: TopicPartition = { topic: 'orders', partition: 0 };
const app = new ProbeTarget();
beforeAll(() => app.open());
afterAll(() => app.close());
const running: Pipeline[] = [];
afterEach(async () => {
  for (const pipeline of running.splice(0)) await pipeline.stop();
});

function harness(pusher = new FakePusher()) {
  const config = loadConfig({
    env: {
      COURIER_GROUP_ID: 'seek-test',
      COURIER_TOPICS: 'orders',
      COURIER_TARGET_URL: app.url,
      COURIER_COMMIT_INTERVAL_MS: '10',
      COURIER_SHUTDOWN_GRACE_MS: '2000',
    },
    readFile: () => {
      throw new Error('no file');
    },
  });
  const source = new FakeSource();
  const pipeline = new Pipeline({
    config,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(new Registry(), { defaultMetrics: false }),
    deadLetters: new FakeDeadLetters(),
    pusher,
  });
  running.push(pipeline);
  pipeline.attach(source);
  return { pipeline, source, pusher };
}

describe('Pipeline.seek', () => {
  it('lets the record in flight finish, commits the new position before seeking, and delivers from there under a new generation', async () => {
    const answer = deferred<typeof ok200>();
    const pusher = new FakePusher((call) => (call.offset === 3 && call.attempt === 1 ? answer.promise : ok200));
    const { pipeline, source } = harness(pusher);
    source.highWatermark = 5;
    pipeline.onAssign([p0]);
    pipeline.onRecords([0, 1, 2, 3, 4].map((offset) => record(0, offset)));
    await until(() => pusher.callsOf(0, 3).length === 1, 2000, 'record 3 in flight');

    const seeking = pipeline.seek(p0, { offset: 1 });
    // Nothing new starts; records fetched meanwhile belong to the old position and are dropped.
    pipeline.onRecords([record(0, 5)]);
    answer.resolve(ok200);
    expect(await seeking).toEqual({ previous: 4, now: 1 });
    expect(pusher.callsOf(0, 4)).toHaveLength(0);
    expect(pusher.callsOf(0, 5)).toHaveLength(0);
    const commit = source.log.indexOf('commit orders-0@1');
    expect(commit).toBeGreaterThan(-1);
    expect(source.log.indexOf('seek orders-0@1')).toBeGreaterThan(commit);

    // The partition starts again at 1: offsets below the old position are tracked again.
    pipeline.onRecords([1, 2].map((offset) => record(0, offset)));
    await until(() => pusher.callsOf(0, 2).length === 2, 2000, 'record 2 delivered again');
    await until(() => source.committed(p0) === 3 && source.commitOffsetsOf(p0).at(-1) === 3, 2000, 'committed at 3');
  });

  it('seeks to the end for a time past the last record, and answers undefined for a partition it does not own', async () => {
    const { pipeline, source } = harness();
    pipeline.onAssign([p0]);
    source.offsetAtTime = -1;
    source.highWatermark = 42;
    expect(await pipeline.seek(p0, { timestamp: Date.now() + 60_000 })).toEqual({ previous: null, now: 42 });
    expect(source.seeks).toEqual([{ topic: 'orders', partition: 0, offset: 42 }]);
    expect(await pipeline.seek(p0, { offset: 1000 })).toEqual({ previous: 42, now: 42 });
    expect(await pipeline.seek({ topic: 'orders', partition: 9 }, { offset: 1 })).toBeUndefined();
  });

  it('keeps an operator pause across the seek, and resumes the partition in Kafka otherwise', async () => {
    const { pipeline, source } = harness();
    pipeline.onAssign([p0, { topic: 'orders', partition: 1 }]);
    pipeline.operator.adminPause('orders', [1], true);
    await pipeline.seek(p0, { offset: 5 });
    await pipeline.seek({ topic: 'orders', partition: 1 }, { offset: 5 });
    expect(source.log.filter((line) => line.endsWith('orders-0'))).toEqual(['pause orders-0', 'resume orders-0']);
    expect(pipeline.operator.assignment().find((p) => p.partition === 1)?.pausedReasons).toEqual(['admin']);
  });
});
