import jsonpatch from 'fast-json-patch';
import type { JsonPatchOperation, WebhookAnswer } from '../../src/inject/admission.js';

/** AdmissionReviews as the API server sends them for a pod CREATE, and what to do with the answers. */

export const IMAGE = 'registry.example.com/courier:0.1.0';

export const ANNOTATED = {
  'courier.dev/inject': 'true',
  'courier.dev/group-id': 'orders-processor',
  'courier.dev/topics': 'orders, payments',
  'courier.dev/app-port': '3000',
  'courier.dev/app-path': '/events',
};

export interface PodFixture {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string>; [key: string]: unknown };
  spec: { containers: any[]; initContainers?: any[]; [key: string]: any };
}

export function pod(
  overrides: { annotations?: Record<string, string> | null; labels?: Record<string, string> | null; spec?: Record<string, unknown> } = {},
): PodFixture {
  const metadata: Record<string, unknown> = { generateName: 'orders-processor-7d9f8b6c5-', namespace: 'orders' };
  if (overrides.annotations !== null) metadata.annotations = overrides.annotations ?? { ...ANNOTATED };
  if (overrides.labels !== null) metadata.labels = overrides.labels ?? { 'app.kubernetes.io/name': 'orders-processor', 'pod-template-hash': '7d9f8b6c5' };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: metadata as PodFixture['metadata'],
    spec: {
      containers: [{ name: 'app', image: 'orders-app:1.2.3', ports: [{ name: 'http', containerPort: 3000 }] }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      ...overrides.spec,
    },
  };
}

export function admissionReview(object: unknown, request: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'orders',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      ...request,
    },
  };
}

export function decodePatch(answer: WebhookAnswer): JsonPatchOperation[] {
  if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${JSON.stringify(answer.body)}`);
  const { patch, patchType } = answer.body.response;
  if (patch === undefined) return [];
  if (patchType !== 'JSONPatch') throw new Error(`patchType ${patchType}`);
  return JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
}

/** Applies the answer's patch as the API server would (RFC 6902, validated, on a copy). */
export function applyAnswer<T>(object: T, answer: WebhookAnswer): T {
  const operations = decodePatch(answer);
  return jsonpatch.applyPatch(structuredClone(object), operations as jsonpatch.Operation[], true, false).newDocument;
}
