import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { jwtClaims, type KafkaToken, type KafkaTokenProvider } from './token.js';

/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4), as librdkafka's `sasl.oauthbearer.method=oidc` does
 * it, read from the same properties. librdkafka's own needs libcurl, which Courier's build and image
 * leave out; running the flow here also names each failure (kafka/token.ts turns it into
 * `kafka_token_failed`).
 */

export interface OidcSettings {
  readonly tokenEndpointUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string | undefined;
  /** `sasl.oauthbearer.extensions`: key=value pairs sent with the token. */
  readonly extensions?: Readonly<Record<string, string>> | undefined;
  /** The claim that names the principal (librdkafka's `sasl.oauthbearer.sub.claim.name`, default sub). */
  readonly subClaim: string;
  /** PEM file of the CA that signed the endpoint's certificate (`https.ca.location`); the system store otherwise. */
  readonly caLocation?: string | undefined;
}

const REQUEST_TIMEOUT_MS = 10_000;
const CREDENTIALS_FIX = 'check KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET with the identity provider';

export class OidcTokenProvider implements KafkaTokenProvider {
  readonly name = 'oidc';
  private readonly dispatcher: Agent | undefined;

  constructor(
    private readonly settings: OidcSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.dispatcher = settings.caLocation ? new Agent({ connect: { ca: readFileSync(settings.caLocation, 'utf8') } }) : undefined;
  }

  async token(): Promise<KafkaToken> {
    const { settings } = this;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (settings.scope) form.set('scope', settings.scope);
    const basic = Buffer.from(`${encodeURIComponent(settings.clientId)}:${encodeURIComponent(settings.clientSecret)}`).toString('base64');
    let status: number;
    let body: string;
    try {
      const answer = await request(settings.tokenEndpointUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      });
      status = answer.statusCode;
      body = await answer.body.text();
    } catch (error) {
      throw failure(
        `cannot reach the token endpoint ${settings.tokenEndpointUrl}: ${(error as Error).message}`,
        'check KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL (and KAFKA_HTTPS_CA_LOCATION for a private CA)',
      );
    }
    let answer: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      answer = JSON.parse(body) as typeof answer;
    } catch {
      if (status === 200)
        throw failure(`the token endpoint ${settings.tokenEndpointUrl} answered something that is not JSON`, 'check KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL');
    }
    if (status !== 200) {
      const said =
        typeof answer.error === 'string'
          ? `${answer.error}${typeof answer.error_description === 'string' ? `: ${answer.error_description}` : ''}`
          : body.slice(0, 200);
      throw failure(
        `the token endpoint answered HTTP ${status}: ${said}`,
        status === 400 || status === 401 ? CREDENTIALS_FIX : 'check KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL',
      );
    }
    if (typeof answer.access_token !== 'string' || answer.access_token === '') {
      throw failure('the token endpoint answered without an access_token', 'check KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL');
    }
    const value = answer.access_token;
    // A JWT's own exp and subject claim, as librdkafka reads them; an opaque token's expires_in otherwise.
    const claims = jwtClaims(value, settings.subClaim);
    const expiresAtMs = claims ? claims.exp * 1000 : typeof answer.expires_in === 'number' ? this.now() + answer.expires_in * 1000 : undefined;
    if (expiresAtMs === undefined) {
      throw failure('the access token is not a JWT with exp, and the answer has no expires_in', 'ask the identity provider for JWT access tokens');
    }
    return { value, expiresAtMs, principal: claims?.sub ?? settings.clientId, ...(settings.extensions ? { extensions: settings.extensions } : {}) };
  }

  close(): Promise<void> {
    return this.dispatcher?.close() ?? Promise.resolve();
  }
}

function failure(message: string, fix: string): Error {
  return Object.assign(new Error(message), { fix });
}
