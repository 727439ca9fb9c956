import { afterEach, describe, expect, inject, it } from 'vitest';
import { TestApp } from '../helpers/app.js';
import { CourierProcess, courierEnv } from '../helpers/courier.js';
import { createTopics, produce, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(env: Record<string, string>): Promise<CourierProcess & { app: TestApp }> {
  const app = new TestApp();
  await app.listen();
  cleanups.push(() => app.close());
  const courier = new CourierProcess(courierEnv(bootstrap, { COURIER_TARGET_URL: app.url, ...env }));
  cleanups.push(() => courier.kill());
  return Object.assign(courier.start(), { app });
}

type Reason = { code: string; message: string };
async function reasons(courier: CourierProcess): Promise<Reason[]> {
  const { body } = await courier.api('/readyz');
  return (body.reasons ?? []) as Reason[];
}

describe('Courier says why Kafka is not usable (real broker)', () => {
  it('a missing topic and a missing DLQ topic are named in /readyz from the start; once created, Courier joins and delivers', async () => {
    const topic = uniqueName('later');
    const courier = await started({ COURIER_GROUP_ID: uniqueName('later-group'), COURIER_TOPICS: topic });
    const named = await waitFor('both topics named in /readyz', async () => {
      const now = await reasons(courier);
      const codes = now.map((reason) => reason.code);
      return codes.includes('topic_missing') && codes.includes('dlq_topic_missing') ? now : undefined;
    });
    expect(named.find((reason) => reason.code === 'topic_missing')?.message).toContain(`topic ${topic} does not exist`);
    expect(named.find((reason) => reason.code === 'dlq_topic_missing')?.message).toContain(`DLQ topic ${topic}.dlq does not exist`);
    expect(courier.hasLog((line) => line.level === 50 && line.msg.includes(`topic ${topic} does not exist`))).toBe(true);

    await createTopics(bootstrap, [
      { topic, partitions: 1 },
      { topic: `${topic}.dlq`, partitions: 1 },
    ]);
    // librdkafka looks again every topic.metadata.refresh.interval.ms (10 s), the DLQ check every 15 s.
    await courier.ready(60_000);
    await produce(bootstrap, topic, [{ value: 'hello', partition: 0 }]);
    await waitFor('the record delivered', () => courier.app.receipts.length === 1);
    await waitFor('ready, with no Kafka reason left', async () => (await courier.api('/readyz')).status === 200, 60_000);
  });

  it('an unreachable broker is named with its address and librdkafka’s words at once, not after the connect timeout', async () => {
    const courier = await started({ COURIER_GROUP_ID: uniqueName('nowhere'), COURIER_TOPICS: 'orders', KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1' });
    const reason = await waitFor('kafka_unreachable in /readyz', async () => (await reasons(courier)).find((r) => r.code === 'kafka_unreachable'), 5_000);
    expect(reason.message).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1.*Connection refused.*Fix: check KAFKA_BOOTSTRAP_SERVERS/);
    expect(courier.hasLog((line) => line.level === 50 && /cannot reach Kafka at 127\.0\.0\.1:1: .*Connection refused/.test(line.msg))).toBe(true);
    // librdkafka's own line is in the log too, at warn.
    expect(courier.hasLog((line) => line.level === 40 && line.msg.startsWith('librdkafka: ') && line.msg.includes('Connection refused'))).toBe(true);
    // SIGTERM while it cannot connect ends the process cleanly within a pod's grace period (SIGKILL
    // after 20 s: a null exit code fails this).
    expect(await courier.stop(20_000)).toBe(0);
  });
});
