import {
  ANNOTATION,
  courierSidecar,
  DEFAULT_COURIER_PORT,
  MIN_TERMINATION_GRACE_SECONDS,
  SIDECAR_LABEL,
  SIDECAR_NAME,
  type SidecarSettings,
} from './sidecar.js';

/**
 * The mutating admission webhook, pure: an AdmissionReview (admission.k8s.io/v1) in, the HTTP answer
 * out. Nothing here does I/O, so every decision is testable without a cluster.
 *
 * What comes back, and why:
 *   - not an AdmissionReview v1 with a request uid (unparsable JSON, another kind or version, no uid):
 *     HTTP 400 with a JSON error. There is no uid to answer to, so no AdmissionReview response is
 *     possible; the API server counts a non-200 answer as a webhook failure, and with
 *     `failurePolicy: Fail` the pod is refused: malformed input never lets a pod through unmutated.
 *   - a review with a uid whose request is not a pod CREATE with a well-formed pod: 200 with
 *     `allowed: false` and the reason (fail closed).
 *   - an UPDATE/DELETE/CONNECT of a pod: allowed unchanged (containers are fixed at creation).
 *   - a pod without `courier.dev/inject: "true"` (or with "false"): allowed unchanged.
 *   - a pod that already has the sidecar: allowed unchanged (idempotent: reinvocation, re-applied specs).
 *   - a pod asking for injection with a missing or invalid annotation: `allowed: false`, every problem
 *     listed with its fix.
 *   - otherwise: allowed with a base64 JSON Patch that adds the sidecar.
 */

export interface InjectorOptions {
  image: string;
  imagePullPolicy?: SidecarSettings['imagePullPolicy'];
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type WebhookAnswer =
  | { status: 200; body: AdmissionReviewResponse; outcome: Outcome }
  | { status: 400; body: { error: 'bad_request'; message: string }; outcome: 'malformed' };

export type Outcome = 'injected' | 'already_injected' | 'not_requested' | 'not_create' | 'denied' | 'malformed';

/** Escapes one JSON Pointer reference token (RFC 6901): `~` → `~0`, then `/` → `~1`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...tokens: string[]): string {
  return tokens.map((token) => `/${escapePointer(token)}`).join('');
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A raw request body (as the API server sends it) → the answer. */
export function reviewBody(body: string | Buffer, options: InjectorOptions): WebhookAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (error) {
    return badRequest(`the body is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return review(parsed, options);
}

export function review(input: unknown, options: InjectorOptions): WebhookAnswer {
  if (!isObject(input)) return badRequest('expected an AdmissionReview object');
  if (input.apiVersion !== 'admission.k8s.io/v1' || input.kind !== 'AdmissionReview') {
    return badRequest(
      `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got ${JSON.stringify(input.apiVersion)}, ${JSON.stringify(input.kind)} (set admissionReviewVersions: ["v1"])`,
    );
  }
  const request = input.request;
  if (!isObject(request)) return badRequest('the AdmissionReview has no request');
  const uid = request.uid;
  if (typeof uid !== 'string' || uid === '') return badRequest('the AdmissionReview request has no uid');

  const answer = (response: Omit<AdmissionResponse, 'uid'>, outcome: Outcome): WebhookAnswer => ({
    status: 200,
    body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } },
    outcome,
  });
  const deny = (message: string, outcome: Outcome = 'denied') =>
    answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: `courier-injector: ${message}` } }, outcome);

  const kind = request.kind;
  const resource = request.resource;
  if (!isObject(kind) || kind.group !== '' || kind.version !== 'v1' || kind.kind !== 'Pod' || !isObject(resource) || resource.resource !== 'pods') {
    return deny(`only pods (v1) are handled, got ${JSON.stringify(kind)}; check the rules of the MutatingWebhookConfiguration`, 'malformed');
  }
  if (request.subResource !== undefined && request.subResource !== '') {
    return deny(`subresource ${JSON.stringify(request.subResource)} is not handled; the webhook rules should name "pods" only`, 'malformed');
  }
  if (request.operation !== 'CREATE') {
    if (typeof request.operation !== 'string') return deny('the request has no operation', 'malformed');
    return answer({ allowed: true }, 'not_create');
  }

  const pod = request.object;
  const malformed = podProblem(pod);
  if (malformed) return deny(`malformed pod: ${malformed}`, 'malformed');
  const { metadata = {}, spec } = pod as { metadata?: Record<string, unknown>; spec: Record<string, unknown> };
  const annotations = (metadata.annotations ?? {}) as Record<string, string>;

  const wanted = annotations[ANNOTATION.inject];
  if (wanted === undefined || wanted === 'false') return answer({ allowed: true }, 'not_requested');
  if (wanted !== 'true') return deny(`${ANNOTATION.inject} must be "true" or "false", got ${JSON.stringify(wanted)}`);

  const initContainers = spec.initContainers as Array<Record<string, unknown>> | undefined | null;
  const containers = spec.containers as Array<Record<string, unknown>>;
  if (initContainers?.some((c) => c.name === SIDECAR_NAME)) return answer({ allowed: true }, 'already_injected');

  const parsed = parseAnnotations(annotations);
  if ('problems' in parsed) return deny(`cannot inject Courier into this pod: ${parsed.problems.join('; ')}`);
  const settings: SidecarSettings = { ...parsed.settings, image: options.image, imagePullPolicy: options.imagePullPolicy };

  const conflicts = conflictsWith([...(initContainers ?? []), ...containers], settings);
  if (conflicts.length > 0) return deny(`cannot inject Courier into this pod: ${conflicts.join('; ')}`);

  const sidecar = courierSidecar(settings);
  const patch: JsonPatchOperation[] = [];
  const warnings: string[] = [];
  if (Array.isArray(initContainers)) patch.push({ op: 'add', path: pointer('spec', 'initContainers', '-'), value: sidecar });
  else patch.push({ op: 'add', path: pointer('spec', 'initContainers'), value: [sidecar] });

  const grace = spec.terminationGracePeriodSeconds;
  if (typeof grace !== 'number' || grace < MIN_TERMINATION_GRACE_SECONDS) {
    patch.push({ op: 'add', path: pointer('spec', 'terminationGracePeriodSeconds'), value: MIN_TERMINATION_GRACE_SECONDS });
    if (typeof grace === 'number') {
      warnings.push(
        `courier-injector: terminationGracePeriodSeconds raised from ${grace} to ${MIN_TERMINATION_GRACE_SECONDS} so that Courier can drain after the app stopped`,
      );
    }
  }
  // `add` on an existing member replaces it (RFC 6902 4.1), so a copied status annotation is harmless.
  patch.push({ op: 'add', path: pointer('metadata', 'annotations', ANNOTATION.status), value: 'injected' });
  if (isObject(metadata.labels)) patch.push({ op: 'add', path: pointer('metadata', 'labels', SIDECAR_LABEL), value: 'true' });
  else patch.push({ op: 'add', path: pointer('metadata', 'labels'), value: { [SIDECAR_LABEL]: 'true' } });

  return answer(
    { allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64'), ...(warnings.length > 0 ? { warnings } : {}) },
    'injected',
  );
}

function badRequest(message: string): WebhookAnswer {
  return { status: 400, body: { error: 'bad_request', message }, outcome: 'malformed' };
}

/** What makes `pod` unusable for a patch, or undefined. Only what the patch relies on is checked. */
function podProblem(pod: unknown): string | undefined {
  if (!isObject(pod)) return 'request.object is not an object';
  if (pod.kind !== undefined && pod.kind !== 'Pod') return `request.object is a ${JSON.stringify(pod.kind)}, not a Pod`;
  if (pod.metadata !== undefined && !isObject(pod.metadata)) return 'metadata is not an object';
  const metadata = (pod.metadata ?? {}) as Record<string, unknown>;
  for (const field of ['annotations', 'labels'] as const) {
    const map = metadata[field];
    if (map === undefined || map === null) continue;
    if (!isObject(map) || Object.values(map).some((v) => typeof v !== 'string')) return `metadata.${field} must map strings to strings`;
  }
  if (!isObject(pod.spec)) return 'spec is missing';
  const { containers, initContainers } = pod.spec;
  if (!Array.isArray(containers) || containers.length === 0) return 'spec.containers must be a non-empty list';
  if (initContainers !== undefined && initContainers !== null && !Array.isArray(initContainers)) return 'spec.initContainers must be a list';
  for (const container of [...containers, ...((initContainers as unknown[] | null | undefined) ?? [])]) {
    if (!isObject(container) || typeof container.name !== 'string') return 'every container needs a name';
    if (container.ports !== undefined && container.ports !== null && !Array.isArray(container.ports))
      return `ports of container ${container.name} must be a list`;
  }
  return undefined;
}

// Kafka's legal topic names (and not "." or ".."), a DNS-1123 subdomain for object names.
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// An absolute URL path (RFC 3986 pchar, '/' and an optional query).
const PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?$/;

function port(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,5}$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** The annotations → sidecar settings, or every problem with its fix. */
export function parseAnnotations(annotations: Record<string, string>): { settings: Omit<SidecarSettings, 'image'> } | { problems: string[] } {
  const problems: string[] = [];
  const get = (key: string) => {
    const value = annotations[key];
    return value === undefined ? undefined : value.trim();
  };

  const groupId = get(ANNOTATION.groupId);
  if (!groupId) problems.push(`${ANNOTATION.groupId} is required: the Kafka consumer group, e.g. "orders-processor"`);
  else if (groupId.length > 255 || /[\u0000-\u001f\u007f]/.test(groupId)) problems.push(`${ANNOTATION.groupId} must be at most 255 printable characters`);

  const topicsRaw = get(ANNOTATION.topics);
  const topics = (topicsRaw ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (topics.length === 0) problems.push(`${ANNOTATION.topics} is required: comma-separated topic names, e.g. "orders,payments"`);
  for (const topic of topics) {
    if (!TOPIC.test(topic) || topic === '.' || topic === '..')
      problems.push(`${ANNOTATION.topics}: ${JSON.stringify(topic)} is not a Kafka topic name (letters, digits, ".", "_", "-")`);
  }

  const appPortRaw = get(ANNOTATION.appPort);
  const appPort = port(appPortRaw);
  if (appPortRaw === undefined || appPortRaw === '')
    problems.push(`${ANNOTATION.appPort} is required: the port your app listens on inside the pod, e.g. "3000"`);
  else if (appPort === undefined) problems.push(`${ANNOTATION.appPort} must be a port number (1-65535), got ${JSON.stringify(appPortRaw)}`);

  const appPath = get(ANNOTATION.appPath) || '/';
  if (!PATH.test(appPath)) problems.push(`${ANNOTATION.appPath} must be a URL path starting with "/", got ${JSON.stringify(appPath)}`);

  const courierPortRaw = get(ANNOTATION.port);
  const courierPort = courierPortRaw ? port(courierPortRaw) : DEFAULT_COURIER_PORT;
  if (courierPort === undefined) problems.push(`${ANNOTATION.port} must be a port number (1-65535), got ${JSON.stringify(courierPortRaw)}`);
  else if (appPort !== undefined && courierPort === appPort)
    problems.push(`${ANNOTATION.appPort} and Courier's own port are both ${appPort}: set ${ANNOTATION.port} to a free port`);

  const optionalName = (key: string, what: string) => {
    const value = get(key);
    if (value === undefined || value === '') return undefined;
    if (value.length > 253 || !OBJECT_NAME.test(value)) problems.push(`${key} must be the name of a ${what} in this namespace, got ${JSON.stringify(value)}`);
    return value;
  };
  const configMap = optionalName(ANNOTATION.config, 'ConfigMap');
  const secret = optionalName(ANNOTATION.secret, 'Secret');

  if (problems.length > 0) return { problems };
  return {
    settings: {
      groupId: groupId!,
      topics,
      appPort: appPort!,
      appPath,
      courierPort: courierPort!,
      ...(configMap ? { configMap } : {}),
      ...(secret ? { secret } : {}),
    },
  };
}

/** Names and ports the sidecar needs that a container of the pod already has. */
function conflictsWith(containers: Array<Record<string, unknown>>, settings: SidecarSettings): string[] {
  const problems: string[] = [];
  for (const container of containers) {
    if (container.name === SIDECAR_NAME) problems.push(`a container is already named "${SIDECAR_NAME}"; rename it or add Courier by hand`);
    for (const p of (container.ports as Array<Record<string, unknown>> | undefined) ?? []) {
      if (p.containerPort === settings.courierPort)
        problems.push(`container ${String(container.name)} uses port ${settings.courierPort}, Courier's own; set ${ANNOTATION.port} to a free port`);
      if (p.name === 'courier') problems.push(`container ${String(container.name)} has a port named "courier", which the sidecar's probes use`);
    }
  }
  return problems;
}
