// The closing line of scripts/test.sh, "P passed, F failed[, S skipped]", from vitest's JSON report
// and the run file of scripts/vitest-run-reporter.mjs.
//
// Usage: node scripts/test-summary.mjs REPORT.json RUN.json    (exit 1 when F > 0)
//
// F counts every way a run can fail, not only failed tests: a worker that crashed leaves its file's
// tests unrun and the file "passed" in the JSON report, with the crash only among the unhandled
// errors; a failing beforeAll skips its tests; an import or afterAll error fails a file without
// failing a test. Reading numFailedTests alone once closed a crashed run with "488 passed, 0 failed".
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * @param {any} report vitest's JSON report (undefined when vitest wrote none)
 * @param {{ files: string[], unhandledErrors: string[] } | undefined} run the run file (undefined when none was written)
 */
export function summarize(report, run) {
  const problems = [];
  if (!report) return { passed: 0, failed: 1, skipped: 0, problems: ['vitest wrote no JSON report (it stopped before the end of the run)'] };
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const unfinished = [];
  const fileErrors = [];
  for (const file of report.testResults ?? []) {
    const assertions = file.assertionResults ?? [];
    for (const assertion of assertions) {
      if (assertion.status === 'passed') passed++;
      else if (assertion.status === 'failed') failed++;
      else if (assertion.status === 'skipped' || assertion.status === 'todo') skipped++;
      // 'pending': the test was collected but never finished (its worker crashed, or the run stopped).
      else unfinished.push(assertion.fullName);
    }
    // Failed outside any test (import, beforeAll, afterAll), or no test collected at all (its worker
    // died while collecting; vitest fails a file without tests otherwise).
    if (!assertions.some((a) => a.status === 'failed') && (file.status === 'failed' || assertions.length === 0)) {
      fileErrors.push(`${relative(process.cwd(), file.name)}${file.message ? ` (${file.message})` : ''}`);
    }
  }
  // Counted by vitest but not listed: never ran either.
  const uncounted = Math.max(0, (report.numTotalTests ?? 0) - (passed + failed + skipped + unfinished.length));
  const notRun = unfinished.length + uncounted;
  let unhandled = 0;
  let missing = [];
  if (!run) {
    problems.push('the run file of scripts/vitest-run-reporter.mjs is missing: unhandled errors unknown');
    unhandled = 1;
  } else {
    const reported = new Set((report.testResults ?? []).map((file) => file.name));
    missing = run.files.filter((file) => !reported.has(file)).map((file) => relative(process.cwd(), file));
    unhandled = run.unhandledErrors.length;
    if (unhandled) problems.push(`${unhandled} unhandled error(s): ${run.unhandledErrors.join('; ')}`);
  }
  // A skipped or todo test did not run either: the suite's rule is that it counts as a failure.
  if (skipped) problems.push(`${skipped} test(s) skipped or todo: nothing of the suite may be left out`);
  if (notRun) problems.push(`${notRun} test(s) never ran (a worker crashed or the run stopped)${unfinished.length ? `: ${list(unfinished)}` : ''}`);
  if (fileErrors.length) problems.push(`${fileErrors.length} test file(s) failed outside their tests: ${list(fileErrors)}`);
  if (missing.length) problems.push(`${missing.length} test file(s) missing from the report: ${list(missing)}`);
  return { passed, failed: failed + skipped + notRun + fileErrors.length + missing.length + unhandled, skipped, problems };
}

function list(items, shown = 5) {
  return items.length > shown ? `${items.slice(0, shown).join(', ')} and ${items.length - shown} more` : items.join(', ');
}

/** Skipped tests are among the failed ones already: the line is the plain "P passed, F failed". */
export function closingLine({ passed, failed }) {
  return `${passed} passed, ${failed} failed`;
}

function readJson(path) {
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [reportPath, runPath] = process.argv.slice(2);
  if (!reportPath || !runPath) {
    process.stderr.write('usage: node scripts/test-summary.mjs REPORT.json RUN.json\n');
    process.exit(2);
  }
  const summary = summarize(readJson(reportPath), readJson(runPath));
  for (const problem of summary.problems) process.stdout.write(`test-summary: ${problem}\n`);
  process.stdout.write(`${closingLine(summary)}\n`);
  process.exitCode = summary.failed > 0 ? 1 : 0;
}
