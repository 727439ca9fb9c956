#!/usr/bin/env bash
# Courier's retry tiers through an app outage: nothing lost, nothing dead-lettered, no source
# partition held. A steady producer, an app that answers 503 (no Retry-After) to every request
# for the outage, Courier in partition mode with retry tiers (bench/tier-outage.mjs).
#
# Usage: bash scripts/tier-outage.sh [--outage-minutes N] [--tiers LIST] [--rate N]
#   --outage-minutes N  how long the app answers 503 (default 10)
#   --tiers LIST        COURIER_RETRY_TIERS (default 1m,5m,15m)
#   --rate N            records produced per second (default 20)
#
# Quick smoke run, about 3 to 4 minutes:
#   bash scripts/tier-outage.sh --outage-minutes 1 --tiers 10s,30s,60s
# The default run takes about 27 minutes: 12 of production, then the records parked last come due
# (up to the longest tier after the outage's end).
#
# Timeline: 60 s warm-up, the outage, one more minute of production, then until every record was
# acknowledged or the deadline (outage start + tiers + outage + 10 min) passes. PASS needs no lost
# record, no DLQ record, and no source partition whose committed offset stood still for more than
# 30 s with lag during the outage (bench/README.md lists every rule).
#
# It runs scripts/setup.sh when node_modules is missing, compiles dist/ when it is missing, starts
# its own broker (scripts/kafka.sh, name courier-outage) and stops it at the end. Every process it
# starts is stopped on exit, failure or Ctrl-C. Progress goes to stderr, the table to stdout, the
# figures to bench/results/tier-outage-<UTC date>.json (the default run only; others next to their logs), Courier's log, the samples and the app's
# requests to .bench/outage/<timestamp>/. Exit status: 0 PASS, 1 FAIL or error.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
readonly BROKER=courier-outage

log() { printf 'tier-outage: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit "${1:-2}"; }

args=()
while (($#)); do
  case $1 in
    --outage-minutes | --tiers | --rate)
      (($# >= 2)) || die "$1 needs a value"
      args+=("$1" "$2"); shift 2 ;;
    -h | --help) usage 0 ;;
    *) log "unknown argument '$1'"; usage ;;
  esac
done

# shellcheck source=lib/bench-guard.sh
source scripts/lib/bench-guard.sh
bench_guard .bench/outage 100

if [[ ! -d node_modules ]]; then
  log "installing and compiling (scripts/setup.sh)"
  bash scripts/setup.sh
elif [[ ! -f dist/main.js ]]; then
  log "compiling Courier into dist/"
  npx tsc -p tsconfig.json
fi

log "starting broker '$BROKER'"
BROKER_STARTED=1
bootstrap=$(bash scripts/kafka.sh start --name "$BROKER") || die "the broker did not start"
kafka_version=$(sed -n 's/^readonly KAFKA_VERSION=//p' scripts/kafka.sh)

# In the background and waited for, so a TERM to this script reaches the trap at once.
node bench/tier-outage.mjs --bootstrap "$bootstrap" --kafka-version "$kafka_version" --pidfile "$PIDFILE" "${args[@]}" &
RUNNER_PID=$!
wait "$RUNNER_PID"
