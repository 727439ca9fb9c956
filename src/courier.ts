import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from './config.js';
import { Pusher } from './delivery/push.js';
import { KafkaSource } from './kafka/consumer.js';
import { DeadLetterProducer } from './kafka/dlq.js';
import { createMetrics } from './metrics.js';
import { Pipeline } from './pipeline.js';
import { sleep } from './time.js';

/** Builds every part from a validated Config. Nothing runs until `start`. */
export function createCourier(config: Config, logger: Logger, registry: Registry, onFatal: (error: Error) => void) {
  const metrics = createMetrics(registry);
  const pusher = new Pusher({ connections: Math.max(config.maxInFlight, 1) });
  const deadLetters = new DeadLetterProducer(config.producer);
  const pipeline = new Pipeline({ config, logger, metrics, deadLetters, pusher, onFatal });
  const source = new KafkaSource(
    {
      properties: config.consumer,
      topics: config.routes.map((route) => route.topic),
      logger,
      onPoll: (seconds) => metrics.pollLatency.observe(seconds),
    },
    pipeline,
  );

  let started = false;
  return {
    metrics,
    pipeline,
    /** Connects both Kafka clients (retrying until the cluster answers or `signal` aborts) and starts consuming. */
    async start(signal: AbortSignal): Promise<boolean> {
      for (let attempt = 1; !signal.aborted; attempt++) {
        try {
          await deadLetters.start(10_000);
          await source.start(10_000);
          pipeline.attach(source);
          started = true;
          logger.info({ groupId: config.groupId, topics: config.routes.map((r) => r.topic), ordering: config.ordering }, 'consuming');
          return true;
        } catch (error) {
          pipeline.onError(Object.assign(error as Error, { code: -195 }), false);
          await sleep(Math.min(10_000, 500 * attempt), signal);
        }
      }
      return false;
    },
    async stop(): Promise<void> {
      if (started) await pipeline.stop();
      await deadLetters.close(5_000);
      await pusher.close();
    },
  };
}
