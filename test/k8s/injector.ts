import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { find, type Manifest, parseDocuments } from '../deploy/manifests.js';
import { kustomize, root, run } from '../deploy/tools.js';
import { waitFor } from '../helpers/wait.js';
import type { ControlPlane } from './kube.js';

/**
 * `courier inject` deployed as deploy/injector and docs/deploy.md describe it, with the two things
 * only a cluster has replaced by their local equivalents:
 *   - the Pod: `node dist/main.js inject` on 127.0.0.1 with the environment of the injector
 *     Deployment's container, its certificate files being the test CA's (scripts/k8s.sh) instead of
 *     cert-manager's;
 *   - the Service: the webhook's clientConfig is a URL to that process, and caBundle is the test CA
 *     (what cert-manager's cainjector would write).
 */

export interface InjectorDeployment {
  /** The rendered objects of deploy/injector. */
  manifests: Manifest[];
  /** The injector container's environment, as the Deployment sets it. */
  env: Record<string, string>;
  /** The MutatingWebhookConfiguration, pointed at `url`. */
  webhookConfiguration(url: string, caPem: string): Manifest;
}

export function injectorDeployment(): InjectorDeployment {
  const manifests = parseDocuments(run(kustomize(), ['build', 'deploy/injector']), 'kustomize build deploy/injector');
  const container = find(manifests, 'Deployment', 'courier-injector').spec.template.spec.containers.find((c: any) => c.name === 'injector');
  const env: Record<string, string> = {};
  for (const variable of container.env) {
    if (variable.value === undefined) throw new Error(`injector env ${variable.name} is not a plain value; teach test/k8s/injector.ts about it`);
    env[variable.name] = variable.value;
  }
  return {
    manifests,
    env,
    webhookConfiguration(url, caPem) {
      const configuration = structuredClone(find(manifests, 'MutatingWebhookConfiguration', 'courier-injector'));
      for (const webhook of configuration.webhooks) {
        const path = webhook.clientConfig.service?.path ?? '';
        webhook.clientConfig = { url: `${url}${path}`, caBundle: Buffer.from(readFileSync(caPem)).toString('base64') };
      }
      return configuration;
    },
  };
}

export interface LocalInjector {
  /** https://127.0.0.1:PORT, without the path. */
  url: string;
  port: number;
  /** Its JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts `node dist/main.js inject` (port 0: the kernel picks one, the log line says which). */
export async function startInjector(deployment: InjectorDeployment, plane: ControlPlane, port = 0): Promise<LocalInjector> {
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const child: ChildProcess = spawn(process.execPath, [join(root, 'dist/main.js'), 'inject'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      ...deployment.env,
      COURIER_INJECT_TLS_CERT: plane.webhookCertPem,
      COURIER_INJECT_TLS_KEY: plane.webhookKeyPem,
      COURIER_INJECT_HOST: '127.0.0.1',
      COURIER_INJECT_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) logs.push(JSON.parse(line));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const listening = await waitFor(
    'courier inject to listen',
    () => {
      if (gone) throw new Error(`courier inject exited: ${stderr.join('')}`);
      return logs.find((line) => line.msg === 'injector listening');
    },
    30_000,
  );
  const actualPort = listening.port as number;
  return {
    url: `https://127.0.0.1:${actualPort}`,
    port: actualPort,
    logs,
    async stop() {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** docs/deploy.md, for the tests that hold the documentation to what the API server does. */
export function deployDoc(): string {
  return readFileSync(join(root, 'docs/deploy.md'), 'utf8');
}

/** The fenced YAML blocks of a Markdown text (indented ones too, as inside list items), parsed. */
export function yamlBlocks(markdown: string): Array<{ text: string; docs: Manifest[] }> {
  const blocks: Array<{ text: string; docs: Manifest[] }> = [];
  for (const match of markdown.matchAll(/^( *)```yaml\n([\s\S]*?)^\1```$/gm)) {
    const indent = match[1]!.length;
    const text = match[2]!
      .split('\n')
      .map((line) => line.slice(indent))
      .join('\n');
    blocks.push({ text, docs: parseDocuments(text, 'docs/deploy.md') });
  }
  return blocks;
}
