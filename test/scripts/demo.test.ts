import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The demo's parts that need no broker: demo.sh's arguments, and the example app's answers in both
 * delivery modes (the whole demo runs with `bash scripts/demo.sh [--batch]`; it needs a broker).
 */

const root = resolve(import.meta.dirname, '../..');
const apps: ChildProcess[] = [];
afterEach(() => {
  for (const app of apps.splice(0)) app.kill();
});

async function startApp(): Promise<string> {
  const app = spawn(process.execPath, ['examples/webhook-app.mjs'], { cwd: root, env: { ...process.env, PORT: '0', DEMO_VERBOSE: '' } });
  apps.push(app);
  let output = '';
  return await new Promise((done, fail) => {
    app.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (port) done(`http://127.0.0.1:${port}`);
    });
    app.on('exit', (code) => fail(new Error(`the example app exited with ${code}: ${output}`)));
  });
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

describe('scripts/demo.sh', () => {
  it('--help prints the header (both runs), an unknown argument exits 2, before anything starts', () => {
    const help = spawnSync('bash', ['scripts/demo.sh', '--help'], { cwd: root, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('bash scripts/demo.sh --batch');
    expect(help.stdout).toContain('COURIER_DELIVERY=batch');
    expect(help.stdout).not.toContain('set -euo');
    const wrong = spawnSync('bash', ['scripts/demo.sh', '--batches'], { cwd: root, encoding: 'utf8' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('unknown argument --batches');
    expect(wrong.stderr).not.toMatch(/demo: running scripts\/setup.sh|kafka.sh:/);
  });
});

describe('examples/webhook-app.mjs', () => {
  it('exits 0 on SIGTERM once its connections are done (as a container PID 1 it has no default action)', async () => {
    const url = await startApp();
    const app = apps.at(-1) as ChildProcess;
    // A kept-alive idle connection, as Courier holds one, must not keep it running.
    expect((await fetch(`${url}/stats`)).status).toBe(200);
    app.removeAllListeners('exit'); // startApp's: an exit is expected now
    const exited = new Promise<number | null>((done) => app.once('exit', (code) => done(code)));
    app.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('answers one record per request: 503 for a first attempt on an offset ≡ 7 (mod 20), 422 for poison, else 200', async () => {
    const url = await startApp();
    const push = async (offset: number, attempt: number, value: string) => {
      const res = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: { 'kafka-offset': String(offset), 'courier-attempt': String(attempt) },
        body: value,
      });
      return res.status;
    };
    expect(await push(27, 1, '{"order":1}')).toBe(503);
    expect(await push(27, 2, '{"order":1}')).toBe(200);
    expect(await push(28, 1, '{"order":2,"poison":true}')).toBe(422);
    expect(await push(29, 1, 'not json')).toBe(422);
    const stats = await (await fetch(`${url}/stats`)).json();
    expect(stats).toMatchObject({ received: 4, batches: 0, records: 4, acknowledged: 1, retryRequested: 1, rejected: 2 });
  });

  it('answers a batch (DESIGN A6) with 200 listing the 503s and 422s by id, whatever form the values take', async () => {
    const url = await startApp();
    const record = (offset: number, attempt: number, value: object) => ({ id: `t-0-${offset}`, offset: String(offset), attempt, ...value });
    const records = [
      record(7, 1, { value: { order: 7 } }), // a first attempt: 503
      record(8, 1, { value: { order: 8, poison: true } }), // 422
      record(9, 1, { valueBase64: json({ order: 9 }) }), // not parsed by Courier (no JSON content type): still fine
      record(10, 1, { valueBase64: json({ order: 10, poison: true }) }),
      record(11, 1, { tombstone: true }), // no value: this app cannot handle it
      record(27, 2, { value: { order: 27 } }), // not a first attempt
    ];
    const res = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'courier-batch-size': String(records.length) },
      body: JSON.stringify({ records }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      failures: [
        { id: 't-0-7', status: 503, reason: 'try again later' },
        { id: 't-0-8', status: 422, reason: 'cannot process this record' },
        { id: 't-0-10', status: 422, reason: 'cannot process this record' },
        { id: 't-0-11', status: 422, reason: 'cannot process this record' },
      ],
    });
    const notABatch = await fetch(`${url}/orders`, { method: 'POST', headers: { 'courier-batch-size': '1' }, body: '{"order":1}' });
    expect(notABatch.status).toBe(400);
    const stats = await (await fetch(`${url}/stats`)).json();
    expect(stats).toEqual({ received: 2, batches: 1, records: 6, acknowledged: 2, retryRequested: 1, rejected: 3 });
  });
});
