// A vitest reporter that writes what vitest's JSON report leaves out, for scripts/test-summary.mjs:
// the test files the run was given and the run's unhandled errors (a worker that crashed, a promise
// nobody awaited). Without them a crashed worker's file reads as passed, with its tests never run.
// Writes vitest-run.json beside the JSON report (--outputFile.json), else .scratch/vitest-run.json
// under the vitest root; scripts/test.sh passes it with --reporter.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export default class RunReporter {
  file = resolve('.scratch/vitest-run.json');
  files = [];

  onInit(vitest) {
    const { root, outputFile } = vitest.config;
    const json = typeof outputFile === 'string' ? outputFile : outputFile?.json;
    this.file = json ? resolve(root, dirname(json), 'vitest-run.json') : resolve(root, '.scratch/vitest-run.json');
  }

  onTestRunStart(specifications) {
    this.files = [...new Set(specifications.map((specification) => specification.moduleId))];
  }

  onTestRunEnd(_testModules, unhandledErrors, reason) {
    mkdirSync(dirname(this.file), { recursive: true });
    const errors = unhandledErrors.map((error) => [error.message, error.cause?.message].filter(Boolean).join(': ') || String(error));
    writeFileSync(this.file, `${JSON.stringify({ files: this.files, unhandledErrors: errors, reason }, null, 2)}\n`);
  }
}
