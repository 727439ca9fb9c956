#!/usr/bin/env bash
# Courier's benchmark: Courier beside its limits (raw consume, raw push) and its peers, one run.
#
# Usage: bash scripts/bench.sh [--short | --full] [--soak [--soak-minutes N]] [--inflight] [--no-peers] [--records N]
#   --short   (default) 20,000 records, a minute or two once Courier and the peers are built
#   --full    200,000 records and 30 s latency runs: the README table
#   --soak    also a 10-minute RSS soak of Courier (slope in MB/min)
#   --inflight  also (always with --full) Courier's RSS with 10,000 records in flight
#   --no-peers  skip building and running the peers (Redpanda Connect, daprd, Benthos, Bento,
#               Apache Camel, mq-bridge)
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

# shellcheck source=lib/bench-guard.sh
source scripts/lib/bench-guard.sh
bench_guard .bench/run 50

log "installing and compiling (scripts/setup.sh)"
bash scripts/setup.sh

if ((peers)); then
  all_peers=(redpanda-connect daprd benthos bento camel mq-bridge)
  for peer in "${all_peers[@]}"; do bash bench/peers/build.sh "$peer"; done
  args+=(--peers "$(IFS=,; echo "${all_peers[*]}")")
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
