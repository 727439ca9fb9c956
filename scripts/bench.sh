#!/usr/bin/env bash
# Courier's benchmark: Courier beside its limits (raw consume, raw push) and its peers, one run.
#
# Usage: bash scripts/bench.sh [--short | --full] [--soak [--soak-minutes N]] [--inflight] [--no-peers] [--records N]
#   --short   (default) 20,000 records, a minute or two once Courier and the peers are built
#   --full    200,000 records and 30 s latency runs: the README table
#   --soak    also a 10-minute RSS soak of Courier (slope in MB/min)
#   --inflight  also (always with --full) Courier's RSS with 10,000 records in flight
#   --no-peers  skip building and running Redpanda Connect and daprd
#
# It installs what it needs (scripts/setup.sh), builds the peers once into .bench/peers/
# (git-ignored; each within BENCH_PEER_BUILD_TIMEOUT seconds, default 900), starts its own broker
# (scripts/kafka.sh, name courier-bench) and stops it at the end. Every process it starts is
# stopped on exit, failure or Ctrl-C. A progress line goes to stderr; the table to stdout; the
# figures to bench/results/<date>.json (--full) or <date>-short.json.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
readonly BROKER=courier-bench

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit "${1:-2}"; }

args=(--short)
peers=1
while (($#)); do
  case $1 in
    --short) args[0]=--short; shift ;;
    --full) args[0]=--full; shift ;;
    --soak) args+=(--soak); shift ;;
    --inflight) args+=(--inflight); shift ;;
    --soak-minutes) (($# >= 2)) || die "--soak-minutes needs a value"; args+=(--soak-minutes "$2"); shift 2 ;;
    --records) (($# >= 2)) || die "--records needs a value"; args+=(--records "$2"); shift 2 ;;
    --no-peers) peers=0; shift ;;
    --) shift; args+=("$@"); break ;; # the rest goes to bench/run.mjs (see bench/README.md)
    -h | --help) usage 0 ;;
    *) log "unknown argument '$1'"; usage ;;
  esac
done

mkdir -p .bench/run
# One benchmark at a time on this machine: they would share the broker name and the CPUs.
exec {LOCK_FD}>.bench/bench.lock
flock -n "$LOCK_FD" || die "another benchmark is running (lock .bench/bench.lock)"

# Keep the logs of the last 10 runs.
find .bench/run -mindepth 1 -maxdepth 1 -type d -name '2*' | sort -r | tail -n +10 | xargs -r rm -rf

PIDFILE=.bench/run/pids
RUNNER_PID=
: >"$PIDFILE"

# Kills what the runner started and left behind (only processes whose pid AND start time match
# what the runner recorded), then stops the broker.
cleanup() {
  local rc=$? pid start name stat
  trap - EXIT INT TERM HUP
  if [[ -n $RUNNER_PID ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
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

log "installing and compiling (scripts/setup.sh)"
bash scripts/setup.sh

if ((peers)); then
  for peer in redpanda-connect daprd; do bash bench/peers/build.sh "$peer"; done
  args+=(--peers redpanda-connect,daprd)
else
  args+=(--peers '')
fi

log "starting broker '$BROKER'"
BROKER_STARTED=1
bootstrap=$(bash scripts/kafka.sh start --name "$BROKER") || die "the broker did not start"
kafka_version=$(sed -n 's/^readonly KAFKA_VERSION=//p' scripts/kafka.sh)

# In the background and waited for, so a TERM to this script reaches the trap at once.
node bench/run.mjs --bootstrap "$bootstrap" --kafka-version "$kafka_version" --pidfile "$PIDFILE" "${args[@]}" &
RUNNER_PID=$!
wait "$RUNNER_PID"
