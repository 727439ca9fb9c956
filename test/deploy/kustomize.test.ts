import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { find, type Manifest, parseDocuments, restrictedViolations, validate } from './manifests.js';
import { unknownFields } from './strict-fields.js';
import { KUSTOMIZE_VERSION, kustomize, run, TOOLS_TIMEOUT_MS } from './tools.js';

/**
 * `kustomize build` of every kustomization in deploy/ (kustomize from the Go module proxy, built once
 * into .tools/), and what comes out validated again: the schemas, no unknown fields, the restricted
 * profile, and that the pieces refer to each other correctly after the overlays' patches.
 */

const TARGETS = ['deploy/base', 'deploy/overlays/dev', 'deploy/overlays/prod', 'deploy/injector'] as const;
const rendered = new Map<string, Manifest[]>();

beforeAll(() => {
  const bin = kustomize();
  expect(run(bin, ['version'])).toContain(KUSTOMIZE_VERSION);
  for (const target of TARGETS) rendered.set(target, parseDocuments(run(bin, ['build', target]), `kustomize build ${target}`));
}, TOOLS_TIMEOUT_MS);

const docs = (target: (typeof TARGETS)[number]) => rendered.get(target)!;
const courierOf = (deployment: Manifest) => deployment.spec.template.spec.initContainers.find((c: any) => c.name === 'courier');
const envOf = (container: any, name: string) => container.env.find((e: any) => e.name === name)?.value;

describe('kustomize builds', () => {
  it.each(TARGETS)(
    '%s renders, and every object matches its schema with no unknown field',
    (target) => {
      const out = docs(target);
      expect(out.length).toBeGreaterThan(3);
      for (const doc of out) validate(doc, `kustomize build ${target}`);
      expect(unknownFields(out.map((doc) => ({ doc, source: target })))).toEqual([]);
      for (const doc of out.filter((d) => d.kind === 'Deployment')) expect(restrictedViolations(doc.spec.template.spec), target).toEqual([]);
    },
    60_000,
  );

  it('dev: one replica in courier-dev, the short broker name, the example Secret, no CRDs needed', () => {
    const out = docs('deploy/overlays/dev');
    expect(new Set(out.map((d) => d.metadata?.namespace))).toEqual(new Set(['courier-dev']));
    expect(find(out, 'Deployment').spec.replicas).toBe(1);
    expect(find(out, 'ConfigMap', 'courier-kafka').data.KAFKA_BOOTSTRAP_SERVERS).toBe('kafka:9092');
    const courier = courierOf(find(out, 'Deployment'));
    for (const ref of courier.envFrom) {
      if (ref.secretRef) find(out, 'Secret', ref.secretRef.name);
      if (ref.configMapRef) find(out, 'ConfigMap', ref.configMapRef.name);
    }
    expect(out.filter((d) => !/^(v1|apps\/v1|policy\/v1)$/.test(d.apiVersion))).toEqual([]);
  });

  it('prod: the FQDN broker, monitoring and KEDA on, no Secret in git, no replicas field for KEDA to fight', () => {
    const out = docs('deploy/overlays/prod');
    const deployment = find(out, 'Deployment');
    const courier = courierOf(deployment);
    const bootstrap = find(out, 'ConfigMap', 'courier-kafka').data.KAFKA_BOOTSTRAP_SERVERS;
    expect(bootstrap).toMatch(/^[a-z0-9-]+\.[a-z0-9-]+\.svc\.cluster\.local:9092$/);
    expect(out.find((d) => d.kind === 'Secret')).toBeUndefined();
    expect(deployment.spec.replicas).toBeUndefined();
    expect(courier.image).toBe('registry.example.com/courier:0.1.0');

    const scaled = find(out, 'ScaledObject');
    expect(scaled.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata?.name });
    const trigger = scaled.spec.triggers[0];
    expect(trigger.type).toBe('kafka');
    expect(trigger.metadata.bootstrapServers).toBe(bootstrap);
    expect(trigger.metadata.consumerGroup).toBe(envOf(courier, 'COURIER_GROUP_ID'));
    expect(trigger.metadata.topic).toBe(envOf(courier, 'COURIER_TOPICS'));
    expect(trigger.metadata.allowIdleConsumers).toBe('false');
    expect(scaled.spec.maxReplicaCount).toBeGreaterThanOrEqual(scaled.spec.minReplicaCount);

    const monitor = find(out, 'PodMonitor');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
    find(out, 'PrometheusRule', 'courier');
    const dashboard = find(out, 'ConfigMap', 'courier-dashboard');
    expect(dashboard.metadata?.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard.data['courier.json']).uid).toBe('courier');
  });

  it.each(['deploy/overlays/dev', 'deploy/overlays/prod'] as const)('%s: Courier accepts the environment the pod gives it', (target) => {
    const out = docs(target);
    const courier = courierOf(find(out, 'Deployment'));
    const env: Record<string, string> = {};
    for (const ref of courier.envFrom) {
      if (ref.configMapRef) Object.assign(env, find(out, 'ConfigMap', ref.configMapRef.name).data);
      // prod's Secret is created out of band: stand in values of the documented shape.
      else if (target === 'deploy/overlays/dev') Object.assign(env, find(out, 'Secret', ref.secretRef.name).stringData);
      else Object.assign(env, { COURIER_ADMIN_TOKEN: 'a'.repeat(64), COURIER_APP_TOKEN: 'b'.repeat(64), COURIER_SIGNING_SECRET: `whsec_${'c'.repeat(44)}` });
    }
    for (const variable of courier.env) env[variable.name] = variable.value ?? 'orders-processor-7d9f8b6c5-x2k8q'; // fieldRef: the pod name
    const config = loadConfig({ env, readFile: () => '' });
    expect(config.warnings).toEqual([]);
    expect(config.port).toBe(courier.ports[0].containerPort);
    expect(config.instanceId).toBe('orders-processor-7d9f8b6c5-x2k8q');
    expect(config.shutdownGraceMs + 25_000).toBeLessThanOrEqual(find(out, 'Deployment').spec.template.spec.terminationGracePeriodSeconds * 1000);
  });

  it('the KEDA cap is the partition count the comment states', () => {
    const scaled = find(docs('deploy/overlays/prod'), 'ScaledObject');
    // The comment in components/autoscaling/scaledobject.yaml names the count; both must change together.
    expect(scaled.spec.maxReplicaCount).toBe(12);
  });

  it('injector: everything in courier-system; the webhook points at the rendered Service', () => {
    const out = docs('deploy/injector');
    for (const doc of out.filter((d) => d.kind !== 'Namespace' && d.kind !== 'MutatingWebhookConfiguration'))
      expect(doc.metadata?.namespace).toBe('courier-system');
    const webhook = find(out, 'MutatingWebhookConfiguration').webhooks[0];
    const service = find(out, 'Service', webhook.clientConfig.service.name);
    expect(service.metadata?.namespace).toBe(webhook.clientConfig.service.namespace);
  });
});
