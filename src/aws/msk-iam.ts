import { type AwsCredentials, EMPTY_PAYLOAD_SHA256, presignQuery } from './sigv4.js';

/**
 * The OAUTHBEARER token Amazon MSK accepts for IAM access control: a presigned
 * `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect` (SigV4, service
 * `kafka-cluster`), base64url without padding. AWS's own signers (aws-msk-iam-sasl-signer-*) make
 * the same URL; the broker checks the signature, the date and X-Amz-Expires.
 */

/** How long a token is valid; AWS's signers use the same 15 minutes. */
export const MSK_TOKEN_SECONDS = 900;

export interface MskIamToken {
  readonly value: string;
  /** When the broker stops accepting it: the URL's expiry, or the credentials' when sooner. */
  readonly expiresAtMs: number;
  /** The presigned URL, for tests and debugging (it holds no secret key, only the session token). */
  readonly url: string;
}

export function mskIamToken(credentials: AwsCredentials, region: string, nowMs: number, userAgent: string): MskIamToken {
  const host = `kafka.${region}.amazonaws.com`;
  const query = presignQuery(
    { method: 'GET', host, path: '/', query: [['Action', 'kafka-cluster:Connect']], payloadHash: EMPTY_PAYLOAD_SHA256 },
    credentials,
    { region, service: 'kafka-cluster' },
    nowMs,
    MSK_TOKEN_SECONDS,
  );
  // Not signed, as with AWS's signers: it names the client in the broker's logs.
  const url = `https://${host}/?${query}&User-Agent=${encodeURIComponent(userAgent)}`;
  // The URL carries X-Amz-Date in whole seconds: the token expires counted from there.
  const signedAtMs = Math.floor(nowMs / 1000) * 1000;
  const expiresAtMs = Math.min(signedAtMs + MSK_TOKEN_SECONDS * 1000, credentials.expiresAtMs ?? Number.POSITIVE_INFINITY);
  return { value: Buffer.from(url, 'utf8').toString('base64url'), expiresAtMs, url };
}

/** The region in an MSK bootstrap address (`b-1.x.y.c2.kafka.us-east-1.amazonaws.com:9098`), if any. */
export function regionOfMskBootstrap(bootstrapServers: string): string | undefined {
  return /\.kafka(?:-serverless)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?(?::\d+)?(?:,|$)/.exec(bootstrapServers)?.[1];
}

/** A Kafka token provider (kafka/token.ts) for MSK IAM: the pod's AWS credentials, signed per token. */
export class MskIamTokenProvider {
  readonly name = 'aws-msk-iam';

  constructor(
    private readonly source: { credentials(): Promise<AwsCredentials> },
    private readonly region: string,
    private readonly userAgent: string,
    private readonly now: () => number = Date.now,
  ) {}

  async token(): Promise<{ value: string; expiresAtMs: number; principal: string }> {
    const token = mskIamToken(await this.source.credentials(), this.region, this.now(), this.userAgent);
    // MSK takes the principal from the signature (the IAM role); librdkafka only records this name.
    return { value: token.value, expiresAtMs: token.expiresAtMs, principal: this.name };
  }
}
