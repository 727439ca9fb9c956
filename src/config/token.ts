import { type AwsEnvironment, credentialSourceOf } from '../aws/credentials.js';
import { regionOfMskBootstrap } from '../aws/msk-iam.js';
import type { OidcSettings } from '../kafka/oidc.js';
import { jwtClaims } from '../kafka/token.js';
import type { Report } from './kinds.js';
import type { KAFKA_TOKEN_PROVIDERS } from './settings.js';

/** Where OAUTHBEARER tokens come from when Courier makes them (COURIER_KAFKA_TOKEN_PROVIDER). */
export type KafkaTokenConfig =
  | { readonly provider: 'aws-msk-iam'; readonly aws: AwsEnvironment }
  | { readonly provider: 'file'; readonly path: string }
  | { readonly provider: 'oidc'; readonly oidc: OidcSettings };

export interface KafkaTokenResult {
  readonly token: KafkaTokenConfig | undefined;
  /** Secret values found (AWS keys, the OIDC client secret), for redaction. */
  readonly secrets: string[];
  /** librdkafka properties Courier takes over (OIDC), removed from what librdkafka sees. */
  readonly taken: string[];
}

export interface KafkaTokenInput {
  readonly provider: (typeof KAFKA_TOKEN_PROVIDERS)[number] | undefined;
  readonly file: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The consumer's librdkafka properties (the producer's security properties are the same). */
  readonly properties: Readonly<Record<string, string>>;
  readonly bootstrapServers: string;
  readonly readFile: (path: string) => string;
}

const PROVIDER = 'COURIER_KAFKA_TOKEN_PROVIDER';
const CONTAINER_HOSTS = new Set(['169.254.170.2', '169.254.170.23', '[fd00:ec2::23]', 'localhost', '[::1]']);

/**
 * Checks what a token provider needs that can be checked at start, and reads the AWS environment
 * once (main passes the environment in; nothing here touches `process`). Returns the secrets found.
 */
export function kafkaTokenConfig(input: KafkaTokenInput, report: Report): KafkaTokenResult {
  const { provider, properties, env } = input;
  const mechanism = (properties['sasl.mechanisms'] ?? properties['sasl.mechanism'] ?? '').toUpperCase();
  const oidc = properties['sasl.oauthbearer.method']?.toLowerCase() === 'oidc';
  const unsecuredJwt = properties['enable.sasl.oauthbearer.unsecure.jwt']?.toLowerCase() === 'true';

  if (!provider && oidc) return oidcTokenConfig(properties, mechanism, input.readFile, report);
  if (!provider) {
    if (mechanism === 'OAUTHBEARER' && !oidc && !unsecuredJwt) {
      report(
        'KAFKA_SASL_MECHANISM',
        'OAUTHBEARER needs a source of tokens',
        'set KAFKA_SASL_OAUTHBEARER_METHOD=oidc with KAFKA_SASL_OAUTHBEARER_CLIENT_ID, KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET and KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL (an OIDC provider), or COURIER_KAFKA_TOKEN_PROVIDER=aws-msk-iam (Amazon MSK) or =file',
      );
    }
    if (input.file)
      report('COURIER_KAFKA_TOKEN_FILE', 'is set without COURIER_KAFKA_TOKEN_PROVIDER=file', 'set COURIER_KAFKA_TOKEN_PROVIDER=file, or unset it');
    return { token: undefined, secrets: [], taken: [] };
  }

  if (mechanism !== 'OAUTHBEARER') {
    report(
      PROVIDER,
      `makes OAUTHBEARER tokens, but the SASL mechanism is ${mechanism ? `"${mechanism}"` : 'not set'}`,
      `set KAFKA_SASL_MECHANISM=OAUTHBEARER and KAFKA_SECURITY_PROTOCOL=SASL_SSL${provider === 'aws-msk-iam' ? ' (MSK IAM listens on port 9098)' : ''}`,
    );
  }
  if (oidc) report(PROVIDER, 'and KAFKA_SASL_OAUTHBEARER_METHOD=oidc both make tokens', "keep one: librdkafka's OIDC client, or Courier's provider");
  if (unsecuredJwt)
    report(PROVIDER, 'and KAFKA_ENABLE_SASL_OAUTHBEARER_UNSECURE_JWT=true both make tokens', 'unset KAFKA_ENABLE_SASL_OAUTHBEARER_UNSECURE_JWT');

  if (provider === 'file') {
    const path = input.file;
    if (!path) {
      report(
        'COURIER_KAFKA_TOKEN_FILE',
        'is required with COURIER_KAFKA_TOKEN_PROVIDER=file',
        'set it to the JWT file, e.g. a projected serviceAccountToken path',
      );
      return { token: undefined, secrets: [], taken: [] };
    }
    let text: string | undefined;
    try {
      text = input.readFile(path).trim();
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
      report('COURIER_KAFKA_TOKEN_FILE', `the file ${path} ${reason}`, 'mount the token there (e.g. a projected serviceAccountToken volume), or fix the path');
    }
    if (text !== undefined && !jwtClaims(text)) {
      report(
        'COURIER_KAFKA_TOKEN_FILE',
        `the file ${path} holds no JWT with a numeric exp claim`,
        'write a JWT (header.payload.signature) whose payload has exp (and sub)',
      );
    }
    return { token: { provider, path }, secrets: [], taken: [] };
  }

  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || regionOfMskBootstrap(input.bootstrapServers);
  if (!region) {
    report(PROVIDER, 'needs the AWS region of the MSK cluster', 'set AWS_REGION (EKS sets it with IRSA and Pod Identity), e.g. AWS_REGION=eu-west-1');
  }
  let containerCredentialsUri = env.AWS_CONTAINER_CREDENTIALS_FULL_URI || undefined;
  if (!containerCredentialsUri && env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
    containerCredentialsUri = `http://169.254.170.2${env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}`;
  if (containerCredentialsUri) {
    let url: URL | undefined;
    try {
      url = new URL(containerCredentialsUri);
    } catch {
      report('AWS_CONTAINER_CREDENTIALS_FULL_URI', `"${containerCredentialsUri}" is not a URL`, 'leave it as EKS Pod Identity or ECS sets it');
    }
    // The SDKs' rule: credentials over plain HTTP only from the node's own agent.
    if (url && url.protocol === 'http:' && !CONTAINER_HOSTS.has(url.hostname) && !url.hostname.startsWith('127.')) {
      report(
        'AWS_CONTAINER_CREDENTIALS_FULL_URI',
        `${url.host} is neither a loopback nor an EKS/ECS agent address, and the URL is not https`,
        'use https, or the agent address EKS Pod Identity sets',
      );
    }
  }
  // A source given by half is reported as such, not again as "no credentials".
  const halfGiven = Boolean((env.AWS_ACCESS_KEY_ID && !env.AWS_SECRET_ACCESS_KEY) || (env.AWS_ROLE_ARN && !env.AWS_WEB_IDENTITY_TOKEN_FILE));
  if (env.AWS_ACCESS_KEY_ID && !env.AWS_SECRET_ACCESS_KEY) {
    report('AWS_SECRET_ACCESS_KEY', 'is required with AWS_ACCESS_KEY_ID', 'set both (from a Secret), or neither and use IRSA or EKS Pod Identity');
  }
  if (env.AWS_ROLE_ARN && !env.AWS_WEB_IDENTITY_TOKEN_FILE) {
    report('AWS_WEB_IDENTITY_TOKEN_FILE', 'is required with AWS_ROLE_ARN', 'annotate the service account with eks.amazonaws.com/role-arn so EKS sets both');
  }
  const aws: AwsEnvironment = {
    region: region ?? '',
    accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
    sessionToken: env.AWS_SESSION_TOKEN || undefined,
    webIdentityTokenFile: env.AWS_WEB_IDENTITY_TOKEN_FILE || undefined,
    roleArn: env.AWS_ROLE_ARN || undefined,
    roleSessionName: env.AWS_ROLE_SESSION_NAME || undefined,
    containerCredentialsUri,
    containerAuthorizationToken: env.AWS_CONTAINER_AUTHORIZATION_TOKEN || undefined,
    containerAuthorizationTokenFile: env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE || undefined,
    stsEndpoint:
      env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL || `https://sts.${region ?? 'us-east-1'}.amazonaws.com${region?.startsWith('cn-') ? '.cn' : ''}`,
  };
  if (!credentialSourceOf(aws) && !halfGiven) {
    report(
      PROVIDER,
      'found no AWS credentials in the environment',
      'use IRSA (annotate the service account with eks.amazonaws.com/role-arn), EKS Pod Identity (an association for the service account), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from a Secret',
    );
  }
  const secrets = [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, env.AWS_CONTAINER_AUTHORIZATION_TOKEN].filter((value): value is string => Boolean(value));
  return { token: { provider, aws }, secrets, taken: [] };
}

/**
 * librdkafka's OIDC settings, run by Courier (kafka/oidc.ts): this build of librdkafka has no
 * libcurl, so librdkafka must not see them. Only the client credentials grant is supported.
 */
function oidcTokenConfig(
  properties: Readonly<Record<string, string>>,
  mechanism: string,
  readFile: (path: string) => string,
  report: Report,
): KafkaTokenResult {
  if (mechanism !== 'OAUTHBEARER') {
    report(
      'KAFKA_SASL_OAUTHBEARER_METHOD',
      `is oidc, but the SASL mechanism is ${mechanism ? `"${mechanism}"` : 'not set'}`,
      'set KAFKA_SASL_MECHANISM=OAUTHBEARER',
    );
  }
  const taken = Object.keys(properties).filter(
    (name) => (name.startsWith('sasl.oauthbearer.') && name !== 'sasl.oauthbearer.config') || name === 'https.ca.location',
  );
  const clientId = properties['sasl.oauthbearer.client.id'] ?? properties['sasl.oauthbearer.client.credentials.client.id'];
  const clientSecret = properties['sasl.oauthbearer.client.secret'] ?? properties['sasl.oauthbearer.client.credentials.client.secret'];
  const tokenEndpointUrl = properties['sasl.oauthbearer.token.endpoint.url'];
  const needs = (variable: string, fix: string) => report(variable, 'is required with KAFKA_SASL_OAUTHBEARER_METHOD=oidc', fix);
  if (!clientId) needs('KAFKA_SASL_OAUTHBEARER_CLIENT_ID', 'set it to the client id the identity provider issued');
  if (!clientSecret) needs('KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET', 'set it (or KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET_FILE) to the client secret');
  if (!tokenEndpointUrl)
    needs('KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL', "set it to the identity provider's token endpoint, e.g. https://idp.example.com/oauth2/token");
  else if (!/^https?:\/\/[^\s/]+/.test(tokenEndpointUrl)) {
    report(
      'KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL',
      `"${tokenEndpointUrl}" is not an http(s) URL`,
      'write the full URL, e.g. https://idp.example.com/oauth2/token',
    );
  }
  const grantType = properties['sasl.oauthbearer.grant.type'];
  if (grantType && grantType !== 'client_credentials') {
    report(
      'KAFKA_SASL_OAUTHBEARER_GRANT_TYPE',
      `"${grantType}" is not supported by Courier`,
      'use client_credentials (the default), or COURIER_KAFKA_TOKEN_PROVIDER=file with a token someone else obtains',
    );
  }
  const caLocation = properties['https.ca.location'];
  if (caLocation && caLocation !== 'probe') {
    try {
      readFile(caLocation);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
      report('KAFKA_HTTPS_CA_LOCATION', `the file ${caLocation} ${reason}`, "mount the PEM file of the CA that signed the token endpoint's certificate there");
    }
  }
  const extensions: Record<string, string> = {};
  for (const pair of (properties['sasl.oauthbearer.extensions'] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const [key, ...value] = pair.split('=');
    if (!key?.trim() || value.length === 0) {
      report(
        'KAFKA_SASL_OAUTHBEARER_EXTENSIONS',
        `"${pair}" is not key=value`,
        'write comma-separated key=value pairs, e.g. logicalCluster=lkc-123,identityPoolId=pool-1',
      );
      continue;
    }
    extensions[key.trim()] = value.join('=').trim();
  }
  if (!clientId || !clientSecret || !tokenEndpointUrl) return { token: undefined, secrets: [], taken };
  const oidc: OidcSettings = {
    tokenEndpointUrl,
    clientId,
    clientSecret,
    scope: properties['sasl.oauthbearer.scope'] || undefined,
    extensions: Object.keys(extensions).length > 0 ? extensions : undefined,
    subClaim: properties['sasl.oauthbearer.sub.claim.name'] || 'sub',
    caLocation: caLocation && caLocation !== 'probe' ? caLocation : undefined,
  };
  return { token: { provider: 'oidc', oidc }, secrets: [clientSecret], taken };
}
