/**
 * Secrets never leave the process: every log line, error text and API answer that could carry one
 * (a librdkafka error quotes the offending value) passes through here.
 */
export const REDACTED = '[REDACTED]';

/** librdkafka properties whose values are secrets. */
export function isSecretProperty(name: string): boolean {
  // A token endpoint's URL is an address, not a secret: errors must be able to name it.
  return /password|secret|token(?!\.endpoint\.url$)|\.pem$|sasl\.oauthbearer\.config|sasl\.jaas/.test(name);
}

export type Redactor = (text: string) => string;

export function createRedactor(secrets: readonly string[]): Redactor {
  // Longest first, so a secret containing another is replaced whole. Very short values would
  // redact innocent text and are no secret worth the name.
  const values = [...new Set(secrets.filter((secret) => secret.length >= 4))].sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const value of values) if (out.includes(value)) out = out.replaceAll(value, REDACTED);
    return out;
  };
}
