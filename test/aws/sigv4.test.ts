import { describe, expect, it } from 'vitest';
import { canonicalRequest, EMPTY_PAYLOAD_SHA256, presignQuery, sha256Hex, signHeaders } from '../../src/aws/sigv4.js';

// AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite): its credentials, date and scope.
const SUITE_CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SUITE_SCOPE = { region: 'us-east-1', service: 'service' };
const SUITE_TIME = Date.parse('2015-08-30T12:36:00Z');
const HOST = { host: 'example.amazonaws.com' };

function query(search: string): Array<[string, string]> {
  return search === '' ? [] : search.split('&').map((pair) => pair.split('=') as [string, string]);
}

describe('signHeaders against the aws-sig-v4-test-suite', () => {
  const cases = [
    { name: 'get-vanilla', path: '/', search: '', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
    {
      name: 'get-vanilla-query-order-key-case',
      path: '/',
      search: 'Param2=value2&Param1=value1',
      signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    },
    {
      name: 'get-vanilla-query-order-value',
      path: '/',
      search: 'Param1=value2&Param1=value1',
      signature: '5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694',
    },
    {
      name: 'get-unreserved',
      path: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
      search: '',
      signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f',
    },
  ];
  for (const vector of cases) {
    it(vector.name, () => {
      const signed = signHeaders(
        { method: 'GET', path: vector.path, query: query(vector.search), headers: HOST, payloadHash: EMPTY_PAYLOAD_SHA256 },
        SUITE_CREDENTIALS,
        SUITE_SCOPE,
        SUITE_TIME,
      );
      expect(signed.authorization).toBe(
        `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${vector.signature}`,
      );
      expect(signed.headers['x-amz-date']).toBe('20150830T123600Z');
    });
  }

  it('get-vanilla: the canonical request and the string to sign, line by line', () => {
    const signed = signHeaders(
      { method: 'GET', path: '/', query: [], headers: HOST, payloadHash: EMPTY_PAYLOAD_SHA256 },
      SUITE_CREDENTIALS,
      SUITE_SCOPE,
      SUITE_TIME,
    );
    expect(signed.canonicalRequest).toBe(
      ['GET', '/', '', 'host:example.amazonaws.com', 'x-amz-date:20150830T123600Z', '', 'host;x-amz-date', EMPTY_PAYLOAD_SHA256].join('\n'),
    );
    expect(signed.stringToSign).toBe(
      [
        'AWS4-HMAC-SHA256',
        '20150830T123600Z',
        '20150830/us-east-1/service/aws4_request',
        'bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
      ].join('\n'),
    );
  });

  it('post-x-www-form-urlencoded: a signed content-type and a body hash', () => {
    const payloadHash = sha256Hex('Param1=value1');
    expect(payloadHash).toBe('9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e');
    const signed = signHeaders(
      { method: 'POST', path: '/', query: [], headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...HOST }, payloadHash },
      SUITE_CREDENTIALS,
      SUITE_SCOPE,
      SUITE_TIME,
    );
    expect(signed.stringToSign.split('\n')[3]).toBe('42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281');
    expect(signed.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
    );
  });

  it('trims header values and collapses their inner spaces', () => {
    const { text } = canonicalRequest({
      method: 'GET',
      path: '/',
      query: [],
      headers: { 'My-Header1': '  value1  ', 'My-Header2': '"a   b   c"', ...HOST },
      payloadHash: '',
    });
    expect(text.split('\n').slice(3, 6)).toEqual(['host:example.amazonaws.com', 'my-header1:value1', 'my-header2:"a b c"']);
  });

  it('adds the session token of temporary credentials as a signed header', () => {
    const signed = signHeaders(
      { method: 'GET', path: '/', query: [], headers: HOST, payloadHash: EMPTY_PAYLOAD_SHA256 },
      { ...SUITE_CREDENTIALS, sessionToken: 'token' },
      SUITE_SCOPE,
      SUITE_TIME,
    );
    expect(signed.headers['x-amz-security-token']).toBe('token');
    expect(signed.authorization).toContain('SignedHeaders=host;x-amz-date;x-amz-security-token,');
  });
});

describe('presignQuery', () => {
  it("matches the S3 documentation's presigned URL example (query-string authentication)", () => {
    const query = presignQuery(
      { method: 'GET', host: 'examplebucket.s3.amazonaws.com', path: '/test.txt', query: [], payloadHash: 'UNSIGNED-PAYLOAD' },
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      { region: 'us-east-1', service: 's3' },
      Date.parse('2013-05-24T00:00:00Z'),
      86_400,
    );
    expect(query).toBe(
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });
});
