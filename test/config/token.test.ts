import { describe, expect, it } from 'vitest';
import { BASE, load, problemsOf, reader } from './helpers.js';

const OAUTH = { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' };
const MSK = { ...BASE, ...OAUTH, COURIER_KAFKA_TOKEN_PROVIDER: 'aws-msk-iam' };
const JWT = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"courier","exp":1900000000}').toString('base64url')}.`;

describe('loadConfig: COURIER_KAFKA_TOKEN_PROVIDER', () => {
  it('aws-msk-iam with IRSA: the region and the web identity are read once, the STS endpoint is the regional one', () => {
    const config = load({
      ...MSK,
      AWS_REGION: 'eu-west-1',
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/courier',
      AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
    });
    expect(config.kafkaToken).toEqual({
      provider: 'aws-msk-iam',
      aws: expect.objectContaining({
        region: 'eu-west-1',
        roleArn: 'arn:aws:iam::123456789012:role/courier',
        webIdentityTokenFile: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
        stsEndpoint: 'https://sts.eu-west-1.amazonaws.com',
      }),
    });
  });

  it('takes the region from an MSK bootstrap address, and keeps AWS secrets out of every output', () => {
    const config = load({
      ...MSK,
      KAFKA_BOOTSTRAP_SERVERS: 'b-1.orders.x1y2z3.c2.kafka.ap-southeast-2.amazonaws.com:9098',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_SESSION_TOKEN: 'session-token',
    });
    expect(config.kafkaToken?.provider === 'aws-msk-iam' && config.kafkaToken.aws.region).toBe('ap-southeast-2');
    expect(config.secrets).toEqual(expect.arrayContaining(['wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', 'session-token']));
  });

  it('EKS Pod Identity: the agent URI and its rotated token file', () => {
    const config = load({
      ...MSK,
      AWS_REGION: 'us-east-1',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
    });
    expect(config.kafkaToken).toMatchObject({
      aws: {
        containerCredentialsUri: 'http://169.254.170.23/v1/credentials',
        containerAuthorizationTokenFile: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
      },
    });
  });

  it('lists every problem at once: wrong mechanism, no region, no credentials, a key without its secret, plain HTTP to a foreign host', () => {
    const problems = problemsOf({
      ...BASE,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      COURIER_KAFKA_TOKEN_PROVIDER: 'aws-msk-iam',
      AWS_ACCESS_KEY_ID: 'AKID',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://evil.example.com/creds',
    });
    expect(problems).toEqual([
      {
        setting: 'COURIER_KAFKA_TOKEN_PROVIDER',
        problem: 'makes OAUTHBEARER tokens, but the SASL mechanism is "SCRAM-SHA-512"',
        fix: 'set KAFKA_SASL_MECHANISM=OAUTHBEARER and KAFKA_SECURITY_PROTOCOL=SASL_SSL (MSK IAM listens on port 9098)',
      },
      {
        setting: 'COURIER_KAFKA_TOKEN_PROVIDER',
        problem: 'needs the AWS region of the MSK cluster',
        fix: 'set AWS_REGION (EKS sets it with IRSA and Pod Identity), e.g. AWS_REGION=eu-west-1',
      },
      {
        setting: 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
        problem: 'evil.example.com is neither a loopback nor an EKS/ECS agent address, and the URL is not https',
        fix: 'use https, or the agent address EKS Pod Identity sets',
      },
      {
        setting: 'AWS_SECRET_ACCESS_KEY',
        problem: 'is required with AWS_ACCESS_KEY_ID',
        fix: 'set both (from a Secret), or neither and use IRSA or EKS Pod Identity',
      },
    ]);
  });

  it('no credential source at all is named with the three ways to give one', () => {
    expect(problemsOf({ ...MSK, AWS_REGION: 'eu-west-1' })).toEqual([
      expect.objectContaining({ setting: 'COURIER_KAFKA_TOKEN_PROVIDER', problem: 'found no AWS credentials in the environment' }),
    ]);
  });

  it('file: the JWT file must exist and hold exp; a provider and OIDC together are refused', () => {
    const files = reader({ '/var/run/secrets/kafka/token': `${JWT}\n`, '/tmp/opaque': 'opaque' });
    expect(
      load({ ...BASE, ...OAUTH, COURIER_KAFKA_TOKEN_PROVIDER: 'file', COURIER_KAFKA_TOKEN_FILE: '/var/run/secrets/kafka/token' }, files).kafkaToken,
    ).toEqual({
      provider: 'file',
      path: '/var/run/secrets/kafka/token',
    });
    expect(problemsOf({ ...BASE, ...OAUTH, COURIER_KAFKA_TOKEN_PROVIDER: 'file' }, files)).toEqual([
      expect.objectContaining({ setting: 'COURIER_KAFKA_TOKEN_FILE', problem: 'is required with COURIER_KAFKA_TOKEN_PROVIDER=file' }),
    ]);
    expect(problemsOf({ ...BASE, ...OAUTH, COURIER_KAFKA_TOKEN_PROVIDER: 'file', COURIER_KAFKA_TOKEN_FILE: '/tmp/opaque' }, files)).toEqual([
      expect.objectContaining({ problem: 'the file /tmp/opaque holds no JWT with a numeric exp claim' }),
    ]);
    expect(
      problemsOf(
        {
          ...BASE,
          ...OAUTH,
          KAFKA_SASL_OAUTHBEARER_METHOD: 'oidc',
          COURIER_KAFKA_TOKEN_PROVIDER: 'file',
          COURIER_KAFKA_TOKEN_FILE: '/var/run/secrets/kafka/token',
        },
        files,
      ),
    ).toEqual([expect.objectContaining({ setting: 'COURIER_KAFKA_TOKEN_PROVIDER', problem: 'and KAFKA_SASL_OAUTHBEARER_METHOD=oidc both make tokens' })]);
  });

  it('OAUTHBEARER with no source of tokens exits 78 instead of failing at every connect', () => {
    expect(problemsOf({ ...BASE, ...OAUTH })).toEqual([
      expect.objectContaining({ setting: 'KAFKA_SASL_MECHANISM', problem: 'OAUTHBEARER needs a source of tokens' }),
    ]);
  });
});

describe('loadConfig: KAFKA_SASL_OAUTHBEARER_METHOD=oidc (Courier runs the client credentials flow)', () => {
  const OIDC = {
    ...BASE,
    ...OAUTH,
    KAFKA_SASL_OAUTHBEARER_METHOD: 'oidc',
    KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'courier',
    KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: 'oidc-client-secret',
    KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: 'https://idp.example.com/oauth2/token',
    KAFKA_SASL_OAUTHBEARER_SCOPE: 'kafka',
    KAFKA_SASL_OAUTHBEARER_EXTENSIONS: 'logicalCluster=lkc-1,identityPoolId=pool-2',
  };

  it("takes librdkafka's OIDC properties away from librdkafka (this build has no libcurl) and keeps the secret for redaction", () => {
    const config = load(OIDC);
    expect(config.kafkaToken).toEqual({
      provider: 'oidc',
      oidc: {
        tokenEndpointUrl: 'https://idp.example.com/oauth2/token',
        clientId: 'courier',
        clientSecret: 'oidc-client-secret',
        scope: 'kafka',
        extensions: { logicalCluster: 'lkc-1', identityPoolId: 'pool-2' },
        subClaim: 'sub',
        caLocation: undefined,
      },
    });
    for (const properties of [config.consumer, config.producer]) {
      expect(Object.keys(properties).filter((name) => name.startsWith('sasl.oauthbearer.'))).toEqual([]);
      expect(properties['sasl.mechanisms'] ?? properties['sasl.mechanism']).toBe('OAUTHBEARER');
    }
    expect(config.secrets).toContain('oidc-client-secret');
  });

  it('lists what is missing or unsupported at once', () => {
    const problems = problemsOf(
      {
        ...BASE,
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_SASL_OAUTHBEARER_METHOD: 'oidc',
        KAFKA_SASL_OAUTHBEARER_GRANT_TYPE: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        KAFKA_HTTPS_CA_LOCATION: '/etc/idp/ca.pem',
        KAFKA_SASL_OAUTHBEARER_EXTENSIONS: 'novalue',
      },
      reader({}),
    );
    expect(problems.map((problem) => `${problem.setting}: ${problem.problem}`)).toEqual([
      'KAFKA_SASL_OAUTHBEARER_CLIENT_ID: is required with KAFKA_SASL_OAUTHBEARER_METHOD=oidc',
      'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: is required with KAFKA_SASL_OAUTHBEARER_METHOD=oidc',
      'KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: is required with KAFKA_SASL_OAUTHBEARER_METHOD=oidc',
      'KAFKA_SASL_OAUTHBEARER_GRANT_TYPE: "urn:ietf:params:oauth:grant-type:jwt-bearer" is not supported by Courier',
      'KAFKA_HTTPS_CA_LOCATION: the file /etc/idp/ca.pem does not exist',
      'KAFKA_SASL_OAUTHBEARER_EXTENSIONS: "novalue" is not key=value',
    ]);
  });
});
