#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft combined broker+controller) for Courier
# development and tests, without Docker: the jars come from the local Maven
# repository, or from Maven Central when they are not all there, via
# scripts/kafka/pom.xml; the broker runs as a plain background JVM.
#
# Usage:
#   scripts/kafka.sh fetch
#   scripts/kafka.sh start           [--name NAME] [--secure]   # prints 127.0.0.1:PORT
#   scripts/kafka.sh status          [--name NAME]   # prints address, exit 1 if down
#   scripts/kafka.sh stop            [--name NAME | --all]
#   scripts/kafka.sh stop-process    [--name NAME]   # stop JVM, keep data + ports
#   scripts/kafka.sh restart-process [--name NAME]   # stop JVM, start again, same ports
#   scripts/kafka.sh topics          [--name NAME] --create TOPIC --partitions N
#                                    (other args go to TopicCommand: --list, --describe ...)
#   scripts/kafka.sh tool CLASS [ARGS...]            # run any Kafka CLI class
#   scripts/kafka.sh secure-info     [--name NAME]   # prints the run dir's secure.json
#   scripts/kafka.sh acls            [--name NAME] ARGS...   # AclCommand (--add, --list ...)
#   scripts/kafka.sh scram           [--name NAME] --user U --password P [--mechanism M]
#                                    (adds or changes a SCRAM user, both mechanisms unless
#                                    told; secure.json lists only the users made at start)
#
# --secure adds, next to the PLAINTEXT listener (still the printed address, and
# the super user User:ANONYMOUS, for test setup), all on 127.0.0.1 with a
# throwaway CA and certificates generated into the run dir:
#   SASL_SSL   SCRAM-SHA-512 and SCRAM-SHA-256; users `courier` and `admin`
#              (super user) with generated passwords
#   SSL        mTLS (client certificate required); principal User:courier-client
#              (ssl.principal.mapping.rules takes the CN of the subject)
#   OAUTH      SASL_PLAINTEXT with OAUTHBEARER, Kafka's unsecured validator:
#              unsigned JWTs (alg none) whose `sub` is the principal
# and StandardAuthorizer ACLs (no ACL = denied). secure.json in the run dir
# (see secure-info) has the addresses, PEM paths, principals and passwords.
#
# Only the bootstrap address goes to stdout; progress and errors go to stderr.
# Env: KAFKA_START_TIMEOUT (seconds, default 90).
set -euo pipefail

readonly KAFKA_VERSION=4.1.1
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR REPO_ROOT
# shellcheck source=scripts/lib/local-service.sh
source "$SCRIPT_DIR/lib/local-service.sh"
readonly POM=$SCRIPT_DIR/kafka/pom.xml
readonly CACHE_DIR=$REPO_ROOT/.kafka
readonly KAFKA_HOME=$CACHE_DIR/$KAFKA_VERSION
readonly LIBS=$KAFKA_HOME/libs
readonly RUN_ROOT=$CACHE_DIR/run
# Locks live outside run dirs because `stop` deletes the run dir.
readonly LOCK_DIR=$CACHE_DIR/locks
readonly START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
readonly STOP_TIMEOUT=20
# Logged by KafkaRaftServer once the broker is unfenced and serving requests;
# the listening socket alone is bound (and accepts TCP) earlier than that.
readonly READY_LINE='Kafka Server started'

# Kafka's own default JVM flags (kafka-run-class.sh), with a small heap.
readonly BROKER_JVM_OPTS=(
  -Xms256m -Xmx512m
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
  -Djava.awt.headless=true
)
# Short-lived CLI JVMs: C1 only and serial GC start noticeably faster.
readonly TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

# flock-based mutual exclusion so parallel test workers can call start/stop
# safely. A lock is held until its fd is closed (or the script exits); the
# fds are globals because `exec {var}>` in a $(...) subshell would not stick.
NAME_LOCK_FD=
FETCH_LOCK_FD=

# ---------------------------------------------------------------- fetch ----

pom_stamp() { sha256sum "$POM" | cut -d' ' -f1; }

libs_ready() {
  [[ -f $LIBS/.fetched && "$(<"$LIBS/.fetched")" == "$(pom_stamp)" ]]
}

cmd_fetch() {
  libs_ready && return 0
  local tmp
  mkdir -p "$LOCK_DIR"
  exec {FETCH_LOCK_FD}>"$LOCK_DIR/fetch.lock"
  flock -w 600 "$FETCH_LOCK_FD" || die "timed out waiting for another fetch"
  # Someone else may have fetched while we waited for the lock.
  if ! libs_ready; then
    command -v mvn >/dev/null || die "mvn not found (needed once to download Kafka jars)"
    command -v java >/dev/null || die "java not found (Kafka needs Java 17+)"
    tmp=$KAFKA_HOME/libs.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$KAFKA_HOME"
    # Offline first, so that the log can say where the jars came from: the local Maven repository
    # (~/.m2/repository unless settings.xml says otherwise) when it holds them all, else Maven Central.
    local from="the local Maven repository"
    log "fetching Kafka $KAFKA_VERSION jars into ${LIBS#"$REPO_ROOT"/} (first run only)..."
    if ! mvn -B -q -o -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >/dev/null 2>&1; then
      rm -rf "$tmp"
      from="Maven Central"
      log "downloading Kafka $KAFKA_VERSION jars from Maven Central (not all in the local Maven repository; first run only)..."
      # mvn -q still prints ANSI colour resets; strip them, and keep stdout for
      # the address.
      if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
          sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
        rm -rf "$tmp"
        die "mvn dependency:copy-dependencies failed"
      fi
    fi
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "kafka jar missing after mvn"; }
    # Write the marker before the swap so a half-copied dir is never "ready".
    pom_stamp >"$tmp/.fetched"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    log "Kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars from $from in ${LIBS#"$REPO_ROOT"/}"
  fi
  exec {FETCH_LOCK_FD}>&-
}

# ------------------------------------------------------------- helpers ----

# Kafka cluster ids are 16 random bytes, base64url without padding; Kafka
# avoids a leading "-" so the id can be passed on a command line.
new_cluster_id() {
  node -e '
    const c = require("crypto");
    let id;
    do { id = c.randomBytes(16).toString("base64url"); } while (id.startsWith("-"));
    console.log(id);'
}

port_open() {
  # $1 is expanded by the inner bash, on purpose.
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True only for a live JVM running kafka.Kafka on *this* run dir's config, so
# a stale or recycled pid never makes us signal a process we did not start.
is_our_broker() {
  local pid=$1 dir=$2 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *" kafka.Kafka $dir/server.properties"* ]]
}

broker_pid() {
  local dir=$1 pid
  [[ -f $dir/pid ]] || return 1
  pid=$(<"$dir/pid")
  is_our_broker "$pid" "$dir" || return 1
  printf '%s' "$pid"
}

# The address if NAME's broker is alive and accepting connections.
running_address() {
  local dir addr
  dir=$(run_dir "$1")
  broker_pid "$dir" >/dev/null || return 1
  [[ -f $dir/bootstrap ]] || return 1
  addr=$(<"$dir/bootstrap")
  port_open "${addr##*:}" || return 1
  printf '%s' "$addr"
}

# SIGTERM (Kafka shuts down cleanly), then SIGKILL after STOP_TIMEOUT.
kill_broker() {
  local dir=$1 pid i
  pid=$(broker_pid "$dir") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  # is_our_broker (not kill -0) so an unreaped zombie counts as gone.
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    is_our_broker "$pid" "$dir" || return 0
    sleep 0.1
  done
  log "broker pid $pid did not exit after ${STOP_TIMEOUT}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    is_our_broker "$pid" "$dir" || return 0
    sleep 0.1
  done
  die "could not kill broker pid $pid"
}

write_configs() {
  local dir=$1 bport=$2 cport=$3
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh: single-node KRaft, broker+controller, 127.0.0.1 only.
process.roles=broker,controller
node.id=1
# Static single-voter quorum (no --standalone/dynamic quorum needed at format).
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data

# One node: every internal topic must have replication factor 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
# Few partitions: creating the 50-partition default takes seconds on 2 cores.
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests create topics explicitly; producing to a missing (DLQ) topic must fail.
auto.create.topics.enable=false
delete.topic.enable=true
# No 3 s wait before the first rebalance; allow short test session timeouts.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small machine: fewer threads, and a 16 MB (not 128 MB) compaction buffer.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
EOF
  cat >"$dir/log4j2.properties" <<'EOF'
# Broker log4j2 config (generated by scripts/kafka.sh). Goes to stdout, which
# the script redirects to broker.log in this directory.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

tool_log4j() {
  local f=$KAFKA_HOME/tools-log4j2.properties
  if [[ ! -f $f ]]; then
    printf '%s\n' 'status = warn' \
      'appender.err.type = Console' 'appender.err.name = STDERR' 'appender.err.target = SYSTEM_ERR' \
      'appender.err.layout.type = PatternLayout' 'appender.err.layout.pattern = [%d] %p %m (%c)%n' \
      'rootLogger.level = WARN' 'rootLogger.appenderRef.err.ref = STDERR' >"$f"
  fi
  printf '%s' "$f"
}

run_tool() {
  local cls=$1
  shift
  java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$(tool_log4j)" -cp "$LIBS/*" "$cls" "$@"
}

# Extra args go to StorageTool format (--add-scram for a secure broker).
format_storage() {
  local dir=$1 cid
  shift
  cid=$(new_cluster_id)
  # Static controller.quorum.voters => plain format, no --standalone.
  if ! run_tool kafka.tools.StorageTool format --config "$dir/server.properties" \
      --cluster-id "$cid" "$@" >"$dir/format.log" 2>&1; then
    tail -n 30 "$dir/format.log" >&2
    die "kafka-storage format failed (see $dir/format.log)"
  fi
}

launch_broker() {
  local dir=$1
  [[ -f $dir/broker.log ]] && mv -f "$dir/broker.log" "$dir/broker.log.1"
  # Create it here: the background redirect below may not have run yet when
  # wait_ready first greps it.
  : >"$dir/broker.log"
  # setsid: own session, so terminal Ctrl-C / process-group signals aimed at
  # the caller (e.g. a test runner) do not reach the broker. The lock fd is
  # closed so the daemon does not hold our lock forever.
  nohup setsid java "${BROKER_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -Dkafka.logs.dir="$dir" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/broker.log" 2>&1 </dev/null {NAME_LOCK_FD}>&- &
  printf '%s\n' "$!" >"$dir/pid"
}

fail_start() {
  local dir=$1 msg=$2
  log "last lines of $dir/broker.log:"
  tail -n 40 "$dir/broker.log" >&2 || true
  kill_broker "$dir"
  die "$msg"
}

wait_ready() {
  local dir=$1 port=$2 pid deadline
  pid=$(<"$dir/pid")
  deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    kill -0 "$pid" 2>/dev/null || fail_start "$dir" "broker exited during startup"
    if grep -qF "$READY_LINE" "$dir/broker.log" && port_open "$port"; then
      is_our_broker "$pid" "$dir" || fail_start "$dir" "pid $pid is not the broker JVM"
      return 0
    fi
    ((SECONDS < deadline)) || fail_start "$dir" "broker not ready after ${START_TIMEOUT}s"
    sleep 0.2
  done
}

# ------------------------------------------------------------- secure ----

readonly CERT_DAYS=3
readonly SSL_CLIENT_CN=courier-client
readonly SECURE_USERS=(courier admin)

# Self-signed CA: new_ca BASENAME CN -> BASENAME.key, BASENAME.pem
new_ca() {
  new_key "$1.key"
  ossl req -config "$PKI_DIR/openssl.cnf" -x509 -new -key "$PKI_DIR/$1.key" -subj "/CN=$2" \
    -days "$CERT_DAYS" -extensions ca_ext -out "$PKI_DIR/$1.pem"
}

# The throwaway PKI of a secure broker, in $dir/tls: a CA, the broker's
# certificate (SAN 127.0.0.1 and localhost) and keystore, a client
# certificate for mTLS, and an unrelated CA for "wrong CA" tests.
write_tls() {
  local name=$1
  PKI_DIR=$2/tls
  mkdir -p "$PKI_DIR"
  chmod 700 "$PKI_DIR"
  # Own config: the distribution's openssl.cnf would add extensions of its own.
  cat >"$PKI_DIR/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  new_ca ca "Courier test CA ($name)"
  new_ca other-ca "Unrelated test CA ($name)"
  new_leaf broker localhost broker_ext
  new_leaf client "$SSL_CLIENT_CN" client_ext
  # Kafka's PEM keystore: the PKCS#8 key, then the certificate chain.
  (umask 077 && cat "$PKI_DIR/broker.key" "$PKI_DIR/broker.pem" "$PKI_DIR/ca.pem" >"$PKI_DIR/broker-keystore.pem")
  # ca.key and other-ca.key stay, so that a test can sign more certificates.
}

# Rewrites the listener lines of the plaintext config and adds security.
# Ports: PLAINTEXT, CONTROLLER, SASL_SSL, SSL, OAUTH.
write_secure_configs() {
  local dir=$1 bport=$2 cport=$3 sport=$4 mport=$5 oport=$6 p=$dir/server.properties
  sed -i \
    -e "s|^listeners=.*|listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$mport,OAUTH://127.0.0.1:$oport|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=PLAINTEXT://127.0.0.1:$bport,SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$mport,OAUTH://127.0.0.1:$oport|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,OAUTH:SASL_PLAINTEXT|" \
    "$p"
  cat >>"$p" <<EOF

# ---- --secure (scripts/kafka.sh) ----
# ACLs decide; PLAINTEXT (User:ANONYMOUS, the test harness) and admin may do anything.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS;User:admin

# TLS for SASL_SSL and SSL, from PEM files generated into tls/.
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
# SSL is mTLS; its principal is the certificate's CN (User:$SSL_CLIENT_CN), not the whole DN.
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT

# SASL_SSL: SCRAM users are created by StorageTool format (--add-scram).
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# OAUTH (SASL_PLAINTEXT): OAUTHBEARER without a validator class set uses Kafka's
# OAuthBearerUnsecuredValidatorCallbackHandler: unsigned JWTs (alg none) with
# sub, iat, exp; the principal is User:<sub>. The login module option is the
# broker's own (unused) token, which the module requires.
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
EOF
}

# secure.json: what a test needs to connect with each mechanism.
write_secure_json() {
  local dir=$1 bport=$2 sport=$4 mport=$5 oport=$6
  shift 6
  # Remaining args: user password pairs.
  NAME=${dir##*/} DIR=$dir BPORT=$bport SPORT=$sport MPORT=$mport OPORT=$oport PRINCIPAL="User:$SSL_CLIENT_CN" node -e '
    const e = process.env;
    const users = {};
    const rest = process.argv.slice(1);
    for (let i = 0; i < rest.length; i += 2) users[rest[i]] = { password: rest[i + 1] };
    const info = {
      name: e.NAME,
      plaintext: `127.0.0.1:${e.BPORT}`,
      saslSsl: `127.0.0.1:${e.SPORT}`,
      ssl: `127.0.0.1:${e.MPORT}`,
      oauth: `127.0.0.1:${e.OPORT}`,
      caPem: `${e.DIR}/tls/ca.pem`,
      otherCaPem: `${e.DIR}/tls/other-ca.pem`,
      clientCertPem: `${e.DIR}/tls/client.pem`,
      clientKeyPem: `${e.DIR}/tls/client.key`,
      sslPrincipal: e.PRINCIPAL,
      saslMechanisms: ["SCRAM-SHA-512", "SCRAM-SHA-256"],
      users,
      oauthListenerProtocol: "SASL_PLAINTEXT",
    };
    require("fs").writeFileSync(`${e.DIR}/secure.json`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  ' "$@"
}

# New secure broker in $dir (config already written for ports $2..): PKI,
# listeners, SCRAM users at format time, secure.json.
prepare_secure() {
  local name=$1 dir=$2 u pw scram=() pairs=()
  shift 2
  write_tls "$name" "$dir"
  write_secure_configs "$dir" "$@"
  for u in "${SECURE_USERS[@]}"; do
    pw=$(openssl rand -hex 16)
    pairs+=("$u" "$pw")
    scram+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$pw]" --add-scram "SCRAM-SHA-256=[name=$u,password=$pw]")
  done
  write_secure_json "$dir" "$@" "${pairs[@]}"
  SCRAM_ARGS=("${scram[@]}")
}

# -------------------------------------------------------------- commands ----

cmd_start() {
  lock_name "$1" 'broker'
  start_locked "$1" "$2"
}

# Caller holds the name lock. $2=1 (--secure) asks for a secure broker; 0
# takes a running or kept broker as it is (restart-process keeps --secure).
start_locked() {
  local name=$1 secure=${2:-0} dir addr bport cport sport mport oport t0=$SECONDS
  dir=$(run_dir "$name")
  if addr=$(running_address "$name"); then
    [[ $secure == 0 || -f $dir/secure.json ]] || die "broker '$name' is running without --secure; run: $0 stop --name $name"
    printf '%s\n' "$addr"
    return 0
  fi
  cmd_fetch
  if [[ -f $dir/kept && -f $dir/ports && -d $dir/data ]]; then
    # Stopped via stop-process: reuse data and ports (and a secure broker's files).
    [[ $secure == 0 || -f $dir/secure.json ]] || die "stopped broker '$name' was started without --secure; run: $0 stop --name $name"
    read -r bport cport sport mport oport <"$dir/ports"
    local p
    for p in "$bport" "$cport" $sport $mport $oport; do
      ! port_open "$p" || die "port $p of stopped broker '$name' is now in use; run: $0 stop --name $name"
    done
    log "restarting broker '$name' on 127.0.0.1:$bport (data kept)..."
  else
    # New, or leftovers of a crash/timeout: start from scratch.
    kill_broker "$dir"
    rm -rf "$dir"
    mkdir -p "$dir/data"
    if [[ $secure == 1 ]]; then
      read -r bport cport sport mport oport < <(free_ports 5)
      [[ -n $bport && -n $cport && -n $sport && -n $mport && -n $oport ]] || die "could not pick free ports"
      printf '%s %s %s %s %s\n' "$bport" "$cport" "$sport" "$mport" "$oport" >"$dir/ports"
    else
      read -r bport cport < <(free_ports)
      [[ -n $bport && -n $cport ]] || die "could not pick free ports"
      printf '%s %s\n' "$bport" "$cport" >"$dir/ports"
    fi
    printf '127.0.0.1:%s\n' "$bport" >"$dir/bootstrap"
    write_configs "$dir" "$bport" "$cport"
    SCRAM_ARGS=()
    if [[ $secure == 1 ]]; then
      log "generating certificates and SCRAM users for secure broker '$name'..."
      prepare_secure "$name" "$dir" "$bport" "$cport" "$sport" "$mport" "$oport"
    fi
    log "formatting storage for broker '$name'..."
    format_storage "$dir" "${SCRAM_ARGS[@]}"
    if [[ $secure == 1 ]]; then
      log "starting secure broker '$name' on 127.0.0.1:$bport (SASL_SSL $sport, SSL $mport, OAUTH $oport, controller $cport)..."
    else
      log "starting broker '$name' on 127.0.0.1:$bport (controller $cport)..."
    fi
  fi
  rm -f "$dir/kept"
  launch_broker "$dir"
  wait_ready "$dir" "$bport"
  log "broker '$name' ready in $((SECONDS - t0))s (log: ${dir#"$REPO_ROOT"/}/broker.log)"
  printf '127.0.0.1:%s\n' "$bport"
}

cmd_status() {
  local addr
  addr=$(running_address "$1") || { log "broker '$1' is not running"; return 1; }
  printf '%s\n' "$addr"
}

cmd_stop() { stop_named "$1" "$2" 'broker' kill_broker; }

# Stop the JVM but keep data and ports, so `start` (or restart-process) brings
# the same broker back, e.g. for "broker goes away mid-stream" tests.
stop_process() {
  local name=$1 dir
  dir=$(run_dir "$name")
  [[ -f $dir/ports && -d $dir/data ]] || die "no broker '$name' to stop (start it first)"
  kill_broker "$dir"
  rm -f "$dir/pid"
  touch "$dir/kept"
}

cmd_stop_process() {
  lock_name "$1" 'broker'
  stop_process "$1"
  log "broker '$1' process stopped; data kept (start it again with: $0 start --name $1)"
}

cmd_restart_process() {
  lock_name "$1" 'broker'
  stop_process "$1"
  start_locked "$1"
}

cmd_topics() {
  local name=$1 addr
  shift
  addr=$(running_address "$name") || die "broker '$name' is not running"
  # Accept `--create TOPIC` shorthand for TopicCommand's `--create --topic TOPIC`.
  local args=() a
  while (($#)); do
    a=$1
    shift
    case $a in
      --create | --delete | --describe | --alter)
        args+=("$a")
        if (($#)) && [[ $1 != --* ]]; then args+=(--topic "$1"); shift; fi
        ;;
      *) args+=("$a") ;;
    esac
  done
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$addr" "${args[@]}"
}

cmd_secure_info() {
  local f
  f=$(run_dir "$1")/secure.json
  [[ -f $f ]] || die "broker '$1' was not started with --secure (no $f)"
  cat "$f"
}

# ACLs are managed over PLAINTEXT, whose User:ANONYMOUS is a super user.
cmd_acls() {
  local name=$1 addr
  shift
  [[ -f $(run_dir "$name")/secure.json ]] || die "broker '$name' was not started with --secure (it has no authorizer)"
  addr=$(running_address "$name") || die "broker '$name' is not running"
  run_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$addr" "$@"
}

cmd_scram() {
  local name=$1 addr user= password= mechanisms=(SCRAM-SHA-512 SCRAM-SHA-256) m
  shift
  while (($#)); do
    case $1 in
      --user) (($# >= 2)) || die "--user needs a value"; user=$2; shift 2 ;;
      --password) (($# >= 2)) || die "--password needs a value"; password=$2; shift 2 ;;
      --mechanism) (($# >= 2)) || die "--mechanism needs a value"; mechanisms=("$2"); shift 2 ;;
      *) die "scram: unknown argument '$1'" ;;
    esac
  done
  [[ -n $user && -n $password ]] || die "scram needs --user and --password"
  [[ $password =~ ^[A-Za-z0-9._~-]+$ ]] || die "scram: use a password of [A-Za-z0-9._~-] (ConfigCommand's syntax has no escaping)"
  [[ -f $(run_dir "$name")/secure.json ]] || die "broker '$name' was not started with --secure"
  addr=$(running_address "$name") || die "broker '$name' is not running"
  # One request may alter a user's credentials only once, so one call per mechanism.
  for m in "${mechanisms[@]}"; do
    run_tool kafka.admin.ConfigCommand --bootstrap-server "$addr" --alter --entity-type users --entity-name "$user" --add-config "$m=[password=$password]"
  done
}

main() {
  (($#)) || usage
  local cmd=$1 name=default all=0 secure=0 rest=()
  shift
  if [[ $cmd == tool ]]; then
    # Everything after `tool` belongs to the Java class.
    (($#)) || usage
    cmd_fetch
    run_tool "$@"
    return
  fi
  while (($#)); do
    case $1 in
      --name) (($# >= 2)) || die "--name needs a value"; name=$2; shift 2 ;;
      --name=*) name=${1#--name=}; shift ;;
      --all) all=1; shift ;;
      --secure) secure=1; shift ;;
      *) rest+=("$1"); shift ;;
    esac
  done
  valid_name "$name"
  mkdir -p "$RUN_ROOT"
  case $cmd in
    fetch) cmd_fetch ;;
    start) cmd_start "$name" "$secure" ;;
    status) cmd_status "$name" ;;
    stop) cmd_stop "$name" "$all" ;;
    stop-process) cmd_stop_process "$name" ;;
    restart-process) cmd_restart_process "$name" ;;
    topics) cmd_fetch; cmd_topics "$name" "${rest[@]}" ;;
    secure-info) cmd_secure_info "$name" ;;
    acls) cmd_fetch; cmd_acls "$name" "${rest[@]}" ;;
    scram) cmd_fetch; cmd_scram "$name" "${rest[@]}" ;;
    -h | --help | help) usage 0 ;;
    *) log "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
