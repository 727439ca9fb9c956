import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Manifest, parseDocuments } from '../deploy/manifests.js';
import { waitFor } from '../helpers/wait.js';
import { apply, type Kube } from './kube.js';

/**
 * The CustomResourceDefinitions deploy/ needs, as their projects publish them inside their Go
 * modules: downloaded through the Go module proxy into the module cache (`go mod download`) at test
 * time, never copied into this repository. The versions are the ones docs/deploy.md installs
 * (cert-manager) or current releases (prometheus-operator, KEDA).
 */
export const CRD_SOURCES = [
  {
    module: 'github.com/prometheus-operator/prometheus-operator',
    version: 'v0.85.0',
    files: [
      'example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml',
      'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml',
    ],
  },
  {
    module: 'github.com/kedacore/keda/v2',
    version: 'v2.21.0',
    files: ['config/crd/bases/keda.sh_scaledobjects.yaml', 'config/crd/bases/keda.sh_triggerauthentications.yaml'],
  },
  {
    module: 'github.com/cert-manager/cert-manager',
    version: 'v1.16.2',
    files: ['deploy/crds/crd-certificates.yaml', 'deploy/crds/crd-issuers.yaml'],
  },
] as const;

/** Enough for three module downloads through the proxy on a cold cache. */
export const CRD_DOWNLOAD_TIMEOUT_MS = 300_000;

/** The module's directory in the Go module cache, downloading it first if needed. */
function moduleDir(module: string, version: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], {
    encoding: 'utf8',
    // Outside any module, with the installed Go; GOFLAGS=-mod=… from the environment would not apply.
    cwd: '/',
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '' },
    timeout: CRD_DOWNLOAD_TIMEOUT_MS,
  });
  const dir = (JSON.parse(out) as { Dir?: string; Error?: string }).Dir;
  if (!dir) throw new Error(`go mod download ${module}@${version}: ${out}`);
  return dir;
}

export function upstreamCrds(): Manifest[] {
  return CRD_SOURCES.flatMap(({ module, version, files }) => {
    const dir = moduleDir(module, version);
    return files.flatMap((file) =>
      parseDocuments(readFileSync(join(dir, file), 'utf8'), `${module}@${version}/${file}`).map((crd) => {
        // cert-manager's are the sources of its Helm chart: the labels are template expressions (the
        // chart's, not the CRD's); the spec is plain.
        if (module === 'github.com/cert-manager/cert-manager') delete crd.metadata!.labels;
        return crd;
      }),
    );
  });
}

/** Applies the CRDs (server-side, as they are too large for client-side apply) and waits until the API server serves each (condition Established). */
export async function installCrds(client: Kube, crds: Manifest[]): Promise<void> {
  for (const crd of crds) await apply(client, crd, 'default');
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata!.name} to be established`, async () => {
      const stored = await client.ok('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata!.name}`);
      return stored.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True');
    });
  }
}
