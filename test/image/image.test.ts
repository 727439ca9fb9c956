import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { TestApp } from '../helpers/app.js';
import { CourierContainer, podman, podmanResult } from '../helpers/container.js';
import { committedOffsets, createTopics, endOffsets, headerOf, produce, readAll, uniqueName } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Courier's image (built by the global setup with scripts/image.sh from the project's Dockerfile)
 * run against the real broker the way a pod runs it: see test/helpers/container.ts.
 */

const root = resolve(import.meta.dirname, '../..');
const bootstrap = inject('bootstrap');
const image = inject('image');
const run = inject('imageRun');
const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A topic with its DLQ, a group, and a Courier container for them; all removed after the test. */
async function scenario(options: { partitions: number; app: { url: string }; env?: Record<string, string> }) {
  const topic = uniqueName('orders');
  const dlqTopic = `${topic}.dlq`;
  const groupId = uniqueName('group');
  await createTopics(bootstrap, [
    { topic, partitions: options.partitions },
    { topic: dlqTopic, partitions: 1 },
  ]);
  const container = new CourierContainer(
    image,
    {
      KAFKA_BOOTSTRAP_SERVERS: bootstrap,
      COURIER_GROUP_ID: groupId,
      COURIER_TOPICS: topic,
      COURIER_TARGET_URL: options.app.url,
      // A single test broker: rebalances and retries should be quick (as in the integration tests).
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
      COURIER_COMMIT_INTERVAL_MS: '200',
      ...options.env,
    },
    { run },
  );
  cleanups.push(() => container.remove());
  const committedAtEnd = async () => {
    const [done, ends] = await Promise.all([committedOffsets(bootstrap, groupId, topic), endOffsets(bootstrap, topic)]);
    return [...ends].every(([partition, end]) => done.get(partition) === end || (end === 0 && (done.get(partition) ?? -1) < 0));
  };
  return { topic, dlqTopic, groupId, container, committedAtEnd };
}

async function startApp(app: TestApp): Promise<TestApp> {
  await app.listen();
  cleanups.push(() => app.close());
  return app;
}

/** A sample's value from Prometheus text: `name{labels}` exactly as exported. */
function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const MB = 1024 * 1024;

describe('the image', () => {
  it('is distroless: user 65532, Node as the entrypoint, no shell to start; prints its version', async () => {
    const [config] = JSON.parse(await podman(['image', 'inspect', image])).map((i: { Config: Record<string, unknown> }) => i.Config);
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['/nodejs/bin/node', 'dist/main.js']);
    expect(config.Env).toEqual(expect.arrayContaining(['NODE_ENV=production', 'LD_LIBRARY_PATH=/usr/local/lib/courier']));
    console.log(`image ${image}: ${(inject('imageSize') / 1e6).toFixed(0)} MB`);
    expect(inject('imageSize')).toBeLessThan(250e6);

    const started = Date.now();
    const versionRun = await podmanResult(['run', '--rm', '--network', 'host', image, '--version']);
    console.log(`podman run ${image} --version: ${Date.now() - started} ms (container created, Node started, exited)`);
    expect(versionRun).toMatchObject({ code: 0, stdout: `${version}\n` });

    for (const shell of ['/bin/sh', '/bin/bash', '/usr/bin/sh', '/busybox/sh']) {
      const attempt = await podmanResult(['run', '--rm', '--network', 'host', '--entrypoint', shell, image, '-c', 'true']);
      expect(attempt.code, shell).not.toBe(0);
      expect(attempt.stderr, shell).toMatch(/no such file or directory/);
    }
  });

  it('as a pod runs it: delivers from the real broker to the app on the host, dead-letters a poison record; /readyz, /metrics, `courier lag` inside; read-only, non-root, no capabilities', async () => {
    const app = await startApp(new TestApp((r) => (r.body.toString().includes('poison') ? { status: 422, body: '{"error":"poison"}' } : { status: 200 })));
    const { topic, dlqTopic, container, committedAtEnd } = await scenario({ partitions: 3, app });
    await container.start();
    const healthMs = await container.until200('/healthz');
    const readyMs = await container.until200('/readyz');
    console.log(`start-up: podman run → /healthz 200 in ${healthMs} ms, → /readyz 200 (joined, app reachable) in ${readyMs} ms`);

    const TOTAL = 300;
    await produce(bootstrap, topic, [
      ...Array.from({ length: TOTAL }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: i }), partition: i % 3 })),
      { key: 'bad', value: JSON.stringify({ poison: true }), partition: 1 },
    ]);
    await waitFor('every record committed', committedAtEnd);

    const delivered = new Set(app.acknowledged().map((r) => `${r.partition}/${r.offset}`));
    expect(delivered.size).toBe(TOTAL);
    expect(app.receipts.every((r) => r.topic === topic)).toBe(true);
    const dead = await readAll(bootstrap, dlqTopic);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.value?.toString()).toBe('{"poison":true}');
    expect(headerOf(dead[0]!, 'original_topic')).toBe(topic);
    expect(headerOf(dead[0]!, 'error_type')).toBe('rejected_by_app');
    expect(headerOf(dead[0]!, 'http_status')).toBe('422');

    expect(await container.get('/readyz')).toMatchObject({ status: 200 });
    const metrics = await container.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(sample(metrics.text, `courier_records_delivered_total{topic="${topic}"}`)).toBe(TOTAL);
    expect(sample(metrics.text, `courier_records_dead_lettered_total{topic="${topic}",reason="rejected_by_app"}`)).toBe(1);

    // `courier lag` as an operator runs it: `kubectl exec` (here `podman exec`) in the container,
    // where COURIER_PORT tells it the API.
    const lag = await waitFor('`courier lag --json` to show the three partitions caught up', async () => {
      const result = await container.exec(['/nodejs/bin/node', 'dist/main.js', 'lag', '--json']);
      const report = JSON.parse(result.stdout) as { totalLag: number; partitions: Array<{ topic: string; lag: number }> };
      return result.code === 0 && report.partitions.length === 3 && report.totalLag === 0 ? report : undefined;
    });
    expect(lag.partitions.every((p) => p.topic === topic && p.lag === 0)).toBe(true);
    const table = await container.exec(['/nodejs/bin/node', 'dist/main.js', 'lag']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TOPIC\s+PARTITION\s+COMMITTED/);
    expect(table.stdout).toContain('total lag: 0');

    // PID 1 is Node running Courier (signals reach it, no init or shell in between), as user 65532
    // with no capabilities, seen from inside and from the host.
    const inside = await container.exec([
      '/nodejs/bin/node',
      '-e',
      `const fs = require('fs');
       const status = fs.readFileSync('/proc/1/status', 'utf8');
       const writes = {};
       for (const path of ['/app/x', '/tmp/x', '/home/nonroot/x', '/usr/local/lib/courier/x']) {
         try { fs.writeFileSync(path, 'x'); writes[path] = 'written'; } catch (e) { writes[path] = e.code; }
       }
       console.log(JSON.stringify({
         cmdline: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').filter(Boolean),
         uid: process.getuid(), gid: process.getgid(),
         capEff: /CapEff:\\s*(\\w+)/.exec(status)[1], noNewPrivs: /NoNewPrivs:\\s*(\\d)/.exec(status)[1],
         writes,
       }));`,
    ]);
    expect(inside.code, inside.stderr).toBe(0);
    expect(JSON.parse(inside.stdout)).toEqual({
      cmdline: ['/nodejs/bin/node', 'dist/main.js'],
      uid: 65532,
      gid: 65532,
      capEff: '0000000000000000',
      noNewPrivs: '1',
      writes: { '/app/x': 'EROFS', '/tmp/x': 'EROFS', '/home/nonroot/x': 'EROFS', '/usr/local/lib/courier/x': 'EROFS' },
    });
    expect(readFileSync(`/proc/${await container.hostPid()}/status`, 'utf8')).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    const shell = await container.exec(['/bin/sh', '-c', 'true']);
    expect(shell.code).not.toBe(0);
    expect(shell.stderr).toMatch(/no such file or directory/);

    expect((await container.stop()).code).toBe(0);
  });

  it('SIGTERM (podman stop, as the kubelet stops a container) lets in-flight pushes finish, commits exactly what was acknowledged, exits 0 within the grace', async () => {
    const app = await startApp(new TestApp(() => ({ status: 200, delayMs: 1500 })));
    const GRACE_MS = 10_000;
    const { groupId, topic, container } = await scenario({
      partitions: 2,
      app,
      env: { COURIER_ORDERING: 'unordered', COURIER_MAX_IN_FLIGHT: '20', COURIER_SHUTDOWN_GRACE_MS: String(GRACE_MS) },
    });
    await container.start();
    await container.until200('/readyz');
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
    );
    await waitFor('a second round of pushes in flight', () => app.receipts.length > 20);

    const stopAt = Date.now();
    // The pod's grace (terminationGracePeriodSeconds) is longer than Courier's own.
    const { code, ms } = await container.stop(30);
    console.log(`SIGTERM → exit ${code} in ${ms} ms (COURIER_SHUTDOWN_GRACE_MS ${GRACE_MS}, pushes held 1.5 s by the app)`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(GRACE_MS);
    expect(container.hasLog((l) => l.msg === 'stopped: offsets committed, group left')).toBe(true);

    // Pushes in flight when SIGTERM came were answered (not cut off), and count as acknowledged.
    const inFlightAtStop = app.receipts.filter((r) => r.at < stopAt && (r.answeredAt ?? Number.POSITIVE_INFINITY) > stopAt);
    expect(inFlightAtStop.length).toBeGreaterThan(0);
    expect(inFlightAtStop.every((r) => r.answer?.status === 200)).toBe(true);
    expect(app.receipts.every((r) => r.answer?.status === 200)).toBe(true);

    // Committed = every acknowledged record, and nothing beyond: per partition, offsets 0..n-1.
    const committed = await committedOffsets(bootstrap, groupId, topic);
    let acknowledged = 0;
    for (const partition of [0, 1]) {
      const offsets = [
        ...new Set(
          app
            .acknowledged()
            .filter((r) => r.partition === partition)
            .map((r) => r.offset),
        ),
      ].sort((a, b) => a - b);
      expect(offsets).toEqual(offsets.map((_, i) => i));
      expect(committed.get(partition)).toBe(offsets.length);
      acknowledged += offsets.length;
    }
    expect(acknowledged).toBeLessThan(200);
  });

  it("under the benchmark's load: 20,000 1 KiB records on 16 partitions to bench/apps/sink.mjs; prints the rate and the container's memory from its cgroup", async () => {
    const sink = await startSink();
    const { topic, container, committedAtEnd } = await scenario({
      partitions: 16,
      app: { url: `http://127.0.0.1:${sink.port}/events` },
      // As the benchmark runs Courier (bench/README: its defaults, warn logs, a 128 MiB heap: the
      // deployment's 256Mi limit, which the container has).
      env: { COURIER_LOG_LEVEL: 'warn', COURIER_COMMIT_INTERVAL_MS: '1000' },
    });
    const RECORDS = 20_000;
    const producer = await promisify(execFile)(
      process.execPath,
      ['bench/apps/producer.mjs', '--bootstrap', bootstrap, '--topic', topic, '--partitions', '16', '--count', String(RECORDS)],
      { cwd: root, timeout: 120_000 },
    );
    expect(JSON.parse(producer.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'done', produced: RECORDS, errors: 0 });

    await container.start();
    await container.until200('/healthz');
    const idle = await container.memory();
    const started = Date.now();
    let rssPeak = 0;
    await waitFor(
      'every record committed',
      async () => {
        rssPeak = Math.max(rssPeak, (await container.memory()).rss);
        return (await sink.count()) >= RECORDS && (await committedAtEnd());
      },
      180_000,
      250,
    );
    const seconds = (Date.now() - started) / 1000;
    const end = await container.memory();
    // The benchmark's own figure: peak RSS (VmHWM) of the Courier process, file-backed pages included.
    const hwm = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${await container.hostPid()}/status`, 'utf8'))?.[1]) * 1024;
    console.log(
      `under load: ${RECORDS} records in ${seconds.toFixed(1)} s (${Math.round(RECORDS / seconds)} records/s incl. joining); ` +
        `container cgroup: rss idle ${(idle.rss / MB).toFixed(0)} MB, peak sampled every 250 ms ${(rssPeak / MB).toFixed(0)} MB, ` +
        `charge now ${(end.usage / MB).toFixed(0)} MB, peak charge ${end.peak === undefined ? '-' : (end.peak / MB).toFixed(0)} MB (page cache included), limit ${(end.limit / MB).toFixed(0)} MB; ` +
        `PID 1's VmHWM ${(hwm / MB).toFixed(0)} MB`,
    );
    expect(end.limit).toBe(256 * MB);
    expect(rssPeak).toBeGreaterThan(idle.rss);
    expect(rssPeak).toBeLessThan(end.limit);
    expect(hwm).toBeGreaterThan(rssPeak);
    expect((await container.stop()).code).toBe(0);
  });
});

/** bench/apps/sink.mjs, the benchmark's target app (204 at once), on a free port of the host. */
async function startSink(): Promise<{ port: number; count: () => Promise<number> }> {
  const child: ChildProcess = spawn(process.execPath, ['bench/apps/sink.mjs'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill();
      await new Promise((resolvePromise) => child.once('exit', resolvePromise));
    }
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const port = await waitFor('the sink to listen', () => {
    const line = out.split('\n').find((l) => l.includes('"listening"'));
    return line ? (JSON.parse(line) as { port: number }).port : undefined;
  });
  return {
    port,
    count: async () => ((await (await fetch(`http://127.0.0.1:${port}/__stats`)).json()) as { count: number }).count,
  };
}
