// Types of scripts/test-summary.mjs, for its unit test.
export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  problems: string[];
}
export interface RunFile {
  files: string[];
  unhandledErrors: string[];
}
export function summarize(report: unknown, run: RunFile | undefined): Summary;
export function closingLine(summary: Pick<Summary, 'passed' | 'failed' | 'skipped'>): string;
