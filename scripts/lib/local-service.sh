# shellcheck shell=bash
# What scripts/kafka.sh and scripts/k8s.sh share to run local services by name: run directories,
# name locks, stopping, free ports and a throwaway PKI. Sourced; the caller defines die(), log(),
# RUN_ROOT and LOCK_DIR, and PKI_DIR (with its openssl.cnf) before making keys and certificates.

run_dir() { printf '%s/%s' "$RUN_ROOT" "$1"; }

valid_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "invalid --name '$1' (use [A-Za-z0-9._-])"
}

# One start/stop of a name at a time: lock_name NAME WHAT (WHAT names it in the error).
lock_name() {
  mkdir -p "$LOCK_DIR"
  exec {NAME_LOCK_FD}>"$LOCK_DIR/name-$1.lock"
  flock -w 300 "$NAME_LOCK_FD" || die "timed out waiting for the lock of $2 '$1'"
}

unlock_name() {
  [[ -z ${NAME_LOCK_FD:-} ]] || exec {NAME_LOCK_FD}>&-
  NAME_LOCK_FD=
}

# N (default 2) distinct free ports on 127.0.0.1, chosen by the kernel (bind port 0).
free_ports() {
  node -e '
    const net = require("net");
    const n = Number(process.argv[1]);
    const servers = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        servers.push(s);
        if (servers.length === n) {
          console.log(servers.map((x) => x.address().port).join(" "));
          servers.forEach((x) => x.close());
        }
      });
    }' "${1:-2}"
}

ossl() {
  local log=$PKI_DIR/openssl.log
  openssl "$@" >>"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "openssl $1 failed (see $log)"
  }
}

new_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI_DIR/$1"; }

# Leaf signed by the CA (ca.key, ca.pem): new_leaf BASENAME CN EXTENSIONS -> BASENAME.key, BASENAME.pem
new_leaf() {
  new_key "$1.key"
  ossl req -config "$PKI_DIR/openssl.cnf" -new -key "$PKI_DIR/$1.key" -subj "/CN=$2" -out "$PKI_DIR/$1.csr"
  ossl x509 -req -in "$PKI_DIR/$1.csr" -CA "$PKI_DIR/ca.pem" -CAkey "$PKI_DIR/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$CERT_DAYS" \
    -extfile "$PKI_DIR/openssl.cnf" -extensions "$3" -out "$PKI_DIR/$1.pem"
  rm -f "$PKI_DIR/$1.csr"
}

# Stops one named service and removes its run dir: stop_one NAME WHAT KILL (KILL DIR ends its processes).
stop_one() {
  local name=$1 what=$2 kill=$3 dir
  dir=$(run_dir "$name")
  lock_name "$name" "$what"
  if [[ -d $dir ]]; then
    "$kill" "$dir"
    rm -rf "$dir"
    log "stopped $what '$name'"
  else
    log "$what '$name' is not running"
  fi
  unlock_name
}

# stop_named NAME ALL WHAT KILL: the one named, or (ALL=1) every one that has a run dir.
stop_named() {
  local name=$1 all=$2 what=$3 kill=$4 d
  if [[ $all == 1 ]]; then
    [[ -d $RUN_ROOT ]] || return 0
    for d in "$RUN_ROOT"/*/; do
      [[ -d $d ]] || continue
      d=${d%/}
      stop_one "${d##*/}" "$what" "$kill"
    done
  else
    stop_one "$name" "$what" "$kill"
  fi
}
