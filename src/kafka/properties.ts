/**
 * librdkafka's topic-level properties (CONFIGURATION.md, "Topic configuration properties").
 * The JS binding always installs a default topic configuration of its own, which hides any
 * topic-level property given in the global one (auto.offset.reset silently fell back to `latest`),
 * so these must travel in the topic configuration.
 */
const TOPIC_LEVEL = new Set([
  'request.required.acks',
  'acks',
  'request.timeout.ms',
  'message.timeout.ms',
  'delivery.timeout.ms',
  'queuing.strategy',
  'produce.offset.report',
  'partitioner',
  'compression.codec',
  'compression.type',
  'compression.level',
  'auto.commit.enable',
  'enable.auto.commit.topic',
  'auto.commit.interval.ms.topic',
  'auto.offset.reset',
  'offset.store.path',
  'offset.store.sync.interval.ms',
  'offset.store.method',
  'consume.callback.max.messages',
]);

export function splitProperties(properties: Readonly<Record<string, string>>): { global: Record<string, string>; topic: Record<string, string> } {
  const global: Record<string, string> = {};
  const topic: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (TOPIC_LEVEL.has(name)) topic[name] = value;
    else global[name] = value;
  }
  return { global, topic };
}
