import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import selfsigned from 'selfsigned';
import { describe, expect, inject, it } from 'vitest';
import { dashboardExpressions, family, parse, ruleExpressions, TARGET_LABELS } from '../deploy/promql.js';
import { produce } from '../helpers/kafka.js';
import { scenarioFactory } from '../helpers/scenario.js';
import { waitFor } from '../helpers/wait.js';
import { admissionReview, pod } from '../inject/fixtures.js';

/**
 * deploy/'s alerts and dashboard against what a running Courier really exports: Courier runs on the
 * real broker, records flow (acknowledged, retried, dead-lettered) so every labelled family has
 * samples, /metrics is scraped, and every metric name and label the PromQL selects must be there.
 * A histogram's _bucket/_sum/_count series belong to its family; `namespace`, `pod`, … are the
 * labels Prometheus adds to every target (the PodMonitor's).
 */

const bootstrap = inject('bootstrap');
const scenario = scenarioFactory(bootstrap);
const root = resolve(import.meta.dirname, '../..');

interface Family {
  type: string;
  labels: Set<string>;
}

/**
 * Metric families from the exposition text: `# TYPE` lines give names and types, sample lines give
 * the label names (a histogram's _bucket/_sum/_count samples count for its family, `le` aside).
 * (parse-prometheus-text-format drops the labels of histogram samples, hence this reading.)
 */
async function scrape(url: string): Promise<Map<string, Family>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  expect(parsePrometheus(text).length).toBeGreaterThan(10); // it is valid exposition text
  const families = new Map<string, Family>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(name!, { type: type!, labels: new Set() });
  for (const [, sample, labels] of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/gm)) {
    const name = family(sample!, families);
    if (!name) throw new Error(`sample ${sample} has no # TYPE line`);
    for (const [, label] of (labels ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      if (label !== 'le' && label !== 'quantile') families.get(name)!.labels.add(label!);
    }
  }
  return families;
}

/** Every problem of one expression against the scraped families; empty when it is fine. */
function problems(families: Map<string, Family>, expression: { where: string; expr: string }): string[] {
  const parsed = parse(expression);
  const out = parsed.syntaxErrors.map((e) => `${expression.where}: ${e}`);
  const known = new Set<string>(TARGET_LABELS);
  for (const selector of parsed.selectors) {
    const name = family(selector.metric, families);
    if (!name) {
      out.push(`${expression.where}: ${selector.metric} is not exported by /metrics`);
      continue;
    }
    const exported = families.get(name)!;
    const allowed = new Set([...exported.labels, ...TARGET_LABELS, ...(selector.metric.endsWith('_bucket') ? ['le'] : [])]);
    for (const label of selector.labels) if (!allowed.has(label)) out.push(`${expression.where}: ${selector.metric} has no label ${label}`);
    for (const label of allowed) known.add(label);
  }
  for (const label of parsed.groupingLabels) if (!known.has(label)) out.push(`${expression.where}: no selected metric has the label ${label} it groups by`);
  return out;
}

describe('deploy/ observability against a running Courier', () => {
  it('the alert rules and the Grafana dashboard use only metric names and labels /metrics exports', async () => {
    const { topic, app, courier, committedAtEnd } = await scenario({
      partitions: 2,
      // offset 1 of each partition: 503 once (a retry); offset 2: 422 (dead-lettered); others: 200.
      handler: (r) => (r.offset === 1 && r.attempt === 1 ? { status: 503 } : r.offset === 2 ? { status: 422 } : { status: 200 }),
    });
    await produce(
      bootstrap,
      topic,
      Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
    );
    const instance = courier({ COURIER_INSTANCE_ID: 'deploy-metrics-0' }).start();
    await instance.ready();
    await waitFor('every record acknowledged or dead-lettered, and committed', committedAtEnd);
    expect(app.receipts.length).toBeGreaterThanOrEqual(22);
    const url = await instance.apiUrl();
    // The lag gauges are refreshed from the broker every 5 s (courier_lag_seconds has no sample while
    // the age is unknown); wait until they have samples.
    const families = await waitFor('courier_consumer_lag and courier_lag_seconds samples', async () => {
      const scraped = await scrape(url);
      const sampled = ['courier_consumer_lag', 'courier_lag_seconds'].every((name) => scraped.get(name)?.labels.has('partition'));
      return sampled ? scraped : undefined;
    });

    // The labelled families the expressions rely on do have samples with their labels.
    expect([...families.get('courier_records_dead_lettered_total')!.labels].sort()).toEqual(['reason', 'topic']);
    expect([...families.get('courier_delivery_attempts_total')!.labels].sort()).toEqual(['result', 'topic']);
    expect(families.get('courier_delivery_duration_seconds')!.type).toBe('histogram');

    const expressions = [...ruleExpressions(), ...dashboardExpressions()];
    expect(expressions.length).toBeGreaterThan(20);
    expect(expressions.flatMap((e) => problems(families, e))).toEqual([]);

    // The max.poll alert is kept only because /metrics has its counter (it did not exist at first).
    expect(ruleExpressions().some((e) => e.expr.includes('courier_max_poll_exceeded_total'))).toBe(true);
    expect(families.get('courier_max_poll_exceeded_total')?.type).toBe('counter');

    // And the check does fail on what /metrics does not have.
    expect(problems(families, { where: 'typo', expr: 'sum by (topic) (rate(courier_records_delivred_total[5m]))' })).toEqual([
      'typo: courier_records_delivred_total is not exported by /metrics',
      'typo: no selected metric has the label topic it groups by',
    ]);
    expect(problems(families, { where: 'label', expr: 'sum by (group) (courier_in_flight{topic="x"})' })).toEqual([
      'label: courier_in_flight has no label topic',
      'label: no selected metric has the label group it groups by',
    ]);
    expect(problems(families, { where: 'suffix', expr: 'courier_in_flight_bucket' })).toEqual(['suffix: courier_in_flight_bucket is not exported by /metrics']);
    await instance.stop();
  });
});

describe('the compiled `courier inject`', () => {
  it('is dispatched by dist/main.js, serves an AdmissionReview over TLS and stops on SIGTERM with exit 0', async () => {
    expect(execFileSync(process.execPath, ['dist/main.js', '--help'], { cwd: root, encoding: 'utf8' })).toMatch(/courier inject +serve the sidecar-injecting/);
    const dir = mkdtempSync(join(tmpdir(), 'courier-inject-bin-'));
    let child: ChildProcess | undefined;
    try {
      const pems = await selfsigned.generate([{ name: 'commonName', value: 'courier-injector.courier-system.svc' }], {
        keyType: 'ec',
        algorithm: 'sha256',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'courier-injector.courier-system.svc' }] }],
      });
      writeFileSync(join(dir, 'tls.crt'), pems.cert);
      writeFileSync(join(dir, 'tls.key'), pems.private);
      const proc = spawn(process.execPath, ['dist/main.js', 'inject'], {
        cwd: root,
        env: {
          PATH: process.env.PATH ?? '',
          COURIER_INJECT_TLS_CERT: join(dir, 'tls.crt'),
          COURIER_INJECT_TLS_KEY: join(dir, 'tls.key'),
          COURIER_INJECT_IMAGE: 'courier:0.1.0',
          COURIER_INJECT_PORT: '0',
          COURIER_INJECT_HOST: '127.0.0.1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let out = '';
      proc.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
      });
      const exited = new Promise<number | null>((resolveExit) => proc.on('exit', (code) => resolveExit(code)));
      const port = await waitFor('the injector to listen', () => /"port":(\d+).*"msg":"injector listening"/.exec(out)?.[1], 20_000);
      const answer = await new Promise<any>((resolveAnswer, reject) => {
        const req = request(
          { host: '127.0.0.1', port: Number(port), method: 'POST', path: '/mutate', ca: pems.cert, servername: 'courier-injector.courier-system.svc' },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString('utf8');
            });
            res.on('end', () => resolveAnswer({ status: res.statusCode, body: JSON.parse(body) }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(admissionReview(pod())));
      });
      expect(answer.status).toBe(200);
      expect(answer.body.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      child = undefined;
    } finally {
      child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
