#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, type-checks, lints, runs the
# unit tests and the integration tests (which start their own Kafka broker), and ends with one
# summary line "N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
echo "== typecheck and lint"
npx tsc -p tsconfig.json --noEmit
npx tsc -p tsconfig.test.json
npx biome check .

echo "== tests"
mkdir -p .scratch
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.scratch/vitest.json "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(".scratch/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
'
exit "$status"
