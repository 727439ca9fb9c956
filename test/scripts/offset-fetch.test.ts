import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * librdkafka 2.15's admin client dies of SIGSEGV when the broker answers its OffsetFetch with
 * NOT_COORDINATOR (it queries the coordinator through a consumer group the admin client does not
 * have), as a fresh broker does while it loads __consumer_offsets: that killed a vitest worker in
 * examples.test.ts. Committed offsets are read with a consumer that never joins the group instead
 * (test/helpers/kafka.ts, scripts/lib/kafka.mjs); this keeps the admin call from coming back.
 */

const root = resolve(import.meta.dirname, '../..');
const self = resolve(import.meta.filename);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : sources(path);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) && path !== self ? [path] : [];
  });
}

describe('committed offsets', () => {
  it('are never read with the admin client (fetchOffsets / listConsumerGroupOffsets)', () => {
    const offenders = ['src', 'test', 'scripts', 'bench', 'examples']
      .flatMap((dir) => sources(join(root, dir)))
      .filter((path) => /\.(fetchOffsets|listConsumerGroupOffsets)\(/.test(readFileSync(path, 'utf8')))
      .map((path) => relative(root, path));
    expect(offenders).toEqual([]);
  });
});
