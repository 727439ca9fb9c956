import { createHash, timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import {
  Assignment,
  ErrorBody,
  Health,
  Lag,
  type LagReport,
  type PartitionStatus,
  PauseRequest,
  type PauseRequestBody,
  PauseResult,
  type PauseResultBody,
  Readiness,
  type ReadinessReason,
  Rebalances,
  type RebalancesReport,
  type RouteStatus,
  WEBHOOKS,
} from './schemas.js';

/** What the API reads and steers; the composition root wires it to the pipeline and lag monitor. */
export interface Operations {
  failure(): string | undefined;
  notReadyReasons(): ReadinessReason[];
  lag(): Promise<LagReport>;
  assignment(): PartitionStatus[];
  routes(): RouteStatus[];
  rebalances(): RebalancesReport;
  adminPause(topic: string, partitions: readonly number[] | undefined, pause: boolean): PauseResultBody | null;
}

export interface ServerOptions {
  readonly operations: Operations;
  readonly registry: Registry;
  /** Admin routes answer 404 without it. */
  readonly adminToken: string | undefined;
  readonly version: string;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody } as const;

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
      const failure = operations.failure();
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
      const reasons = operations.notReadyReasons();
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
    async () => ({ partitions: operations.assignment(), routes: operations.routes() }),
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
        const result = operations.adminPause(request.body.topic, request.body.partitions, pause);
        if (!result) return reply.code(404).send({ error: 'unknown_topic', message: `this Courier does not consume ${request.body.topic}` });
        return result;
      },
    );
  }

  app.get('/openapi.json', { schema: { summary: 'This OpenAPI 3.1 document (also committed as openapi/courier.json)', tags: ['meta'] } }, async () =>
    app.swagger(),
  );
  return app;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
