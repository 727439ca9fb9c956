import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const root = resolve(import.meta.dirname, '../..');

describe("Courier's API fuzzed from its own OpenAPI document (schemathesis)", () => {
  it('answers every generated request without a 5xx, and every answer matches its schema', async () => {
    const st = execFileSync('bash', ['scripts/schemathesis.sh'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    const token = 'fuzz-admin-token';
    const { topic, courier } = await scenario({ partitions: 2, env: { COURIER_ADMIN_TOKEN: token } });
    const instance = courier().start();
    await instance.ready();
    await produce(bootstrap, topic, [{ value: 'a' }, { value: 'b' }]);
    await waitFor('ready', async () => (await instance.api('/readyz')).status === 200);
    const url = await instance.apiUrl();
    // Not spawnSync: this process must keep reading Courier's log while schemathesis runs, or
    // Courier's stdout pipe fills, its log writes block, and its event loop stalls (requests time
    // out, pushes time out, the route reads as failing).
    const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      execFile(
        st,
        [
          '--config-file',
          resolve(import.meta.dirname, 'schemathesis.toml'),
          'run',
          `${url}/openapi.json`,
          '--checks',
          'all',
          '--max-examples',
          '60',
          '-H',
          `Authorization: Bearer ${token}`,
          '--seed',
          '1',
          '--no-color',
        ],
        { cwd: root, encoding: 'utf8', timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => done({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.status !== 0) console.log(output);
    expect(result.status, output.slice(-4000)).toBe(0);
    expect(output).toMatch(/passed/i);
    expect((await instance.api('/healthz')).status).toBe(200);
  });
});
