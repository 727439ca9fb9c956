import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import type { AwsCredentials } from './sigv4.js';

/**
 * The pod's standard AWS credentials, in the AWS SDKs' order: static keys in the environment, then
 * a web identity token (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, exchanged with STS), then
 * the container credentials endpoint (EKS Pod Identity, ECS). The node's instance profile (IMDS) is
 * deliberately not used: a sidecar should not borrow the node's role.
 */

export interface AwsEnvironment {
  readonly region: string;
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly sessionToken?: string | undefined;
  readonly webIdentityTokenFile?: string | undefined;
  readonly roleArn?: string | undefined;
  readonly roleSessionName?: string | undefined;
  /** AWS_CONTAINER_CREDENTIALS_FULL_URI, or the ECS address + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
  readonly containerCredentialsUri?: string | undefined;
  readonly containerAuthorizationToken?: string | undefined;
  readonly containerAuthorizationTokenFile?: string | undefined;
  /** STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the regional one. */
  readonly stsEndpoint: string;
}

export type CredentialSource = 'environment' | 'web identity' | 'container';

/** Which source the environment names, or undefined when it names none. */
export function credentialSourceOf(env: AwsEnvironment): CredentialSource | undefined {
  if (env.accessKeyId && env.secretAccessKey) return 'environment';
  if (env.webIdentityTokenFile && env.roleArn) return 'web identity';
  if (env.containerCredentialsUri) return 'container';
  return undefined;
}

/** Why credentials could not be had, with what to check. */
export class AwsCredentialsError extends Error {
  override readonly name = 'AwsCredentialsError';
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/** Refresh temporary credentials this long before they expire (the SDKs use 5 minutes). */
const REFRESH_BEFORE_MS = 5 * 60_000;
const REQUEST_TIMEOUT_MS = 5_000;

export class AwsCredentialProvider {
  private cached: AwsCredentials | undefined;
  private pending: Promise<AwsCredentials> | undefined;
  readonly source: CredentialSource | undefined;

  constructor(
    private readonly env: AwsEnvironment,
    private readonly now: () => number = Date.now,
  ) {
    this.source = credentialSourceOf(env);
  }

  /** Credentials valid for at least a few minutes more; fetched once for concurrent callers. */
  async credentials(): Promise<AwsCredentials> {
    const cached = this.cached;
    if (cached && (cached.expiresAtMs === undefined || cached.expiresAtMs - this.now() > REFRESH_BEFORE_MS)) return cached;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    const fresh = await this.pending;
    this.cached = fresh;
    return fresh;
  }

  private async fetch(): Promise<AwsCredentials> {
    const { env } = this;
    switch (this.source) {
      case 'environment':
        return { accessKeyId: env.accessKeyId as string, secretAccessKey: env.secretAccessKey as string, sessionToken: env.sessionToken || undefined };
      case 'web identity':
        return this.assumeRoleWithWebIdentity(env.webIdentityTokenFile as string, env.roleArn as string);
      case 'container':
        return this.containerCredentials(env.containerCredentialsUri as string);
      default:
        throw new AwsCredentialsError(
          'no AWS credentials in the environment',
          'use IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, set by EKS for an annotated service account), EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI), or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY',
        );
    }
  }

  private async assumeRoleWithWebIdentity(tokenFile: string, roleArn: string): Promise<AwsCredentials> {
    let token: string;
    try {
      // Read each time: the kubelet rotates the projected token.
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new AwsCredentialsError(
        `cannot read the web identity token ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        'check the service account token volume EKS mounts for IRSA (AWS_WEB_IDENTITY_TOKEN_FILE)',
      );
    }
    const body = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: roleArn,
      RoleSessionName: this.env.roleSessionName || `courier-${this.now()}`,
      WebIdentityToken: token,
    }).toString();
    const fix = `check that role ${roleArn} trusts this service account (its trust policy names the cluster's OIDC provider and system:serviceaccount:<namespace>:<name>)`;
    const answer = await this.call(
      this.env.stsEndpoint,
      { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      'STS',
      fix,
    );
    if (answer.status !== 200) {
      const code = xmlText(answer.body, 'Code') ?? `HTTP ${answer.status}`;
      const message = xmlText(answer.body, 'Message') ?? '';
      throw new AwsCredentialsError(`STS refused AssumeRoleWithWebIdentity for ${roleArn}: ${code}${message ? `: ${message}` : ''}`, fix);
    }
    const accessKeyId = xmlText(answer.body, 'AccessKeyId');
    const secretAccessKey = xmlText(answer.body, 'SecretAccessKey');
    const sessionToken = xmlText(answer.body, 'SessionToken');
    const expiration = Date.parse(xmlText(answer.body, 'Expiration') ?? '');
    if (!accessKeyId || !secretAccessKey || !sessionToken || Number.isNaN(expiration))
      throw new AwsCredentialsError('STS answered AssumeRoleWithWebIdentity without credentials', `check AWS_ENDPOINT_URL_STS (${this.env.stsEndpoint})`);
    return { accessKeyId, secretAccessKey, sessionToken, expiresAtMs: expiration };
  }

  private async containerCredentials(uri: string): Promise<AwsCredentials> {
    const headers: Record<string, string> = {};
    const fix = 'check the EKS Pod Identity association of this service account (or the ECS task role) and that the agent is running';
    let authorization = this.env.containerAuthorizationToken;
    if (this.env.containerAuthorizationTokenFile) {
      try {
        // Read each time: EKS Pod Identity rotates it.
        authorization = (await readFile(this.env.containerAuthorizationTokenFile, 'utf8')).trim();
      } catch (error) {
        throw new AwsCredentialsError(
          `cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ${this.env.containerAuthorizationTokenFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          fix,
        );
      }
    }
    if (authorization) headers.authorization = authorization;
    const answer = await this.call(uri, { method: 'GET', headers }, 'the container credentials endpoint', fix);
    if (answer.status !== 200)
      throw new AwsCredentialsError(`the container credentials endpoint ${uri} answered HTTP ${answer.status}: ${answer.body.slice(0, 200)}`, fix);
    let parsed: { AccessKeyId?: unknown; SecretAccessKey?: unknown; Token?: unknown; Expiration?: unknown };
    try {
      parsed = JSON.parse(answer.body) as typeof parsed;
    } catch {
      throw new AwsCredentialsError(`the container credentials endpoint ${uri} answered something that is not JSON`, fix);
    }
    const { AccessKeyId, SecretAccessKey, Token, Expiration } = parsed;
    if (typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string')
      throw new AwsCredentialsError(`the container credentials endpoint ${uri} answered without AccessKeyId and SecretAccessKey`, fix);
    const expiresAtMs = typeof Expiration === 'string' ? Date.parse(Expiration) : Number.NaN;
    return {
      accessKeyId: AccessKeyId,
      secretAccessKey: SecretAccessKey,
      sessionToken: typeof Token === 'string' ? Token : undefined,
      expiresAtMs: Number.isNaN(expiresAtMs) ? undefined : expiresAtMs,
    };
  }

  private async call(
    url: string,
    options: { method: 'GET' | 'POST'; body?: string; headers: Record<string, string> },
    what: string,
    fix: string,
  ): Promise<{ status: number; body: string }> {
    try {
      const answer = await request(url, { ...options, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
      return { status: answer.statusCode, body: await answer.body.text() };
    } catch (error) {
      throw new AwsCredentialsError(`cannot reach ${what} at ${url}: ${(error as Error).message}`, fix);
    }
  }
}

/** The text of the first `<tag>` in an AWS XML answer (their values are plain: ids, keys, dates). */
function xmlText(xml: string, tag: string): string | undefined {
  const found = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
  return found
    ?.replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}
