import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closingLine, type RunFile, summarize } from '../../scripts/test-summary.mjs';

/**
 * scripts/test.sh's closing line: every test that did not run, every file that failed outside its
 * tests and every unhandled error is a failure. The reports below are shaped like vitest's JSON
 * report; the last test makes real ones with a vitest of its own.
 */

const root = resolve(import.meta.dirname, '../..');
type Status = 'passed' | 'failed' | 'skipped' | 'todo' | 'pending';

function file(name: string, tests: Array<[string, Status]>, status?: 'passed' | 'failed', message = '') {
  return {
    name: `/repo/${name}`,
    status: status ?? (tests.some(([, s]) => s === 'failed') ? 'failed' : 'passed'),
    message,
    assertionResults: tests.map(([fullName, s]) => ({ fullName, title: fullName, status: s, failureMessages: [] })),
  };
}

/** Totals computed as vitest's JSON reporter computes them (a never-finished test is in none but the total). */
function report(...files: ReturnType<typeof file>[]) {
  const all = files.flatMap((f) => f.assertionResults);
  return {
    numTotalTests: all.length,
    numPassedTests: all.filter((a) => a.status === 'passed').length,
    numFailedTests: all.filter((a) => a.status === 'failed').length,
    numPendingTests: all.filter((a) => a.status === 'skipped').length,
    numTodoTests: all.filter((a) => a.status === 'todo').length,
    success: true,
    testResults: files,
  };
}

const run = (unhandledErrors: string[] = [], files: string[] = []): RunFile => ({ files, unhandledErrors });
const line = (r: unknown, f: RunFile | undefined) => closingLine(summarize(r, f));

describe('the closing line of scripts/test.sh', () => {
  it('counts skipped and todo tests as failures: every test that did not run fails the suite', () => {
    const clean = report(
      file('test/a.test.ts', [
        ['a', 'passed'],
        ['b', 'passed'],
        ['c', 'skipped'],
      ]),
      file('test/b.test.ts', [['d', 'todo']]),
    );
    expect(line(clean, run([], ['/repo/test/a.test.ts', '/repo/test/b.test.ts']))).toBe('2 passed, 2 failed');
    expect(summarize(clean, run()).problems).toEqual(['2 test(s) skipped or todo: nothing of the suite may be left out']);
  });

  it('counts the tests of a crashed worker that never ran, and the crash, as failures', () => {
    // The first run from a fresh clone: the worker died in the Python example's second test; vitest's
    // JSON report keeps the file "passed", its tests unfinished, and numFailedTests 0.
    const langs = ['python', 'go', 'java', 'typescript'];
    const examples = file(
      'test/integration/examples.test.ts',
      langs.flatMap((lang) => [
        [`the ${lang} handler example verifies signatures`, lang === 'python' ? 'passed' : 'pending'],
        [`the ${lang} handler example behind Courier`, 'pending'],
      ]) as Array<[string, Status]>,
    );
    const crashed = report(file('test/a.test.ts', [['a', 'passed']]), examples);
    expect(crashed.numFailedTests).toBe(0);
    const summary = summarize(crashed, run(['[vitest-pool]: Worker forks emitted error.: Worker exited unexpectedly']));
    expect(closingLine(summary)).toBe('2 passed, 8 failed');
    expect(summary.problems.join('\n')).toContain('7 test(s) never ran');
    expect(summary.problems.join('\n')).toContain('Worker exited unexpectedly');
  });

  it('counts an unhandled error as a failure even when every test passed', () => {
    expect(line(report(file('test/a.test.ts', [['a', 'passed']])), run(['nobody awaits this']))).toBe('1 passed, 1 failed');
  });

  it('counts files that failed outside their tests: import or afterAll errors, a failing beforeAll, a worker that died while collecting', () => {
    const r = report(
      file('test/import.test.ts', [], 'failed', 'import broke'),
      file('test/teardown.test.ts', [['t', 'passed']], 'failed', 'afterAll broke'),
      file(
        'test/setup.test.ts',
        [
          ['s1', 'skipped'],
          ['s2', 'skipped'],
        ],
        'failed',
      ),
      file('test/collect.test.ts', [], 'passed'),
    );
    const summary = summarize(r, run());
    expect(closingLine(summary)).toBe('1 passed, 6 failed');
    expect(summary.problems.join('\n')).toContain('test/import.test.ts (import broke)');
  });

  it('counts tests in the total but in no file, files missing from the report, and missing reports', () => {
    expect(line({ ...report(file('test/a.test.ts', [['a', 'passed']])), numTotalTests: 3 }, run())).toBe('1 passed, 2 failed');
    expect(line(report(file('test/a.test.ts', [['a', 'passed']])), run([], ['/repo/test/a.test.ts', '/repo/test/gone.test.ts']))).toBe('1 passed, 1 failed');
    expect(line(undefined, run())).toBe('0 passed, 1 failed');
    expect(line(report(file('test/a.test.ts', [['a', 'passed']])), undefined)).toBe('1 passed, 1 failed');
  });
});

describe('scripts/test-summary.mjs with a real vitest run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'courier-test-summary-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a worker killed mid-file, an unhandled rejection and a clean file: closing line last, exit 1', () => {
    // A vitest of its own on the fixtures, with the reporters scripts/test.sh uses; without this
    // run's VITEST* variables, which would make it think it runs inside a worker.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
    const vitest = spawnSync(
      process.execPath,
      [
        join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--root',
        join(root, 'test/scripts/fixtures'),
        '--reporter=json',
        `--reporter=${join(root, 'scripts/vitest-run-reporter.mjs')}`,
        `--outputFile.json=${join(dir, 'vitest.json')}`,
      ],
      { cwd: root, env, encoding: 'utf8', timeout: 60_000 },
    );
    expect(vitest.status, vitest.stderr).toBe(1);
    const runFile = JSON.parse(readFileSync(join(dir, 'vitest-run.json'), 'utf8')) as RunFile;
    expect(runFile.files).toHaveLength(3);
    expect(runFile.unhandledErrors.join('\n')).toContain('Worker exited unexpectedly');
    expect(runFile.unhandledErrors.join('\n')).toContain('nobody awaits this');

    const summary = spawnSync(process.execPath, ['scripts/test-summary.mjs', join(dir, 'vitest.json'), join(dir, 'vitest-run.json')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(summary.status).toBe(1);
    const lines = summary.stdout.trimEnd().split('\n');
    // Passed: clean's 2, unhandled's 1, and the crashed file's first test if its result reached
    // vitest before the kill (k); failed: the crashed file's other 4 - k tests that never finished,
    // plus 2 unhandled errors (the crash, the rejection), plus the todo.
    const [, passed, failed] = /^(\d+) passed, (\d+) failed$/.exec(lines.at(-1) ?? '') ?? [];
    expect(Number(passed) + Number(failed), lines.at(-1)).toBe(10);
    expect(Number(failed)).toBeGreaterThanOrEqual(5);
    expect(lines.slice(0, -1).join('\n')).toContain('test(s) never ran');
  }, 90_000);

  it('exits 0 with the plain line for a clean run', () => {
    writeFileSync(join(dir, 'clean.json'), JSON.stringify(report(file('test/a.test.ts', [['a', 'passed']]))));
    writeFileSync(join(dir, 'clean-run.json'), JSON.stringify(run()));
    const out = execFileSync(process.execPath, ['scripts/test-summary.mjs', join(dir, 'clean.json'), join(dir, 'clean-run.json')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toBe('1 passed, 0 failed\n');
  });
});
