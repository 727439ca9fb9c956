// Usage: node scripts/demo/create-topics.mjs BOOTSTRAP TOPIC PARTITIONS
// Creates TOPIC (PARTITIONS partitions) and TOPIC.dlq (1 partition); the broker does not auto-create topics.
import { withAdmin } from '../lib/kafka.mjs';

const [bootstrap, topic, partitions] = process.argv.slice(2);
if (!bootstrap || !topic || !partitions) {
  console.error('usage: create-topics.mjs BOOTSTRAP TOPIC PARTITIONS');
  process.exit(2);
}

await withAdmin(bootstrap, async (admin) => {
  await admin.createTopics({
    topics: [
      { topic, numPartitions: Number(partitions), replicationFactor: 1 },
      { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  // createTopics resolves when the controller accepted them; wait until the broker serves their metadata.
  for (let i = 0; i < 50; i++) {
    try {
      const [source, dlq] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchTopicOffsets(`${topic}.dlq`)]);
      if (source.length === Number(partitions) && dlq.length === 1) return;
    } catch {
      // not there yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`topics ${topic} / ${topic}.dlq not visible after creation`);
});
console.error(`demo: created ${topic} (${partitions} partitions) and ${topic}.dlq (1 partition)`);
