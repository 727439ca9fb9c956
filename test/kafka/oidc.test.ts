import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type OidcSettings, OidcTokenProvider } from '../../src/kafka/oidc.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A local token endpoint standing in for the identity provider. */
async function tokenEndpoint(answer: (request: IncomingMessage, body: string) => { status: number; body: unknown }) {
  const requests: Array<{ authorization: string | undefined; contentType: string | undefined; body: string }> = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      requests.push({ authorization: request.headers.authorization, contentType: request.headers['content-type'], body });
      const reply = answer(request, body);
      response.writeHead(reply.status, { 'content-type': 'application/json' }).end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/token`, requests };
}

function jwt(claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(claims)}.c2lnbmF0dXJl`;
}

const settings = (url: string, extra: Partial<OidcSettings> = {}): OidcSettings => ({
  tokenEndpointUrl: url,
  clientId: 'courier',
  clientSecret: 's3cret:with/chars',
  subClaim: 'sub',
  ...extra,
});

describe('OidcTokenProvider (client credentials)', () => {
  it("posts the client credentials grant with HTTP Basic auth and the scope; the JWT's exp and sub are the token's", async () => {
    const accessToken = jwt({ sub: 'svc-courier', exp: 1_900_000_000 });
    const endpoint = await tokenEndpoint(() => ({ status: 200, body: { access_token: accessToken, token_type: 'Bearer', expires_in: 300 } }));
    const provider = new OidcTokenProvider(settings(endpoint.url, { scope: 'kafka', extensions: { logicalCluster: 'lkc-1' } }));
    await expect(provider.token()).resolves.toEqual({
      value: accessToken,
      expiresAtMs: 1_900_000_000_000,
      principal: 'svc-courier',
      extensions: { logicalCluster: 'lkc-1' },
    });
    const [request] = endpoint.requests;
    // RFC 6749 §2.3.1: id and secret form-encoded before Basic.
    expect(request?.authorization).toBe(`Basic ${Buffer.from('courier:s3cret%3Awith%2Fchars').toString('base64')}`);
    expect(request?.contentType).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(request?.body))).toEqual({ grant_type: 'client_credentials', scope: 'kafka' });
    await provider.close();
  });

  it('reads the principal from the configured claim, and an opaque token lives expires_in seconds', async () => {
    const endpoint = await tokenEndpoint((_request, body) =>
      new URLSearchParams(body).has('scope')
        ? { status: 500, body: 'unexpected scope' }
        : { status: 200, body: { access_token: 'opaque-token', expires_in: 120 } },
    );
    const opaque = new OidcTokenProvider(settings(endpoint.url), () => 1_000_000);
    await expect(opaque.token()).resolves.toEqual({ value: 'opaque-token', expiresAtMs: 1_000_000 + 120_000, principal: 'courier' });

    const claimed = await tokenEndpoint(() => ({ status: 200, body: { access_token: jwt({ sub: 'x', client_id: 'app-7', exp: 2_000_000_000 }) } }));
    await expect(new OidcTokenProvider(settings(claimed.url, { subClaim: 'client_id' })).token()).resolves.toMatchObject({ principal: 'app-7' });
  });

  it("names the identity provider's refusal and the settings to check", async () => {
    const endpoint = await tokenEndpoint(() => ({ status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } }));
    const error = (await new OidcTokenProvider(settings(endpoint.url)).token().catch((e: unknown) => e)) as Error & { fix: string };
    expect(error.message).toBe('the token endpoint answered HTTP 401: invalid_client: Client authentication failed');
    expect(error.fix).toBe('check KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET with the identity provider');
  });

  it('says when the endpoint cannot be reached, answers no token, or a token with no expiry', async () => {
    await expect(new OidcTokenProvider(settings('http://127.0.0.1:1/token')).token()).rejects.toThrow(
      /^cannot reach the token endpoint http:\/\/127\.0\.0\.1:1\/token: /,
    );
    const empty = await tokenEndpoint(() => ({ status: 200, body: { token_type: 'Bearer' } }));
    await expect(new OidcTokenProvider(settings(empty.url)).token()).rejects.toThrow('the token endpoint answered without an access_token');
    const forever = await tokenEndpoint(() => ({ status: 200, body: { access_token: 'opaque' } }));
    await expect(new OidcTokenProvider(settings(forever.url)).token()).rejects.toThrow(
      'the access token is not a JWT with exp, and the answer has no expires_in',
    );
  });
});
