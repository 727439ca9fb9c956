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
# figures to bench/results/tier-outage-<UTC date>.json, Courier's log, the samples and the app's
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

mkdir -p .bench/outage
# One benchmark at a time on this machine (the same lock as scripts/bench.sh): they would share the CPUs.
exec {LOCK_FD}>.bench/bench.lock
flock -n "$LOCK_FD" || die "another benchmark is running (lock .bench/bench.lock)"

# Keep the logs of the last 10 runs.
find .bench/outage -mindepth 1 -maxdepth 1 -type d -name '2*' | sort -r | tail -n +10 | xargs -r rm -rf

PIDFILE=.bench/outage/pids
RUNNER_PID=
: >"$PIDFILE"

# Kills what the runner started and left behind (only processes whose pid AND start time match
# what the runner recorded), then stops the broker.
cleanup() {
  local rc=$? pid start name stat
  trap - EXIT INT TERM HUP
  if [[ -n $RUNNER_PID ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUNNER_PID" 2>/dev/null || true
  fi
  if [[ -f $PIDFILE ]]; then
    while read -r pid start name; do
      [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || continue
      # Field 1 after the command is the state (a zombie has exited already), 20 the start time.
      read -r -a stat <<<"$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
      [[ ${stat[0]:-Z} != [ZX] && ${stat[19]:-} == "$start" ]] || continue
      log "stopping leftover $name (pid $pid)"
      kill -KILL "$pid" 2>/dev/null || true
    done <"$PIDFILE"
  fi
  if [[ -n ${BROKER_STARTED:-} ]]; then
    bash scripts/kafka.sh stop --name "$BROKER" 2>/dev/null || log "could not stop broker '$BROKER': bash scripts/kafka.sh stop --name $BROKER"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

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
