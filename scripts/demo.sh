#!/usr/bin/env bash
# Courier end to end, in one command on a fresh machine:
#   bash scripts/demo.sh            # one request per record
#   bash scripts/demo.sh --batch    # batch delivery: many records per JSON request (COURIER_DELIVERY=batch)
#   bash scripts/demo.sh --help
#
# 1. installs everything (scripts/setup.sh), starts a local Kafka broker (scripts/kafka.sh, name "demo"),
#    creates demo-orders-<run> (4 partitions) and demo-orders-<run>.dlq (1 partition);
# 2. starts the example app (examples/webhook-app.mjs) and Courier (node dist/main.js) pointed at it;
# 3. produces N JSON records (every 1000th is "poison": the app answers 422, Courier dead-letters it;
#    ~5% of first attempts get a 503, Courier retries them), shows progress once a second;
# 4. when the group's committed offsets reach the end offsets, prints a summary read back from Kafka.
# With --batch, Courier sends the records in batches (COURIER_DELIVERY=batch, values as parsed JSON); the app
# answers each batch 200 and lists the poison records as 422 failures and ~5% of first attempts as 503 failures,
# and the summary adds the requests made for the records and the mean batch size (the app's counts and Courier's
# courier_batch_size histogram).
# Everything it started is stopped on exit, Ctrl-C or error. Exit 0 when every check passed.
#
# Env: DEMO_RECORDS (default 5000), DEMO_TIMEOUT_S (default 120), DEMO_SKIP_SETUP=1 (skip setup.sh),
#      DEMO_KEEP_BROKER=1 (leave the broker running), DEMO_VERBOSE=1 (the app logs each record).
# Logs: .scratch/demo/<run>/{courier,app}.log (the last 5 runs are kept).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
  exit "${1:-0}"
}

DELIVERY=record
for arg in "$@"; do
  case $arg in
    --batch) DELIVERY=batch ;;
    -h | --help) usage 0 ;;
    *) printf 'demo: unknown argument %s\n\n' "$arg" >&2 && usage 2 >&2 ;;
  esac
done
readonly DELIVERY

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO_ROOT
cd "$REPO_ROOT"

readonly RECORDS=${DEMO_RECORDS:-5000}
readonly TIMEOUT_S=${DEMO_TIMEOUT_S:-120}
readonly BROKER_NAME=demo
RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
[[ $DELIVERY == record ]] || RUN_ID+=-$DELIVERY
readonly RUN_ID
readonly TOPIC=demo-orders-$RUN_ID
readonly GROUP=demo-$RUN_ID
readonly RUN_DIR=.scratch/demo/$RUN_ID
readonly COURIER_LOG=$RUN_DIR/courier.log
readonly APP_LOG=$RUN_DIR/app.log

log() { printf 'demo: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APP_PID=
COURIER_PID=
BROKER_STARTED=0

# Is our child $1 still running? A child that exited stays a zombie until `wait`, so its pid cannot be
# reused by another process meanwhile; a zombie counts as gone.
alive() {
  local state
  [[ -n $1 ]] || return 1
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $state && $state != Z* ]]
}

# Wait up to $2 seconds for child $1 to exit; true if it did.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# SIGTERM Courier and collect its exit code (also when it had already exited).
stop_courier() {
  local rc=0 t0=$SECONDS pid=$COURIER_PID
  [[ -n $pid ]] || return 0
  COURIER_PID=
  if alive "$pid"; then
    log "stopping Courier (SIGTERM, pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 40; then
      log "Courier did not exit 40 s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    log "Courier exited with code $rc, $((SECONDS - t0)) s after SIGTERM"
  else
    wait "$pid" 2>/dev/null || rc=$?
    log "Courier had already exited, with code $rc"
  fi
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n $COURIER_PID ]]; then
    if ! stop_courier && ((rc == 0)); then
      log "Courier did not stop cleanly; last lines of $COURIER_LOG:"
      tail -n 20 "$COURIER_LOG" >&2
      rc=1
    fi
  fi
  if alive "$APP_PID"; then
    kill -TERM "$APP_PID" 2>/dev/null
    wait_gone "$APP_PID" 5 || kill -KILL "$APP_PID" 2>/dev/null
  fi
  if ((BROKER_STARTED)); then
    if [[ ${DEMO_KEEP_BROKER:-} == 1 ]]; then
      log "broker '$BROKER_NAME' left running (stop it: bash scripts/kafka.sh stop --name $BROKER_NAME)"
    else
      bash scripts/kafka.sh stop --name "$BROKER_NAME" 2>/dev/null
    fi
  fi
  if ((rc == 0)); then log "done: all checks passed"; else log "FAILED (exit $rc); logs in $RUN_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ------------------------------------------------------------------ setup ----
if [[ ${DEMO_SKIP_SETUP:-} != 1 ]]; then
  log "running scripts/setup.sh"
  bash scripts/setup.sh
fi
[[ -f dist/main.js ]] || die "dist/main.js missing (run bash scripts/setup.sh)"

mkdir -p "$RUN_DIR"
# Keep the last 5 runs' logs.
find .scratch/demo -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +6 | cut -d' ' -f2- |
  while IFS= read -r old; do rm -rf -- "$old"; done

# ----------------------------------------------------------------- broker ----
BROKER_STARTED=1
BOOTSTRAP=$(bash scripts/kafka.sh start --name "$BROKER_NAME")
[[ $BOOTSTRAP =~ ^127\.0\.0\.1:[0-9]+$ ]] || die "unexpected broker address '$BOOTSTRAP'"
log "broker at $BOOTSTRAP"
node scripts/demo/create-topics.mjs "$BOOTSTRAP" "$TOPIC" 4

# -------------------------------------------------------------------- app ----
# Own session (setsid): a terminal Ctrl-C reaches only this script, which then stops everyone in order.
# PORT=0: the kernel picks a free port, the app prints it.
: >"$APP_LOG"
PORT=0 setsid node examples/webhook-app.mjs >"$APP_LOG" 2>&1 </dev/null &
APP_PID=$!
APP_PORT=
for _ in $(seq 100); do
  APP_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$APP_LOG")
  [[ -z $APP_PORT ]] || break
  alive "$APP_PID" || { cat "$APP_LOG" >&2; die "the example app exited"; }
  sleep 0.1
done
[[ -n $APP_PORT ]] || die "the example app did not start (see $APP_LOG)"
readonly APP_URL=http://127.0.0.1:$APP_PORT
log "example app at $APP_URL (pid $APP_PID)"

# ---------------------------------------------------------------- courier ----
: >"$COURIER_LOG"
DELIVERY_ENV=()
# Batch delivery; the demo's records have no content-type header: say they are JSON, so batches carry them parsed.
[[ $DELIVERY == record ]] || DELIVERY_ENV=(COURIER_DELIVERY=batch COURIER_DEFAULT_CONTENT_TYPE=application/json)
env "${DELIVERY_ENV[@]}" \
  COURIER_GROUP_ID=$GROUP \
  COURIER_TOPICS=$TOPIC \
  COURIER_TARGET_URL=$APP_URL/orders \
  KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP \
  COURIER_MAX_ATTEMPTS=8 \
  COURIER_RETRY_INITIAL_MS=100 \
  COURIER_RETRY_MAX_MS=1000 \
  COURIER_OUTAGE_AFTER_MS=2000 \
  COURIER_HOST=127.0.0.1 \
  COURIER_PORT=0 \
  COURIER_LOG_LEVEL=info \
  setsid node dist/main.js >"$COURIER_LOG" 2>&1 </dev/null &
COURIER_PID=$!
log "Courier started (pid $COURIER_PID, group $GROUP, ${DELIVERY} delivery, log $COURIER_LOG)"
# Wait until it has joined the group and owns partitions, so the throughput below measures delivery.
for _ in $(seq 300); do
  grep -q '"msg":"rebalance"' "$COURIER_LOG" && break
  alive "$COURIER_PID" || { tail -n 30 "$COURIER_LOG" >&2; die "Courier exited during startup"; }
  sleep 0.1
done
grep -q '"msg":"rebalance"' "$COURIER_LOG" || { tail -n 30 "$COURIER_LOG" >&2; die "Courier did not join the group within 30 s"; }
# Courier's own API (COURIER_PORT=0: it logs the port it got), for its metrics in the summary.
COURIER_API_PORT=$(sed -n 's|.*"port":\([0-9]*\).*"msg":"api listening".*|\1|p' "$COURIER_LOG" | head -n 1)
[[ -n $COURIER_API_PORT ]] || die "Courier did not log its API port (see $COURIER_LOG)"
readonly COURIER_API=http://127.0.0.1:$COURIER_API_PORT

# ------------------------------------------------------- produce and watch ----
rc=0
node scripts/demo/run.mjs --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --group "$GROUP" --app "$APP_URL" \
  --courier-pid "$COURIER_PID" --log "$COURIER_LOG" --count "$RECORDS" --timeout-s "$TIMEOUT_S" \
  --delivery "$DELIVERY" --courier-api "$COURIER_API" || rc=$?
if ((rc != 0)); then
  ((rc < 128)) || exit "$rc" # interrupted
  log "last lines of $COURIER_LOG:"
  tail -n 30 "$COURIER_LOG" >&2
  exit "$rc"
fi

# Courier must stop cleanly (exit 0) on SIGTERM; cleanup does the rest.
stop_courier || die "Courier did not exit 0 on SIGTERM (see $COURIER_LOG)"
