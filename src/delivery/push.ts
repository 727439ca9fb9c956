import { createHmac } from 'node:crypto';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { MEDIA_TYPE } from '../media-type.js';
import type { KafkaRecord } from '../record.js';
import { APP_RESPONSE_MAX_BYTES, type AttemptResult, isUnreachableCode } from './outcome.js';

/**
 * One push attempt: the A2 request (headers built once per record) sent through an undici Agent
 * with keep-alive, turned into an AttemptResult. It never throws for anything the app or the
 * network does; `classify` decides what a result means.
 */

export interface PushSettings {
  readonly appToken?: string | undefined;
  /** Standard Webhooks keys; the first signs. Empty: no signature headers. */
  readonly signingKeys: readonly Buffer[];
  readonly ceSource?: (topic: string) => string;
}

/** The parts of a push that do not change between attempts. */
export interface PreparedPush {
  readonly headers: Record<string, string | string[]>;
  /** Stable across attempts: the idempotency key, equal to `ce-id` (the record's own ce_id, else its coordinates). */
  readonly messageId: string;
  /** Record header names left out because they are not HTTP tokens. */
  readonly droppedHeaders: number;
  /** Record headers forwarded as kafka-header-*, and the bytes their lines take. */
  readonly forwardedHeaders: number;
  readonly forwardedHeaderBytes: number;
}

export const CE_TYPE = 'dev.courier.kafka.record';
const CE_ATTRIBUTE = /^[a-z0-9]{1,20}$/;
/** RFC 9110 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const TRACESTATE = /^[\x20-\x2b\x2d-\x7e]*(,[\x20-\x2b\x2d-\x7e]*)*$/;
const HEX = '0123456789ABCDEF';

/** Percent-encodes every byte outside RFC 3986 "unreserved": safe in any header, lossless. */
export function percentEncode(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    const unreserved =
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f ||
      byte === 0x7e;
    out += unreserved ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/** CloudEvents HTTP binding: encode bytes outside printable ASCII, space, `"` and `%`. */
function ceEncode(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    const plain = byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25;
    out += plain ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/** A record header's value as the push's content type, when it is a media type. */
function validContentType(value: Buffer): string | undefined {
  const text = value.toString('latin1');
  return text.length <= 256 && MEDIA_TYPE.test(text) ? text : undefined;
}

/** W3C trace context taken from a record header only when well-formed. */
function validTraceparent(value: Buffer): string | undefined {
  const text = value.toString('latin1');
  return TRACEPARENT.test(text) ? text : undefined;
}

function validTracestate(value: Buffer): string | undefined {
  const text = value.toString('latin1');
  return text.length <= 512 && TRACESTATE.test(text) ? text : undefined;
}

function messageIdOf(record: Pick<KafkaRecord, 'topic' | 'partition' | 'offset'>): string {
  return `${record.topic}-${record.partition}-${record.offset}`;
}

const sourceByTopic = new Map<string, string>();

const MILLIS = Array.from({ length: 1000 }, (_, ms) => String(ms).padStart(3, '0'));
let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, which costs about 0.5 µs: the records of a batch share their
 * second, so the text up to the milliseconds is made once per second.
 */
export function isoTime(ms: number): string {
  if (!Number.isSafeInteger(ms)) return new Date(ms).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4); // up to and including "."
    isoSecond = second;
  }
  return `${isoPrefix}${MILLIS[ms - second * 1000]}Z`;
}

/**
 * The headers of a record's pushes, built once per record (attempts only change courier-attempt
 * and the signature). The common fields go in one object literal, in one shape, which V8 keeps
 * fast; this runs for every record.
 */
export function preparePush(record: KafkaRecord, settings: PushSettings, defaultContentType = 'application/octet-stream'): PreparedPush {
  // The route's default for records without a valid content-type header: JSON frameworks answer
  // 415 or 422 to application/octet-stream.
  let contentType = defaultContentType;
  let droppedHeaders = 0;
  let forwardedHeaders = 0;
  let forwardedHeaderBytes = 0;
  let ce: Record<string, string> | undefined;
  let extra: Record<string, string | string[]> | undefined;

  for (const [name, value] of record.headers) {
    if (!TOKEN.test(name)) {
      droppedHeaders++;
      continue;
    }
    const lower = name.toLowerCase();
    const headerName = `kafka-header-${lower}`;
    const encoded = percentEncode(value);
    forwardedHeaders++;
    forwardedHeaderBytes += headerName.length + encoded.length + 4; // ": " and CRLF
    extra ??= {};
    const existing = extra[headerName];
    if (existing === undefined) extra[headerName] = encoded;
    else if (Array.isArray(existing)) existing.push(encoded);
    else extra[headerName] = [existing, encoded];

    if (lower === 'content-type') contentType = validContentType(value) ?? contentType;
    else if (lower.startsWith('ce_') && CE_ATTRIBUTE.test(lower.slice(3))) {
      ce ??= {};
      ce[lower.slice(3)] = ceEncode(value);
    } else if (lower === 'traceparent') {
      const text = validTraceparent(value);
      if (text !== undefined) extra.traceparent = text;
    } else if (lower === 'tracestate') {
      const text = validTracestate(value);
      if (text !== undefined) extra.tracestate = text;
    }
  }

  // The record's own CloudEvents attributes win; Courier fills in what is required and missing.
  // webhook-id is the same idempotency key as ce-id: a producer's duplicate (same ce_id) is one message.
  const id = ce?.id ?? messageIdOf(record);
  let source = ce?.source ?? settings.ceSource?.(record.topic);
  if (source === undefined) {
    source = sourceByTopic.get(record.topic);
    if (source === undefined) {
      source = `/kafka/${record.topic}`;
      sourceByTopic.set(record.topic, source);
    }
  }
  const headers: Record<string, string | string[]> = {
    'content-type': contentType,
    'ce-specversion': ce?.specversion ?? '1.0',
    'ce-id': id,
    'ce-source': source,
    'ce-type': ce?.type ?? CE_TYPE,
    'kafka-topic': record.topic,
    'kafka-partition': String(record.partition),
    'kafka-offset': String(record.offset),
    'kafka-timestamp': String(record.timestamp),
    'courier-attempt': '1',
  };
  const time = ce?.time ?? (Number.isFinite(record.timestamp) && record.timestamp >= 0 ? isoTime(record.timestamp) : undefined);
  if (time !== undefined) headers['ce-time'] = time;
  if (ce) for (const attribute in ce) if (!(`ce-${attribute}` in headers)) headers[`ce-${attribute}`] = ce[attribute] as string;
  if (record.key !== null) headers['kafka-key'] = percentEncode(record.key);
  // A null value is a tombstone (a delete on a compacted topic), not an empty record.
  if (record.value === null) headers['kafka-tombstone'] = 'true';
  if (settings.appToken) headers.authorization = `Bearer ${settings.appToken}`;
  if (extra) Object.assign(headers, extra);
  return { headers, messageId: id, droppedHeaders, forwardedHeaders, forwardedHeaderBytes };
}

/** What a batch entry (DESIGN A6) needs of a record's A2 push, without building its headers. */
export interface RecordIdentity {
  /** `ce-id`: the record's own ce_id header (encoded as preparePush does), else its coordinates. */
  readonly messageId: string;
  readonly contentType: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/**
 * The id, content type and trace context preparePush would give the record (a test holds the two
 * equal), in one pass over the headers that looks only at those four names: a batch carries the
 * record's headers in its body, so the HTTP header work of preparePush is not needed.
 */
export function identify(record: KafkaRecord, defaultContentType = 'application/octet-stream'): RecordIdentity {
  let contentType = defaultContentType;
  let ceId: string | undefined;
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (const [name, value] of record.headers) {
    // The names of interest: ce_id (5), tracestate (10), traceparent (11), content-type (12).
    const length = name.length;
    if (length !== 5 && (length < 10 || length > 12)) continue;
    const lower = name.toLowerCase();
    if (lower === 'content-type') contentType = validContentType(value) ?? contentType;
    else if (lower === 'ce_id') ceId = ceEncode(value);
    else if (lower === 'traceparent') traceparent = validTraceparent(value) ?? traceparent;
    else if (lower === 'tracestate') tracestate = validTracestate(value) ?? tracestate;
  }
  const identity: { messageId: string; contentType: string; traceparent?: string; tracestate?: string } = {
    messageId: ceId ?? messageIdOf(record),
    contentType,
  };
  if (traceparent !== undefined) identity.traceparent = traceparent;
  if (tracestate !== undefined) identity.tracestate = tracestate;
  return identity;
}

/** Standard Webhooks: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`. */
export function signatureOf(key: Buffer, id: string, timestampSeconds: number, body: Buffer | null): string {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestampSeconds}.`);
  if (body) hmac.update(body);
  return `v1,${hmac.digest('base64')}`;
}

/**
 * The headers of one attempt: the prepared ones with this attempt's number and signature. The
 * prepared object is updated in place (undici copies headers when a request is created, and a
 * record's attempts run one after another), so an attempt allocates no header object.
 */
export function attemptHeaders(
  prepared: PreparedPush,
  body: Buffer | null,
  attempt: number,
  settings: PushSettings,
  nowSeconds: number,
): Record<string, string | string[]> {
  const headers = prepared.headers;
  headers['courier-attempt'] = String(attempt);
  if (settings.signingKeys.length > 0) {
    headers['webhook-id'] = prepared.messageId;
    headers['webhook-timestamp'] = String(nowSeconds);
    // One signature per configured secret, the first first: during a rotation the app verifies
    // with whichever key it holds (Standard Webhooks' space-separated signature list).
    headers['webhook-signature'] = settings.signingKeys.map((key) => signatureOf(key, prepared.messageId, nowSeconds, body)).join(' ');
  }
  return headers;
}

export interface PusherOptions {
  /** Pushes that can be in flight at once: sockets per app origin over HTTP/1.1. */
  readonly connections: number;
  /**
   * HTTP/2 to the app (COURIER_APP_HTTP2): cleartext with prior knowledge (h2c) for http:// URLs,
   * negotiated by ALPN for https://. Pushes share a few connections as streams, instead of a socket each.
   */
  readonly http2?: boolean;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** Streams per HTTP/2 connection: what most servers allow (Node's and undici's default is 100). */
const H2_STREAMS_PER_CONNECTION = 100;

/** An answer body longer than this is not read to the end: the socket is dropped instead. */
const MAX_DRAINED_BODY = 64 * 1024;

/**
 * One attempt as an undici dispatch handler. Courier only needs the status, Retry-After and, for the
 * DLQ, the start of a non-2xx body, so the answer is not turned into a stream (`request()` builds a
 * Readable and an async resource for every call, which showed in profiles): the body is counted and
 * dropped as it arrives. A 2xx body is never copied, so the hot path allocates nothing for it.
 */
class AttemptHandler implements Dispatcher.DispatchHandler {
  private status = 0;
  private retryAfter: string | undefined;
  private location: string | undefined;
  private bodyBytes = 0;
  private tooLong = false;
  /** Whether this answer's body is worth keeping: non-2xx ones can end in the DLQ. */
  private keep = false;
  private kept: Buffer | undefined;
  private keptBytes = 0;
  private keepMax = APP_RESPONSE_MAX_BYTES;

  constructor(
    private readonly settle: (result: AttemptResult) => void,
    /** Bytes of a 2xx body to keep (a batch answer lists its failures there); 0: none. */
    private readonly okBodyMax: number,
  ) {}

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    const ok = statusCode >= 200 && statusCode < 300;
    this.keep = !ok || this.okBodyMax > 0;
    this.keepMax = ok ? this.okBodyMax : APP_RESPONSE_MAX_BYTES;
    const retryAfter = headers['retry-after'];
    this.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    if (statusCode >= 300 && statusCode < 400) {
      const location = headers.location;
      this.location = Array.isArray(location) ? location[0] : location;
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.keep && this.keptBytes < this.keepMax && chunk.length > 0) {
      // Unpooled: a kept body can live until the DLQ write and should not pin an 8 KiB pool slab.
      this.kept ??= Buffer.allocUnsafeSlow(this.keepMax);
      this.keptBytes += chunk.copy(this.kept, this.keptBytes);
    }
    this.bodyBytes += chunk.length;
    if (this.bodyBytes > Math.max(MAX_DRAINED_BODY, this.keepMax) && !this.tooLong) {
      // The answer is known; reading megabytes of it to keep the socket is not worth it.
      this.tooLong = true;
      controller.abort(new Error('answer body too long'));
    }
  }

  onResponseEnd(): void {
    this.settle(this.response());
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.tooLong) {
      this.settle(this.response());
      return;
    }
    const code = errorCode(error);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') this.settle({ kind: 'timeout' });
    else if (isUnreachableCode(code)) this.settle({ kind: 'unreachable', code });
    else this.settle({ kind: 'connection-lost', code });
  }

  private response(): AttemptResult {
    const { status, retryAfter, kept, location } = this;
    // Extra fields only on non-2xx answers: a 2xx result keeps one shape.
    if (kept === undefined && location === undefined) return { kind: 'response', status, retryAfter };
    return { kind: 'response', status, retryAfter, location, body: kept?.subarray(0, this.keptBytes) };
  }
}

export class Pusher {
  private readonly agent: Agent;
  private readonly http2: boolean;

  constructor(options: PusherOptions) {
    this.http2 = options.http2 ?? false;
    this.agent = new Agent({
      ...(options.http2
        ? {
            connections: Math.max(1, Math.ceil(options.connections / H2_STREAMS_PER_CONNECTION)),
            allowH2: true,
            maxConcurrentStreams: H2_STREAMS_PER_CONNECTION,
            // undici limits a client's requests at once by `pipelining`, HTTP/2 streams included.
            pipelining: H2_STREAMS_PER_CONNECTION,
            // undici 7's Agent and Pool do not pass `useH2c` on to their clients: a connector built
            // with it marks a cleartext socket as h2 (prior knowledge).
            connect: buildConnector({ allowH2: true, useH2c: true, timeout: CONNECT_TIMEOUT_MS } as buildConnector.BuildOptions),
          }
        : { connections: options.connections, pipelining: 1, connect: { timeout: CONNECT_TIMEOUT_MS } }),
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * Sends one attempt. The per-attempt timeout is undici's own (headers, then body), so an attempt
   * costs no timer and no AbortController of ours. Never rejects.
   */
  push(url: URL, headers: Record<string, string | string[]>, body: Buffer | null, timeoutMs: number, okBodyMax = 0): Promise<AttemptResult> {
    return new Promise((resolve) => {
      this.agent.dispatch(
        {
          origin: url.origin,
          path: url.pathname + url.search,
          method: 'POST',
          headers,
          body: body ?? '',
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          // undici multiplexes only requests it may pipeline, and it pipelines no POST by default.
          // Over HTTP/1.1 (one request per socket) this changes nothing; over HTTP/2 it lets the
          // pushes share a connection, and undici may send a push again on a new connection when
          // the app closes its connection (GOAWAY): a duplicate, as when Courier retries a push
          // whose connection was lost.
          idempotent: this.http2,
        },
        new AttemptHandler(resolve, okBodyMax),
      );
    });
  }

  /** Cancels every request still running (shutdown, once the grace period is over). */
  async abortAll(): Promise<void> {
    await this.agent.destroy();
  }

  async close(): Promise<void> {
    if (!this.agent.destroyed) await this.agent.close();
  }
}

function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_ABORTED' && code !== 'ABORT_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return (error as { name?: string })?.name ?? 'UNKNOWN';
}
