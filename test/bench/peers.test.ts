import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lexer } from 'yaml';

/**
 * The peers' configurations (bench/peers/), which bench/run.mjs fills in. Benthos / Redpanda Connect
 * interpolates environment variables in the whole file, comments included, and refuses to start
 * when one is not set: a comment that shows a placeholder stops the peer.
 */

const root = resolve(import.meta.dirname, '../..');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** Every comment of a YAML text, whole-line or trailing, as the YAML lexer sees them (not # inside quotes). */
function comments(text: string): string[] {
  return [...new Lexer().lex(text)].filter((token) => token.startsWith('#'));
}

describe('bench/peers configurations', () => {
  const files = yamlFiles(join(root, 'bench/peers'));

  it('finds the comments of a YAML text, trailing ones too, and not a # inside a quoted value', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: YAML placeholders, not template strings
    expect(comments('# one\nurl: "http://x/#${NOT_A_COMMENT}"\nn: 1 # two ${X}\n')).toEqual(['# one', '# two ${X}']);
  });

  it.each(files.map((path) => [relative(root, path), path]))('%s: no placeholder in a comment, where Benthos would fill it in too', (_name, path) => {
    const offending = comments(readFileSync(path, 'utf8')).filter((comment) => comment.includes('${'));
    expect(offending).toEqual([]);
  });

  it('covers every peer configuration', () => {
    expect(files.map((path) => relative(root, path)).sort()).toEqual([
      'bench/peers/benthos.yaml',
      'bench/peers/camel/route.yaml',
      'bench/peers/daprd/kafka-pubsub.yaml',
      'bench/peers/daprd/subscription.yaml',
      'bench/peers/mq-bridge.yaml',
      'bench/peers/redpanda-connect.yaml',
    ]);
  });
});
