import jsonpatch from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { escapePointer, pointer, review, reviewBody } from '../../src/inject/admission.js';
import { courierSidecar, MIN_TERMINATION_GRACE_SECONDS } from '../../src/inject/sidecar.js';
import { restrictedViolations } from '../deploy/manifests.js';
import { unknownFields } from '../deploy/strict-fields.js';
import { ANNOTATED, admissionReview, applyAnswer, decodePatch, IMAGE, pod } from './fixtures.js';

const options = { image: IMAGE };
const admit = (object: unknown, request: Record<string, unknown> = {}) => review(admissionReview(object, request), options);
const denial = (answer: ReturnType<typeof review>) => {
  if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
  expect(answer.body.response.allowed).toBe(false);
  expect(answer.body.response.patch).toBeUndefined();
  return answer.body.response.status!;
};

const EXPECTED_SIDECAR = {
  name: 'courier',
  image: IMAGE,
  imagePullPolicy: 'IfNotPresent',
  restartPolicy: 'Always',
  ports: [{ name: 'courier', containerPort: 8080, protocol: 'TCP' }],
  env: [
    { name: 'COURIER_GROUP_ID', value: 'orders-processor' },
    { name: 'COURIER_TOPICS', value: 'orders,payments' },
    { name: 'COURIER_TARGET_URL', value: 'http://127.0.0.1:3000/events' },
    { name: 'COURIER_PORT', value: '8080' },
    { name: 'COURIER_SHUTDOWN_GRACE_MS', value: '20000' },
    { name: 'COURIER_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // V8's heap: half of the memory limit (256Mi below).
    { name: 'NODE_OPTIONS', value: '--max-old-space-size=128' },
  ],
  startupProbe: { httpGet: { path: '/healthz', port: 'courier' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 },
  livenessProbe: { httpGet: { path: '/healthz', port: 'courier' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
  readinessProbe: { httpGet: { path: '/readyz', port: 'courier' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
  resources: { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '256Mi' } },
  securityContext: {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  },
};

describe('courier inject: AdmissionReview in, JSON Patch out', () => {
  it('adds the whole initContainers array to a pod that has none, and the status, label and grace period', () => {
    const input = pod();
    const answer = admit(input);
    expect(answer.status).toBe(200);
    if (answer.status !== 200) return;
    expect(answer.body).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch' },
    });
    expect(answer.outcome).toBe('injected');
    expect(decodePatch(answer)).toEqual([
      { op: 'add', path: '/spec/initContainers', value: [EXPECTED_SIDECAR] },
      { op: 'add', path: '/spec/terminationGracePeriodSeconds', value: MIN_TERMINATION_GRACE_SECONDS },
      { op: 'add', path: '/metadata/annotations/courier.dev~1status', value: 'injected' },
      { op: 'add', path: '/metadata/labels/courier.dev~1sidecar', value: 'true' },
    ]);
    expect(answer.body.response.warnings).toEqual([
      'courier-injector: terminationGracePeriodSeconds raised from 30 to 45 so that Courier can drain after the app stopped',
    ]);

    const patched = applyAnswer(input, answer);
    expect(patched).toEqual({
      ...input,
      metadata: {
        ...input.metadata,
        annotations: { ...ANNOTATED, 'courier.dev/status': 'injected' },
        labels: { ...(input.metadata.labels as object), 'courier.dev/sidecar': 'true' },
      },
      spec: { ...input.spec, initContainers: [EXPECTED_SIDECAR], terminationGracePeriodSeconds: 45 },
    });
  });

  it('appends with /- to existing init containers, which keep running first', () => {
    const migrate = { name: 'migrate', image: 'orders-app:1.2.3', command: ['migrate'] };
    const input = pod({ spec: { initContainers: [migrate], terminationGracePeriodSeconds: 60 } });
    const answer = admit(input);
    const operations = decodePatch(answer);
    expect(operations[0]).toEqual({ op: 'add', path: '/spec/initContainers/-', value: EXPECTED_SIDECAR });
    // A longer grace period is the pod's own choice: kept.
    expect(operations.some((o) => o.path === '/spec/terminationGracePeriodSeconds')).toBe(false);
    const patched = applyAnswer(input, answer);
    expect(patched.spec.initContainers).toEqual([migrate, EXPECTED_SIDECAR]);
    expect(patched.spec.terminationGracePeriodSeconds).toBe(60);
    if (answer.status === 200) expect(answer.body.response.warnings).toBeUndefined();
  });

  it('adds the labels map when the pod has none, sets the grace period when absent, and envFrom for config and secret', () => {
    const input = pod({
      labels: null,
      annotations: { ...ANNOTATED, 'courier.dev/config': 'courier-kafka', 'courier.dev/secret': 'courier-secrets', 'courier.dev/app-path': '' },
      spec: { terminationGracePeriodSeconds: undefined },
    });
    delete (input.spec as Record<string, unknown>).terminationGracePeriodSeconds;
    const answer = admit(input);
    const patched = applyAnswer(input, answer);
    expect(patched.metadata.labels).toEqual({ 'courier.dev/sidecar': 'true' });
    expect(patched.spec.terminationGracePeriodSeconds).toBe(45);
    const [sidecar] = (patched.spec as any).initContainers;
    expect(sidecar.envFrom).toEqual([{ configMapRef: { name: 'courier-kafka' } }, { secretRef: { name: 'courier-secrets' } }]);
    expect(sidecar.env.find((e: any) => e.name === 'COURIER_TARGET_URL').value).toBe('http://127.0.0.1:3000/');
    if (answer.status === 200) expect(answer.body.response.warnings).toBeUndefined();
  });

  it('honours courier.dev/port for Courier’s own port', () => {
    const input = pod({ annotations: { ...ANNOTATED, 'courier.dev/app-port': '8080', 'courier.dev/port': '9090' } });
    input.spec.containers[0]!.ports = [{ name: 'http', containerPort: 8080 }];
    const [sidecar] = (applyAnswer(input, admit(input)).spec as any).initContainers;
    expect(sidecar.ports).toEqual([{ name: 'courier', containerPort: 9090, protocol: 'TCP' }]);
    expect(sidecar.env).toContainEqual({ name: 'COURIER_PORT', value: '9090' });
    expect(sidecar.env).toContainEqual({ name: 'COURIER_TARGET_URL', value: 'http://127.0.0.1:8080/events' });
  });

  it('gives a pod that is valid against the Kubernetes schema, has no unknown field, and passes the restricted profile', () => {
    const input = pod({ spec: { securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } } });
    input.spec.containers[0] = {
      ...input.spec.containers[0]!,
      securityContext: {
        runAsUser: 1000,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
    } as never;
    const patched = applyAnswer(input, admit(input));
    new Pod(patched as never).validate();
    expect(unknownFields([{ doc: patched as never, source: 'injected pod' }])).toEqual([]);
    expect(restrictedViolations(patched.spec)).toEqual([]);
  }, 60_000);

  it('is idempotent: a pod with the sidecar is allowed unchanged, even with a copied status annotation missing', () => {
    const input = pod();
    const once = applyAnswer(input, admit(input));
    const again = admit(once);
    expect(again.status).toBe(200);
    if (again.status !== 200) return;
    expect(again.outcome).toBe('already_injected');
    expect(again.body.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });

    const withoutStatus = structuredClone(once);
    delete (withoutStatus.metadata.annotations as Record<string, string>)['courier.dev/status'];
    expect(admit(withoutStatus).outcome).toBe('already_injected');
  });

  it('injects a pod whose status annotation was copied without the sidecar (add replaces the value)', () => {
    const input = pod({ annotations: { ...ANNOTATED, 'courier.dev/status': 'injected' } });
    const patched = applyAnswer(input, admit(input));
    expect((patched.spec as any).initContainers.map((c: any) => c.name)).toEqual(['courier']);
    expect(patched.metadata.annotations).toMatchObject({ 'courier.dev/status': 'injected' });
  });

  it('leaves pods alone that do not ask, that say "false", and any operation but CREATE', () => {
    for (const annotations of [{}, { 'courier.dev/inject': 'false' }, { 'courier.dev/group-id': 'g' }] as Array<Record<string, string>>) {
      const answer = admit(pod({ annotations }));
      expect(answer.outcome).toBe('not_requested');
      if (answer.status === 200) expect(answer.body.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    }
    expect(admit(pod({ annotations: null })).outcome).toBe('not_requested');
    expect(admit(pod(), { operation: 'UPDATE', oldObject: pod() }).outcome).toBe('not_create');
    expect(admit(null, { operation: 'DELETE', oldObject: pod() }).outcome).toBe('not_create');
  });

  describe('denies, with every reason and its fix', () => {
    it('when the required annotations are missing', () => {
      const status = denial(admit(pod({ annotations: { 'courier.dev/inject': 'true' } })));
      expect(status).toMatchObject({ code: 400, reason: 'BadRequest' });
      expect(status.message).toBe(
        'courier-injector: cannot inject Courier into this pod: ' +
          'courier.dev/group-id is required: the Kafka consumer group, e.g. "orders-processor"; ' +
          'courier.dev/topics is required: comma-separated topic names, e.g. "orders,payments"; ' +
          'courier.dev/app-port is required: the port your app listens on inside the pod, e.g. "3000"',
      );
    });

    it('when annotations are invalid', () => {
      const status = denial(
        admit(
          pod({
            annotations: {
              ...ANNOTATED,
              'courier.dev/topics': 'orders,bad topic!',
              'courier.dev/app-port': '70000',
              'courier.dev/app-path': 'events',
              'courier.dev/config': 'Not_A_Name',
            },
          }),
        ),
      );
      expect(status.message).toContain('courier.dev/topics: "bad topic!" is not a Kafka topic name');
      expect(status.message).toContain('courier.dev/app-port must be a port number (1-65535), got "70000"');
      expect(status.message).toContain('courier.dev/app-path must be a URL path starting with "/", got "events"');
      expect(status.message).toContain('courier.dev/config must be the name of a ConfigMap in this namespace, got "Not_A_Name"');
    });

    it('when courier.dev/inject is neither "true" nor "false"', () => {
      expect(denial(admit(pod({ annotations: { ...ANNOTATED, 'courier.dev/inject': 'yes' } }))).message).toBe(
        'courier-injector: courier.dev/inject must be "true" or "false", got "yes"',
      );
    });

    it('when Courier’s port or name is taken', () => {
      const samePort = pod({ annotations: { ...ANNOTATED, 'courier.dev/app-port': '8080' } });
      expect(denial(admit(samePort)).message).toContain("courier.dev/app-port and Courier's own port are both 8080: set courier.dev/port to a free port");
      const busy = pod();
      busy.spec.containers.push({ name: 'metrics', image: 'x', ports: [{ name: 'courier', containerPort: 8080 }] });
      const message = denial(admit(busy)).message;
      expect(message).toContain("container metrics uses port 8080, Courier's own");
      expect(message).toContain('container metrics has a port named "courier"');
      const named = pod();
      named.spec.containers.push({ name: 'courier', image: 'courier:old', ports: [] });
      expect(denial(admit(named)).message).toContain('a container is already named "courier"');
    });
  });

  describe('never fails open on malformed input', () => {
    it('answers HTTP 400 when there is no AdmissionReview v1 with a uid to answer', () => {
      const cases: Array<[unknown, RegExp]> = [
        [null, /expected an AdmissionReview object/],
        [[], /expected an AdmissionReview object/],
        [{ ...admissionReview(pod()), apiVersion: 'admission.k8s.io/v1beta1' }, /expected apiVersion admission.k8s.io\/v1/],
        [{ ...admissionReview(pod()), kind: 'Pod' }, /kind AdmissionReview/],
        [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /has no request/],
        [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { object: pod() } }, /has no uid/],
      ];
      for (const [input, message] of cases) {
        const answer = review(input, options);
        expect(answer.status).toBe(400);
        expect(answer.outcome).toBe('malformed');
        if (answer.status === 400) expect(answer.body.message).toMatch(message);
      }
      const notJson = reviewBody('{"apiVersion": "admission.k8s.io/v1", ', options);
      expect(notJson.status).toBe(400);
      if (notJson.status === 400) expect(notJson.body.message).toMatch(/^the body is not JSON/);
    });

    it('denies (allowed: false) a review that has a uid but is not a well-formed pod CREATE', () => {
      const malformed: Array<[unknown, Record<string, unknown>, RegExp]> = [
        [pod(), { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, /only pods \(v1\) are handled/],
        [pod(), { resource: { group: '', version: 'v1', resource: 'services' } }, /only pods/],
        [pod(), { subResource: 'ephemeralcontainers' }, /subresource "ephemeralcontainers" is not handled/],
        [pod(), { operation: undefined }, /no operation/],
        [null, {}, /malformed pod: request.object is not an object/],
        ['a pod', {}, /request.object is not an object/],
        [{ ...pod(), kind: 'Service' }, {}, /is a "Service", not a Pod/],
        [{ ...pod(), spec: undefined }, {}, /spec is missing/],
        [pod({ spec: { containers: [] } }), {}, /spec.containers must be a non-empty list/],
        [pod({ spec: { containers: 'app' } }), {}, /spec.containers must be a non-empty list/],
        [pod({ spec: { initContainers: { name: 'x' } } }), {}, /spec.initContainers must be a list/],
        [pod({ spec: { containers: [{ image: 'x' }] } }), {}, /every container needs a name/],
        [pod({ annotations: { 'courier.dev/inject': true } as never }), {}, /metadata.annotations must map strings to strings/],
        [{ ...pod(), metadata: 'x' }, {}, /metadata is not an object/],
      ];
      for (const [object, request, message] of malformed) {
        const answer = admit(object, request);
        expect(answer.outcome, String(message)).toBe('malformed');
        expect(denial(answer).message).toMatch(message);
      }
    });
  });

  it('escapes JSON Pointer tokens: "~" first, then "/"', () => {
    expect(escapePointer('courier.dev/status')).toBe('courier.dev~1status');
    expect(escapePointer('a~b/c~/d')).toBe('a~0b~1c~0~1d');
    expect(pointer('metadata', 'annotations', 'example.com/a~b')).toBe('/metadata/annotations/example.com~1a~0b');
    // The pointer really names that key for a JSON Patch implementation.
    const doc = { metadata: { annotations: {} as Record<string, string> } };
    jsonpatch.applyPatch(doc, [{ op: 'add', path: pointer('metadata', 'annotations', 'example.com/a~b'), value: 'v' }], true);
    expect(doc.metadata.annotations).toEqual({ 'example.com/a~b': 'v' });
  });

  it('configures Courier validly: its own config loader accepts the injected environment', () => {
    const input = pod({ annotations: { ...ANNOTATED, 'courier.dev/config': 'courier-kafka' } });
    const [sidecar] = applyAnswer(input, admit(input)).spec.initContainers!;
    const env: Record<string, string> = { KAFKA_BOOTSTRAP_SERVERS: 'kafka-bootstrap.kafka.svc.cluster.local:9092' }; // from the ConfigMap
    for (const variable of sidecar.env) env[variable.name] = variable.value ?? 'orders-processor-7d9f8b6c5-x2k8q';
    const config = loadConfig({ env, readFile: () => '' });
    expect(config.warnings).toEqual([]);
    expect(config.routes.map((r) => [r.topic, r.targetUrl])).toEqual([
      ['orders', 'http://127.0.0.1:3000/events'],
      ['payments', 'http://127.0.0.1:3000/events'],
    ]);
    expect(config.instanceId).toBe('orders-processor-7d9f8b6c5-x2k8q');
  });

  it('writes the sidecar deploy/ writes (the same function, checked against deploy/base in test/deploy)', () => {
    const input = pod();
    const [sidecar] = (applyAnswer(input, admit(input)).spec as any).initContainers;
    expect(sidecar).toEqual(
      courierSidecar({ image: IMAGE, groupId: 'orders-processor', topics: ['orders', 'payments'], appPort: 3000, appPath: '/events', courierPort: 8080 }),
    );
  });
});
