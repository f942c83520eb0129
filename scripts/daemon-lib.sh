# daemon-lib.sh - logging and daemon helpers shared by the lab scripts: test/k8s/kube-lab.sh,
# test/k8s/kube-node.sh and test/lab/cinder-lab.sh (sourced; each sets RUN (pid files) and LOG
# (daemon output)). cinder-lab-lib.sh replaces stop_bg and wait_for with its own (parallel stops of
# whole process groups; waits not tied to a service).
#
# A daemon runs in its own session (setsid); its pid file "$RUN/NAME.pid" holds "PID STARTTIME" so a
# recycled pid is not taken for it. Daemons never inherit fd 8, the lock a script holds while it
# sets up (kube-node.sh's flock): a daemon holding it would block every later set-up for ever.
# shellcheck shell=bash

ts() { date +%H:%M:%S; }
log() { echo "[$(ts)] $*" >&2; }
die() { echo "[$(ts)] ERROR: $*" >&2; exit 1; }
now_s() { date +%s; }

proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }  # start time (clock ticks since boot)

pidof_svc() { # prints the pid if the service's pid file ("PID STARTTIME") points to the process we started
  local f=$RUN/$1.pid pid st
  [[ -s $f ]] || return 1
  read -r pid st <"$f" || true
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z $st || "$(proc_start "$pid")" == "$st" ]] || return 1
  echo "$pid"
}
is_running() { pidof_svc "$1" >/dev/null; }

start_bg() { # start_bg NAME CMD... : run CMD in its own session, stdout/err to $LOG/NAME.out
  local name=$1 pid; shift
  if is_running "$name"; then log "$name already running (pid $(pidof_svc "$name"))"; return 0; fi
  mkdir -p "$RUN" "$LOG"
  log "starting $name"
  echo "===== $(date -Is) $*" >>"$LOG/$name.out"
  # 8>&-: the daemon must not inherit the set-up's lock (kube-node.sh's flock on fd 8)
  setsid "$@" 8>&- >>"$LOG/$name.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid $(proc_start "$pid")" >"$RUN/$name.pid"
}

stop_bg() { # stop_bg [-t SECONDS] NAME... : SIGTERM the daemons we started (in order), SIGKILL after the timeout (20 s)
  local name pid i timeout=20
  if [[ ${1:-} == -t ]]; then timeout=$2; shift 2; fi
  for name in "$@"; do
    if pid=$(pidof_svc "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < timeout * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in ${timeout}s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$RUN/$name.pid"
  done
}

wait_for() { # wait_for SERVICE DESCRIPTION TIMEOUT_S CMD... : run CMD until it succeeds; give up if SERVICE died
  local svc=$1 desc=$2 timeout=$3 start next; shift 3
  start=$(now_s); next=$((start + 15))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$svc"; then
      tail -n 30 "$LOG/$svc.out" >&2 2>/dev/null || true
      die "$svc died while waiting for $desc (log: $LOG/$svc.out)"
    fi
    (($(now_s) - start < timeout)) || die "timed out after ${timeout}s waiting for $desc (log: $LOG/$svc.out)"
    if (($(now_s) >= next)); then log "  … waiting for $desc: $(($(now_s) - start))s (log: $LOG/$svc.out)"; next=$((next + 15)); fi
    sleep 0.5
  done
  log "ready: $desc ($(($(now_s) - start))s)"
}
