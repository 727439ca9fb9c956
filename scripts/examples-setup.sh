#!/usr/bin/env bash
# Installs and builds what the handler examples (examples/<lang>/) need, and nothing twice.
#
# Usage: scripts/examples-setup.sh [python|go|java|typescript|all]...   (default: all)
#
#   python      python3 (the example uses the standard library only)
#   go          go (Debian's golang is enough: go.mod says 1.19); builds examples/go/bin/handler
#   java        javac + mvn (Java 17); builds examples/java/target/classes
#   typescript  node + npm; npm ci into examples/typescript/node_modules, builds examples/typescript/dist
#
# A missing toolchain is installed from Debian's packages. Build output stays in git-ignored folders;
# each build is skipped while it is newer than its sources. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'examples-setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  log "installing Debian packages: $*"
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# True when $1 is missing or older than any file under the other arguments.
stale() {
  local target=$1
  shift
  [ ! -e "$target" ] || [ -n "$(find "$@" -newer "$target" -print -quit)" ]
}

setup_python() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    log "python3 is older than 3.10"
    exit 1
  }
}

setup_go() {
  command -v go >/dev/null 2>&1 || apt_install golang
  if stale examples/go/bin/handler examples/go/main.go examples/go/go.mod; then
    log "building examples/go"
    (cd examples/go && GOFLAGS=-buildvcs=false go build -o bin/handler .)
  fi
}

setup_java() {
  # The JDK (javac), not only a runtime; Maven for the build.
  local missing=()
  command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
  if stale examples/java/target/classes/dev/courier/examples/Handler.class examples/java/src examples/java/pom.xml; then
    log "building examples/java"
    mvn -B -q -f examples/java/pom.xml compile >&2
  fi
}

setup_typescript() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local stamp=examples/typescript/node_modules/.installed
  if stale "$stamp" examples/typescript/package.json examples/typescript/package-lock.json; then
    log "installing examples/typescript dependencies"
    (cd examples/typescript && npm ci --no-audit --no-fund --loglevel=error >&2)
    touch "$stamp"
  fi
  if stale examples/typescript/dist/handler.js examples/typescript/src examples/typescript/tsconfig.json "$stamp"; then
    log "building examples/typescript"
    (cd examples/typescript && npx tsc -p tsconfig.json)
  fi
}

# One setup at a time per checkout (test runs may overlap).
exec {lock_fd}>"${TMPDIR:-/tmp}/courier-examples-setup.$(pwd | cksum | cut -d' ' -f1).lock"
flock "$lock_fd"

[ "$#" -gt 0 ] || set -- all
for lang in "$@"; do
  case "$lang" in
    python | go | java | typescript) "setup_$lang" ;;
    all) setup_python; setup_go; setup_java; setup_typescript ;;
    *)
      log "unknown example '$lang' (python, go, java, typescript, all)"
      exit 2
      ;;
  esac
done
