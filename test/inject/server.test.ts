import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import selfsigned from 'selfsigned';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningInjector, runInjector } from '../../src/inject/server.js';
import { admissionReview, applyAnswer, IMAGE, pod } from './fixtures.js';

/**
 * The real `courier inject` server (runInjector, what `courier inject` runs), in-process on port 0,
 * over TLS with certificates made here the way cert-manager makes them (deploy/injector/certificate.yaml):
 * a self-signed CA, and a serving certificate it signs for the Service's DNS name. The client trusts
 * only the CA, as the API server trusts only the caBundle.
 */

const SERVICE_NAME = 'courier-injector.courier-system.svc';
const dir = mkdtempSync(join(tmpdir(), 'courier-inject-'));
let ca: { cert: string; private: string };
let serving: { cert: string; private: string };

async function makeCa(commonName: string) {
  return selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
}

async function makeServing(issuer: { cert: string; private: string }, commonName = SERVICE_NAME) {
  return selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { cert: issuer.cert, key: issuer.private },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: SERVICE_NAME }] },
    ],
  });
}

interface Started {
  injector: RunningInjector;
  logs: string[];
  stop: () => void;
  exit: Promise<number>;
}

const running: Started[] = [];

async function start(env: Record<string, string> = {}): Promise<Started> {
  const logs: string[] = [];
  let stop: () => void = () => {};
  let listening: (injector: RunningInjector) => void = () => {};
  const ready = new Promise<RunningInjector>((resolve) => {
    listening = resolve;
  });
  const exit = runInjector({
    env: {
      COURIER_INJECT_TLS_CERT: join(dir, 'tls.crt'),
      COURIER_INJECT_TLS_KEY: join(dir, 'tls.key'),
      COURIER_INJECT_IMAGE: IMAGE,
      COURIER_INJECT_PORT: '0',
      COURIER_INJECT_HOST: '127.0.0.1',
      ...env,
    },
    stderr: { write: (text: string) => logs.push(text) },
    logDestination: new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    }),
    onStop: (fn) => {
      stop = fn;
    },
    onListening: listening,
  });
  const injector = await Promise.race([ready, exit.then((code) => Promise.reject(new Error(`exited ${code}: ${logs.join('')}`)))]);
  const started = { injector, logs, stop, exit };
  running.push(started);
  return started;
}

function call(
  port: number,
  options: { method?: string; path?: string; body?: string | Buffer; ca?: string | null; servername?: string } = {},
): Promise<{ status: number; body: any; peer: X509Certificate | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/mutate',
        servername: options.servername ?? SERVICE_NAME,
        ...(options.ca === null ? {} : { ca: options.ca ?? ca.cert }),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const raw = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.();
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, peer: raw });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

beforeAll(async () => {
  ca = await makeCa('courier-injector-ca');
  serving = await makeServing(ca);
  writeFileSync(join(dir, 'tls.crt'), serving.cert);
  writeFileSync(join(dir, 'tls.key'), serving.private);
});

afterEach(async () => {
  for (const started of running.splice(0)) {
    started.stop();
    expect(await started.exit).toBe(0);
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('courier inject over HTTPS', () => {
  it('answers an AdmissionReview with the patch over TLS, verified against the CA for the Service name', async () => {
    const { injector, logs } = await start();
    const input = pod();
    const answer = await call(injector.port, { body: JSON.stringify(admissionReview(input)) });
    expect(answer.status).toBe(200);
    expect(answer.peer?.subject).toContain(`CN=${SERVICE_NAME}`);
    expect(answer.body.response.allowed).toBe(true);
    const patched = applyAnswer(input, { status: 200, body: answer.body, outcome: 'injected' });
    expect((patched.spec as any).initContainers[0].image).toBe(IMAGE);
    const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'admission review');
    expect(line).toMatchObject({ outcome: 'injected', uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, service: 'courier-injector' });
  });

  it('is refused by a client that does not trust its CA, and for a name the certificate does not carry', async () => {
    const { injector } = await start();
    const other = await makeCa('another-ca');
    await expect(call(injector.port, { ca: other.cert, body: '{}' })).rejects.toThrow(/certificate|self[- ]signed|verify/i);
    await expect(call(injector.port, { ca: null, body: '{}' })).rejects.toThrow(/certificate|self[- ]signed|verify/i);
    await expect(call(injector.port, { servername: 'courier-injector.default.svc', body: '{}' })).rejects.toThrow(/altnames|Hostname/i);
  });

  it('answers 400 to a malformed review, 404/405 elsewhere, 413 past the size limit, 200 on /healthz', async () => {
    const { injector, logs } = await start();
    const bad = await call(injector.port, { body: 'not json' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'bad_request' });
    expect(logs.join('')).toMatch(/"outcome":"malformed"/);
    expect((await call(injector.port, { method: 'GET', path: '/healthz' })).status).toBe(200);
    expect((await call(injector.port, { method: 'GET' })).status).toBe(405);
    expect((await call(injector.port, { path: '/other', body: '{}' })).status).toBe(404);
    expect((await call(injector.port, { body: Buffer.alloc(5 * 1024 * 1024, 0x20) })).status).toBe(413);
  });

  it('denies over the wire with the reason', async () => {
    const { injector } = await start();
    const answer = await call(injector.port, { body: JSON.stringify(admissionReview(pod({ annotations: { 'courier.dev/inject': 'true' } }))) });
    expect(answer.status).toBe(200);
    expect(answer.body.response.allowed).toBe(false);
    expect(answer.body.response.status.message).toMatch(/courier.dev\/group-id is required/);
  });

  it('picks up a renewed certificate without a restart', async () => {
    const { injector, logs } = await start({ COURIER_INJECT_RELOAD_MS: '50' });
    const first = await call(injector.port, { method: 'GET', path: '/healthz' });
    const renewed = await makeServing(ca);
    writeFileSync(join(dir, 'tls.crt'), renewed.cert);
    writeFileSync(join(dir, 'tls.key'), renewed.private);
    try {
      const deadline = Date.now() + 5_000;
      let second = await call(injector.port, { method: 'GET', path: '/healthz' });
      while (second.peer?.fingerprint256 === first.peer?.fingerprint256 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        second = await call(injector.port, { method: 'GET', path: '/healthz' });
      }
      expect(second.peer?.fingerprint256).toBe(new X509Certificate(renewed.cert).fingerprint256);
      expect(second.peer?.fingerprint256).not.toBe(first.peer?.fingerprint256);
      expect(logs.join('')).toMatch(/TLS certificate reloaded/);
    } finally {
      writeFileSync(join(dir, 'tls.crt'), serving.cert);
      writeFileSync(join(dir, 'tls.key'), serving.private);
    }
  }, 15_000);

  it('refuses to start without its settings, listing every problem (exit 78)', async () => {
    const lines: string[] = [];
    const code = await runInjector({
      env: { COURIER_INJECT_PORT: 'https', COURIER_LOG_LEVEL: 'loud' },
      stderr: { write: (t: string) => lines.push(t) },
      onStop: () => {},
    });
    expect(code).toBe(78);
    const text = lines.join('');
    for (const name of ['COURIER_INJECT_TLS_CERT', 'COURIER_INJECT_TLS_KEY', 'COURIER_INJECT_IMAGE', 'COURIER_INJECT_PORT', 'COURIER_LOG_LEVEL']) {
      expect(text).toContain(`  - ${name}`);
    }
  });

  it('exits 1 with the reason when the certificate cannot be read', async () => {
    const lines: string[] = [];
    const code = await runInjector({
      env: {
        COURIER_INJECT_TLS_CERT: join(dir, 'missing.crt'),
        COURIER_INJECT_TLS_KEY: join(dir, 'tls.key'),
        COURIER_INJECT_IMAGE: IMAGE,
        COURIER_INJECT_PORT: '0',
      },
      stderr: { write: (t: string) => lines.push(t) },
      logDestination: { write: () => true },
      onStop: () => {},
    });
    expect(code).toBe(1);
    expect(lines.join('')).toMatch(/cannot start: .*missing\.crt/);
  });
});
