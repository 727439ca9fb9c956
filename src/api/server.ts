import { createHash, timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import {
  Assignment,
  DeadLetterList,
  type DeadLetterListBody,
  DeadLetterQuery,
  type DeadLetterQueryParams,
  ErrorBody,
  Health,
  Lag,
  type LagReport,
  NotAssigned,
  type PartitionStatus,
  PauseRequest,
  type PauseRequestBody,
  PauseResult,
  type PauseResultBody,
  Readiness,
  type ReadinessReason,
  Rebalances,
  type RebalancesReport,
  RedriveRequest,
  type RedriveRequestBody,
  RedriveResult,
  type RedriveResultBody,
  type RouteStatus,
  SeekRequest,
  type SeekRequestBody,
  SeekResult,
  type SeekResultBody,
  WEBHOOKS,
} from './schemas.js';

/** An admin request about a topic this Courier does not consume. */
type UnknownTopic = { readonly unknownTopic: true };
type MaybePromise<T> = T | Promise<T>;

/** Where `/metrics` comes from: a prom-client Registry, or the workers' metrics aggregated. */
export type MetricsSource = Pick<Registry, 'contentType' | 'metrics'>;

/** What the API reads and steers: the composition root wires it to the pipeline and lag monitor, or with workers (COURIER_WORKERS) to the supervisor, which asks them. */
export interface Operations {
  failure(): MaybePromise<string | undefined>;
  notReadyReasons(): MaybePromise<ReadinessReason[]>;
  lag(): Promise<LagReport>;
  assignment(): MaybePromise<PartitionStatus[]>;
  routes(): MaybePromise<RouteStatus[]>;
  rebalances(): MaybePromise<RebalancesReport>;
  adminPause(topic: string, partitions: readonly number[] | undefined, pause: boolean): MaybePromise<PauseResultBody | null>;
  seek(request: SeekRequestBody): Promise<SeekResultBody | { readonly notAssigned: Array<{ topic: string; partition: number }> } | UnknownTopic>;
  redrive(request: RedriveRequestBody): Promise<RedriveResultBody | UnknownTopic | { readonly busy: true }>;
  deadLetters(query: DeadLetterQueryParams): Promise<DeadLetterListBody | UnknownTopic>;
}

export interface ServerOptions {
  readonly operations: Operations;
  readonly registry: MetricsSource;
  /** Admin routes answer 404 without it. */
  readonly adminToken: string | undefined;
  readonly version: string;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody } as const;

const unknownTopic = (topic: string) => ({ error: 'unknown_topic', message: `this Courier does not consume ${topic}` });

/** Builds Courier's API without listening: main listens, tests use `inject`. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    return503OnClosing: true,
    // Reject unknown fields instead of silently dropping them: a typo must not pause everything.
    ajv: { customOptions: { removeAdditional: false } },
  });
  const { operations } = options;

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Courier',
        version: options.version,
        description: "Courier's operations API (health, lag, assignment, rebalances, metrics, admin) and, under `webhooks`, what the app receives.",
      },
      components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'COURIER_ADMIN_TOKEN' } } },
      webhooks: WEBHOOKS,
    } as never,
  });

  app.setErrorHandler((error: { statusCode?: number; validation?: unknown; message: string }, _request, reply) => {
    if (error.validation) return reply.code(400).send({ error: 'bad_request', message: error.message });
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    // 5xx messages may carry internals; 4xx ones are about the request.
    if (status === 500) return reply.code(500).send({ error: 'internal', message: 'internal error' });
    const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    return reply.code(status).send({ error: code, message: error.message });
  });
  // A known path asked with another method is 405 with Allow, not 404.
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = methodsByPath.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    methodsByPath.set(route.url, methods);
  });
  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = methodsByPath.get(path);
    if (allowed) {
      return reply
        .code(405)
        .header('allow', [...allowed].join(', '))
        .send({ error: 'method_not_allowed', message: `${request.method} is not allowed on ${path}` });
    }
    return reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${path}` });
  };
  // Before body parsing, so an unknown method with a body is answered 405/404, not 400.
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) return notFound(request, reply);
  });
  app.setNotFoundHandler(notFound);

  const expected = options.adminToken ? digest(options.adminToken) : undefined;
  const requireAdmin = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!expected) return reply.code(404).send({ error: 'not_found', message: 'admin endpoints are off: set COURIER_ADMIN_TOKEN to enable them' });
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    // Compare digests: constant time, whatever the lengths.
    if (!timingSafeEqual(digest(token), expected)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'missing or wrong bearer token' });
    }
  };

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: 200 while the process runs and the consumer has not failed fatally',
        tags: ['health'],
        response: { 200: Health, 503: Health },
      },
    },
    async (_request, reply) => {
      const failure = await operations.failure();
      return failure ? reply.code(503).send({ status: 'failed', error: failure }) : { status: 'ok' };
    },
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: 200 when joined, subscribed and the app reachable; else 503 with the reasons',
        tags: ['health'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const reasons = await operations.notReadyReasons();
      return reply.code(reasons.length === 0 ? 200 : 503).send({ ready: reasons.length === 0, reasons });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['metrics'],
        response: { 200: { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => reply.type(options.registry.contentType).send(await options.registry.metrics()),
  );

  app.get(
    '/v1/lag',
    {
      schema: {
        summary: 'Lag per assigned partition: high watermark − committed offset, read from the broker now, and how old that backlog is',
        tags: ['operations'],
        response: { 200: Lag },
      },
    },
    async () => operations.lag(),
  );

  app.get(
    '/v1/assignment',
    { schema: { summary: 'Assigned partitions with state, in-flight count and pause reasons', tags: ['operations'], response: { 200: Assignment } } },
    async () => ({ partitions: await operations.assignment(), routes: await operations.routes() }),
  );

  app.get(
    '/v1/rebalances',
    { schema: { summary: 'Recent rebalance events (newest last) and counts by type', tags: ['operations'], response: { 200: Rebalances } } },
    async () => operations.rebalances(),
  );

  for (const [path, pause] of [
    ['/v1/pause', true],
    ['/v1/resume', false],
  ] as const) {
    app.post<{ Body: PauseRequestBody }>(
      path,
      {
        preHandler: requireAdmin,
        schema: {
          summary: pause
            ? 'Pause partitions of a topic (admin); they stay paused across rebalances while this instance owns them'
            : 'Resume partitions paused by an operator (admin)',
          tags: ['admin'],
          security: [{ adminToken: [] }],
          body: PauseRequest,
          response: { 200: PauseResult, ...errors },
        },
      },
      async (request, reply) => {
        const result = await operations.adminPause(request.body.topic, request.body.partitions, pause);
        if (!result) return reply.code(404).send({ error: 'unknown_topic', message: `this Courier does not consume ${request.body.topic}` });
        return result;
      },
    );
  }

  app.post<{ Body: SeekRequestBody }>(
    '/v1/seek',
    {
      preHandler: requireAdmin,
      schema: {
        summary:
          'Move a partition this instance owns to an offset or a time (admin): no new record starts, in-flight ones finish within the grace period, the new position is committed, then delivery resumes there',
        description:
          'Replay: seek back to a timestamp and the records from there are delivered again. Skip: seek forward past a bad range and it is never delivered. ' +
          'Works on source and retry-tier partitions; a partition owned by another instance answers 409 notAssigned (ask that instance: /v1/assignment says which partitions each owns).',
        tags: ['admin'],
        security: [{ adminToken: [] }],
        body: SeekRequest,
        response: { 200: SeekResult, 409: NotAssigned, 503: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      const { offset, timestamp } = request.body;
      if ((offset === undefined) === (timestamp === undefined))
        return reply.code(400).send({ error: 'bad_request', message: 'give either offset or timestamp' });
      try {
        const result = await operations.seek(request.body);
        if ('unknownTopic' in result) return reply.code(404).send(unknownTopic(request.body.topic));
        if ('notAssigned' in result)
          return reply.code(409).send({
            error: 'notAssigned',
            message: `this instance does not own ${request.body.topic}-${request.body.partition}: seek on the instance that does`,
            partitions: result.notAssigned,
          });
        return result;
      } catch (error) {
        return reply.code(503).send({ error: 'seek_failed', message: error instanceof Error ? error.message : String(error) });
      }
    },
  );

  app.post<{ Body: RedriveRequestBody }>(
    '/v1/dlq/redrive',
    {
      preHandler: requireAdmin,
      schema: {
        summary:
          'Write dead-lettered records of a topic back to it (admin): filtered, rate-limited, with courier_redriven_from and redrive_count; a record redriven 3 times is skipped. Answers when done',
        description:
          "Reads the DLQ without joining the main group (nothing is committed there). Records are written to their original_topic, partitioned by key, stamped with the redrive's time. A record whose value was omitted from the DLQ (too large) is skipped.",
        tags: ['admin'],
        security: [{ adminToken: [] }],
        body: RedriveRequest,
        response: { 200: RedriveResult, 409: ErrorBody, 503: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      try {
        const result = await operations.redrive(request.body);
        if ('unknownTopic' in result) return reply.code(404).send(unknownTopic(request.body.topic));
        if ('busy' in result)
          return reply.code(409).send({ error: 'redrive_in_progress', message: 'a redrive is running on this instance; try again when it is done' });
        return result;
      } catch (error) {
        if (isTopicNotFound(error)) return reply.code(404).send({ error: 'unknown_dlq_topic', message: (error as Error).message });
        return reply.code(503).send({ error: 'redrive_failed', message: error instanceof Error ? error.message : String(error) });
      }
    },
  );

  app.get<{ Querystring: DeadLetterQueryParams }>(
    '/v1/dlq',
    {
      preHandler: requireAdmin,
      schema: {
        summary: 'Dead-lettered records of a topic (admin): coordinates, why, attempts, tier, redrive count; never values',
        tags: ['admin'],
        security: [{ adminToken: [] }],
        querystring: DeadLetterQuery,
        response: { 200: DeadLetterList, 503: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      try {
        const result = await operations.deadLetters(request.query);
        if ('unknownTopic' in result) return reply.code(404).send(unknownTopic(request.query.topic));
        return result;
      } catch (error) {
        if (isTopicNotFound(error)) return reply.code(404).send({ error: 'unknown_dlq_topic', message: (error as Error).message });
        return reply.code(503).send({ error: 'dlq_read_failed', message: error instanceof Error ? error.message : String(error) });
      }
    },
  );

  app.get('/openapi.json', { schema: { summary: 'This OpenAPI 3.1 document (also committed as openapi/courier.json)', tags: ['meta'] } }, async () =>
    app.swagger(),
  );
  return app;
}

/** The DLQ topic to read does not exist: the request's mistake (or nothing was ever dead-lettered), not Courier's. */
function isTopicNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === 'TOPIC_NOT_FOUND';
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
