#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, type-checks, lints, runs the
# unit tests, the integration tests (which start their own Kafka broker), the k8s tests (which
# start their own etcd and kube-apiserver) and the image tests (which build Courier's image with
# Podman and run it against a broker of their own), and ends with one summary line "N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# Once, into .k8s/ (git-ignored): 9 to 20 minutes on two cores with a cold Go build cache, then nothing.
echo "== etcd and kube-apiserver for test/k8s"
bash scripts/k8s.sh build
echo "== typecheck and lint"
npx tsc -p tsconfig.json --noEmit
npx tsc -p tsconfig.test.json
npx biome check .

echo "== tests"
mkdir -p .scratch
# No stale report from an earlier run may stand in for this one.
rm -f .scratch/vitest.json .scratch/vitest-run.json
status=0
npx vitest run --reporter=default --reporter=json --reporter=./scripts/vitest-run-reporter.mjs --outputFile.json=.scratch/vitest.json "$@" || status=$?
# The closing line counts tests that never ran (a crashed worker), files that failed outside their
# tests and unhandled errors as failures too: vitest's own numFailedTests leaves them out.
summary=0
node scripts/test-summary.mjs .scratch/vitest.json .scratch/vitest-run.json || summary=$?
if [ "$status" -eq 0 ]; then status=$summary; fi
exit "$status"
