import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * `scripts/kafka.sh fetch` says where the Kafka jars came from: the local Maven repository when an
 * offline copy finds them all, Maven Central otherwise. Run on a copy of the script with a stand-in
 * `mvn` (offline copies succeed or fail as told) and `java`, so nothing is downloaded.
 */

const root = resolve(import.meta.dirname, '../..');
const version = /KAFKA_VERSION=(\S+)/.exec(readFileSync(join(root, 'scripts/kafka.sh'), 'utf8'))?.[1];
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function fetch(offline: 'succeeds' | 'fails') {
  const dir = mkdtempSync(join(tmpdir(), 'courier-kafka-fetch-'));
  dirs.push(dir);
  cpSync(join(root, 'scripts/kafka.sh'), join(dir, 'scripts/kafka.sh'));
  cpSync(join(root, 'scripts/kafka'), join(dir, 'scripts/kafka'), { recursive: true });
  cpSync(join(root, 'scripts/lib/local-service.sh'), join(dir, 'scripts/lib/local-service.sh'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const mvn = [
    '#!/usr/bin/env bash',
    'out=',
    'for a in "$@"; do',
    '  [ "$a" = -o ] && [ "$OFFLINE" = fails ] && { echo "[ERROR] offline: artifact not in the local repository"; exit 1; }',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template string
    '  case $a in -DoutputDirectory=*) out=${a#-DoutputDirectory=} ;; esac',
    'done',
    'echo "$*" >>"$MVN_CALLS"',
    'mkdir -p "$out" && touch "$out/kafka_2.13-$KAFKA_VERSION.jar" "$out/kafka-clients-$KAFKA_VERSION.jar"',
  ];
  writeFileSync(join(bin, 'mvn'), `${mvn.join('\n')}\n`);
  writeFileSync(join(bin, 'java'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'mvn'), 0o755);
  chmodSync(join(bin, 'java'), 0o755);
  const result = spawnSync('bash', ['scripts/kafka.sh', 'fetch'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, OFFLINE: offline, KAFKA_VERSION: version, MVN_CALLS: join(dir, 'mvn-calls') },
  });
  const calls = readFileSync(join(dir, 'mvn-calls'), 'utf8').trim().split('\n');
  return { ...result, calls, jars: readdirSync(join(dir, `.kafka/${version}/libs`)).filter((f) => f.endsWith('.jar')) };
}

describe('scripts/kafka.sh fetch', () => {
  it('says the jars came from the local Maven repository when they were all there', () => {
    const { status, stderr, calls, jars } = fetch('succeeds');
    expect(status, stderr).toBe(0);
    expect(stderr).toContain(`Kafka ${version}: 2 jars from the local Maven repository`);
    expect(stderr).not.toContain('Maven Central');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/(^| )-o( |$)/);
    expect(jars).toHaveLength(2);
  });

  it('says it downloads from Maven Central when they were not', () => {
    const { status, stderr, calls, jars } = fetch('fails');
    expect(status, stderr).toBe(0);
    expect(stderr).toContain(`downloading Kafka ${version} jars from Maven Central`);
    expect(stderr).toContain(`Kafka ${version}: 2 jars from Maven Central`);
    expect(calls).toHaveLength(1);
    expect(calls[0]).not.toMatch(/(^| )-o( |$)/);
    expect(jars).toHaveLength(2);
  });
});
