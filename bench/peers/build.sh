#!/usr/bin/env bash
# shellcheck disable=SC2317 # the build functions are called through go_peer "$@"
# Builds one benchmark peer from its registry into .bench/peers/ (git-ignored), within a time budget.
#
# Usage: bash bench/peers/build.sh daprd|redpanda-connect|benthos|bento|camel|mq-bridge
#
# Always exits 0 and writes .bench/peers/<peer>.json:
#   {"peer","ok","bin","version","seconds","cached","reason"}
# so the benchmark can record why a peer is missing and run the rest.
# Env: BENCH_PEER_BUILD_TIMEOUT (seconds, default 900), REDPANDA_CONNECT_BIN (a binary you provide).
set -uo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$ROOT/.bench/peers
BIN=$OUT/bin
BUDGET=${BENCH_PEER_BUILD_TIMEOUT:-900}
peer=${1:?usage: build.sh daprd|redpanda-connect|benthos|bento|camel|mq-bridge}
mkdir -p "$BIN"
log() { printf 'bench: %s\n' "$*" >&2; }

# status OK BIN VERSION SECONDS CACHED REASON
status() {
  node -e '
    const [peer, ok, bin, version, seconds, cached, reason] = process.argv.slice(1);
    const out = { peer, ok: ok === "1", bin: bin || null, version: version || null,
      seconds: Number(seconds), cached: cached === "1", reason: reason || null };
    require("fs").writeFileSync(process.argv[8], JSON.stringify(out, null, 2) + "\n");
  ' "$peer" "$1" "$2" "$3" "$4" "$5" "$6" "$OUT/$peer.json"
  if [[ $1 == 1 ]]; then log "$peer: ready ($2, $3$([[ $5 == 1 ]] && echo ", cached" || echo ", built in $4 s"))"; else log "$peer: not available: $6"; fi
}

# go install MODULE/PATH@VERSION into $BIN with the budget; leaves the tail of the log in $err.
go_install() {
  local target=$1 logf=$OUT/$peer.build.log
  command -v go >/dev/null || { err="go is not installed"; return 1; }
  log "$peer: go install $target (budget ${BUDGET}s; log: ${logf#"$ROOT"/})"
  GOBIN=$BIN GOFLAGS=-buildvcs=false timeout --kill-after=10 "$BUDGET" go install "$target" >"$logf" 2>&1
  local rc=$?
  ((rc == 0)) && return 0
  if ((rc == 124 || rc == 137)); then
    err="go install $target did not finish within ${BUDGET}s"
  else
    err="go install $target failed: $(grep -v '^go: downloading' "$logf" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
  fi
  return 1
}

# The peer's module from the Go module proxy as the base of a throw-away main module in
# $OUT/src/$peer: its go.mod is the peer's own (same requirements, same replaces) renamed, plus a
# requirement on the peer, with the peer's go.sum. Sets $src and $deadline (download + build share
# the budget). Everything comes from the Go module proxy.
go_module_from() {
  local module=$1 version=$2 logf=$OUT/$peer.build.log dir
  src=$OUT/src/$peer
  command -v go >/dev/null || { err="go is not installed"; return 1; }
  rm -rf "$src" && mkdir -p "$src"
  : >"$logf"
  deadline=$((SECONDS + BUDGET))
  if ! dir=$(cd "$src" && timeout "$BUDGET" go mod download -json "$module@$version" 2>>"$logf" | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const j = JSON.parse(s); if (j.Error) { console.error(j.Error); process.exit(1); } console.log(j.Dir); });' 2>>"$logf"); then
    err="go mod download $module@$version failed: $(tail -n 2 "$logf" | tr '\n' ' ' | cut -c1-300)"
    return 1
  fi
  sed -e "s#^module .*#module courier.bench/$peer#" "$dir/go.mod" >"$src/go.mod"
  cp "$dir/go.sum" "$src/go.sum"
  chmod u+w "$src/go.mod" "$src/go.sum"
  printf '\nrequire %s %s\n' "$module" "$version" >>"$src/go.mod"
}

# go build TARGET (a package path, or . for the throw-away module's own main) in $src into $BIN/NAME
# with what is left of the budget.
go_build_in() {
  local module=$1 version=$2 target=$3 name=$4 tags=${5:-} logf=$OUT/$peer.build.log
  local left=$((deadline - SECONDS))
  ((left > 0)) || { err="no time left for the build within ${BUDGET}s"; return 1; }
  (cd "$src" && GOFLAGS='-mod=mod -buildvcs=false' timeout --kill-after=10 "$left" go build -trimpath ${tags:+-tags "$tags"} -o "$BIN/$name" "$target") >>"$logf" 2>&1
  local rc=$?
  ((rc == 0)) && return 0
  if ((rc == 124 || rc == 137)); then
    err="building $module@$version did not finish within ${BUDGET}s"
  else
    err="building $module@$version failed (exit $rc): $(grep -v '^go: downloading' "$logf" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
  fi
  return 1
}

# `go install MODULE/cmd@VERSION` refuses a module whose go.mod has replace directives (daprd's
# has). So: the peer's package built from a throw-away module with the peer's go.mod (above).
go_build_replaced() {
  local module=$1 version=$2 pkg=$3 name=$4 tags=${5:-}
  log "$peer: building $module/${pkg#./}@$version from the Go module proxy (budget ${BUDGET}s; log: .bench/peers/$peer.build.log)"
  go_module_from "$module" "$version" || return 1
  go_build_in "$module" "$version" "$module/${pkg#./}" "$name" "$tags"
}

# A slim Benthos-engine binary (Benthos, Bento): the throw-away module's own main calls
# service.RunCLI and blank-imports only the component packages named (io: http_client, kafka:
# kafka_franz, pure: the engine's base), instead of the full distribution's hundreds of
# components. Same config language and CLI (`-c config.yaml`); the version comes from the build info.
go_build_slim() {
  local module=$1 version=$2 name=$3 components=$4 c
  log "$peer: building $module@$version with components $components from the Go module proxy (budget ${BUDGET}s; log: .bench/peers/$peer.build.log)"
  go_module_from "$module" "$version" || return 1
  {
    printf '// Written by bench/peers/build.sh: %s@%s with only the components the benchmark uses.\n' "$module" "$version"
    printf 'package main\n\nimport (\n\t"context"\n\n\t"%s/public/service"\n' "$module"
    for c in ${components//,/ }; do printf '\t_ "%s/public/components/%s"\n' "$module" "$c"; done
    printf ')\n\nfunc main() {\n\tservice.RunCLI(context.Background())\n}\n'
  } >"$src/main.go"
  go_build_in "$module" "$version" . "$name"
}

# A Go-built peer, cached by a stamp: go_peer NAME STAMP BUILD-COMMAND...
go_peer() {
  local name=$1 want=$2 stamp=$OUT/$1.version
  shift 2
  if [[ -x $BIN/$name && -f $stamp && $(<"$stamp") == "$want" ]]; then
    status 1 "$BIN/$name" "${want%%+*}" 0 1 ""
  elif "$@"; then
    printf '%s\n' "$want" >"$stamp"
    status 1 "$BIN/$name" "${want%%+*}" $((SECONDS - t0)) 0 ""
  else
    rm -f "$stamp"
    status 0 "" "${want%%+*}" $((SECONDS - t0)) 0 "$err"
  fi
}

# The reason a step run under `timeout` failed: RC 124/137 is its budget running out, else LOG_TAIL.
timed_failure() {
  local rc=$1 what=$2 log_tail=$3
  if ((rc == 124 || rc == 137)); then echo "$what did not finish within ${BUDGET}s"; else echo "$what failed (exit $rc): $log_tail"; fi
}

t0=$SECONDS
case $peer in
  daprd)
    # v1.14.0 is the only daprd version the Go module proxy serves here.
    # daprd refuses to start unless built with a component set: the stable components (Kafka
    # pub/sub among them).
    go_peer daprd v1.14.0+stablecomponents go_build_replaced github.com/dapr/dapr v1.14.0 ./cmd/daprd daprd stablecomponents
    ;;
  redpanda-connect)
    # Not built from source here: the Go module proxy reachable from this machine refuses
    # github.com/redpanda-data/connect/v4 (its distribution is not under an open-source licence, so
    # the registry mirror does not serve it), npm has no redpanda-connect binary, and PyPI's
    # `redpanda-connect` is a library for writing plugins, not the binary. A binary you provide
    # (REDPANDA_CONNECT_BIN or `redpanda-connect` on PATH) is used with bench/peers/redpanda-connect.yaml.
    bin=${REDPANDA_CONNECT_BIN:-$(command -v redpanda-connect || true)}
    if [[ -n $bin && -x $bin ]]; then
      version=$("$bin" --version 2>/dev/null | head -n 1 | tr -d '\r')
      status 1 "$bin" "${version:-unknown}" 0 1 ""
    else
      status 0 "" "" $((SECONDS - t0)) 0 "cannot be built here: the Go module proxy refuses github.com/redpanda-data/connect/v4 (not served: not an open-source licence), npm has no redpanda-connect binary and PyPI's redpanda-connect is a plugin library; set REDPANDA_CONNECT_BIN to run it"
    fi
    ;;
  benthos)
    # Benthos v4.27.0 (MIT), the engine Redpanda Connect grew out of. The Go module proxy serves
    # this exact version but lists none: it is named exactly.
    go_peer benthos v4.27.0+io,kafka,pure go_build_slim github.com/benthosdev/benthos/v4 v4.27.0 benthos io,kafka,pure
    ;;
  bento)
    # Bento v1.2.0 (MIT), WarpStream's fork of the same engine; module path without /v1.
    go_peer bento v1.2.0+io,kafka,pure go_build_slim github.com/warpstreamlabs/bento v1.2.0 bento io,kafka,pure
    ;;
  camel)
    # Apache Camel 4.22.0 (camel-main, camel-kafka, camel-http, camel-yaml-dsl, camel-bean) from
    # Maven Central: bench/peers/camel/pom.xml, its jars copied into .bench/peers/camel/lib; no
    # code of its own (org.apache.camel.main.Main runs bench/peers/camel/route.yaml). The stamp
    # holds the pom's checksum, so a changed pom is resolved again.
    version=4.22.0
    lib=$OUT/camel/lib
    stamp=$OUT/camel.version
    want="$version+$(sha256sum "$ROOT/bench/peers/camel/pom.xml" | cut -c1-16)"
    java=$(command -v java || true)
    if [[ -z $java ]]; then
      status 0 "" "$version" 0 0 "java is not installed"
    elif [[ -f $stamp && $(<"$stamp") == "$want" && -f $lib/camel-main-$version.jar ]]; then
      status 1 "$java" "$version" 0 1 ""
    elif ! command -v mvn >/dev/null; then
      status 0 "" "$version" 0 0 "mvn is not installed"
    else
      logf=$OUT/camel.build.log
      log "camel: resolving bench/peers/camel/pom.xml from Maven Central into ${lib#"$ROOT"/} (budget ${BUDGET}s; log: ${logf#"$ROOT"/})"
      rm -rf "$lib" "$stamp"
      if timeout --kill-after=10 "$BUDGET" mvn -B -q -f "$ROOT/bench/peers/camel/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$lib" >"$logf" 2>&1 && [[ -f $lib/camel-main-$version.jar ]]; then
        printf '%s\n' "$want" >"$stamp"
        status 1 "$java" "$version" $((SECONDS - t0)) 0 ""
      else
        err=$(timed_failure $? "mvn dependency:copy-dependencies" "$(grep -E 'ERROR|FATAL' "$logf" | head -n 3 | tr '\n' ' ' | cut -c1-400)")
        status 0 "" "$version" $((SECONDS - t0)) 0 "$err"
      fi
    fi
    ;;
  mq-bridge)
    # mq-bridge 1.2.0 from PyPI (MIT OR Apache-2.0): a Rust messaging engine (librdkafka for Kafka,
    # reqwest for HTTP) behind Python bindings, in a virtualenv of its own. The benchmark runs its
    # route with that venv's python (bench/peers/peers.mjs).
    version=1.2.0
    venv=$OUT/mq-bridge/venv
    python=$venv/bin/python
    if [[ -x $python ]] && [[ $("$python" -c 'import importlib.metadata as m, mq_bridge; print(m.version("mq-bridge"))' 2>/dev/null) == "$version" ]]; then
      status 1 "$python" "$version" 0 1 ""
    elif ! command -v python3 >/dev/null; then
      status 0 "" "$version" 0 0 "python3 is not installed"
    else
      logf=$OUT/mq-bridge.build.log
      log "mq-bridge: pip install mq-bridge==$version into ${venv#"$ROOT"/} (budget ${BUDGET}s; log: ${logf#"$ROOT"/})"
      rm -rf "$venv"
      # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
      if timeout --kill-after=10 "$BUDGET" bash -c 'python3 -m venv "$1" && "$1/bin/pip" install --disable-pip-version-check --no-input "mq-bridge==$2"' _ "$venv" "$version" >"$logf" 2>&1 &&
        "$python" -c 'import mq_bridge' >>"$logf" 2>&1; then
        status 1 "$python" "$version" $((SECONDS - t0)) 0 ""
      else
        err=$(timed_failure $? "pip install mq-bridge==$version" "$(tail -n 3 "$logf" | tr '\n' ' ' | cut -c1-400)")
        status 0 "" "$version" $((SECONDS - t0)) 0 "$err"
      fi
    fi
    ;;
  *) log "unknown peer '$peer'"; exit 2 ;;
esac
exit 0
