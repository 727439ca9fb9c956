import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { inject } from 'vitest';
import type { Manifest } from '../deploy/manifests.js';

/**
 * A small client of the real kube-apiserver that scripts/k8s.sh runs (test/k8s/global-setup.ts): the
 * admin token, TLS verified against the run's CA. Plain REST, so that what a test sends and what the
 * API server answers are both visible in the test.
 */

export interface ControlPlane {
  server: string;
  token: string;
  version: string;
  caPem: string;
  caKeyPem: string;
  webhookCertPem: string;
  webhookKeyPem: string;
  kubeconfig: string;
}

export function controlPlane(): ControlPlane {
  return JSON.parse(readFileSync(inject('k8sInfo'), 'utf8')) as ControlPlane;
}

export interface KubeAnswer {
  status: number;
  body: any;
}

export interface Kube {
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeAnswer>;
  /** Like request, but throws with the API server's message unless the status is 2xx. */
  ok(method: string, path: string, body?: unknown, contentType?: string): Promise<any>;
  close(): Promise<void>;
}

/** A client of `plane`; with an empty token, an anonymous one. */
export function kube(plane: ControlPlane = controlPlane()): Kube {
  const dispatcher = new Agent({ connect: { ca: readFileSync(plane.caPem) } });
  const send = async (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeAnswer> => {
    const answer = await request(`${plane.server}${path}`, {
      method: method as 'GET',
      dispatcher,
      headers: {
        ...(plane.token ? { authorization: `Bearer ${plane.token}` } : {}),
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await answer.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: answer.statusCode, body: parsed };
  };
  return {
    request: send,
    async ok(method, path, body, contentType) {
      const answer = await send(method, path, body, contentType);
      if (answer.status < 200 || answer.status > 299)
        throw new Error(`${method} ${path}: ${answer.status} ${answer.body?.message ?? JSON.stringify(answer.body)}`);
      return answer.body;
    },
    close: () => dispatcher.close(),
  };
}

/**
 * A Namespace ready for Pods: no controller-manager runs, so its `default` ServiceAccount (which the
 * ServiceAccount admission plugin requires of every Pod) is created here.
 */
export async function createNamespace(client: Kube, name: string, labels: Record<string, string> = {}): Promise<void> {
  await client.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  await client.ok('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
}

/**
 * The REST path of the object `doc` (its collection's, with `name` false), found through the API
 * server's discovery, so that CRDs' kinds resolve as the built-in ones do. Cluster-scoped kinds ignore
 * `namespace`.
 */
export async function objectPath(client: Kube, doc: Manifest, namespace: string, withName = true): Promise<string> {
  const prefix = doc.apiVersion.includes('/') ? `/apis/${doc.apiVersion}` : `/api/${doc.apiVersion}`;
  const discovery = await client.ok('GET', prefix);
  const resource = (discovery.resources as Array<{ name: string; kind: string; namespaced: boolean }>).find(
    (r) => r.kind === doc.kind && !r.name.includes('/'),
  );
  if (!resource) throw new Error(`the API server serves no ${doc.kind} in ${doc.apiVersion}`);
  const collection = resource.namespaced ? `${prefix}/namespaces/${doc.metadata?.namespace ?? namespace}/${resource.name}` : `${prefix}/${resource.name}`;
  return withName ? `${collection}/${doc.metadata?.name}` : collection;
}

/** `kubectl apply --server-side --force-conflicts` of one object: created, or made what `doc` says. */
export async function apply(client: Kube, doc: Manifest, namespace: string): Promise<any> {
  const path = await objectPath(client, doc, namespace);
  return client.ok('PATCH', `${path}?fieldManager=courier-tests&force=true&fieldValidation=Strict`, doc, 'application/apply-patch+yaml');
}

/**
 * `kubectl apply --server-side --force-conflicts --dry-run=server --validate=strict` of one object:
 * the API server defaults, validates (an unknown field is an error) and admits it, and stores nothing.
 */
export async function dryRunApply(client: Kube, doc: Manifest, namespace: string): Promise<KubeAnswer> {
  const path = await objectPath(client, doc, namespace);
  const query = 'dryRun=All&fieldManager=courier-tests&force=true&fieldValidation=Strict';
  return client.request('PATCH', `${path}?${query}`, doc, 'application/apply-patch+yaml');
}
