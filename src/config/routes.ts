import type { Report } from './kinds.js';
import { DECLARATIONS, ENV, ROUTE_SETTINGS, type RouteSettings } from './settings.js';
import { unknownKeyFix } from './suggest.js';
import type { RouteConfig } from './types.js';

/** Keys a route of the file may have: what it consumes, where it pushes, and the per-route settings. */
export const ROUTE_KEYS: readonly string[] = ['topic', 'url', ...ROUTE_SETTINGS.map((setting) => setting.key)];

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const urlKind = DECLARATIONS.find((setting) => setting.key === 'targetUrl')!.kind;

export interface RoutesInput {
  /** The file's `routes` value, unchecked; undefined without one. */
  readonly fileRoutes: unknown;
  readonly configPath: string | undefined;
  /** COURIER_TOPICS (or the file's `topics`) and where it came from. */
  readonly topics: readonly string[];
  readonly topicsFrom: string | undefined;
  /** COURIER_TARGET_URL, and where it came from: set even when the URL was invalid (already reported). */
  readonly targetUrl: string | undefined;
  readonly targetUrlFrom: string | undefined;
  /** The top-level per-route settings; `dlqTopic` is still a template. */
  readonly defaults: RouteSettings;
  readonly dlqTopicFrom: string | undefined;
  /** Undefined when invalid (already reported): the retry budget is then not checked. */
  readonly maxPollIntervalMs: number | undefined;
}

interface Draft {
  /** `dlqTopic` is still the template; the tiers are resolved at the end. */
  readonly route: Omit<RouteConfig, 'tiers'>;
  /** Where the route was defined, and where its DLQ template was, for messages. */
  readonly from: string;
  readonly dlqFrom: string;
}

/** The file's `routes`, then COURIER_TOPICS × COURIER_TARGET_URL (which win per topic), checked together. */
export function buildRoutes(input: RoutesInput, report: Report): RouteConfig[] {
  const byTopic = new Map<string, Draft>();
  for (const draft of fileRoutes(input, report)) byTopic.set(draft.route.topic, draft);

  const { topics, topicsFrom, targetUrlFrom, defaults } = input;
  if (topics.length > 0 && !targetUrlFrom)
    report(ENV.targetUrl, `is required when ${ENV.topics} is set`, `set it to the app endpoint, e.g. ${ENV.targetUrl}=http://localhost:3000/events`);
  if (targetUrlFrom && topics.length === 0 && byTopic.size === 0)
    report(ENV.topics, `is required when ${ENV.targetUrl} is set`, `set it to the topics to consume, e.g. ${ENV.topics}=orders`);
  if (targetUrlFrom) {
    // An invalid URL was reported already; the routes are still built so that their other problems show too.
    const targetUrl = input.targetUrl ?? '';
    for (const topic of topics) {
      byTopic.set(topic, { from: topicsFrom ?? ENV.topics, dlqFrom: input.dlqTopicFrom ?? ENV.dlqTopic, route: { ...defaults, topic, targetUrl } });
    }
  }
  if (byTopic.size === 0 && !targetUrlFrom && topics.length === 0) {
    report(ENV.topics, 'no topic to consume', `set ${ENV.topics} and ${ENV.targetUrl}, or define routes in the COURIER_CONFIG file`);
  }

  const routes: RouteConfig[] = [];
  for (const [topic, { route, from, dlqFrom }] of byTopic) {
    if (!TOPIC_NAME.test(topic)) report(from, `"${topic}" is not a valid Kafka topic name`, 'use letters, digits, ".", "_" and "-" (at most 249)');
    if (route.retryInitialMs > route.retryMaxMs)
      report(from, `retryInitialMs ${route.retryInitialMs} is above retryMaxMs ${route.retryMaxMs}`, 'make the initial delay at most the maximum');
    const dlqTopic = route.dlqTopic.replaceAll('{topic}', topic);
    if (!TOPIC_NAME.test(dlqTopic)) report(dlqFrom, `gives "${dlqTopic}", not a valid topic name`, 'use a template such as {topic}.dlq');
    else if (byTopic.has(dlqTopic))
      report(dlqFrom, `dead-letters ${topic} into ${dlqTopic}, which Courier also consumes`, 'choose a DLQ topic that is not consumed, e.g. {topic}.dlq');
    checkRetryBudget(route, from, input.maxPollIntervalMs, report);
    const tiers = route.retryTiers.map(({ label, delayMs }) => ({ label, delayMs, topic: retryTopicName(route.retryTopic, topic, label) }));
    routes.push({ ...route, dlqTopic, tiers });
  }
  checkRetryTopics(routes, report);
  return routes;
}

/** `{topic}` and `{delay}` replaced: `orders.retry-5m`. */
export function retryTopicName(template: string, topic: string, delay: string): string {
  return template.replaceAll('{topic}', topic).replaceAll('{delay}', delay);
}

/** Each retry topic belongs to one tier of one route, and is neither consumed as a source nor a DLQ. */
function checkRetryTopics(routes: readonly RouteConfig[], report: Report): void {
  const sources = new Set(routes.map((route) => route.topic));
  const dlqs = new Set(routes.map((route) => route.dlqTopic));
  const owner = new Map<string, string>();
  const fix = 'use a template with {topic} and {delay}, e.g. {topic}.retry-{delay}';
  for (const route of routes) {
    for (const tier of route.tiers) {
      const where = `${route.topic} (retry tier ${tier.label})`;
      if (!TOPIC_NAME.test(tier.topic)) report(where, `gives "${tier.topic}", not a valid topic name`, fix);
      else if (sources.has(tier.topic)) report(where, `writes to ${tier.topic}, which Courier also consumes as a source`, fix);
      else if (dlqs.has(tier.topic)) report(where, `writes to ${tier.topic}, which is a DLQ topic`, fix);
      else if (owner.has(tier.topic)) report(where, `writes to ${tier.topic}, which ${owner.get(tier.topic)} writes to as well`, fix);
      owner.set(tier.topic, where);
    }
  }
}

/** A record may be retried for the whole budget without polling: past max.poll.interval.ms the member is evicted. */
function checkRetryBudget(route: Omit<RouteConfig, 'tiers'>, from: string, maxPollIntervalMs: number | undefined, report: Report): void {
  if (maxPollIntervalMs === undefined) return;
  const { maxAttempts, requestTimeoutMs, retryMaxMs } = route;
  const budget = maxAttempts * requestTimeoutMs + (maxAttempts - 1) * retryMaxMs;
  if (budget < maxPollIntervalMs) return;
  report(
    `${from} (retry budget)`,
    `${maxAttempts} attempts × ${requestTimeoutMs} ms + ${maxAttempts - 1} waits × ${retryMaxMs} ms = ${budget} ms, not inside max.poll.interval.ms ${maxPollIntervalMs}`,
    `lower ${ENV.maxAttempts}, ${ENV.requestTimeoutMs} or ${ENV.retryMaxMs}, or raise KAFKA_MAX_POLL_INTERVAL_MS`,
  );
}

function fileRoutes({ fileRoutes, configPath, defaults }: RoutesInput, report: Report): Draft[] {
  if (fileRoutes === undefined) return [];
  if (!Array.isArray(fileRoutes)) {
    report(`${configPath}: routes`, 'must be a list', 'write routes as a list of { topic, url } entries');
    return [];
  }
  const drafts: Draft[] = [];
  fileRoutes.forEach((entry: unknown, index) => {
    const from = `${configPath}: routes[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      report(from, 'must be a mapping', 'write e.g. { topic: orders, url: "http://localhost:3000/orders" }');
      return;
    }
    const fields = entry as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!ROUTE_KEYS.includes(key)) report(`${from}.${key}`, 'unknown key', unknownKeyFix(key, ROUTE_KEYS));
    }

    const topic = typeof fields.topic === 'string' ? fields.topic.trim() : '';
    if (!topic) report(`${from}.topic`, 'is required', 'name the topic this route consumes');
    let targetUrl = '';
    const url = fields.url === undefined ? undefined : urlKind.parse(fields.url, 'url');
    if (url && 'problem' in url) report(`${from}.url`, url.problem, url.fix);
    else if (url?.value === undefined) report(`${from}.url`, 'is required', 'give the URL records of this topic are POSTed to');
    else targetUrl = url.value as string;

    // The same kinds as the top-level settings, so a route accepts exactly what the variable accepts.
    const overrides: Record<string, unknown> = {};
    for (const setting of ROUTE_SETTINGS) {
      if (fields[setting.key] === undefined) continue;
      const parsed = setting.kind.parse(fields[setting.key], setting.key);
      if ('problem' in parsed) report(`${from}.${setting.key}`, parsed.problem, parsed.fix);
      else if (parsed.value !== undefined) overrides[setting.key] = parsed.value;
    }
    if (topic) drafts.push({ from, dlqFrom: `${from}.dlqTopic`, route: { ...defaults, ...(overrides as Partial<RouteSettings>), topic, targetUrl } });
  });
  return drafts;
}
