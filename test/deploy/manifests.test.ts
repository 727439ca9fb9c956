import { describe, expect, it } from 'vitest';
import { ANNOTATION, courierSidecar, MIN_TERMINATION_GRACE_SECONDS, SHUTDOWN_GRACE_MS } from '../../src/inject/sidecar.js';
import { deployFiles, find, KUSTOMIZE_KINDS, type Manifest, readManifests, restrictedViolations, typeOf, validate } from './manifests.js';
import { unknownFields } from './strict-fields.js';

/** Every file in deploy/, as written (the rendered overlays are checked in kustomize.test.ts). */

const files = deployFiles();
const yamlFiles = files.filter((f) => /\.ya?ml$/.test(f));
const manifests = yamlFiles.flatMap((file) => readManifests(file).map((doc) => ({ doc, source: file })));
const resources = manifests.filter(({ doc }) => !KUSTOMIZE_KINDS.has(typeOf(doc)));

describe('deploy/ manifests', () => {
  it('holds only YAML manifests, the dashboard JSON and the example IAM policy', () => {
    expect(files.filter((f) => !/\.ya?ml$/.test(f)).sort()).toEqual([
      'deploy/components/monitoring/dashboards/courier.json',
      'deploy/components/msk-iam/iam-policy.example.json',
    ]);
    expect(yamlFiles.length).toBeGreaterThan(15);
    for (const { doc, source } of manifests) {
      expect(typeof doc.apiVersion, source).toBe('string');
      expect(typeof doc.kind, source).toBe('string');
    }
  });

  it.each(resources.map(({ doc, source }) => [`${source} ${doc.kind}/${doc.metadata?.name}`, doc, source] as const))(
    '%s matches its schema',
    (_, doc, source) => {
      validate(doc, source);
    },
  );

  // Type-checking takes about a second, more on a busy machine (the Go tools build in parallel).
  it('has no field its schema does not know (strict field validation)', () => {
    expect(unknownFields(resources)).toEqual([]);
  }, 60_000);

  it('the strict field check does find a misspelt field, at any depth, in core and custom resources', () => {
    // TypeScript reports the first unknown field of each manifest: one mutation per copy.
    const base = find(readManifests('deploy/base/deployment.yaml'), 'Deployment');
    const typo = structuredClone(base);
    typo.spec.template.spec.initContainers[0].imagePullPolcy = 'Always';
    const deep = structuredClone(base);
    deep.spec.template.spec.initContainers[0].securityContext.readOnlyRootFs = true;
    const monitor = structuredClone(find(readManifests('deploy/components/monitoring/podmonitor.yaml'), 'PodMonitor'));
    monitor.spec.podMetricsEndpoint = monitor.spec.podMetricsEndpoints;
    const errors = unknownFields([
      { doc: typo, source: 'typo' },
      { doc: deep, source: 'deep' },
      { doc: monitor, source: 'monitor' },
    ]);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^typo: .*'"imagePullPolcy"' does not exist in type 'IContainer'/);
    expect(errors[1]).toMatch(/^deep: .*'"readOnlyRootFs"' does not exist in type 'ISecurityContext'/);
    expect(errors[2]).toMatch(/^monitor: .*'"podMetricsEndpoint"' does not exist/);
  }, 60_000);

  it('the schema check does refuse a bad value', () => {
    const deployment = structuredClone(find(readManifests('deploy/base/deployment.yaml'), 'Deployment'));
    deployment.spec.template.spec.initContainers[0].ports[0].containerPort = '8080';
    expect(() => validate(deployment, 'mutated')).toThrow(/containerPort must be integer/);
  });

  it('every pod template runs under the restricted Pod Security profile with a read-only root filesystem', () => {
    const templates = resources.filter(({ doc }) => doc.kind === 'Deployment');
    expect(templates.map(({ doc }) => doc.metadata?.name).sort()).toEqual(['courier-injector', 'orders-processor']);
    for (const { doc, source } of templates) expect(restrictedViolations(doc.spec.template.spec), source).toEqual([]);
  });

  it('the restricted check catches what the profile forbids', () => {
    const spec = structuredClone(find(readManifests('deploy/base/deployment.yaml'), 'Deployment').spec.template.spec);
    spec.containers[0].securityContext.allowPrivilegeEscalation = true;
    spec.initContainers[0].securityContext.capabilities = { add: ['NET_ADMIN'] };
    spec.volumes = [{ name: 'host', hostPath: { path: '/' } }];
    expect(restrictedViolations(spec)).toEqual([
      'volume host: hostPath is not allowed',
      'container courier: capabilities must drop ALL',
      'container courier: adds capability NET_ADMIN',
      'container app: allowPrivilegeEscalation must be false',
    ]);
  });

  describe('the example Deployment', () => {
    const deployment = find(readManifests('deploy/base/deployment.yaml'), 'Deployment');
    const spec = deployment.spec.template.spec;
    const courier = spec.initContainers.find((c: any) => c.name === 'courier');
    const env = (name: string) => courier.env.find((e: any) => e.name === name);

    it('runs Courier as a native sidecar: an init container with restartPolicy Always', () => {
      expect(courier.restartPolicy).toBe('Always');
      expect(spec.containers.map((c: any) => c.name)).toEqual(['app']);
    });

    it('probes /healthz (startup, liveness) and /readyz (readiness) on the courier port', () => {
      expect(courier.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'courier' });
      expect(courier.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'courier' });
      expect(courier.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'courier' });
      expect(courier.ports).toEqual([{ name: 'courier', containerPort: 8080, protocol: 'TCP' }]);
      expect(courier.resources.requests).toBeDefined();
      expect(courier.resources.limits.memory).toBeDefined();
    });

    it('uses the pod name as static membership id and points Courier at the app on localhost', () => {
      expect(env('COURIER_INSTANCE_ID')).toEqual({ name: 'COURIER_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
      const appPort = spec.containers[0].ports[0].containerPort;
      expect(env('COURIER_TARGET_URL').value).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${appPort}/`));
    });

    it('gives the drain room: terminationGracePeriodSeconds covers the app, COURIER_SHUTDOWN_GRACE_MS and the commit', () => {
      const drainMs = Number(env('COURIER_SHUTDOWN_GRACE_MS').value);
      expect(drainMs).toBe(SHUTDOWN_GRACE_MS);
      expect(spec.terminationGracePeriodSeconds).toBe(MIN_TERMINATION_GRACE_SECONDS);
      expect(spec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(drainMs + 25_000);
    });

    it('reads the brokers from a ConfigMap and the tokens from a Secret', () => {
      expect(courier.envFrom).toEqual([{ configMapRef: { name: 'courier-kafka' } }, { secretRef: { name: 'courier-secrets' } }]);
      const configMap = find(readManifests('deploy/base/configmap.yaml'), 'ConfigMap', 'courier-kafka');
      expect(configMap.data.KAFKA_BOOTSTRAP_SERVERS).toBe('kafka:9092');
      const secret = find(readManifests('deploy/overlays/dev/secret.yaml'), 'Secret', 'courier-secrets');
      expect(Object.keys(secret.stringData).sort()).toEqual(['COURIER_ADMIN_TOKEN', 'COURIER_APP_TOKEN', 'COURIER_SIGNING_SECRET']);
      expect(secret.stringData.COURIER_SIGNING_SECRET).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    });

    it('has the same sidecar the injector writes (security context, probes, resources, ports, env names)', () => {
      const injected = courierSidecar({
        image: courier.image,
        groupId: 'g',
        topics: ['t'],
        appPort: 3000,
        appPath: '/orders',
        courierPort: 8080,
        configMap: 'courier-kafka',
        secret: 'courier-secrets',
      });
      for (const key of [
        'restartPolicy',
        'imagePullPolicy',
        'ports',
        'envFrom',
        'startupProbe',
        'livenessProbe',
        'readinessProbe',
        'resources',
        'securityContext',
      ] as const) {
        expect(injected[key], key).toEqual(courier[key]);
      }
      expect(injected.env.map((e) => e.name)).toEqual(courier.env.map((e: any) => e.name));
      expect(injected.env.find((e) => e.name === 'COURIER_INSTANCE_ID')).toEqual(env('COURIER_INSTANCE_ID'));
      expect(injected.env.find((e) => e.name === 'NODE_OPTIONS')).toEqual(env('NODE_OPTIONS'));
    });

    it("gives V8 half of the container's memory limit as heap", () => {
      const limit = courier.resources.limits.memory.match(/^(\d+)Mi$/);
      expect(limit, courier.resources.limits.memory).not.toBeNull();
      expect(env('NODE_OPTIONS').value).toBe(`--max-old-space-size=${Number(limit[1]) / 2}`);
    });

    it('carries the label the PodMonitor selects', () => {
      const monitor = find(readManifests('deploy/components/monitoring/podmonitor.yaml'), 'PodMonitor');
      for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
      expect(monitor.spec.podMetricsEndpoints[0].port).toBe(courier.ports[0].name);
    });
  });

  describe('the injector', () => {
    const docs: Manifest[] = yamlFiles.filter((f) => f.startsWith('deploy/injector/')).flatMap((f) => readManifests(f));
    const webhookConfig = find(docs, 'MutatingWebhookConfiguration');
    const webhook = webhookConfig.webhooks[0];

    it('fails closed, for pods only, on CREATE, with no side effects', () => {
      expect(webhook.failurePolicy).toBe('Fail');
      expect(webhook.sideEffects).toBe('None');
      expect(webhook.admissionReviewVersions).toEqual(['v1']);
      expect(webhook.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
      expect(webhook.timeoutSeconds).toBeLessThanOrEqual(10);
    });

    it('only sees opted-in namespaces, never its own or the system ones, and pods can opt out', () => {
      const expressions = webhook.namespaceSelector.matchExpressions;
      expect(expressions).toContainEqual({ key: 'courier.dev/injection', operator: 'In', values: ['enabled'] });
      const excluded = expressions.find((e: any) => e.key === 'kubernetes.io/metadata.name');
      expect(excluded.operator).toBe('NotIn');
      expect(excluded.values).toEqual(expect.arrayContaining(['kube-system', 'courier-system']));
      const namespace = find(docs, 'Namespace', 'courier-system');
      expect(namespace.metadata?.labels?.['courier.dev/injection']).toBeUndefined();
      expect(webhook.objectSelector.matchExpressions).toEqual([{ key: ANNOTATION.inject, operator: 'NotIn', values: ['false'] }]);
    });

    it('reaches the injector Service, whose certificate cert-manager issues and cainjector trusts', () => {
      const service = find(docs, 'Service', 'courier-injector');
      const deployment = find(docs, 'Deployment', 'courier-injector');
      const container = deployment.spec.template.spec.containers[0];
      const { clientConfig } = webhook;
      expect(clientConfig.service).toMatchObject({ name: service.metadata?.name, namespace: 'courier-system', path: '/mutate', port: 443 });
      expect(service.spec.ports[0]).toMatchObject({ port: 443, targetPort: 'https' });
      expect(container.ports[0]).toMatchObject({ name: 'https', containerPort: 8443 });
      expect(container.args).toEqual(['inject']);
      expect(clientConfig.caBundle).toBeUndefined();

      const [namespace, name] = String(webhookConfig.metadata?.annotations?.['cert-manager.io/inject-ca-from']).split('/');
      expect(namespace).toBe('courier-system');
      const certificate = find(docs, 'Certificate', name);
      expect(certificate.spec.dnsNames).toContain(`${service.metadata?.name}.courier-system.svc`);
      const issuer = find(docs, 'Issuer', certificate.spec.issuerRef.name);
      const ca = find(docs, 'Certificate', issuer.spec.ca.secretName);
      expect(ca.spec.isCA).toBe(true);
      expect(find(docs, 'Issuer', ca.spec.issuerRef.name).spec.selfSigned).toEqual({});

      const volume = deployment.spec.template.spec.volumes.find((v: any) => v.secret);
      expect(volume.secret.secretName).toBe(certificate.spec.secretName);
      const mount = container.volumeMounts.find((m: any) => m.name === volume.name);
      const envOf = (n: string) => container.env.find((e: any) => e.name === n)?.value;
      expect(envOf('COURIER_INJECT_TLS_CERT')).toBe(`${mount.mountPath}/tls.crt`);
      expect(envOf('COURIER_INJECT_TLS_KEY')).toBe(`${mount.mountPath}/tls.key`);
      expect(envOf('COURIER_INJECT_PORT')).toBe(String(container.ports[0].containerPort));
      expect(envOf('COURIER_INJECT_IMAGE')).toBe(container.image);
      // The non-root user reads the Secret's files through its group.
      expect(deployment.spec.template.spec.securityContext.fsGroup).toBe(deployment.spec.template.spec.securityContext.runAsUser);
    });

    it('stays available: two replicas and a disruption budget', () => {
      expect(find(docs, 'Deployment', 'courier-injector').spec.replicas).toBeGreaterThanOrEqual(2);
      expect(find(docs, 'PodDisruptionBudget', 'courier-injector').spec.minAvailable).toBe(1);
    });
  });
});
