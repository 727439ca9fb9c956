#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver, nothing else) for Courier's tests,
# without Docker, a kubelet or a controller-manager: both are built once from the Go module proxy
# into the git-ignored .k8s/ and run as plain background processes on 127.0.0.1, with a throwaway
# CA, RBAC authorization and a static admin token.
#
# Usage:
#   scripts/k8s.sh build                    # builds etcd and kube-apiserver into .k8s/bin (once)
#   scripts/k8s.sh fetch                    # the same (the name scripts/kafka.sh uses)
#   scripts/k8s.sh start  [--name NAME]     # prints the path of the run's info.json
#   scripts/k8s.sh status [--name NAME]     # prints the same path, exit 1 if down
#   scripts/k8s.sh stop   [--name NAME | --all]
#   scripts/k8s.sh kubeconfig [--name NAME] # prints the path of the run's kubeconfig
#
# info.json has what a test needs: server (https://127.0.0.1:PORT), token (system:masters),
# caPem (the CA that signed the API server's certificate and may sign more), caKeyPem,
# webhookCertPem and webhookKeyPem (a serving certificate for 127.0.0.1 and localhost, from that
# CA, for admission webhooks run on the host), kubeconfig, etcd (its client URL), version.
#
# Nothing but etcd and kube-apiserver runs: no Pod is ever scheduled or started, Namespaces are
# not cleaned up, and no ServiceAccount is created for a new Namespace (create `default` in it
# before its first Pod).
#
# Only the info.json path goes to stdout; progress and errors go to stderr.
# Env: K8S_START_TIMEOUT (seconds, default 60), K8S_BUILD_TIMEOUT (seconds, default 2400).
set -euo pipefail

readonly KUBE_VERSION=v1.37.2
readonly ETCD_VERSION=v3.6.16
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_ROOT
# shellcheck source=scripts/lib/local-service.sh
source "$SCRIPT_DIR/lib/local-service.sh"
readonly CACHE_DIR=$REPO_ROOT/.k8s
readonly BIN_DIR=$CACHE_DIR/bin
readonly BUILD_DIR=$CACHE_DIR/build
readonly KUBE_APISERVER=$BIN_DIR/kube-apiserver-$KUBE_VERSION
readonly ETCD=$BIN_DIR/etcd-$ETCD_VERSION
readonly RUN_ROOT=$CACHE_DIR/run
# Locks live outside run dirs because `stop` deletes the run dir.
readonly LOCK_DIR=$CACHE_DIR/locks
readonly START_TIMEOUT=${K8S_START_TIMEOUT:-60}
readonly BUILD_TIMEOUT=${K8S_BUILD_TIMEOUT:-2400}
readonly STOP_TIMEOUT=20
readonly CERT_DAYS=3
# The throwaway build modules live inside this repository: no go.work above them may take part.
export GOWORK=off

log() { printf 'k8s.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

# flock-based mutual exclusion, as in scripts/kafka.sh: parallel callers may start, stop and
# build safely. The fds are globals because `exec {var}>` in a $(...) subshell would not stick.
NAME_LOCK_FD=
BUILD_LOCK_FD=

# ---------------------------------------------------------------- build ----

# A binary counts as built only with its stamp: a build cut short leaves no half binary behind.
built() { [[ -x $1 && -f $1.built ]]; }

# go build in the throwaway module $1, output $2, with a time budget; the log is shown on failure.
go_build() {
  local dir=$1 out=$2 pkg=$3 ldflags=$4 status=0 pid seconds=0
  log "  go build $pkg (log: ${dir#"$REPO_ROOT"/}/build.log)"
  timeout "$BUILD_TIMEOUT" go build -trimpath -buildvcs=false -ldflags="$ldflags" -o "$out.tmp" "$pkg" >>"$dir/build.log" 2>&1 &
  pid=$!
  # A line a minute, so that a CI log shows the long cold build is alive.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((++seconds % 60 == 0)); then log "  still building $pkg (${seconds}s)"; fi
  done
  wait "$pid" || status=$?
  if ((status != 0)); then
    tail -n 30 "$dir/build.log" >&2
    ((status == 124)) && die "go build $pkg ran out of its ${BUILD_TIMEOUT}s budget (K8S_BUILD_TIMEOUT)"
    die "go build $pkg failed with exit status $status"
  fi
  mv -f "$out.tmp" "$out"
  date -u +%FT%TZ >"$out.built"
}

# in_module DIR CMD...: run a go command in the throwaway module, logging into DIR/build.log.
in_module() {
  local dir=$1 status=0
  shift
  (cd "$dir" && timeout "$BUILD_TIMEOUT" "$@") >>"$dir/build.log" 2>&1 || status=$?
  if ((status != 0)); then
    tail -n 30 "$dir/build.log" >&2
    die "'$*' failed in ${dir#"$REPO_ROOT"/} with exit status $status"
  fi
}

# `go install k8s.io/kubernetes/cmd/kube-apiserver@version` is refused (k8s.io/kubernetes has
# replace directives for its staging modules), so a throwaway module requires k8s.io/kubernetes
# and replaces each staging module it requires at v0.0.0 by its published v0.MINOR.PATCH.
build_kube_apiserver() {
  local dir=$BUILD_DIR/kube-apiserver mod minor patch staging=() m t0=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir"
  log "building kube-apiserver $KUBE_VERSION from the Go module proxy (9 to 20 min on 2 idle to busy cores with a cold Go build cache, about 30 s warm)..."
  in_module "$dir" go mod download -json "k8s.io/kubernetes@$KUBE_VERSION"
  mod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod
  [[ -f $mod ]] || die "no go.mod of k8s.io/kubernetes $KUBE_VERSION in the module cache ($mod)"
  mapfile -t staging < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$mod")
  ((${#staging[@]} > 0)) || die "found no staging modules in $mod"
  IFS=. read -r _ minor patch <<<"${KUBE_VERSION#v}"
  {
    printf 'module courier.local/kube-apiserver-build\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
      "$(awk '$1 == "go" { print $2; exit }' "$mod")" "$KUBE_VERSION"
    for m in "${staging[@]}"; do printf '\t%s => %s v0.%s.%s\n' "$m" "$m" "$minor" "$patch"; done
    printf ')\n'
  } >"$dir/go.mod"
  # go get adds the requirements the command's packages need and their go.sum lines.
  in_module "$dir" go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION"
  local v=k8s.io/component-base/version
  (cd "$dir" && go_build "$dir" "$KUBE_APISERVER" k8s.io/kubernetes/cmd/kube-apiserver \
    "-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=$(date -u +%FT%TZ)")
  log "kube-apiserver $KUBE_VERSION built in $((SECONDS - t0))s: ${KUBE_APISERVER#"$REPO_ROOT"/}"
}

# go.etcd.io/etcd/server/v3 has no main package (etcd's own lives in a module with replace
# directives): a one-file module whose main calls etcdmain.Main.
build_etcd() {
  local dir=$BUILD_DIR/etcd t0=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir"
  log "building etcd $ETCD_VERSION from the Go module proxy (0.5 to 2 min cold)..."
  printf 'module courier.local/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  cat >"$dir/main.go" <<'EOF'
// Generated by scripts/k8s.sh: etcd's own command, built from its server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  in_module "$dir" go mod tidy
  (cd "$dir" && go_build "$dir" "$ETCD" . "-s -w")
  log "etcd $ETCD_VERSION built in $((SECONDS - t0))s: ${ETCD#"$REPO_ROOT"/}"
}

cmd_build() {
  built "$ETCD" && built "$KUBE_APISERVER" && return 0
  command -v go >/dev/null || die "go not found (Go 1.26 or newer builds etcd and kube-apiserver, once)"
  mkdir -p "$LOCK_DIR" "$BIN_DIR"
  exec {BUILD_LOCK_FD}>"$LOCK_DIR/build.lock"
  flock -w "$BUILD_TIMEOUT" "$BUILD_LOCK_FD" || die "timed out waiting for another build"
  # Someone else may have built while we waited for the lock.
  built "$ETCD" || build_etcd
  built "$KUBE_APISERVER" || build_kube_apiserver
  exec {BUILD_LOCK_FD}>&-
}

# ------------------------------------------------------------- helpers ----

# True only for a live process started from binary $2 with run dir $3 on its command line, so a
# stale or recycled pid never makes us signal a process we did not start.
is_ours() {
  local pid=$1 bin=$2 dir=$3 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # A zombie has an empty command line: it counts as gone.
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == "$bin "* && $cmdline == *"$dir/"* ]]
}

pid_of() {
  local dir=$1 what=$2 bin=$3 pid
  [[ -f $dir/$what.pid ]] || return 1
  pid=$(<"$dir/$what.pid")
  is_ours "$pid" "$bin" "$dir" || return 1
  printf '%s' "$pid"
}

# SIGTERM, then SIGKILL after STOP_TIMEOUT.
kill_process() {
  local dir=$1 what=$2 bin=$3 pid i
  pid=$(pid_of "$dir" "$what" "$bin") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    is_ours "$pid" "$bin" "$dir" || return 0
    sleep 0.1
  done
  log "$what pid $pid did not exit after ${STOP_TIMEOUT}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    is_ours "$pid" "$bin" "$dir" || return 0
    sleep 0.1
  done
  die "could not kill $what pid $pid"
}

# The API server first: it would log etcd errors until it is gone.
kill_all() {
  kill_process "$1" kube-apiserver "$KUBE_APISERVER"
  kill_process "$1" etcd "$ETCD"
}

# The info.json path if NAME's control plane is up and the API server answers /readyz.
running_info() {
  local dir
  dir=$(run_dir "$1")
  [[ -f $dir/info.json && -f $dir/server ]] || return 1
  pid_of "$dir" etcd "$ETCD" >/dev/null || return 1
  pid_of "$dir" kube-apiserver "$KUBE_APISERVER" >/dev/null || return 1
  ready "$dir" || return 1
  printf '%s' "$dir/info.json"
}

# The API server's /readyz with the admin token, its CA verified.
ready() {
  local dir=$1
  [[ $(curl -sS --max-time 2 --cacert "$dir/pki/ca.pem" -H "Authorization: Bearer $(<"$dir/token")" \
    "$(<"$dir/server")/readyz" 2>/dev/null) == ok ]]
}

etcd_healthy() {
  [[ $(curl -sS --max-time 2 "$1/health" 2>/dev/null) == *'"health":"true"'* ]]
}

# ----------------------------------------------------------------- pki ----

# The throwaway PKI: a CA, the API server's serving certificate (127.0.0.1, localhost and the
# in-cluster names), a serving certificate for webhooks on the host, the service account key.
write_pki() {
  local name=$1
  PKI_DIR=$2/pki
  mkdir -p "$PKI_DIR"
  chmod 700 "$PKI_DIR"
  cat >"$PKI_DIR/openssl.cnf" <<'EOF2'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[apiserver_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:10.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[webhook_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF2
  new_key ca.key
  ossl req -config "$PKI_DIR/openssl.cnf" -x509 -new -key "$PKI_DIR/ca.key" -subj "/CN=Courier test Kubernetes CA ($name)" \
    -days "$CERT_DAYS" -extensions ca_ext -out "$PKI_DIR/ca.pem"
  new_leaf apiserver kube-apiserver apiserver_ext
  new_leaf webhook localhost webhook_ext
  new_key service-account.key
  ossl pkey -in "$PKI_DIR/service-account.key" -pubout -out "$PKI_DIR/service-account.pub"
}

# ------------------------------------------------------------- launch ----

# setsid: own session, so a Ctrl-C aimed at the caller (a test runner) does not reach the process.
# The lock fd is closed so the daemon does not hold our lock forever.
launch() {
  local dir=$1 what=$2
  shift 2
  : >"$dir/$what.log"
  nohup setsid "$@" >>"$dir/$what.log" 2>&1 </dev/null {NAME_LOCK_FD}>&- &
  printf '%s\n' "$!" >"$dir/$what.pid"
}

fail_start() {
  local dir=$1 msg=$2 f
  for f in etcd kube-apiserver; do
    [[ -s $dir/$f.log ]] || continue
    log "last lines of $dir/$f.log:"
    tail -n 25 "$dir/$f.log" >&2 || true
  done
  kill_all "$dir"
  die "$msg"
}

# wait_for DIR WHAT BIN CHECK...: until CHECK passes, while WHAT is alive, within START_TIMEOUT.
wait_for() {
  local dir=$1 what=$2 bin=$3 deadline=$((SECONDS + START_TIMEOUT)) pid
  shift 3
  pid=$(<"$dir/$what.pid")
  # Alive by the pid, not by pid_of: until nohup and setsid have exec'd the binary, the process's
  # command line is still theirs, and pid_of called a starting kube-apiserver gone (seen once in the
  # suite, on a busy machine). Once ready, the pid must be the binary's.
  until "$@"; do
    alive "$pid" || fail_start "$dir" "$what exited during startup"
    ((SECONDS < deadline)) || fail_start "$dir" "$what not ready after ${START_TIMEOUT}s"
    sleep 0.2
  done
  pid_of "$dir" "$what" "$bin" >/dev/null || fail_start "$dir" "pid $pid is not $what"
}

# Running, and not a zombie waiting for this shell to reap it.
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

start_etcd() {
  local dir=$1 client=$2 peer=$3
  launch "$dir" etcd "$ETCD" \
    --name courier-test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "courier-test=http://127.0.0.1:$peer" --initial-cluster-state new \
    --log-level warn \
    --unsafe-no-fsync
  wait_for "$dir" etcd "$ETCD" etcd_healthy "http://127.0.0.1:$client"
}

# RBAC decides (the admin token is in system:masters, which RBAC's bootstrap roles let do anything);
# the default admission plugins run, MutatingAdmissionWebhook and ServiceAccount among them. No
# endpoint reconciler: it refuses a loopback address, and the `kubernetes` Service's endpoints would
# serve only Pods, which never run here.
start_apiserver() {
  local dir=$1 client=$2 port=$3
  launch "$dir" kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$dir/pki/apiserver.pem" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.pem" \
    --token-auth-file "$dir/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/service-account.pub" \
    --service-account-signing-key-file "$dir/pki/service-account.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --profiling=false \
    --v=1
  wait_for "$dir" kube-apiserver "$KUBE_APISERVER" ready "$dir"
}

write_access() {
  local name=$1 dir=$2 server=$3 etcd_url=$4 token
  token=$(openssl rand -hex 24)
  (umask 077 && printf '%s\n' "$token" >"$dir/token" && printf '%s,courier-admin,courier-admin,"system:masters"\n' "$token" >"$dir/tokens.csv")
  printf '%s\n' "$server" >"$dir/server"
  install -m 600 /dev/null "$dir/kubeconfig"
  cat >>"$dir/kubeconfig" <<EOF2
apiVersion: v1
kind: Config
clusters:
  - name: $name
    cluster:
      server: $server
      certificate-authority: $dir/pki/ca.pem
users:
  - name: courier-admin
    user:
      token: $token
contexts:
  - name: $name
    context: { cluster: $name, user: courier-admin }
current-context: $name
EOF2
  # The $ are JavaScript's template literals.
  # shellcheck disable=SC2016
  NAME=$name DIR=$dir SERVER=$server ETCD_URL=$etcd_url TOKEN=$token VERSION=$KUBE_VERSION node -e '
    const e = process.env;
    const info = {
      name: e.NAME,
      server: e.SERVER,
      token: e.TOKEN,
      version: e.VERSION,
      caPem: `${e.DIR}/pki/ca.pem`,
      caKeyPem: `${e.DIR}/pki/ca.key`,
      webhookCertPem: `${e.DIR}/pki/webhook.pem`,
      webhookKeyPem: `${e.DIR}/pki/webhook.key`,
      kubeconfig: `${e.DIR}/kubeconfig`,
      etcd: e.ETCD_URL,
    };
    require("fs").writeFileSync(`${e.DIR}/info.json.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });'
}

# -------------------------------------------------------------- commands ----

cmd_start() {
  local name=$1 dir info client peer port t0=$SECONDS
  lock_name "$name" 'control plane'
  dir=$(run_dir "$name")
  if info=$(running_info "$name"); then
    printf '%s\n' "$info"
    return 0
  fi
  cmd_build
  command -v openssl >/dev/null || die "openssl not found (it makes the throwaway CA)"
  command -v curl >/dev/null || die "curl not found (it waits for etcd and the API server)"
  # New, or leftovers of a crash: start from scratch.
  kill_all "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  read -r client peer port < <(free_ports 3)
  [[ -n $client && -n $peer && -n $port ]] || die "could not pick free ports"
  log "starting control plane '$name': etcd on 127.0.0.1:$client, kube-apiserver $KUBE_VERSION on https://127.0.0.1:$port..."
  write_pki "$name" "$dir"
  write_access "$name" "$dir" "https://127.0.0.1:$port" "http://127.0.0.1:$client"
  start_etcd "$dir" "$client" "$peer"
  start_apiserver "$dir" "$client" "$port"
  # Written last: running_info (and a caller) never sees a half-started control plane.
  mv -f "$dir/info.json.tmp" "$dir/info.json"
  log "control plane '$name' ready in $((SECONDS - t0))s (logs: ${dir#"$REPO_ROOT"/}/{etcd,kube-apiserver}.log)"
  printf '%s\n' "$dir/info.json"
}

cmd_status() {
  local info
  info=$(running_info "$1") || {
    log "control plane '$1' is not running"
    return 1
  }
  printf '%s\n' "$info"
}

cmd_kubeconfig() {
  running_info "$1" >/dev/null || die "control plane '$1' is not running"
  printf '%s\n' "$(run_dir "$1")/kubeconfig"
}

cmd_stop() { stop_named "$1" "$2" 'control plane' kill_all; }

main() {
  (($#)) || usage
  local cmd=$1 name=default all=0
  shift
  while (($#)); do
    case $1 in
      --name)
        (($# >= 2)) || die "--name needs a value"
        name=$2
        shift 2
        ;;
      --all)
        all=1
        shift
        ;;
      -h | --help) usage 0 ;;
      *) die "unknown argument '$1' (see: $0 --help)" ;;
    esac
  done
  valid_name "$name"
  [[ $all == 0 || $cmd == stop ]] || die "--all is for stop only"
  case $cmd in
    build | fetch) cmd_build ;;
    start) cmd_start "$name" ;;
    status) cmd_status "$name" ;;
    stop) cmd_stop "$name" "$all" ;;
    kubeconfig) cmd_kubeconfig "$name" ;;
    -h | --help | help) usage 0 ;;
    *)
      log "unknown command '$cmd'"
      usage
      ;;
  esac
}

main "$@"
