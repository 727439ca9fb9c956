import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DECLARATIONS } from '../../src/config/index.js';

const root = resolve(import.meta.dirname, '../..');

function runCourier(env: Record<string, string>, args: string[] = []) {
  return spawnSync(process.execPath, ['dist/main.js', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('the courier command', () => {
  it('exits 78 on bad configuration and names every problem with its fix', () => {
    const result = runCourier({
      COURIER_TOPICS: 'orders',
      COURIER_TARGET_URL: 'ftp://app/events',
      COURIER_ORDERING: 'random',
      COURIER_MAX_ATTEMPTS: 'many',
      KAFKA_ENABLE_AUTO_COMMIT: 'true',
    });
    expect(result.status).toBe(78);
    const lines = result.stderr.split('\n').filter((line) => line.startsWith('  - '));
    for (const setting of ['COURIER_GROUP_ID', 'COURIER_TARGET_URL', 'COURIER_ORDERING', 'COURIER_MAX_ATTEMPTS', 'KAFKA_ENABLE_AUTO_COMMIT']) {
      expect(
        lines.some((line) => line.startsWith(`  - ${setting}`) && line.includes('Fix:')),
        `${setting} in\n${result.stderr}`,
      ).toBe(true);
    }
    expect(lines).toHaveLength(5);
    expect(result.stdout).toBe('');
  });

  it('exits 78 for a librdkafka property librdkafka does not know', () => {
    const result = runCourier({ COURIER_GROUP_ID: 'g', COURIER_TOPICS: 'orders', COURIER_TARGET_URL: 'http://127.0.0.1:9/x', KAFKA_NO_SUCH_THING: '1' });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('no.such.thing');
  });

  it('--help lists every setting', () => {
    const result = runCourier({}, ['--help']);
    expect(result.status).toBe(0);
    for (const name of [...DECLARATIONS.map((setting) => setting.env), 'COURIER_CONFIG', 'KAFKA_BOOTSTRAP_SERVERS', 'KAFKA_*'])
      expect(result.stdout).toMatch(new RegExp(`^ {2}${name.replace('*', '\\*')} `, 'm'));
  });

  it('shows the hint about a misspelt variable with the problems it causes', () => {
    const result = runCourier({ COURIER_GROUP_ID: 'g', COURIER_TOPIC: 'orders', COURIER_TARGET_URL: 'http://127.0.0.1:9/x' });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('  - COURIER_TOPICS: is required when COURIER_TARGET_URL is set');
    expect(result.stderr).toContain('  note: ignoring unknown variable COURIER_TOPIC (did you mean COURIER_TOPICS?)');
  });
});
