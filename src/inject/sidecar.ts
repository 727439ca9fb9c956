/**
 * The Courier native sidecar the injector adds to a pod. The same container is written out by hand
 * in deploy/base/deployment.yaml; test/deploy checks that the two stay the same.
 */

export const SIDECAR_NAME = 'courier';
/** The image's user (distroless `nonroot`); the Dockerfile's USER and deploy/ use the same number. */
export const COURIER_UID = 65532;
export const DEFAULT_COURIER_PORT = 8080;
/**
 * At pod deletion the kubelet sends SIGTERM to the app first and to native sidecars only after every
 * app container has exited, all within terminationGracePeriodSeconds. 45 s = the app's own shutdown
 * (≤ 15 s) + COURIER_SHUTDOWN_GRACE_MS (20 s default) + committing and leaving the group (≤ 10 s).
 * The period is a ceiling, not a delay: a pod that stops sooner is gone sooner.
 */
export const MIN_TERMINATION_GRACE_SECONDS = 45;
/** Courier's drain on SIGTERM (its default, written out so the budget above is visible in the pod). */
export const SHUTDOWN_GRACE_MS = 20_000;

export const ANNOTATION = {
  inject: 'courier.dev/inject',
  groupId: 'courier.dev/group-id',
  topics: 'courier.dev/topics',
  appPort: 'courier.dev/app-port',
  appPath: 'courier.dev/app-path',
  config: 'courier.dev/config',
  secret: 'courier.dev/secret',
  port: 'courier.dev/port',
  /** Written by the injector: "injected". */
  status: 'courier.dev/status',
} as const;

/** Label on every pod that runs Courier (injected or written by hand): what the PodMonitor selects. */
export const SIDECAR_LABEL = 'courier.dev/sidecar';

export interface SidecarSettings {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  groupId: string;
  topics: string[];
  appPort: number;
  appPath: string;
  courierPort: number;
  /** ConfigMap whose keys become environment variables (KAFKA_BOOTSTRAP_SERVERS, KAFKA_*, COURIER_*). */
  configMap?: string;
  /** Secret whose keys become environment variables (COURIER_ADMIN_TOKEN, COURIER_APP_TOKEN, COURIER_SIGNING_SECRET). */
  secret?: string;
}

/** The restricted Pod Security profile, per container. */
export function restrictedSecurityContext() {
  return {
    runAsNonRoot: true,
    runAsUser: COURIER_UID,
    runAsGroup: COURIER_UID,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Probes on Courier's own API, by port name. */
export function courierProbes() {
  return {
    // /healthz, not /readyz: the app containers start only once this probe passed, and /readyz
    // waits for the app, so a startup probe on /readyz would never pass.
    startupProbe: { httpGet: { path: '/healthz', port: 'courier' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'courier' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'courier' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
  };
}

/** The container's memory limit, MiB (README: sizing). */
export const MEMORY_LIMIT_MIB = 256;
/** V8's heap: half of the container's memory limit, so V8 collects before the kernel's OOM killer acts. */
export const HEAP_MIB = MEMORY_LIMIT_MIB / 2;

export function courierResources() {
  // As deploy/base (README: sizing): no CPU limit (throttling a consumer only makes lag); memory
  // bounded by COURIER_BUFFER_BYTES and the heap below.
  return { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: `${MEMORY_LIMIT_MIB}Mi` } };
}

/**
 * The heap written out, not derived from the limit with the downward API: a memory divisor can only
 * be 1, 1k, 1Ki, 1M, 1Mi, … (the API server refuses a Pod with `divisor: 2Mi`), so the kubelet cannot
 * halve the limit.
 */
export function courierHeapEnv() {
  return [{ name: 'NODE_OPTIONS', value: `--max-old-space-size=${HEAP_MIB}` }];
}

/** The container to put in spec.initContainers (a native sidecar: restartPolicy Always). */
export function courierSidecar(settings: SidecarSettings) {
  const envFrom = [
    ...(settings.configMap ? [{ configMapRef: { name: settings.configMap } }] : []),
    ...(settings.secret ? [{ secretRef: { name: settings.secret } }] : []),
  ];
  return {
    name: SIDECAR_NAME,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy ?? 'IfNotPresent',
    restartPolicy: 'Always',
    ports: [{ name: 'courier', containerPort: settings.courierPort, protocol: 'TCP' }],
    // `env` wins over `envFrom`: what the annotations say cannot be overridden by the ConfigMap.
    env: [
      { name: 'COURIER_GROUP_ID', value: settings.groupId },
      { name: 'COURIER_TOPICS', value: settings.topics.join(',') },
      { name: 'COURIER_TARGET_URL', value: `http://127.0.0.1:${settings.appPort}${settings.appPath}` },
      { name: 'COURIER_PORT', value: String(settings.courierPort) },
      { name: 'COURIER_SHUTDOWN_GRACE_MS', value: String(SHUTDOWN_GRACE_MS) },
      // Static group membership: a restarted container keeps its partitions without a rebalance.
      { name: 'COURIER_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ...courierHeapEnv(),
    ],
    ...(envFrom.length > 0 ? { envFrom } : {}),
    ...courierProbes(),
    resources: courierResources(),
    securityContext: restrictedSecurityContext(),
  };
}

export type CourierContainer = ReturnType<typeof courierSidecar>;
