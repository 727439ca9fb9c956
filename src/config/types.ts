import type { RouteSettings, SettingsLandingIn } from './settings.js';
import type { KafkaTokenConfig } from './token.js';

/**
 * The loaded configuration. Every setting declared in settings.ts with no `lands` is a field of the
 * same name here; `limits`, `routes` and `signingKeys` gather the others.
 */
export interface Config extends SettingsLandingIn<'config'> {
  readonly routes: readonly RouteConfig[];
  /** What is never pushed (dead-lettered instead). */
  readonly limits: SettingsLandingIn<'limits'>;
  /** Decoded Standard Webhooks keys (COURIER_SIGNING_SECRET); the first signs. */
  readonly signingKeys: readonly Buffer[];
  readonly bootstrapServers: string;
  /** librdkafka properties for the consumer (defaults, then KAFKA_* pass-through, then Courier's own). */
  readonly consumer: Readonly<Record<string, string>>;
  /** librdkafka properties for the DLQ producer. */
  readonly producer: Readonly<Record<string, string>>;
  /** OAUTHBEARER tokens Courier makes (COURIER_KAFKA_TOKEN_PROVIDER); undefined when librdkafka authenticates alone. */
  readonly kafkaToken: KafkaTokenConfig | undefined;
  readonly runningInKubernetes: boolean;
  /** Every secret value configured (tokens, signing secrets, secret librdkafka properties), for redaction. */
  readonly secrets: readonly string[];
  /** Things worth a log line that are not errors (ignored service-link variables, unknown names). */
  readonly warnings: readonly string[];
  /** Set in a worker process (COURIER_WORKERS > 1): which one of how many; the limits above are its share. */
  readonly worker: WorkerShare | undefined;
}

export interface WorkerShare {
  readonly index: number;
  readonly count: number;
}

/** One topic → URL, with the per-route settings (the file's own values, else the top-level ones). */
export interface RouteConfig extends RouteSettings {
  readonly topic: string;
  readonly targetUrl: string;
  /** The DLQ topic for this route, template already applied. */
  readonly dlqTopic: string;
  /** The retry tiers (COURIER_RETRY_TIERS) with their topics, in order; empty: the DLQ follows the in-memory attempts. */
  readonly tiers: readonly RetryTier[];
}

export interface RetryTier {
  /** As written: `5m`; it names the topic and goes into the `retry_tier` header. */
  readonly label: string;
  readonly delayMs: number;
  readonly topic: string;
}

export interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the file named by COURIER_CONFIG; throws when it cannot. */
  readonly readFile: (path: string) => string;
}
