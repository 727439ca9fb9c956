# Sourced by scripts/bench.sh and scripts/tier-outage.sh: one benchmark at a time on this machine
# (they would share the CPUs and the broker names), the last 10 runs' logs kept, and nothing left
# behind on exit, failure or Ctrl-C. Needs `log` and BROKER; the caller sets RUNNER_PID once its
# runner is started and BROKER_STARTED once the broker is.
#
# bench_guard DIR GRACE_TENTHS: logs under DIR; the runner gets GRACE_TENTHS tenths of a second to
# stop on SIGTERM before SIGKILL. Sets PIDFILE (where the runner records what it starts).
bench_guard() {
  local dir=$1
  RUNNER_GRACE_TENTHS=$2
  mkdir -p "$dir"
  exec {LOCK_FD}>.bench/bench.lock
  flock -n "$LOCK_FD" || die "another benchmark is running (lock .bench/bench.lock)"
  find "$dir" -mindepth 1 -maxdepth 1 -type d -name '2*' | sort -r | tail -n +10 | xargs -r rm -rf
  PIDFILE=$dir/pids
  RUNNER_PID=
  : >"$PIDFILE"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# Kills what the runner started and left behind (only processes whose pid AND start time match
# what the runner recorded), then stops the broker.
bench_cleanup() {
  local rc=$? pid start name stat
  trap - EXIT INT TERM HUP
  if [[ -n $RUNNER_PID ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq "$RUNNER_GRACE_TENTHS"); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
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
