import { beforeAll, describe, expect, it } from 'vitest';
import { deployFiles, find, KUSTOMIZE_KINDS, type Manifest, parseDocuments, readManifests, typeOf } from '../deploy/manifests.js';
import { kustomize, run, TOOLS_TIMEOUT_MS } from '../deploy/tools.js';
import { waitFor } from '../helpers/wait.js';
import { CRD_DOWNLOAD_TIMEOUT_MS, installCrds, upstreamCrds } from './crds.js';
import { dryRunApply, type Kube, kube, objectPath } from './kube.js';

/**
 * deploy/ against a real kube-apiserver: every object of every kustomization's output (and of the
 * example files no kustomization includes) goes through server-side apply with dry run and strict
 * field validation, as `kubectl apply --server-side --dry-run=server` sends it: the API server decodes
 * it (an unknown field is an error), defaults, validates and admits it, and stores nothing. The
 * prometheus-operator, KEDA and cert-manager kinds are validated by those projects' own CRDs, installed
 * first from their Go modules. Namespaces are created for real, as docs/deploy.md has users do.
 */

/** What deploy/ renders: the overlays, the injector, and the secured components over base (test/deploy/fixtures). */
const TARGETS = [
  'deploy/base',
  'deploy/overlays/dev',
  'deploy/overlays/prod',
  'deploy/injector',
  'test/deploy/fixtures/sasl-ssl',
  'test/deploy/fixtures/msk-iam',
];
/** Where kubectl would put namespaced objects that name no namespace (base and the component fixtures). */
const DEFAULT_NAMESPACE = 'default';

let client: Kube;
const rendered = new Map<string, Manifest[]>();

const key = (doc: Manifest) => `${typeOf(doc)}/${doc.metadata?.name}`;

/** The Kubernetes objects in deploy/ that no kustomization renders (example Secrets), file by file. */
function unrenderedExamples(): Array<{ file: string; doc: Manifest }> {
  const renderedKeys = new Set([...rendered.values()].flat().map(key));
  return deployFiles()
    .filter((file) => /\.ya?ml$/.test(file))
    .flatMap((file) => readManifests(file).map((doc) => ({ file, doc })))
    .filter(({ doc }) => !KUSTOMIZE_KINDS.has(typeOf(doc)) && !renderedKeys.has(key(doc)));
}

async function ensureNamespace(name: string) {
  const found = await client.request('GET', `/api/v1/namespaces/${name}`);
  if (found.status === 404) await client.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

/** Dry-run applies each object; answers the refusals as "Kind/name: status message". */
async function refusals(docs: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const doc of docs) {
    const answer = await dryRunApply(client, doc, DEFAULT_NAMESPACE);
    if (answer.status !== 200 && answer.status !== 201) problems.push(`${doc.kind}/${doc.metadata?.name}: ${answer.status} ${answer.body?.message}`);
  }
  return problems;
}

beforeAll(async () => {
  client = kube();
  const bin = kustomize();
  for (const target of TARGETS) rendered.set(target, parseDocuments(run(bin, ['build', target]), `kustomize build ${target}`));
  const crds = upstreamCrds();
  await installCrds(client, crds);
  // Discovery follows an established CRD shortly after: wait until each kind resolves.
  for (const crd of crds) {
    const version = crd.spec.versions.find((v: any) => v.served).name;
    const probe = { apiVersion: `${crd.spec.group}/${version}`, kind: crd.spec.names.kind, metadata: { name: 'probe' } };
    await waitFor(`${crd.spec.names.kind} in discovery`, () => objectPath(client, probe, DEFAULT_NAMESPACE));
  }
  const namespaces = new Set([...rendered.values()].flat().flatMap((doc) => (doc.metadata?.namespace ? [doc.metadata.namespace] : [])));
  for (const namespace of namespaces) await ensureNamespace(namespace);
}, TOOLS_TIMEOUT_MS + CRD_DOWNLOAD_TIMEOUT_MS);

describe('deploy/ on a real kube-apiserver (server-side dry run, strict fields, upstream CRDs)', () => {
  it.each(TARGETS)('kustomize build %s: every object is accepted', async (target) => {
    const docs = rendered.get(target)!;
    expect(docs.length).toBeGreaterThan(3);
    expect(await refusals(docs)).toEqual([]);
  });

  it('the example files no kustomization includes are accepted too', async () => {
    const examples = unrenderedExamples();
    expect(examples.map(({ file }) => file)).toContain('deploy/components/sasl-ssl/secret.example.yaml');
    expect(await refusals(examples.map(({ doc }) => doc))).toEqual([]);
  });

  it('the dry run stores nothing', async () => {
    const deployment = find(rendered.get('deploy/overlays/dev')!, 'Deployment');
    const stored = await client.request('GET', await objectPath(client, deployment, DEFAULT_NAMESPACE));
    expect(stored.status).toBe(404);
  });

  describe('a broken manifest is refused (this check can fail)', () => {
    const broken = (target: string, kind: string, change: (doc: Manifest) => void) => {
      const doc = structuredClone(find(rendered.get(target)!, kind));
      change(doc);
      return doc;
    };

    it('a courier init container without restartPolicy Always (no longer a native sidecar): 422 from Pod validation', async () => {
      const doc = broken('deploy/overlays/dev', 'Deployment', (d) => {
        delete d.spec.template.spec.initContainers.find((c: any) => c.name === 'courier').restartPolicy;
      });
      const answer = await dryRunApply(client, doc, DEFAULT_NAMESPACE);
      expect(answer.status).toBe(422);
      expect(answer.body.message).toMatch(
        /spec\.template\.spec\.initContainers\[\d+\]\.startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always/,
      );
    });

    // Server-side apply types the object against the schema before anything else, and answers a
    // field it cannot type with a 500 (kubectl prints the message as is).
    it('an unknown field: refused by strict field validation', async () => {
      const doc = broken('deploy/overlays/dev', 'Deployment', (d) => {
        d.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
      });
      const answer = await dryRunApply(client, doc, DEFAULT_NAMESPACE);
      expect(answer.status).toBe(500);
      expect(answer.body.message).toBe(
        'failed to create typed patch object (courier-dev/orders-processor; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="app"].imagePullPolicyy: field not declared in schema',
      );
    });

    it("a PodMonitor whose port is a number: refused by the prometheus-operator CRD's schema", async () => {
      const doc = broken('deploy/overlays/prod', 'PodMonitor', (d) => {
        d.spec.podMetricsEndpoints[0].port = 8080;
      });
      const answer = await dryRunApply(client, doc, DEFAULT_NAMESPACE);
      expect(answer.status).toBe(500);
      expect(answer.body.message).toContain('.spec.podMetricsEndpoints[0].port: expected string');
    });

    it('a ScaledObject without scaleTargetRef: 422 from the KEDA CRD', async () => {
      const doc = broken('deploy/overlays/prod', 'ScaledObject', (d) => {
        delete d.spec.scaleTargetRef;
      });
      const answer = await dryRunApply(client, doc, DEFAULT_NAMESPACE);
      expect(answer.status).toBe(422);
      expect(answer.body.message).toContain('spec.scaleTargetRef: Required value');
    });
  });
});
