import { afterEach } from 'vitest';
import { type Handler, TestApp } from './app.js';
import { CourierProcess, courierEnv } from './courier.js';
import { committedOffsets, createTopics, endOffsets, uniqueName } from './kafka.js';

/**
 * One integration scenario: a fresh topic (and, unless told otherwise, its DLQ topic), a test app,
 * and Courier processes in one consumer group. Everything started is stopped after each test.
 */
export function scenarioFactory(bootstrap: string) {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  return async function scenario(options: { partitions: number; handler?: Handler; env?: Record<string, string>; createDlq?: boolean }) {
    const topic = uniqueName('orders');
    const groupId = uniqueName('group');
    const dlqTopic = `${topic}.dlq`;
    await createTopics(bootstrap, [{ topic, partitions: options.partitions }, ...(options.createDlq === false ? [] : [{ topic: dlqTopic, partitions: 1 }])]);
    const app = new TestApp(options.handler);
    await app.listen();
    cleanups.push(() => app.close());

    const courier = (env: Record<string, string> = {}) => {
      const process = new CourierProcess(
        courierEnv(bootstrap, { COURIER_GROUP_ID: groupId, COURIER_TOPICS: topic, COURIER_TARGET_URL: app.url, ...options.env, ...env }),
      );
      cleanups.push(() => process.kill());
      return process;
    };

    const committed = () => committedOffsets(bootstrap, groupId, topic);
    const committedAtEnd = async () => {
      const [done, ends] = await Promise.all([committed(), endOffsets(bootstrap, topic)]);
      return [...ends].every(([partition, end]) => done.get(partition) === end || (end === 0 && (done.get(partition) ?? -1) < 0));
    };
    return { topic, dlqTopic, groupId, app, courier, committed, committedAtEnd };
  };
}
