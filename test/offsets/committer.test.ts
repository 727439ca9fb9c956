import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { Committer, commitFailure } from '../../src/offsets/committer.js';
import { OffsetTracker } from '../../src/offsets/tracker.js';
import type { TopicPartitionOffset } from '../../src/record.js';
import { deferred, until } from '../helpers/fakes.js';

const tp = { topic: 't', partition: 0 };

function setup(every = 1000) {
  const tracker = new OffsetTracker();
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const committer = new Committer({ tracker, metrics, logger: pino({ level: 'silent' }), intervalMs: 3_600_000, every });
  const calls: TopicPartitionOffset[][] = [];
  let answer: () => Promise<void> = () => Promise.resolve();
  committer.start({
    commit: (offsets) => {
      calls.push([...offsets]);
      return answer();
    },
  });
  return { tracker, committer, calls, metrics, setAnswer: (next: () => Promise<void>) => (answer = next) };
}

describe('Committer', () => {
  it('commits the contiguous done prefix once, and nothing when nothing moved', async () => {
    const { tracker, committer, calls } = setup();
    tracker.assign(tp);
    const [a, b, c] = [0, 1, 2].map((offset) => tracker.track(tp, offset));
    if (!a || !b || !c) throw new Error('not tracked');
    tracker.complete(a);
    tracker.complete(c);
    await committer.commit();
    expect(calls).toEqual([[{ topic: 't', partition: 0, offset: 1 }]]);
    await committer.commit();
    expect(calls).toHaveLength(1);
    tracker.complete(b);
    await committer.commit();
    expect(calls[1]).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  });

  it('runs one commit at a time; cadence commits asked for meanwhile coalesce into one', async () => {
    const { tracker, committer, calls, setAnswer } = setup();
    tracker.assign(tp);
    const first = tracker.track(tp, 0);
    if (!first) throw new Error('not tracked');
    tracker.complete(first);
    const gate = deferred<void>();
    setAnswer(() => gate.promise);
    const running = committer.commit();
    await until(() => calls.length === 1);
    const next = tracker.track(tp, 1);
    if (!next) throw new Error('not tracked');
    tracker.complete(next);
    const queued = [committer.commit(), committer.commit(), committer.commit()];
    expect(queued[1]).toBe(queued[0]);
    expect(queued[2]).toBe(queued[0]);
    expect(calls).toHaveLength(1); // the second waits for the first's answer
    setAnswer(() => Promise.resolve());
    gate.resolve();
    await Promise.all([running, ...queued]);
    expect(calls.map((call) => call[0]?.offset)).toEqual([1, 2]);
  });

  it('commits after every N completions', async () => {
    const { tracker, committer, calls } = setup(2);
    tracker.assign(tp);
    for (const offset of [0, 1]) {
      const ticket = tracker.track(tp, offset);
      if (!ticket) throw new Error('not tracked');
      tracker.complete(ticket);
      committer.completed();
    }
    await committer.commit(); // waits behind the one `completed` started
    expect(calls[0]).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
  });

  it('commits nothing after max.poll.interval.ms was exceeded, until the member rejoins', async () => {
    const { tracker, committer, calls } = setup();
    tracker.assign(tp);
    const ticket = tracker.track(tp, 0);
    if (!ticket) throw new Error('not tracked');
    tracker.complete(ticket);
    committer.maxPollExceeded();
    expect(committer.maxPollExceededAt).toBeDefined();
    await committer.commit();
    await committer.commit([{ ...tp, offset: 1 }]);
    expect(calls).toHaveLength(0);
    committer.rejoined();
    await committer.commit();
    expect(calls).toEqual([[{ topic: 't', partition: 0, offset: 1 }]]);
  });

  it('counts a refused commit as a failure and commits the same offsets on the next try', async () => {
    const { tracker, committer, calls, setAnswer, metrics } = setup();
    tracker.assign(tp);
    const ticket = tracker.track(tp, 0);
    if (!ticket) throw new Error('not tracked');
    tracker.complete(ticket);
    setAnswer(() => Promise.reject(new Error('rebalance in progress')));
    await committer.commit();
    setAnswer(() => Promise.resolve());
    await committer.commit();
    expect(calls).toEqual([[{ topic: 't', partition: 0, offset: 1 }], [{ topic: 't', partition: 0, offset: 1 }]]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('courier_commits_total{result="failure"} 1');
    expect(text).toContain('courier_commits_total{result="success"} 1');
  });
});

describe('commitFailure', () => {
  it('tells a commit refused for an old generation at info, an unanswered one and anything else at warn, each saying it will retry', () => {
    const generation = commitFailure('commit failed: Broker: Specified group generation id is not valid');
    expect(generation.level).toBe('info');
    expect(generation.message).toMatch(/rebalance.*will retry/);
    expect(commitFailure('commit failed: Broker: Group rebalance in progress').level).toBe('info');
    const unanswered = commitFailure('commit failed: no answer from the broker within 10000 ms');
    expect(unanswered.level).toBe('warn');
    expect(unanswered.message).toMatch(/heartbeat\.interval\.ms/);
    expect(commitFailure('commit failed: Broker: Not coordinator')).toEqual({ level: 'warn', message: 'offset commit failed; will retry' });
  });
});
