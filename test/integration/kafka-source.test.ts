import pino from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { CONSUMER_DEFAULTS } from '../../src/config/index.js';
import { KafkaSource } from '../../src/kafka/consumer.js';
import type { KafkaRecord, TopicPartition } from '../../src/record.js';
import { committedOffsets, createTopics, produce, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
let source: KafkaSource | undefined;

afterEach(async () => {
  await source?.close();
  source = undefined;
});

async function subscribed(topic: string, groupId: string) {
  const assigned: TopicPartition[] = [];
  const records: KafkaRecord[] = [];
  source = new KafkaSource(
    {
      properties: { ...CONSUMER_DEFAULTS, 'bootstrap.servers': bootstrap, 'group.id': groupId, 'client.id': 'kafka-source-test' },
      topics: [topic],
      logger: pino({ level: 'silent' }),
    },
    {
      onAssign: (partitions) => assigned.push(...partitions),
      onRevoke: async () => {},
      onRecords: (batch) => records.push(...batch),
      onError: () => {},
    },
  );
  await source.start(10_000);
  return { source, assigned, records };
}

describe('KafkaSource commits (real broker)', () => {
  it('resolves a commit only once the broker has it, while fetching and after fetching stopped', async () => {
    const topic = uniqueName('source-commit');
    const groupId = uniqueName('source-commit-group');
    await createTopics(bootstrap, [{ topic, partitions: 2 }]);
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 40 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })),
    );
    const { source: consumer, assigned, records } = await subscribed(topic, groupId);
    await waitFor('both partitions assigned and every record fetched', async () => assigned.length === 2 && records.length === 40);

    // The broker is asked right after each commit resolves: it must already answer the new offset.
    for (let offset = 1; offset <= 20; offset++) {
      await consumer.commit([
        { topic, partition: 0, offset },
        { topic, partition: 1, offset: 21 - offset },
      ]);
      const committed = await committedOffsets(bootstrap, groupId, topic);
      expect([committed.get(0), committed.get(1)]).toEqual([offset, 21 - offset]);
    }

    // At shutdown the consume loop has stopped; the broker's answer must still be served.
    await consumer.stopFetching();
    await consumer.commit([{ topic, partition: 0, offset: 3 }]);
    expect((await committedOffsets(bootstrap, groupId, topic)).get(0)).toBe(3);
  });

  it('resolves a commit sent while fetching whose answer comes after fetching stopped', async () => {
    const topic = uniqueName('source-stop');
    const groupId = uniqueName('source-stop-group');
    await createTopics(bootstrap, [{ topic, partitions: 1 }]);
    // A backlog: every consume call returns at once with prefetched records, so the loop's last
    // consume is over before the broker answers the commit sent just before stopping.
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 20_000 }, (_, i) => ({ value: `v${i}`, partition: 0 })),
    );
    const { source: consumer, records } = await subscribed(topic, groupId);
    await waitFor('fetching under way', async () => records.length > 0);
    const committing = consumer.commit([{ topic, partition: 0, offset: 5 }]);
    await consumer.stopFetching();
    await expect(committing).resolves.toBeUndefined();
    expect((await committedOffsets(bootstrap, groupId, topic)).get(0)).toBe(5);
  });

  it('rejects a commit the broker refuses, with a retriable coded error', async () => {
    const topic = uniqueName('source-refused');
    await createTopics(bootstrap, [{ topic, partitions: 1 }]);
    const { source: consumer, assigned } = await subscribed(topic, uniqueName('source-refused-group'));
    await waitFor('the partition assigned', async () => assigned.length === 1);
    // A partition that does not exist: the broker answers UNKNOWN_TOPIC_OR_PARTITION for it.
    const refused = consumer.commit([{ topic, partition: 7, offset: 1 }]);
    await expect(refused).rejects.toMatchObject({ code: 'KAFKA_COMMIT_FAILED', retriable: true });
  });
});
