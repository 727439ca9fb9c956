import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig } from '../../src/config/index.js';
import { find, type Manifest, parseDocuments, readManifests, restrictedViolations, validate } from './manifests.js';
import { unknownFields } from './strict-fields.js';
import { kustomize, root, run, TOOLS_TIMEOUT_MS } from './tools.js';

/**
 * The components for secured clusters (deploy/components/sasl-ssl and msk-iam). A component cannot be
 * built alone: each is rendered over deploy/base by a kustomization in test/deploy/fixtures/ (as an
 * overlay would use it), and what comes out is checked like the overlays (schemas, no unknown field,
 * the restricted profile), then against what Courier does with it: the files the env variables name are
 * the files the pod mounts, and Courier's own config loader accepts the result.
 */

const FIXTURES = { 'sasl-ssl': 'test/deploy/fixtures/sasl-ssl', 'msk-iam': 'test/deploy/fixtures/msk-iam' } as const;
type Component = keyof typeof FIXTURES;
const COMPONENTS = Object.keys(FIXTURES) as Component[];
const rendered = new Map<Component | 'base', Manifest[]>();

beforeAll(() => {
  const bin = kustomize();
  rendered.set('base', parseDocuments(run(bin, ['build', 'deploy/base']), 'kustomize build deploy/base'));
  for (const component of COMPONENTS)
    rendered.set(component, parseDocuments(run(bin, ['build', FIXTURES[component]]), `kustomize build ${FIXTURES[component]}`));
}, TOOLS_TIMEOUT_MS);

const docs = (target: Component | 'base') => rendered.get(target)!;
const podSpecOf = (out: Manifest[]) => find(out, 'Deployment').spec.template.spec;
const courierOf = (out: Manifest[]) => podSpecOf(out).initContainers.find((c: any) => c.name === 'courier');
const POD_NAME = 'orders-processor-7d9f8b6c5-x2k8q';

/** The courier container's environment as the kubelet builds it: envFrom in order, then env (which wins). */
function environment(out: Manifest[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ref of courierOf(out).envFrom) {
    if (ref.configMapRef) Object.assign(env, find(out, 'ConfigMap', ref.configMapRef.name).data);
    // courier-secrets is created out of band: stand in values of the documented shape.
    else Object.assign(env, { COURIER_ADMIN_TOKEN: 'a'.repeat(64), COURIER_APP_TOKEN: 'b'.repeat(64), COURIER_SIGNING_SECRET: `whsec_${'c'.repeat(44)}` });
  }
  for (const variable of courierOf(out).env) env[variable.name] = variable.value ?? POD_NAME; // fieldRef: the pod name
  return env;
}

/** Every file a container sees from Secret volumes, as the manifests declare them: path → Secret and key. */
function mountedSecretFiles(spec: any, container: any, keysOf: (secret: string) => string[]): Record<string, { secret: string; key: string }> {
  const files: Record<string, { secret: string; key: string }> = {};
  for (const mount of container.volumeMounts ?? []) {
    const volume = (spec.volumes ?? []).find((v: any) => v.name === mount.name);
    if (!volume?.secret) continue;
    const secret: string = volume.secret.secretName;
    const items: Array<{ key: string; path: string }> = volume.secret.items ?? keysOf(secret).map((key) => ({ key, path: key }));
    for (const { key, path } of items) {
      if (mount.subPath === undefined) files[`${mount.mountPath}/${path}`] = { secret, key };
      else if (mount.subPath === path) files[mount.mountPath] = { secret, key };
    }
  }
  return files;
}

const SASL_SSL_DIR = 'deploy/components/sasl-ssl';
const exampleSecret = () => find(readManifests(`${SASL_SSL_DIR}/secret.example.yaml`), 'Secret');
const exampleKeys = (name: string) => {
  const secret = exampleSecret();
  return secret.metadata?.name === name ? Object.keys({ ...secret.data, ...secret.stringData }) : [];
};
const CA = readFileSync(join(root, 'test/config/fixtures/throwaway-ca.pem'), 'utf8');

describe('components for secured clusters, rendered with the base', () => {
  it.each(COMPONENTS)(
    '%s: every object matches its schema with no unknown field, and the pod passes the restricted profile',
    (component) => {
      const out = docs(component);
      expect(out.map((d) => `${d.kind}/${d.metadata?.name}`)).toEqual(docs('base').map((d) => `${d.kind}/${d.metadata?.name}`));
      for (const doc of out) validate(doc, FIXTURES[component]);
      expect(unknownFields(out.map((doc) => ({ doc, source: FIXTURES[component] })))).toEqual([]);
      expect(restrictedViolations(podSpecOf(out))).toEqual([]);
    },
    60_000,
  );

  describe('sasl-ssl', () => {
    const out = () => docs('sasl-ssl');

    it('sets SASL_SSL, SCRAM-SHA-512, the username and the two file paths in the ConfigMap, no password anywhere', () => {
      const data = find(out(), 'ConfigMap', 'courier-kafka').data;
      expect(data).toEqual({
        ...find(docs('base'), 'ConfigMap', 'courier-kafka').data,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'courier',
        KAFKA_SASL_PASSWORD_FILE: '/var/run/secrets/kafka/password',
        KAFKA_SSL_CA_LOCATION: '/etc/kafka/tls/ca.crt',
      });
      expect(out().filter((d) => d.kind === 'Secret')).toEqual([]);
    });

    it('mounts the Secret read-only into the courier container at exactly the paths the environment names', () => {
      const spec = podSpecOf(out());
      const courier = courierOf(out());
      const env = environment(out());
      const files = mountedSecretFiles(spec, courier, exampleKeys);
      expect(files[env.KAFKA_SASL_PASSWORD_FILE], `${env.KAFKA_SASL_PASSWORD_FILE} in ${Object.keys(files)}`).toEqual({
        secret: 'courier-kafka-credentials',
        key: 'password',
      });
      expect(files[env.KAFKA_SSL_CA_LOCATION], `${env.KAFKA_SSL_CA_LOCATION} in ${Object.keys(files)}`).toEqual({
        secret: 'courier-kafka-credentials',
        key: 'ca.crt',
      });
      expect(Object.keys(files).sort()).toEqual([env.KAFKA_SSL_CA_LOCATION, env.KAFKA_SASL_PASSWORD_FILE].sort());
      for (const mount of courier.volumeMounts) {
        expect(mount.readOnly, mount.name).toBe(true);
        // A subPath mount never sees the Secret's updates.
        expect(mount.subPath, mount.name).toBeUndefined();
      }
      // The app never talks to Kafka: it gets no credentials.
      for (const container of spec.containers) expect(mountedSecretFiles(spec, container, exampleKeys), container.name).toEqual({});
    });

    it('lets the non-root user read the files through its group, and nobody else', () => {
      const spec = podSpecOf(out());
      const courier = courierOf(out());
      const uid = courier.securityContext.runAsUser ?? spec.securityContext.runAsUser;
      expect(uid).not.toBe(0);
      // With fsGroup, the kubelet gives the Secret's files to that group; the container's processes have it.
      expect(spec.securityContext.fsGroup).toBe(courier.securityContext.runAsGroup ?? spec.securityContext.runAsGroup);
      for (const volume of spec.volumes.filter((v: any) => v.secret)) {
        for (const item of volume.secret.items ?? [{}]) {
          const mode = item.mode ?? volume.secret.defaultMode ?? 0o644;
          expect(mode & 0o040, `${volume.name}: group read`).toBe(0o040);
          expect(mode & 0o007, `${volume.name}: others`).toBe(0);
        }
      }
    });

    it('Courier loads what the pod gets: SASL_SSL, SCRAM-SHA-512 and the mounted CA for both clients, the password from its file', () => {
      const spec = podSpecOf(out());
      const mounted = mountedSecretFiles(spec, courierOf(out()), exampleKeys);
      // The pod's files: the Secret's keys as mounted, with a CA that parses and a password with the newline `echo` leaves.
      const content: Record<string, string> = { 'ca.crt': CA, password: 'not-the-real-password\n' };
      const readFile = (path: string) => {
        const file = mounted[path];
        if (!file) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
        return content[file.key]!;
      };
      const env = environment(out());
      const config = loadConfig({ env, readFile });
      expect(config.warnings).toEqual([]);
      for (const client of [config.consumer, config.producer]) {
        expect(client['security.protocol']).toBe('SASL_SSL');
        expect(client['sasl.mechanism'] ?? client['sasl.mechanisms']).toBe('SCRAM-SHA-512');
        expect(client['sasl.username']).toBe('courier');
        expect(client['sasl.password']).toBe('not-the-real-password');
        expect(client['ssl.ca.location']).toBe(env.KAFKA_SSL_CA_LOCATION);
      }
      expect(config.secrets).toContain('not-the-real-password');

      // And the check has teeth: a CA path the pod does not mount stops Courier at start.
      expect(() => loadConfig({ env: { ...env, KAFKA_SSL_CA_LOCATION: '/etc/kafka/ca.pem' }, readFile })).toThrow(/\/etc\/kafka\/ca\.pem does not exist/);
    });

    it('secret.example.yaml is a Secret with exactly the keys the pod mounts, and the component does not apply it', () => {
      const secret = exampleSecret();
      validate(secret, `${SASL_SSL_DIR}/secret.example.yaml`);
      const mounted = Object.values(mountedSecretFiles(podSpecOf(out()), courierOf(out()), exampleKeys));
      expect(new Set(mounted.map((f) => f.secret))).toEqual(new Set([secret.metadata?.name]));
      expect(Object.keys(secret.stringData).sort()).toEqual(mounted.map((f) => f.key).sort());
      expect(secret.data).toBeUndefined();
      expect(readFileSync(join(root, SASL_SSL_DIR, 'secret.example.yaml'), 'utf8')).toMatch(
        /kubectl -n \S+ create secret generic courier-kafka-credentials \\\n#\s+--from-file=password=\S+ \\\n#\s+--from-file=ca\.crt=\S+\n/,
      );
      expect(find(readManifests(`${SASL_SSL_DIR}/kustomization.yaml`), 'Component').resources).toBeUndefined();
      expect(out().find((d) => d.kind === 'Secret')).toBeUndefined();
    });

    it('the ACL commands in the comment name the rendered principal, topic, group and DLQ topic', () => {
      const text = readFileSync(join(root, SASL_SSL_DIR, 'kustomization.yaml'), 'utf8');
      const env = environment(out());
      const [route] = loadConfig({ env, readFile: (path) => (path === env.KAFKA_SSL_CA_LOCATION ? CA : 'password') }).routes;
      const principal = `User:${env.KAFKA_SASL_USERNAME}`;
      const acls = text.split('\n').filter((line) => line.includes('kafka-acls.sh'));
      expect(acls).toHaveLength(2);
      expect(acls[0]).toContain(`--add --allow-principal ${principal} --consumer --topic ${route.topic} --group ${env.COURIER_GROUP_ID}`);
      expect(acls[1]).toContain(`--add --allow-principal ${principal} --producer --idempotent --topic ${route.dlqTopic}`);
    });

    it('changes nothing else: the app container and the rest of the courier container are the base’s', () => {
      const base = podSpecOf(docs('base'));
      const spec = podSpecOf(out());
      expect(spec.containers).toEqual(base.containers);
      const { volumeMounts, ...courier } = courierOf(out());
      expect(courier).toEqual(courierOf(docs('base')));
      expect({ ...spec, initContainers: undefined, volumes: undefined, securityContext: { ...spec.securityContext, fsGroup: undefined } }).toEqual({
        ...base,
        initContainers: undefined,
        securityContext: { ...base.securityContext, fsGroup: undefined },
      });
      expect(find(out(), 'ServiceAccount')).toEqual(find(docs('base'), 'ServiceAccount'));
    });
  });

  describe('msk-iam', () => {
    const out = () => docs('msk-iam');
    const MSK_IAM_DIR = 'deploy/components/msk-iam';
    // b-1.<cluster>.<id>.c2.kafka.<region>.amazonaws.com:9098 (9098: MSK's IAM listener)
    const MSK_HOST = /^b-\d+\.([a-z0-9-]+)\.([a-z0-9]+)\.c\d+\.kafka\.([a-z0-9-]+)\.amazonaws\.com:9098$/;
    const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/[\w+=,.@-]+$/;

    it('sets SASL_SSL with OAUTHBEARER tokens from aws-msk-iam, an MSK IAM bootstrap in AWS_REGION, and no password, CA or Secret', () => {
      const env = environment(out());
      expect(env).toMatchObject({
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        COURIER_KAFKA_TOKEN_PROVIDER: 'aws-msk-iam',
      });
      const hosts = env.KAFKA_BOOTSTRAP_SERVERS.split(',');
      expect(hosts.length).toBeGreaterThan(0);
      for (const host of hosts) {
        expect(host).toMatch(MSK_HOST);
        expect(MSK_HOST.exec(host)![3]).toBe(env.AWS_REGION);
      }
      for (const name of Object.keys(env)) expect(name).not.toMatch(/^KAFKA_(SASL_(USERNAME|PASSWORD)|SSL_)/);
      expect(out().filter((d) => d.kind === 'Secret')).toEqual([]);
      expect(podSpecOf(out()).volumes).toBeUndefined();
    });

    it('Courier loads what the pod gets once EKS adds the IRSA variables: the MSK IAM provider, with the region and the role', () => {
      const env: Record<string, string> = {
        ...environment(out()),
        // What the EKS pod identity webhook injects for an annotated ServiceAccount.
        AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/orders-courier',
        AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
      };
      const config = loadConfig({ env, readFile: () => '' });
      expect(config.kafkaToken).toMatchObject({
        provider: 'aws-msk-iam',
        aws: { region: env.AWS_REGION, roleArn: env.AWS_ROLE_ARN, webIdentityTokenFile: env.AWS_WEB_IDENTITY_TOKEN_FILE },
      });
      // Without them (no IRSA, no Pod Identity, no keys) Courier stops at start and says so.
      expect(() => loadConfig({ env: environment(out()), readFile: () => '' })).toThrow(/found no AWS credentials in the environment/);
    });

    it('the ServiceAccount the pod runs as carries the IRSA role, and still mounts no API token', () => {
      const spec = podSpecOf(out());
      const account = find(out(), 'ServiceAccount', spec.serviceAccountName);
      expect(account.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::111122223333:role/orders-courier');
      expect(account.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toMatch(ROLE_ARN);
      expect(account.automountServiceAccountToken).toBe(false);
      expect(spec.automountServiceAccountToken).toBe(false);
    });

    it('changes only the ConfigMap and the ServiceAccount: the Deployment is the base’s', () => {
      expect(find(out(), 'Deployment')).toEqual(find(docs('base'), 'Deployment'));
      expect(find(out(), 'PodDisruptionBudget')).toEqual(find(docs('base'), 'PodDisruptionBudget'));
      const { annotations, ...metadata } = find(out(), 'ServiceAccount').metadata!;
      expect({ ...find(out(), 'ServiceAccount'), metadata }).toEqual(find(docs('base'), 'ServiceAccount'));
    });

    it('iam-policy.example.json grants exactly what Courier needs, on the rendered cluster, topic, group and DLQ topic', () => {
      const policy = JSON.parse(readFileSync(join(root, MSK_IAM_DIR, 'iam-policy.example.json'), 'utf8'));
      const env = environment(out());
      const [, cluster] = MSK_HOST.exec(env.KAFKA_BOOTSTRAP_SERVERS.split(',')[0]!)!;
      const [, accountId] = ROLE_ARN.exec(find(out(), 'ServiceAccount').metadata?.annotations?.['eks.amazonaws.com/role-arn'])!;
      const arn = (type: string, name?: string) => `arn:aws:kafka:${env.AWS_REGION}:${accountId}:${type}/${cluster}/*${name === undefined ? '' : `/${name}`}`;
      const topics = env.COURIER_TOPICS.split(',');
      expect(topics).toEqual(['orders']);
      const dlqTopic = (env.COURIER_DLQ_TOPIC ?? DEFAULTS.dlqTopic).replaceAll('{topic}', topics[0]!);

      expect(policy.Version).toBe('2012-10-17');
      const granted = new Map<string, Set<string>>();
      for (const statement of policy.Statement) {
        expect(statement.Effect).toBe('Allow');
        for (const resource of [statement.Resource].flat()) {
          for (const action of [statement.Action].flat()) granted.set(resource, (granted.get(resource) ?? new Set()).add(action));
        }
      }
      expect(Object.fromEntries([...granted].map(([resource, actions]) => [resource, [...actions].sort()]))).toEqual({
        // WriteDataIdempotently: the DLQ producer is idempotent.
        [arn('cluster')]: ['kafka-cluster:Connect', 'kafka-cluster:WriteDataIdempotently'],
        [arn('topic', 'orders')]: ['kafka-cluster:DescribeTopic', 'kafka-cluster:ReadData'],
        [arn('group', env.COURIER_GROUP_ID)]: ['kafka-cluster:AlterGroup', 'kafka-cluster:DescribeGroup'],
        [arn('topic', dlqTopic)]: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
      });
      expect(readFileSync(join(root, MSK_IAM_DIR, 'kustomization.yaml'), 'utf8')).toContain('iam-policy.example.json');
    });
  });
});
