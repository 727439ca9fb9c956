import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import { type InjectorOptions, reviewBody } from './admission.js';

/**
 * `courier inject`: the mutating admission webhook over HTTPS (node:https).
 *
 *   POST /mutate   AdmissionReview v1 → AdmissionReview response (see admission.ts)
 *   GET  /healthz  200 (the Deployment's probes)
 *
 * The certificate is re-read every `reloadIntervalMs`: cert-manager renews the Secret in place and
 * the kubelet updates the mounted files, so a renewal needs no restart.
 */

export const MAX_BODY_BYTES = 4 * 1024 * 1024; // the API server's objects stay well under 3 MiB

export interface InjectorServerOptions extends InjectorOptions {
  certFile: string;
  keyFile: string;
  host?: string;
  port?: number;
  logger: Logger;
  reloadIntervalMs?: number;
}

export interface RunningInjector {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startInjector(options: InjectorServerOptions): Promise<RunningInjector> {
  const { logger } = options;
  let cert = readFileSync(options.certFile);
  let key = readFileSync(options.keyFile);
  const server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return send(200, { ok: true });
    if (path !== '/mutate') return send(404, { error: 'not_found', message: 'POST AdmissionReviews to /mutate' });
    if (req.method !== 'POST') return send(405, { error: 'method_not_allowed', message: 'POST AdmissionReviews to /mutate' });

    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        logger.warn({ bytes: size }, 'admission review too large');
        return send(413, { error: 'payload_too_large', message: `AdmissionReviews larger than ${MAX_BODY_BYTES} bytes are refused` });
      }
      let answer: ReturnType<typeof reviewBody>;
      try {
        answer = reviewBody(Buffer.concat(chunks), options);
      } catch (error) {
        // A bug, not a decision: answer 500 so the API server applies failurePolicy (Fail).
        logger.error({ err: error }, 'admission review failed');
        return send(500, { error: 'internal', message: 'the injector failed to review this request' });
      }
      const response = answer.status === 200 ? answer.body.response : undefined;
      logger.info(
        {
          outcome: answer.outcome,
          uid: response?.uid,
          allowed: response?.allowed,
          ...(response?.status ? { reason: response.status.message } : {}),
          ...(answer.status !== 200 ? { reason: answer.body.message } : {}),
        },
        'admission review',
      );
      send(answer.status, answer.body);
    });
    req.on('error', () => res.destroy());
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;

  const reload = setInterval(() => {
    try {
      const nextCert = readFileSync(options.certFile);
      const nextKey = readFileSync(options.keyFile);
      if (nextCert.equals(cert) && nextKey.equals(key)) return;
      server.setSecureContext({ cert: nextCert, key: nextKey, minVersion: 'TLSv1.2' });
      cert = nextCert;
      key = nextKey;
      logger.info('TLS certificate reloaded');
    } catch (error) {
      // Half-written files during a renewal: keep serving the previous pair and try again.
      logger.warn({ err: error }, 'cannot reload the TLS certificate yet; keeping the current one');
    }
  }, options.reloadIntervalMs ?? 30_000);
  reload.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8443, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(reload);
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

export interface InjectorIo {
  env: Record<string, string | undefined>;
  stderr: { write(text: string): unknown };
  /** Where JSON log lines go (stdout by default). */
  logDestination?: { write(text: string): unknown };
  /** Called once with the function that stops the server (main wires it to SIGTERM and SIGINT). */
  onStop(stop: () => void): void;
  /** Called once the server listens (tests learn the port this way). */
  onListening?(injector: RunningInjector): void;
}

const EXIT_CONFIG = 78;

/** The `courier inject` command: configuration from the environment, every problem at once; resolves with the exit code. */
export async function runInjector(io: InjectorIo): Promise<number> {
  const { env } = io;
  const problems: string[] = [];
  const certFile = env.COURIER_INJECT_TLS_CERT;
  const keyFile = env.COURIER_INJECT_TLS_KEY;
  const image = env.COURIER_INJECT_IMAGE?.trim();
  if (!certFile) problems.push('COURIER_INJECT_TLS_CERT is required. Fix: the path of the PEM certificate, e.g. /tls/tls.crt from the cert-manager Secret');
  if (!keyFile) problems.push('COURIER_INJECT_TLS_KEY is required. Fix: the path of the PEM private key, e.g. /tls/tls.key');
  if (!image) problems.push('COURIER_INJECT_IMAGE is required. Fix: the Courier image the injected sidecar runs, e.g. courier:0.1.0');
  const portRaw = env.COURIER_INJECT_PORT ?? '8443';
  const port = /^[0-9]{1,5}$/.test(portRaw) && Number(portRaw) <= 65535 ? Number(portRaw) : undefined;
  if (port === undefined) problems.push(`COURIER_INJECT_PORT "${portRaw}" is not a port. Fix: a number 0-65535 (default 8443)`);
  const pullPolicy = env.COURIER_INJECT_IMAGE_PULL_POLICY ?? 'IfNotPresent';
  if (!['Always', 'IfNotPresent', 'Never'].includes(pullPolicy))
    problems.push(`COURIER_INJECT_IMAGE_PULL_POLICY "${pullPolicy}" is not valid. Fix: Always, IfNotPresent or Never`);
  const reloadRaw = env.COURIER_INJECT_RELOAD_MS ?? '30000';
  const reloadIntervalMs = /^[0-9]{1,9}$/.test(reloadRaw) && Number(reloadRaw) >= 10 ? Number(reloadRaw) : undefined;
  if (reloadIntervalMs === undefined)
    problems.push(`COURIER_INJECT_RELOAD_MS "${reloadRaw}" is not valid. Fix: milliseconds between certificate re-reads, at least 10 (default 30000)`);
  const level = env.COURIER_LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level))
    problems.push(`COURIER_LOG_LEVEL "${level}" is not a level. Fix: fatal | error | warn | info | debug | trace | silent`);
  if (problems.length > 0) {
    io.stderr.write(`courier inject: invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return EXIT_CONFIG;
  }

  const logOptions = { level, base: { service: 'courier-injector' }, timestamp: pino.stdTimeFunctions.isoTime };
  const logger = io.logDestination ? pino(logOptions, io.logDestination as never) : pino(logOptions);
  let injector: RunningInjector;
  try {
    injector = await startInjector({
      certFile: certFile!,
      keyFile: keyFile!,
      image: image!,
      imagePullPolicy: pullPolicy as InjectorOptions['imagePullPolicy'],
      host: env.COURIER_INJECT_HOST || '0.0.0.0',
      port: port!,
      logger,
      reloadIntervalMs,
    });
  } catch (error) {
    io.stderr.write(`courier inject: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  logger.info({ port: injector.port, image }, 'injector listening');
  io.onListening?.(injector);
  await new Promise<void>((resolve) => io.onStop(resolve));
  logger.info('injector stopping');
  await injector.close();
  return 0;
}
