import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * The image tests run Courier's container image, built here from the project's Dockerfile by
 * scripts/image.sh (Podman, stand-in base images made once from Debian packages), against a real
 * Kafka broker from scripts/kafka.sh. The first build is slow (the stand-ins and librdkafka's
 * compile: minutes); later ones reuse Podman's layer cache and take seconds.
 * KAFKA_TEST_BOOTSTRAP points them at an already running broker instead.
 */
const root = resolve(import.meta.dirname, '../..');
const BROKER_NAME = `image-${process.pid}`;
const RUN = `vitest-${process.pid}`;
const conf = { ...process.env, CONTAINERS_CONF: resolve(root, 'scripts/image/containers.conf') };

export default function setup(project: TestProject) {
  const started = Date.now();
  // podman build's output goes to .image/build.log (its end is shown if the build fails).
  const image = execFileSync('bash', ['scripts/image.sh', 'build'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, IMAGE_BUILD_LOG: resolve(root, '.image/build.log') },
  }).trim();
  const buildSeconds = (Date.now() - started) / 1000;
  const size = Number(execFileSync('podman', ['image', 'inspect', '--format', '{{.Size}}', image], { env: conf, encoding: 'utf8' }).trim());
  console.log(`image ${image}: ${(size / 1e6).toFixed(0)} MB, \`scripts/image.sh build\` took ${buildSeconds.toFixed(1)} s`);

  let brokerStarted = false;
  let bootstrap = process.env.KAFKA_TEST_BOOTSTRAP;
  if (!bootstrap) {
    bootstrap = execFileSync('bash', ['scripts/kafka.sh', 'start', '--name', BROKER_NAME], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    brokerStarted = true;
  }
  project.provide('bootstrap', bootstrap);
  project.provide('image', image);
  project.provide('imageSize', size);
  // The label of every container this run starts (test/helpers/container.ts).
  project.provide('imageRun', RUN);
  return () => {
    // A test that failed before its own cleanup may leave a container: none outlives the run.
    const leftovers = execFileSync('podman', ['ps', '--all', '--quiet', '--filter', `label=courier.test.run=${RUN}`], { env: conf, encoding: 'utf8' }).trim();
    if (leftovers) execFileSync('podman', ['rm', '--force', '--time', '0', ...leftovers.split('\n')], { env: conf, stdio: 'inherit' });
    if (brokerStarted) execFileSync('bash', ['scripts/kafka.sh', 'stop', '--name', BROKER_NAME], { cwd: root, stdio: 'inherit' });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    image: string;
    imageSize: number;
    imageRun: string;
  }
}
