import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';

/** A5 metrics on an injected registry (no globals, so tests and several instances stay apart). */
export function createMetrics(registry: Registry, options: { defaultMetrics?: boolean } = {}) {
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    recordsConsumed: new Counter({ name: 'courier_records_consumed_total', help: 'Records fetched from Kafka', labelNames: ['topic'], registers }),
    recordsDelivered: new Counter({ name: 'courier_records_delivered_total', help: 'Records the app acknowledged with 2xx', labelNames: ['topic'], registers }),
    recordsDeadLettered: new Counter({
      name: 'courier_records_dead_lettered_total',
      help: 'Records written to the dead-letter topic',
      labelNames: ['topic', 'reason'],
      registers,
    }),
    deliveryAttempts: new Counter({
      name: 'courier_delivery_attempts_total',
      help: 'Push attempts by result (2xx, 4xx, 5xx, timeout, connection_lost, unreachable)',
      labelNames: ['topic', 'result'],
      registers,
    }),
    deliveryDuration: new Histogram({
      name: 'courier_delivery_duration_seconds',
      help: 'Duration of one push attempt',
      labelNames: ['topic'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    recordProcessing: new Histogram({
      name: 'courier_record_processing_seconds',
      help: 'Time from fetch to acknowledgement or dead-lettering',
      labelNames: ['topic'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    consumerLag: new Gauge({ name: 'courier_consumer_lag', help: 'High watermark minus committed offset', labelNames: ['topic', 'partition'], registers }),
    rebalances: new Counter({ name: 'courier_rebalances_total', help: 'Rebalance events by type', labelNames: ['type'], registers }),
    commits: new Counter({ name: 'courier_commits_total', help: 'Offset commits by result', labelNames: ['result'], registers }),
    inFlight: new Gauge({ name: 'courier_in_flight', help: 'Records being delivered (pushing, waiting to retry, or dead-lettering)', registers }),
    pollLatency: new Histogram({
      name: 'courier_poll_latency_seconds',
      help: 'Duration of one consume call',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    appUp: new Gauge({ name: 'courier_app_up', help: '1 while the app is reachable, 0 while Courier holds records because it is not', registers }),
    appRefused: new Gauge({
      name: 'courier_app_refused',
      help: '1 while the app answers 401/403 (token or signature misconfigured) and Courier holds records',
      registers,
    }),
    maxPollExceeded: new Counter({
      name: 'courier_max_poll_exceeded_total',
      help: 'Times max.poll.interval.ms was exceeded and the member left the group',
      registers,
    }),
    droppedHeaders: new Counter({
      name: 'courier_record_headers_dropped_total',
      help: 'Record headers left out of a push because their name is not an HTTP token',
      labelNames: ['topic'],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
