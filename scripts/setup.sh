#!/usr/bin/env bash
# Installs everything Courier needs on a fresh Debian machine, and nothing twice:
#   - Debian's native libraries that @confluentinc/kafka-javascript links against (its prebuilt
#     binary cannot be downloaded here, and its default source build would download them);
#   - Java and Maven if missing (the local Kafka broker runs on the JVM);
#   - npm dependencies, built with CKJS_LINKING=dynamic against those libraries;
#   - the compiled Courier (dist/) and the Kafka jars (.kafka/, git-ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci only when node_modules is missing, stale, or the native client does not load.
stamp=node_modules/.courier-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || ! node -e "require('@confluentinc/kafka-javascript')" >/dev/null 2>&1; then
  log "installing npm dependencies: @confluentinc/kafka-javascript builds librdkafka against the system libraries (about 2 to 3 minutes on two cores)"
  # npm prints nothing while the native build runs: a line every 15 s says it is still going.
  (
    trap 'kill "$tick" 2>/dev/null; exit 0' TERM
    elapsed=0
    while :; do
      sleep 15 &
      tick=$!
      wait "$tick"
      elapsed=$((elapsed + 15))
      log "still building @confluentinc/kafka-javascript (${elapsed} s)"
    done
  ) &
  ticker=$!
  # Also when setup stops early (Ctrl-C): the ticker would go on printing.
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  started=$SECONDS
  npm_status=0
  CKJS_LINKING=dynamic npm ci --no-audit --no-fund --loglevel=error || npm_status=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  trap - EXIT
  [ "$npm_status" -eq 0 ] || { log "npm ci failed (exit $npm_status)"; exit "$npm_status"; }
  log "npm dependencies installed in $((SECONDS - started)) s"
  touch "$stamp"
fi

log "compiling"
npx tsc -p tsconfig.json

bash scripts/kafka.sh fetch
log "ready"
