import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCredentialProvider, AwsCredentialsError, type AwsEnvironment, credentialSourceOf } from '../../src/aws/credentials.js';

/** A local HTTP server standing in for STS or the Pod Identity agent: records requests, answers as told. */
async function endpoint(answer: (request: IncomingMessage, body: string) => { status: number; body: string }) {
  const requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      const { status, body: text } = answer(request, body);
      response.writeHead(status).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

const BASE: AwsEnvironment = { region: 'eu-west-1', stsEndpoint: 'http://127.0.0.1:1' };
const dir = mkdtempSync(join(tmpdir(), 'courier-aws-'));

function stsCredentials(id: string, expiration: string): string {
  return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>session&amp;${id}</SessionToken>
      <SecretAccessKey>secret-${id}</SecretAccessKey>
      <Expiration>${expiration}</Expiration>
      <AccessKeyId>ASIA${id}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`;
}

describe('credentialSourceOf', () => {
  it('prefers static keys, then a web identity, then the container endpoint, as the AWS SDKs do', () => {
    const all = { ...BASE, accessKeyId: 'a', secretAccessKey: 's', webIdentityTokenFile: '/t', roleArn: 'r', containerCredentialsUri: 'http://x' };
    expect(credentialSourceOf(all)).toBe('environment');
    expect(credentialSourceOf({ ...all, accessKeyId: undefined })).toBe('web identity');
    expect(credentialSourceOf({ ...all, accessKeyId: undefined, roleArn: undefined })).toBe('container');
    expect(credentialSourceOf(BASE)).toBeUndefined();
  });
});

describe('AwsCredentialProvider', () => {
  it('uses static keys from the environment as they are', async () => {
    const provider = new AwsCredentialProvider({ ...BASE, accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
    await expect(provider.credentials()).resolves.toEqual({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
  });

  it('exchanges the IRSA web identity token with STS, reading the token file each time, and refreshes 5 minutes before expiry', async () => {
    let now = Date.parse('2026-11-30T00:00:00Z');
    let issued = 0;
    const sts = await endpoint(() => {
      issued++;
      return { status: 200, body: stsCredentials(String(issued), new Date(now + 3_600_000).toISOString()) };
    });
    const tokenFile = join(dir, 'irsa-token');
    writeFileSync(tokenFile, 'jwt-one\n');
    const provider = new AwsCredentialProvider(
      { ...BASE, webIdentityTokenFile: tokenFile, roleArn: 'arn:aws:iam::123456789012:role/courier', roleSessionName: 'pod-a', stsEndpoint: sts.url },
      () => now,
    );

    const first = await provider.credentials();
    expect(first).toEqual({ accessKeyId: 'ASIA1', secretAccessKey: 'secret-1', sessionToken: 'session&1', expiresAtMs: now + 3_600_000 });
    const form = new URLSearchParams(sts.requests[0]?.body);
    expect(sts.requests[0]?.method).toBe('POST');
    expect(Object.fromEntries(form)).toEqual({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: 'arn:aws:iam::123456789012:role/courier',
      RoleSessionName: 'pod-a',
      WebIdentityToken: 'jwt-one',
    });

    now += 54 * 60_000; // 6 minutes left: still cached
    await expect(provider.credentials()).resolves.toBe(first);
    expect(sts.requests).toHaveLength(1);

    writeFileSync(tokenFile, 'jwt-two');
    now += 2 * 60_000; // 4 minutes left: refreshed, with the rotated token
    const second = await provider.credentials();
    expect(second.accessKeyId).toBe('ASIA2');
    expect(new URLSearchParams(sts.requests[1]?.body).get('WebIdentityToken')).toBe('jwt-two');
  });

  it('asks STS once for concurrent callers', async () => {
    const sts = await endpoint(() => ({ status: 200, body: stsCredentials('x', '2099-01-01T00:00:00Z') }));
    const tokenFile = join(dir, 'irsa-concurrent');
    writeFileSync(tokenFile, 'jwt');
    const provider = new AwsCredentialProvider({ ...BASE, webIdentityTokenFile: tokenFile, roleArn: 'arn:r', stsEndpoint: sts.url });
    const [a, b] = await Promise.all([provider.credentials(), provider.credentials()]);
    expect(a).toBe(b);
    expect(sts.requests).toHaveLength(1);
  });

  it("names STS's refusal and the trust policy to check", async () => {
    const sts = await endpoint(() => ({
      status: 403,
      body: '<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>',
    }));
    const tokenFile = join(dir, 'irsa-refused');
    writeFileSync(tokenFile, 'jwt');
    const provider = new AwsCredentialProvider({ ...BASE, webIdentityTokenFile: tokenFile, roleArn: 'arn:aws:iam::1:role/x', stsEndpoint: sts.url });
    const error = await provider.credentials().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsCredentialsError);
    expect((error as AwsCredentialsError).message).toBe(
      'STS refused AssumeRoleWithWebIdentity for arn:aws:iam::1:role/x: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity',
    );
    expect((error as AwsCredentialsError).fix).toContain('trust policy');
  });

  it('says which token file is missing', async () => {
    const provider = new AwsCredentialProvider({ ...BASE, webIdentityTokenFile: join(dir, 'absent'), roleArn: 'arn:r' });
    await expect(provider.credentials()).rejects.toThrow(`cannot read the web identity token ${join(dir, 'absent')}: ENOENT`);
  });

  it('reads EKS Pod Identity credentials with the rotated authorization token', async () => {
    const agent = await endpoint(() => ({
      status: 200,
      body: JSON.stringify({ AccessKeyId: 'ASIAPOD', SecretAccessKey: 'pod-secret', Token: 'pod-token', Expiration: '2099-01-01T00:00:00Z', AccountId: '1' }),
    }));
    const authFile = join(dir, 'pod-identity-token');
    writeFileSync(authFile, 'agent-token-1\n');
    const provider = new AwsCredentialProvider({ ...BASE, containerCredentialsUri: `${agent.url}/v1/credentials`, containerAuthorizationTokenFile: authFile });
    await expect(provider.credentials()).resolves.toEqual({
      accessKeyId: 'ASIAPOD',
      secretAccessKey: 'pod-secret',
      sessionToken: 'pod-token',
      expiresAtMs: Date.parse('2099-01-01T00:00:00Z'),
    });
    expect(agent.requests[0]).toMatchObject({ method: 'GET', url: '/v1/credentials' });
    expect(agent.requests[0]?.headers.authorization).toBe('agent-token-1');
  });

  it('says what the container endpoint answered when it refuses', async () => {
    const agent = await endpoint(() => ({ status: 400, body: '{"Message":"no association"}' }));
    const provider = new AwsCredentialProvider({ ...BASE, containerCredentialsUri: agent.url });
    await expect(provider.credentials()).rejects.toThrow(`the container credentials endpoint ${agent.url} answered HTTP 400: {"Message":"no association"}`);
  });

  it('says when the endpoint cannot be reached, and that no source is configured', async () => {
    await expect(new AwsCredentialProvider({ ...BASE, containerCredentialsUri: 'http://127.0.0.1:1/creds' }).credentials()).rejects.toThrow(
      /^cannot reach the container credentials endpoint at http:\/\/127\.0\.0\.1:1\/creds: /,
    );
    await expect(new AwsCredentialProvider(BASE).credentials()).rejects.toThrow('no AWS credentials in the environment');
  });
});
