import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/k8s/**', 'test/image/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          // One broker, two files at a time, each with its own topics and group: most of an
          // integration file's time is waiting (outage windows, backoffs, timeouts), not CPU. After
          // the unit tests (their own group), so the two do not compete.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'k8s',
          include: ['test/k8s/**/*.test.ts'],
          // A real etcd and kube-apiserver (scripts/k8s.sh), shared by the files: each works in
          // namespaces of its own. After the integration tests, so that the control plane's start-up
          // and the API server's work do not compete with their timing.
          globalSetup: ['test/k8s/global-setup.ts'],
          maxWorkers: 2,
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // Courier's container image, built from the Dockerfile by scripts/image.sh and run with
          // Podman against its own broker; last, alone (its load test measures memory and rate).
          name: 'image',
          include: ['test/image/**/*.test.ts'],
          globalSetup: ['test/image/global-setup.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 3 },
          testTimeout: 240_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
