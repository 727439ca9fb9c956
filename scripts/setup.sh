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
  log "installing npm dependencies (builds librdkafka against the system libraries, about 75 s)"
  CKJS_LINKING=dynamic npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

log "compiling"
npx tsc -p tsconfig.json

bash scripts/kafka.sh fetch
log "ready"
