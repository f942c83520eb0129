# shellcheck shell=bash
# Progress for long set-up steps (sourced by test/setup.sh, test/lab/cinder-lab.sh,
# test/k8s/kube-lab.sh, test/image/*.sh): a person at the terminal sees a line at least every
# PROGRESS_EVERY seconds (default 15) saying what runs, for how long, and where its full log is;
# the full output goes to that log, not to the terminal.
#
#   progress_run LABEL LOG CMD...   run CMD with all its output appended to LOG; print a start
#                                   line, a heartbeat with the log's last line while it runs, and
#                                   the result; on failure the log's last 20 lines. Returns CMD's status.
#   progress_wait LABEL LOG PID     the same for a command already running in the background (a
#                                   child of this shell), whose output goes to LOG.
#   CMD 2>&1 | progress_filter LABEL [LOG]
#                                   pass CMD's lines through; after PROGRESS_EVERY seconds without
#                                   one, print a heartbeat (what, elapsed, last line, log).

PROGRESS_EVERY=${PROGRESS_EVERY:-15}

_progress_ts() { date +%H:%M:%S; }

_progress_last() { # the log's last non-empty line, control characters removed, at most 100 chars
  [ -f "$1" ] || return 0
  tail -c 4096 "$1" 2>/dev/null | tr '\r' '\n' | tr -d '\000-\010\013-\037' | grep -v -e '^[[:space:]]*$' -e '^===== ' |
    tail -n 1 | cut -c1-100
}

progress_wait() {
  local label=$1 log=$2 pid=$3 t0=$SECONDS next now rc=0
  next=$((SECONDS + PROGRESS_EVERY))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= next)); then
      now=$(_progress_last "$log")
      printf '[%s]   … %s: %ds, now: %s (log: %s)\n' "$(_progress_ts)" "$label" "$((SECONDS - t0))" \
        "${now:-(no output yet)}" "$log"
      next=$((SECONDS + PROGRESS_EVERY))
    fi
    sleep 1
  done
  wait "$pid" || rc=$?
  if [ "$rc" = 0 ]; then
    printf '[%s] %s: done in %ds\n' "$(_progress_ts)" "$label" "$((SECONDS - t0))"
  else
    printf '[%s] %s: FAILED (exit %s) after %ds; last lines of %s:\n' "$(_progress_ts)" "$label" "$rc" \
      "$((SECONDS - t0))" "$log" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
  fi
  return "$rc"
}

progress_run() {
  local label=$1 log=$2 pid
  shift 2
  mkdir -p "$(dirname "$log")"
  printf '[%s] %s (log: %s)\n' "$(_progress_ts)" "$label" "$log"
  printf '===== %s %s\n' "$(date -Is)" "$*" >>"$log"
  "$@" >>"$log" 2>&1 </dev/null &
  pid=$!
  progress_wait "$label" "$log" "$pid"
}

progress_filter() {
  local label=$1 log=${2:-} t0=$SECONDS last=$SECONDS line partial='' rc lastline=''
  while :; do
    if IFS= read -r -t "$PROGRESS_EVERY" line; then
      printf '%s\n' "$partial$line"
      lastline="$partial$line"
      partial=''
      last=$SECONDS
    else
      rc=$?
      if ((rc > 128)); then # timed out; a partial line (no newline yet) is kept for later
        partial+=$line
        printf '[%s]   … %s: %ds, quiet for %ds after: %.80s%s\n' "$(_progress_ts)" "$label" \
          "$((SECONDS - t0))" "$((SECONDS - last))" "$lastline" "${log:+ (logs: $log)}"
      else
        [ -n "$partial$line" ] && printf '%s\n' "$partial$line"
        break
      fi
    fi
  done
}
