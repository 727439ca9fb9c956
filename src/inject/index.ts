/** `courier inject`: the sidecar-injecting mutating admission webhook. */
export {
  escapePointer,
  type InjectorOptions,
  type JsonPatchOperation,
  parseAnnotations,
  pointer,
  review,
  reviewBody,
  type WebhookAnswer,
} from './admission.js';
export { type InjectorIo, type RunningInjector, runInjector, startInjector } from './server.js';
export { ANNOTATION, COURIER_UID, courierSidecar, DEFAULT_COURIER_PORT, MIN_TERMINATION_GRACE_SECONDS, SIDECAR_LABEL, SIDECAR_NAME } from './sidecar.js';
