import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { courierSidecar } from '../../src/inject/sidecar.js';
import type { Manifest } from '../deploy/manifests.js';
import { waitFor } from '../helpers/wait.js';
import { deployDoc, type InjectorDeployment, injectorDeployment, type LocalInjector, startInjector, yamlBlocks } from './injector.js';
import { apply, type ControlPlane, controlPlane, createNamespace, type Kube, kube, objectPath } from './kube.js';

/**
 * Sidecar injection through a real kube-apiserver: `courier inject` is registered with the
 * MutatingWebhookConfiguration of deploy/injector (its Service swapped for a URL, see injector.ts),
 * the API server calls it over TLS for each Pod CREATE, applies its JSON Patch, defaults and validates
 * the result and stores it in etcd; the tests read back what was stored. The Pod is the pod template of
 * docs/deploy.md's step 4 (no controller-manager here turns a Deployment into Pods).
 */

const run = randomBytes(3).toString('hex');
const OPTED_IN = `orders-${run}`;
const NOT_OPTED_IN = `plain-${run}`;

let plane: ControlPlane;
let client: Kube;
let deployment: InjectorDeployment;
let injector: LocalInjector;
let documented: Manifest;
let webhookConfiguration: Manifest | undefined;

/** The pod template of the Deployment that docs/deploy.md tells users to annotate, as a Pod. */
function documentedPod(name: string, change: (pod: Manifest) => void = () => {}): Manifest {
  const template = structuredClone(documented.spec.template);
  const pod: Manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name, ...template.metadata }, spec: template.spec };
  change(pod);
  return pod;
}

async function createPod(namespace: string, pod: Manifest) {
  return client.request('POST', `/api/v1/namespaces/${namespace}/pods`, pod);
}

async function storedPod(namespace: string, pod: Manifest): Promise<Manifest> {
  const created = await createPod(namespace, pod);
  expect(created.status, created.body?.message).toBe(201);
  return client.ok('GET', `/api/v1/namespaces/${namespace}/pods/${pod.metadata!.name}`);
}

const courierOf = (pod: Manifest) => (pod.spec.initContainers ?? []).filter((c: any) => c.name === 'courier');

/** The ServiceAccount admission plugin names the token volume kube-api-access-<5 random characters>. */
const withoutRandomNames = <T>(value: T): T => JSON.parse(JSON.stringify(value).replace(/kube-api-access-[a-z0-9]{5}\b/g, 'kube-api-access-xxxxx'));

/** What the docs show of a stored Pod: its labels, annotations and spec; not the server's bookkeeping. */
const asDocumented = (pod: Manifest) =>
  withoutRandomNames({ metadata: { labels: pod.metadata!.labels, annotations: pod.metadata!.annotations }, spec: pod.spec });

beforeAll(async () => {
  plane = controlPlane();
  client = kube(plane);
  deployment = injectorDeployment();
  const example = yamlBlocks(deployDoc()).find((block) => block.text.includes('courier.dev/inject: "true"') && block.docs[0]?.kind === 'Deployment');
  if (!example) throw new Error('docs/deploy.md has no annotated Deployment example');
  documented = example.docs[0]!;

  injector = await startInjector(deployment, plane);
  webhookConfiguration = deployment.webhookConfiguration(injector.url, plane.caPem);
  await apply(client, webhookConfiguration, 'default');
  await createNamespace(client, OPTED_IN, { 'courier.dev/injection': 'enabled' });
  await createNamespace(client, NOT_OPTED_IN);
  // The API server picks up a new webhook configuration asynchronously: wait until a dry run is injected.
  await waitFor(
    'the API server to call the injector',
    async () => {
      const probe = await client.request('POST', `/api/v1/namespaces/${OPTED_IN}/pods?dryRun=All`, documentedPod('probe'));
      if (probe.status !== 201) throw new Error(`${probe.status} ${probe.body?.message}`);
      return courierOf(probe.body).length === 1;
    },
    30_000,
  );
}, 120_000);

afterAll(async () => {
  // Pods of the opted-in namespaces could not be created without the injector (failurePolicy Fail).
  if (webhookConfiguration) await client.ok('DELETE', await objectPath(client, webhookConfiguration, 'default'));
  await injector?.stop();
  await client?.close();
});

describe('courier inject behind a real kube-apiserver', () => {
  it('stores an annotated Pod of an opted-in namespace with Courier as a native sidecar, as the annotations ask', async () => {
    const pod = await storedPod(OPTED_IN, documentedPod('orders-app-1'));
    const annotations = documented.spec.template.metadata.annotations;
    const [courier] = courierOf(pod);
    expect(courier, 'the courier init container').toBeDefined();
    expect(courier.restartPolicy).toBe('Always');
    expect(courier.image).toBe(deployment.env.COURIER_INJECT_IMAGE);
    // Everything the injector built is there, as built (the API server only added its defaults).
    expect(courier).toMatchObject(
      courierSidecar({
        image: deployment.env.COURIER_INJECT_IMAGE!,
        groupId: annotations['courier.dev/group-id'],
        topics: [annotations['courier.dev/topics']],
        appPort: Number(annotations['courier.dev/app-port']),
        appPath: annotations['courier.dev/app-path'],
        courierPort: 8080,
        configMap: annotations['courier.dev/config'],
        secret: annotations['courier.dev/secret'],
      }),
    );
    const env = Object.fromEntries(courier.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      COURIER_GROUP_ID: 'orders-processor',
      COURIER_TOPICS: 'orders',
      COURIER_TARGET_URL: 'http://127.0.0.1:3000/orders',
      COURIER_PORT: '8080',
      COURIER_INSTANCE_ID: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } },
    });
    expect(courier.envFrom).toEqual([{ configMapRef: { name: 'courier-kafka' } }, { secretRef: { name: 'courier-secrets' } }]);
    expect(courier.ports).toEqual([{ name: 'courier', containerPort: 8080, protocol: 'TCP' }]);
    expect(courier.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'courier', scheme: 'HTTP' });
    expect(courier.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'courier', scheme: 'HTTP' });
    expect(pod.metadata!.annotations!['courier.dev/status']).toBe('injected');
    expect(pod.metadata!.labels!['courier.dev/sidecar']).toBe('true');
    expect(pod.spec.terminationGracePeriodSeconds).toBe(45);

    // Unchanged otherwise: the same Pod in a namespace that did not opt in, plus exactly the injector's
    // additions, is what was stored (the app container, volumes, defaults).
    const plain = await storedPod(NOT_OPTED_IN, documentedPod('orders-app-1'));
    expect(courierOf(plain)).toEqual([]);
    const expected = structuredClone(plain);
    expected.metadata!.annotations = { ...plain.metadata!.annotations, 'courier.dev/status': 'injected' };
    expected.metadata!.labels = { ...plain.metadata!.labels, 'courier.dev/sidecar': 'true' };
    expected.spec.initContainers = [courier];
    expected.spec.terminationGracePeriodSeconds = 45;
    expect(asDocumented(pod)).toEqual(asDocumented(expected));
  });

  it('gives Courier the port courier.dev/port asks for when the app uses 8080', async () => {
    const pod = await storedPod(
      OPTED_IN,
      documentedPod('port-8080', (p) => {
        p.metadata!.annotations!['courier.dev/app-port'] = '8080';
        p.metadata!.annotations!['courier.dev/port'] = '9090';
        p.spec.containers[0].ports = [{ name: 'http', containerPort: 8080 }];
      }),
    );
    const [courier] = courierOf(pod);
    expect(courier.ports).toEqual([{ name: 'courier', containerPort: 9090, protocol: 'TCP' }]);
    expect(courier.env).toContainEqual({ name: 'COURIER_PORT', value: '9090' });
    expect(courier.env).toContainEqual({ name: 'COURIER_TARGET_URL', value: 'http://127.0.0.1:8080/orders' });
  });

  it('leaves alone a Pod without the annotation, a Pod of a namespace that did not opt in, and a Pod already injected', async () => {
    const unannotated = await storedPod(
      OPTED_IN,
      documentedPod('no-annotation', (p) => {
        p.metadata!.annotations = {};
      }),
    );
    expect(unannotated.spec.initContainers).toBeUndefined();
    expect(unannotated.metadata!.annotations).toBeUndefined();
    expect(unannotated.spec.terminationGracePeriodSeconds).toBe(30);

    const elsewhere = await storedPod(NOT_OPTED_IN, documentedPod('not-opted-in'));
    expect(elsewhere.spec.initContainers).toBeUndefined();
    expect(elsewhere.metadata!.annotations!['courier.dev/status']).toBeUndefined();

    // An injected Pod created again (`kubectl get pod -o yaml | kubectl create -f -`): stored as sent.
    const injected = await storedPod(OPTED_IN, documentedPod('first'));
    const again: Manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { ...injected.metadata, name: 'again' }, spec: injected.spec };
    for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'generation']) delete again.metadata![field];
    const stored = await storedPod(OPTED_IN, again);
    expect(courierOf(stored)).toHaveLength(1);
    expect(stored.spec).toEqual(injected.spec);
    expect(stored.metadata!.annotations).toEqual(injected.metadata!.annotations);
  });

  it('injects a sidecar that Pod Security admission lets into a namespace enforcing "restricted"', async () => {
    const restricted = `restricted-${run}`;
    await createNamespace(client, restricted, { 'courier.dev/injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' });
    const hardened = (p: Manifest) => {
      p.spec.containers[0].securityContext = {
        runAsNonRoot: true,
        runAsUser: 1000,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      };
    };
    const pod = await storedPod(restricted, documentedPod('hardened-app', hardened));
    expect(courierOf(pod)).toHaveLength(1);
    // The check is real: the docs' app container as it is (no securityContext) is refused, and only it is named.
    const refused = await createPod(restricted, documentedPod('plain-app'));
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('violates PodSecurity "restricted:latest"');
    expect(refused.body.message).toContain('container "app"');
    expect(refused.body.message).not.toContain('"courier"');
  });

  it("refuses a Pod with a bad annotation value with the injector's message, through the API server", async () => {
    const refused = await createPod(
      OPTED_IN,
      documentedPod('bad-port', (p) => {
        p.metadata!.annotations!['courier.dev/app-port'] = 'http';
        delete p.metadata!.annotations!['courier.dev/group-id'];
      }),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.message).toBe(
      'admission webhook "inject.courier.dev" denied the request: courier-injector: cannot inject Courier into this pod: ' +
        'courier.dev/group-id is required: the Kafka consumer group, e.g. "orders-processor"; ' +
        'courier.dev/app-port must be a port number (1-65535), got "http"',
    );
    const gone = await client.request('GET', `/api/v1/namespaces/${OPTED_IN}/pods/bad-port`);
    expect(gone.status).toBe(404);
  });

  it('stores the injected Pod exactly as docs/deploy.md shows it', async () => {
    const pod = await storedPod(OPTED_IN, documentedPod('as-documented'));
    const shown = yamlBlocks(deployDoc()).find((block) => block.text.startsWith('# kubectl -n orders get pod'));
    expect(shown, 'docs/deploy.md shows the stored Pod in a yaml block starting "# kubectl -n orders get pod"').toBeDefined();
    // On a mismatch, the YAML to put in the docs.
    expect(asDocumented(shown!.docs[0]!), stringify(asDocumented(pod))).toEqual(asDocumented(pod));
  });

  it('with the injector down, failurePolicy Fail refuses the Pods of opted-in namespaces; the escape hatches work; back up, it injects', async () => {
    const port = injector.port;
    await injector.stop();
    const refused = await createPod(OPTED_IN, documentedPod('while-down'));
    expect(refused.status).toBe(500);
    expect(refused.body.message).toMatch(
      /^Internal error occurred: failed calling webhook "inject.courier.dev": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/mutate\?timeout=5s": dial tcp 127\.0\.0\.1:\d+: connect: connection refused$/,
    );
    // Every Pod of an opted-in namespace goes to the webhook, annotated or not (docs: "pods of
    // opted-in namespaces are not created").
    const plain = await createPod(
      OPTED_IN,
      documentedPod('plain-while-down', (p) => {
        p.metadata!.annotations = {};
      }),
    );
    expect(plain.status).toBe(500);
    // The escape hatches: the opt-out label, and namespaces that did not opt in.
    const optedOut = await storedPod(
      OPTED_IN,
      documentedPod('opted-out', (p) => {
        p.metadata!.labels!['courier.dev/inject'] = 'false';
      }),
    );
    expect(optedOut.spec.initContainers).toBeUndefined();
    const elsewhere = await storedPod(NOT_OPTED_IN, documentedPod('elsewhere-while-down'));
    expect(elsewhere.spec.initContainers).toBeUndefined();

    // The injector back on its address: the Pod the ReplicaSet would retry is created, with its Courier.
    injector = await startInjector(deployment, plane, port);
    const retried = await storedPod(OPTED_IN, documentedPod('while-down'));
    expect(courierOf(retried)).toHaveLength(1);
  });
});
