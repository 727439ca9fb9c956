import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4, the parts Courier needs: the canonical request, the string to sign, the
 * signature, and a presigned URL (query-string authentication). Pure functions of their arguments;
 * checked against AWS's published test vectors in test/aws/sigv4.test.ts.
 */

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials (STS, IRSA, Pod Identity) come with a session token. */
  readonly sessionToken?: string | undefined;
  /** When temporary credentials stop working (ms since the epoch); undefined for long-lived keys. */
  readonly expiresAtMs?: number | undefined;
}

export interface SigningScope {
  readonly region: string;
  readonly service: string;
}

export interface RequestToSign {
  readonly method: string;
  /** Already normalised (no `.` or `..` segments); each segment is percent-encoded once. */
  readonly path: string;
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Names in any case; `host` is required. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD` where the service allows it (S3). */
  readonly payloadHash: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export const EMPTY_PAYLOAD_SHA256 = sha256Hex('');

/** RFC 3986: unreserved characters stay, every other byte becomes %XX with upper-case hex. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20150830T123600Z` and `20150830` for a moment in ms. */
export function amzDate(ms: number): { dateTime: string; date: string } {
  const dateTime = new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return { dateTime, date: dateTime.slice(0, 8) };
}

/** Encoded names and values, sorted by name then value, byte order (not locale order). */
export function canonicalQuery(query: ReadonlyArray<readonly [string, string]>): string {
  return query
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([nameA, valueA], [nameB, valueB]) => compare(nameA, nameB) || compare(valueA, valueB))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function canonicalRequest(request: RequestToSign): { text: string; signedHeaders: string } {
  const headers = Object.entries(request.headers)
    .map(([name, value]) => [name.toLowerCase(), value.trim().replace(/\s+/g, ' ')] as const)
    .sort(([a], [b]) => compare(a, b));
  const signedHeaders = headers.map(([name]) => name).join(';');
  const path = request.path.split('/').map(uriEncode).join('/') || '/';
  const text = [
    request.method.toUpperCase(),
    path,
    canonicalQuery(request.query),
    ...headers.map(([name, value]) => `${name}:${value}`),
    '',
    signedHeaders,
    request.payloadHash,
  ].join('\n');
  return { text, signedHeaders };
}

function credentialScope(date: string, scope: SigningScope): string {
  return `${date}/${scope.region}/${scope.service}/aws4_request`;
}

export function stringToSign(dateTime: string, scope: SigningScope, canonical: string): string {
  return [ALGORITHM, dateTime, credentialScope(dateTime.slice(0, 8), scope), sha256Hex(canonical)].join('\n');
}

export function signature(secretAccessKey: string, date: string, scope: SigningScope, toSign: string): string {
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), scope.region), scope.service), 'aws4_request');
  return createHmac('sha256', signingKey).update(toSign).digest('hex');
}

/** Header authentication: adds `x-amz-date` (and the session token) and returns the Authorization value. */
export function signHeaders(
  request: RequestToSign,
  credentials: AwsCredentials,
  scope: SigningScope,
  nowMs: number,
): { headers: Record<string, string>; authorization: string; canonicalRequest: string; stringToSign: string } {
  const { dateTime, date } = amzDate(nowMs);
  const headers: Record<string, string> = { ...request.headers, 'x-amz-date': dateTime };
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
  const canonical = canonicalRequest({ ...request, headers });
  const toSign = stringToSign(dateTime, scope, canonical.text);
  const authorization = `${ALGORITHM} Credential=${credentials.accessKeyId}/${credentialScope(date, scope)}, SignedHeaders=${canonical.signedHeaders}, Signature=${signature(credentials.secretAccessKey, date, scope, toSign)}`;
  return { headers, authorization, canonicalRequest: canonical.text, stringToSign: toSign };
}

/**
 * Query-string authentication: the request's own query, the X-Amz-* parameters (the session token
 * among the signed ones), then X-Amz-Signature; only `host` is a signed header. Returns the query.
 */
export function presignQuery(
  request: Omit<RequestToSign, 'headers'> & { readonly host: string },
  credentials: AwsCredentials,
  scope: SigningScope,
  nowMs: number,
  expiresSeconds: number,
): string {
  const { dateTime, date } = amzDate(nowMs);
  const query: Array<readonly [string, string]> = [
    ...request.query,
    ['X-Amz-Algorithm', ALGORITHM],
    ['X-Amz-Credential', `${credentials.accessKeyId}/${credentialScope(date, scope)}`],
    ['X-Amz-Date', dateTime],
    ['X-Amz-Expires', String(expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  if (credentials.sessionToken) query.push(['X-Amz-Security-Token', credentials.sessionToken]);
  const canonical = canonicalRequest({ ...request, query, headers: { host: request.host } });
  const toSign = stringToSign(dateTime, scope, canonical.text);
  query.push(['X-Amz-Signature', signature(credentials.secretAccessKey, date, scope, toSign)]);
  // In this order (not sorted), as botocore writes it: the same URL, byte for byte, as AWS's signers.
  return query.map(([name, value]) => `${uriEncode(name)}=${uriEncode(value)}`).join('&');
}
