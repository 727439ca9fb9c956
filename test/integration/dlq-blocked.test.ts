import { describe, expect, inject, it } from 'vitest';
import { createTopics, headerOf, produce, readAll } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);

describe('the DLQ topic cannot be written', () => {
  it('holds the source offset until the DLQ write is acknowledged, then commits it with exactly one DLQ record', async () => {
    const { topic, dlqTopic, app, courier, committed } = await scenario({
      partitions: 2,
      createDlq: false, // the broker does not auto-create topics: every DLQ write fails
      handler: (r) => ({ status: r.body.toString() === 'reject me' ? 400 : 200 }),
      // Fail writes to a missing topic after 1 s instead of librdkafka's default 30 s.
      env: { KAFKA_TOPIC_METADATA_PROPAGATION_MAX_MS: '1000' },
    });
    await produce(bootstrap, topic, [
      { key: 'bad', value: 'reject me', partition: 0 },
      { key: 'good', value: 'fine', partition: 1 },
    ]);
    const courierProcess = courier().start();
    await waitFor('the other partition to be committed', async () => (await committed()).get(1) === 1);
    await waitFor('a failed DLQ write', () => courierProcess.hasLog((l) => l.msg.startsWith('DLQ write failed')));
    await waitFor('a second failed DLQ write (it keeps retrying)', () => courierProcess.logs.filter((l) => l.msg.startsWith('DLQ write failed')).length >= 2);
    expect((await committed()).get(0) ?? -1).toBeLessThan(1);
    expect(app.receipts.filter((r) => r.partition === 0)).toHaveLength(1);

    await createTopics(bootstrap, [{ topic: dlqTopic, partitions: 1 }]);
    await waitFor('the rejected record committed after its DLQ write', async () => (await committed()).get(0) === 1);
    const dead = await readAll(bootstrap, dlqTopic);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.value?.toString()).toBe('reject me');
    expect(headerOf(dead[0]!, 'original_partition')).toBe('0');
    // The app saw the record once: the DLQ retries do not push again.
    expect(app.receipts.filter((r) => r.partition === 0)).toHaveLength(1);
  });
});
