# cinder-lab-lib.sh - helpers of the lab: templates (render), daemons (stop_bg, wait_for; the rest
# is scripts/daemon-lib.sh), ports, the MariaDB client, the saved lab state
# Sourced by test/lab/cinder-lab.sh after its settings (STATE, RUN, LOG, ports, passwords, packages)
# and scripts/daemon-lib.sh; not to be run on its own.
# shellcheck shell=bash

# ---------------------------------------------------------------- helpers
render() { # render TEMPLATE OUT : replace @NAME@ with $NAME (exported env); fails on unknown names
  $PY - "$1" "$2" <<'EOF'
import os, re, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
missing = set()
def rep(m):
    k = m.group(1)
    if k not in os.environ:
        missing.add(k); return m.group(0)
    return os.environ[k]
out = re.sub(r'@([A-Z][A-Z0-9_]*)@', rep, text)
if missing:
    sys.exit('render %s: unset variables: %s' % (src, ' '.join(sorted(missing))))
tmp = dst + '.tmp'
with open(tmp, 'w') as f:
    f.write(out)
os.replace(tmp, dst)
EOF
}

# stop_bg and wait_for replace scripts/daemon-lib.sh's (sourced by cinder-lab.sh): the lab stops
# its daemons in parallel, optionally their whole process groups, and waits for things no service owns
stop_bg() { # stop_bg [-t TIMEOUT] [-g] NAME... : SIGTERM (-g: to the whole process group) the daemons
  # we started, in parallel; wait; then SIGKILL whatever is left in their process groups
  local timeout=30 group=0 name pid i alive
  while [[ ${1:-} == -* ]]; do
    case $1 in -t) timeout=$2; shift ;; -g) group=1 ;; esac; shift
  done
  local -A pids=()
  for name in "$@"; do
    if pid=$(pidof_svc "$name"); then
      log "stopping $name (pid $pid)"
      if ((group)); then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
      pids[$name]=$pid
    else
      rm -f "$RUN/$name.pid"
    fi
  done
  for ((i = 0; i < timeout * 5; i++)); do
    alive=0
    for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in ${timeout}s, killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    # leftovers of the same process group (uwsgi workers, cinder-volume backend children, privsep)
    for ((i = 0; i < 15; i++)); do pgrep -g "$pid" >/dev/null 2>&1 || break; sleep 0.2; done
    if pgrep -g "$pid" >/dev/null 2>&1; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    rm -f "$RUN/$name.pid"
  done
}

wait_for() { # wait_for [-s SERVICE] DESCRIPTION TIMEOUT_S CMD... : run CMD until it succeeds;
  # with -s, give up as soon as SERVICE (started by start_bg) has died
  local svc=
  if [[ $1 == -s ]]; then svc=$2; shift 2; fi
  local desc=$1 timeout=$2 start; shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if [[ -n $svc ]] && ! is_running "$svc"; then
      tail -n 20 "$LOG/$svc.out" >&2 2>/dev/null || true
      die "$svc died while waiting for $desc (logs: $LOG/$svc.out and $LOG/$svc*.log)"
    fi
    if (( $(date +%s) - start >= timeout )); then
      die "timed out after ${timeout}s waiting for $desc"
    fi
    sleep 0.5
  done
  log "ready: $desc ($(( $(date +%s) - start ))s)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_free_or_ours() { # port_free_or_ours SERVICE PORT... : die if a port is taken by something we did not start
  local svc=$1 port; shift
  is_running "$svc" && return 0
  for port in "$@"; do
    if port_open "$port"; then
      die "127.0.0.1:$port is already in use by another process ($(ss -ltnpH "sport = :$port" 2>/dev/null | awk '{print $6}' | head -1)); stop it first"
    fi
  done
}

mysql_q() { mariadb --no-defaults --protocol=socket -S "$MYSQL_SOCK" -u root "$@"; }

state_get() { [[ -s $STATE/lab.env ]] && (. "$STATE/lab.env"; eval "echo \${$1:-}") || true; }

