import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { root } from './tools.js';

/**
 * The Kubernetes, prometheus-operator, KEDA and cert-manager models (the `kubernetes-models` packages
 * carry each project's OpenAPI/CRD schemas, compiled to validators: no network needed). Every kind
 * deploy/ uses must be here: a manifest of any other kind fails the tests instead of going unchecked.
 * `types` names the module and interface the TypeScript strict-field check (strict-fields.ts) uses.
 */
export const MODELS: Record<string, { model: new (data: never) => { validate(): void }; types: [module: string, name: string] }> = {
  'v1/ConfigMap': { model: ConfigMap, types: ['kubernetes-models/v1', 'IConfigMap'] },
  'v1/Namespace': { model: Namespace, types: ['kubernetes-models/v1', 'INamespace'] },
  'v1/Pod': { model: Pod, types: ['kubernetes-models/v1', 'IPod'] },
  'v1/Secret': { model: Secret, types: ['kubernetes-models/v1', 'ISecret'] },
  'v1/Service': { model: Service, types: ['kubernetes-models/v1', 'IService'] },
  'v1/ServiceAccount': { model: ServiceAccount, types: ['kubernetes-models/v1', 'IServiceAccount'] },
  'apps/v1/Deployment': { model: Deployment, types: ['kubernetes-models/apps/v1', 'IDeployment'] },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, types: ['kubernetes-models/policy/v1', 'IPodDisruptionBudget'] },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': {
    model: MutatingWebhookConfiguration,
    types: ['kubernetes-models/admissionregistration.k8s.io/v1', 'IMutatingWebhookConfiguration'],
  },
  'monitoring.coreos.com/v1/PodMonitor': { model: PodMonitor, types: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1', 'IPodMonitor'] },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule,
    types: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1', 'IPrometheusRule'],
  },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, types: ['@kubernetes-models/keda/keda.sh/v1alpha1', 'IScaledObject'] },
  'keda.sh/v1alpha1/TriggerAuthentication': { model: TriggerAuthentication, types: ['@kubernetes-models/keda/keda.sh/v1alpha1', 'ITriggerAuthentication'] },
  'cert-manager.io/v1/Certificate': { model: Certificate, types: ['@kubernetes-models/cert-manager/cert-manager.io/v1', 'ICertificate'] },
  'cert-manager.io/v1/Issuer': { model: Issuer, types: ['@kubernetes-models/cert-manager/cert-manager.io/v1', 'IIssuer'] },
};

export const KUSTOMIZE_KINDS = new Set(['kustomize.config.k8s.io/v1beta1/Kustomization', 'kustomize.config.k8s.io/v1alpha1/Component']);

export type Manifest = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string; [k: string]: any }; [k: string]: any };

export const typeOf = (doc: Manifest) => `${doc.apiVersion}/${doc.kind}`;

export function parseDocuments(text: string, source: string): Manifest[] {
  return parseAllDocuments(text)
    .map((document, index) => {
      if (document.errors.length > 0) throw new Error(`${source} (document ${index + 1}): ${document.errors.map((e) => e.message).join('; ')}`);
      return document.toJS() as Manifest | null;
    })
    .filter((doc): doc is Manifest => doc !== null);
}

/** Validates one manifest against its schema; throws with the kind, name and the schema's errors. */
export function validate(doc: Manifest, source: string): void {
  const entry = MODELS[typeOf(doc)];
  if (!entry) throw new Error(`${source}: ${typeOf(doc)} has no schema in test/deploy/manifests.ts; add its model`);
  try {
    new entry.model(doc as never).validate();
  } catch (error) {
    throw new Error(`${source}: ${doc.kind} ${doc.metadata?.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Every file under deploy/, relative to the repository root. */
export function deployFiles(dir = join(root, 'deploy')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? deployFiles(join(dir, entry.name)) : [relative(root, join(dir, entry.name))],
  );
}

export function readManifests(file: string): Manifest[] {
  return parseDocuments(readFileSync(join(root, file), 'utf8'), file);
}

export function find(docs: Manifest[], kind: string, name?: string): Manifest {
  const found = docs.find((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in ${docs.map((d) => `${d.kind}/${d.metadata?.name}`).join(', ')}`);
  return found;
}

/**
 * What the restricted Pod Security Standard (Kubernetes' pod-security admission, profile
 * "restricted", latest) forbids in a pod spec, plus a read-only root filesystem, which Courier's
 * manifests also promise. Empty when the pod passes.
 */
export function restrictedViolations(spec: any): string[] {
  const problems: string[] = [];
  const pod = spec.securityContext ?? {};
  const containers: any[] = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push('host namespaces');
  const allowedVolumes = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret', 'image']);
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((k) => k !== 'name');
    for (const type of types) if (!allowedVolumes.has(type)) problems.push(`volume ${volume.name}: ${type} is not allowed`);
  }
  const seccompOk = (sc: any) => sc?.seccompProfile?.type === 'RuntimeDefault' || sc?.seccompProfile?.type === 'Localhost';
  if (pod.seccompProfile && !seccompOk(pod)) problems.push('pod seccompProfile must be RuntimeDefault or Localhost');
  if (pod.runAsUser === 0) problems.push('pod runAsUser 0');
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const name = `container ${c.name}`;
    if (sc.privileged) problems.push(`${name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}: allowPrivilegeEscalation must be false`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${name}: capabilities must drop ALL`);
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') problems.push(`${name}: adds capability ${cap}`);
    if (!(sc.runAsNonRoot === true || (pod.runAsNonRoot === true && sc.runAsNonRoot !== false))) problems.push(`${name}: runAsNonRoot must be true`);
    if (sc.runAsUser === 0) problems.push(`${name}: runAsUser 0`);
    if (!(seccompOk(sc) || (seccompOk(pod) && sc.seccompProfile === undefined))) problems.push(`${name}: seccompProfile must be RuntimeDefault or Localhost`);
    if (sc.seccompProfile && !seccompOk(sc)) problems.push(`${name}: seccompProfile ${sc.seccompProfile.type}`);
    for (const port of c.ports ?? []) if (port.hostPort) problems.push(`${name}: hostPort`);
    if (sc.procMount && sc.procMount !== 'Default') problems.push(`${name}: procMount`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}: readOnlyRootFilesystem must be true`);
    if (!Number.isInteger(sc.runAsUser ?? pod.runAsUser)) problems.push(`${name}: runAsUser must be a number (non-root images need one)`);
  }
  return problems;
}
