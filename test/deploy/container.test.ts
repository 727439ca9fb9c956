import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { deploycheck, root, run, TOOLS_TIMEOUT_MS } from './tools.js';

/**
 * The Dockerfile, its build context and compose.yaml, checked without a Docker engine (none runs
 * here) by the libraries Docker itself uses (test/deploy/deploycheck): BuildKit's Dockerfile parser
 * and linter, the .dockerignore matcher, and compose-go, docker compose's loader and validator.
 * That the image builds and runs is shown by test/image (Podman, scripts/image.sh).
 */

interface Stage {
  name: string;
  base: string;
  commands: Array<{ name: string; text: string }>;
}

let dockerfile: { args: string[]; stages: Stage[]; warnings: Array<{ rule: string; message: string; line: number }> };
let context: string[];
let compose: any;

beforeAll(() => {
  const bin = deploycheck();
  dockerfile = JSON.parse(run(bin, ['dockerfile', 'Dockerfile']));
  context = JSON.parse(run(bin, ['context', '.']));
  compose = JSON.parse(run(bin, ['compose', 'compose.yaml']));
}, TOOLS_TIMEOUT_MS);

const texts = (stage: Stage, name: string) => stage.commands.filter((c) => c.name === name).map((c) => c.text);

describe('Dockerfile', () => {
  it('parses, and BuildKit lint finds nothing', () => {
    expect(dockerfile.warnings).toEqual([]);
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', '']);
  });

  it('build stage: Debian bookworm Node 20, the native libraries, CKJS_LINKING=dynamic npm ci, tsc, prune', () => {
    const [build] = dockerfile.stages;
    expect(dockerfile.args).toEqual(['ARG NODE_MAJOR=20']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own ARG reference
    expect(build!.base).toBe('node:${NODE_MAJOR}-bookworm');
    const runs = texts(build!, 'RUN').join('\n');
    for (const pkg of ['zlib1g-dev', 'libssl-dev', 'libzstd-dev', 'liblz4-dev', 'libsasl2-dev', 'python3', 'make', 'g++']) expect(runs).toContain(` ${pkg}`);
    expect(runs).toMatch(/CKJS_LINKING=dynamic npm ci/);
    expect(runs).toMatch(/npx tsc -p tsconfig\.json/);
    expect(runs).toMatch(/npm prune --omit=dev/);
    // The lock file goes in before the sources, so the npm ci layer is cached across code changes.
    const copies = texts(build!, 'COPY');
    expect(copies[0]).toBe('COPY package.json package-lock.json ./');
  });

  it('runtime stage: small (distroless, no shell), numeric non-root user, NODE_ENV=production, port 8080, no HEALTHCHECK', () => {
    const runtime = dockerfile.stages.at(-1)!;
    expect(runtime.base).toMatch(/^gcr\.io\/distroless\/nodejs20-debian12(:nonroot)?(@sha256:[0-9a-f]{64})?$/);
    expect(texts(runtime, 'RUN')).toEqual([]); // nothing can run in it: no shell
    expect(texts(runtime, 'USER')).toEqual(['USER 65532:65532']);
    expect(texts(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
    expect(texts(runtime, 'EXPOSE')).toEqual(['EXPOSE 8080']);
    for (const stage of dockerfile.stages) expect(texts(stage, 'HEALTHCHECK')).toEqual([]);
    expect(texts(runtime, 'ENTRYPOINT')).toEqual(['ENTRYPOINT ["/nodejs/bin/node", "dist/main.js"]']);
    // What the runtime needs: the shared libraries, package.json (for --version), node_modules, dist.
    const copies = texts(runtime, 'COPY').join('\n');
    for (const what of ['/out/lib/', '/app/package.json', '/app/node_modules', '/app/dist']) expect(copies).toContain(`--from=build ${what}`);
  });

  it('the user is the one deploy/ runs as', async () => {
    const { COURIER_UID } = await import('../../src/inject/sidecar.js');
    expect(texts(dockerfile.stages.at(-1)!, 'USER')[0]).toBe(`USER ${COURIER_UID}:${COURIER_UID}`);
  });
});

describe('build context (.dockerignore)', () => {
  it('holds only what the Dockerfile copies: no node_modules, dist, .kafka, .tools, tests or git', () => {
    const tops = new Set(context.map((f) => f.split('/')[0]));
    expect([...tops].sort()).toEqual(['examples', 'package-lock.json', 'package.json', 'src', 'tsconfig.json']);
    expect(context).toContain('src/main.ts');
    // The example app alone: the other examples' builds (Go binaries, target/, node_modules) are tens of MB.
    expect(context.filter((f) => f.startsWith('examples/'))).toEqual(['examples/webhook-app.mjs']);
  });

  it('has every source a COPY from the context names', () => {
    for (const stage of dockerfile.stages) {
      for (const copy of texts(stage, 'COPY').filter((c) => !c.includes('--from='))) {
        const sources = copy.split(/\s+/).slice(1, -1);
        for (const source of sources) {
          expect(existsSync(join(root, source)), source).toBe(true);
          expect(
            context.some((f) => f === source || f.startsWith(`${source.replace(/\/$/, '')}/`)),
            `${source} in the context`,
          ).toBe(true);
        }
      }
    }
  });
});

describe('compose.yaml', () => {
  it('is a valid Compose project (compose-go) with Kafka, topic setup, the example app and Courier', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'courier', 'kafka', 'topics']);
  });

  it('runs Kafka in KRaft mode from the apache/kafka image', () => {
    const kafka = compose.services.kafka;
    expect(kafka.image).toMatch(/^apache\/kafka:\d+\.\d+\.\d+$/);
    expect(kafka.environment.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(kafka.environment.KAFKA_ADVERTISED_LISTENERS).toContain('kafka:9092');
    expect(kafka.healthcheck.test).toBeDefined();
  });

  it('builds Courier from this Dockerfile and runs it as a sidecar of the example app', () => {
    const courier = compose.services.courier;
    expect(courier.build.context).toBe(root);
    expect(courier.network_mode).toBe('service:app');
    expect(courier.environment).toMatchObject({
      COURIER_GROUP_ID: expect.any(String),
      COURIER_TOPICS: 'orders',
      COURIER_TARGET_URL: `http://127.0.0.1:${compose.services.app.environment.PORT}/orders`,
      KAFKA_BOOTSTRAP_SERVERS: 'kafka:9092',
    });
    expect(courier.read_only).toBe(true);
    expect(courier.cap_drop).toEqual(['ALL']);
    expect(courier.depends_on.topics.condition).toBe('service_completed_successfully');
    const app = compose.services.app;
    expect(app.command).toEqual(['node', '/examples/webhook-app.mjs']);
    expect(app.volumes[0]).toMatchObject({ source: join(root, 'examples'), target: '/examples', read_only: true });
    expect(app.ports.map((p: any) => p.target)).toContain(8080);
  });

  it('creates the topic and its dead-letter topic', () => {
    const script = compose.services.topics.command.join(' ');
    expect(script).toMatch(/--topic orders\b/);
    expect(script).toMatch(/--topic orders\.dlq\b/);
  });
});

describe('the checker itself', () => {
  it('refuses a broken compose file and reports Dockerfile lint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'deploycheck-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'compose.yaml'), 'services:\n  a:\n    image: x\n    network_mode: service:nope\n');
    expect(() => run(deploycheck(), ['compose', join(dir, 'compose.yaml')])).toThrow(/undefined service "nope"/);
    writeFileSync(join(dir, 'compose.yaml'), 'services:\n  a:\n    image: x\n    restart_policy: always\n');
    expect(() => run(deploycheck(), ['compose', join(dir, 'compose.yaml')])).toThrow(/restart_policy/);
    writeFileSync(join(dir, 'Dockerfile'), 'from node:20 AS Build\nMAINTAINER me\n');
    const lint = JSON.parse(run(deploycheck(), ['dockerfile', join(dir, 'Dockerfile')]));
    expect(lint.warnings.map((w: { rule: string }) => w.rule).sort()).toEqual(['FromAsCasing', 'MaintainerDeprecated', 'StageNameCasing']);
  });
});
