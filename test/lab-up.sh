#!/bin/bash
# test/lab-up.sh - the ONE idempotent command that installs the lab Cinder and brings it up the way
# the integration tests expect (used by CI and by `scripts/test.sh --lab`):
#
#   1. test/lab/cinder-lab.sh install                                  (apt-get, idempotent)
#   2. test/lab/cinder-lab.sh up --auth keystone --backend fake,rbd,tgt (idempotent, ~3 s when up):
#      keystone, cinder-api/scheduler/volume, cinder-backup (posix driver), glance-api on :9292
#      with the public test image cinder-csi-lab-raw
#   3. a second cinder-api with auth_strategy = noauth on 127.0.0.1:8786, same DB and rabbit, so
#      both auth modes are testable at the same time against the same volumes. Its noauth project
#      id is the Keystone admin project's id, so both modes see the same project.
#
#   test/lab-up.sh              install + up + noauth api (restarts the noauth api when it died or
#                               its configuration changed)
#   test/lab-up.sh --no-install skip step 1
#   test/lab-up.sh noauth       only (re)start the noauth api (the lab must be up)
#   test/lab-up.sh stop-noauth  stop only the noauth api (run it before `cinder-lab.sh down`)
#   test/lab-up.sh status       print the noauth api state
#
# The noauth api: config /var/lib/cinder-lab/cinder-noauth/cinder.conf (a copy of
# /etc/cinder/cinder.conf with auth_strategy = noauth and its own log file), uwsgi ini rendered from
# test/lab/templates/cinder-api-uwsgi.ini.in, pid file /run/cinder-lab/cinder-api-noauth.pid, logs
# /var/log/cinder-lab/cinder-api-noauth*.{log,out}. Tests read
# /var/lib/cinder-lab/cinder-noauth/noauth.env (CINDER_LAB_NOAUTH_ENDPOINT, CINDER_LAB_NOAUTH_PROJECT).
set -Eeuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8 LANG=C.UTF-8

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/lab/cinder-lab.sh
TPL=$HERE/lab/templates/cinder-api-uwsgi.ini.in
STATE=${CINDER_LAB_STATE:-/var/lib/cinder-lab}
RUN=${CINDER_LAB_RUN:-/run/cinder-lab}
LOG=${CINDER_LAB_LOG:-/var/log/cinder-lab}
NOAUTH_PORT=${CINDER_LAB_NOAUTH_PORT:-8786}
NOAUTH_DIR=$STATE/cinder-noauth
NAME=cinder-api-noauth
ADMIN_PASSWORD=${CINDER_LAB_ADMIN_PASSWORD:-admin}
API_PROCESSES=${CINDER_LAB_API_PROCESSES:-1}
API_THREADS=${CINDER_LAB_API_THREADS:-8}

ts() { date +%H:%M:%S; }
log() { echo "[$(ts)] lab-up: $*" >&2; }
die() { echo "[$(ts)] lab-up: ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
noauth_pid() { # the pid from our pid file ("PID STARTTIME"), if that process is still ours
  local f=$RUN/$NAME.pid pid st
  [[ -s $f ]] || return 1
  read -r pid st < "$f" || true
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z ${st:-} || "$(proc_start "$pid")" == "$st" ]] || return 1
  echo "$pid"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_noauth() {
  local pid i
  if pid=$(noauth_pid); then
    log "stopping $NAME (pid $pid)"
    # uwsgi: TERM to the master only (TERM to the whole group hangs), then clean up the group
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$NAME.pid"
}

keystone_admin_project() { # id of the Keystone admin project (admin user, password auth)
  curl -sS --fail-with-body --max-time 30 -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":$(jq -Rn --arg p "$ADMIN_PASSWORD" '$p')}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" \
    "http://127.0.0.1:5000/v3/auth/tokens" | jq -er .token.project.id
}

render_noauth() { # writes $NOAUTH_DIR/{cinder.conf,uwsgi.ini}.new
  mkdir -p "$NOAUTH_DIR" "$RUN" "$LOG"
  # same cinder.conf, but noauth and its own oslo.log file
  python3 - /etc/cinder/cinder.conf "$NOAUTH_DIR/cinder.conf.new" <<'EOF'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
out, section = [], None
for line in open(src):
    m = re.match(r'\s*\[([^\]]+)\]', line)
    if m:
        section = m.group(1)
    elif section == 'DEFAULT' and re.match(r'\s*(auth_strategy|log_file)\s*=', line):
        continue
    out.append(line)
    if m and section == 'DEFAULT':
        out.append('auth_strategy = noauth\nlog_file = cinder-noauth-wsgi.log\n')
open(dst, 'w').write(''.join(out))
EOF
  sed -e "s|@CINDER_PORT@|$NOAUTH_PORT|g" -e "s|@API_PROCESSES@|$API_PROCESSES|g" \
      -e "s|@API_THREADS@|$API_THREADS|g" -e "s|@RUN@|$RUN|g" -e "s|@LOG@|$LOG|g" \
      -e "s|/cinder-api.pid|/$NAME.pid|" -e "s|/cinder-api-uwsgi.log|/$NAME-uwsgi.log|" \
      -e "s|^name = cinder-api\$|name = $NAME|" "$TPL" > "$NOAUTH_DIR/uwsgi.ini.new"
  grep -q '@[A-Z_]*@' "$NOAUTH_DIR/uwsgi.ini.new" && die "unrendered variables in $NOAUTH_DIR/uwsgi.ini.new"
  echo "pyargv = --config-file $NOAUTH_DIR/cinder.conf" >> "$NOAUTH_DIR/uwsgi.ini.new"
}

noauth_ready() { # the versions document and a project-scoped list with the noauth token
  curl -s -o /dev/null --max-time 20 "http://127.0.0.1:$NOAUTH_PORT/" || return 1
  curl -sf -o /dev/null --max-time 30 -H "X-Auth-Token: admin:$1" \
    "http://127.0.0.1:$NOAUTH_PORT/v3/$1/volumes?limit=1"
}

up_noauth() {
  local t0 project changed=0 pid
  t0=$(now_ms)
  [[ -s /etc/cinder/cinder.conf ]] || die "/etc/cinder/cinder.conf missing: is the lab installed?"
  project=$(keystone_admin_project) || die "cannot get the Keystone admin project id (is keystone up?)"
  [[ $project =~ ^[0-9a-f-]+$ ]] || die "admin project id $project is not hex (cinder project_id_regex)"
  render_noauth
  for f in cinder.conf uwsgi.ini; do
    if ! cmp -s "$NOAUTH_DIR/$f.new" "$NOAUTH_DIR/$f"; then mv "$NOAUTH_DIR/$f.new" "$NOAUTH_DIR/$f"; changed=1
    else rm -f "$NOAUTH_DIR/$f.new"; fi
  done
  # the copy follows /etc/cinder/cinder.conf (cinder-lab.sh up re-renders it): restart on change
  if pid=$(noauth_pid); then
    if ((changed)); then log "$NAME configuration changed -> restarting"; stop_noauth; fi
  fi
  if pid=$(noauth_pid) && { noauth_ready "$project" || noauth_ready "$project" || noauth_ready "$project"; }; then
    log "$NAME already running (pid $pid, :$NOAUTH_PORT)"
  else
    if pid=$(noauth_pid); then log "$NAME (pid $pid) is not answering -> restarting"; stop_noauth; fi
    port_open "$NOAUTH_PORT" && die "127.0.0.1:$NOAUTH_PORT is in use by a process we did not start"
    log "starting $NAME on 127.0.0.1:$NOAUTH_PORT (project $project)"
    echo "===== $(date -Is) uwsgi --ini $NOAUTH_DIR/uwsgi.ini" >> "$LOG/$NAME.out"
    setsid uwsgi --ini "$NOAUTH_DIR/uwsgi.ini" >>"$LOG/$NAME.out" 2>&1 < /dev/null &
    pid=$!
    echo "$pid $(proc_start "$pid")" > "$RUN/$NAME.pid.tmp"
    local deadline=$(( $(date +%s) + 120 ))
    until noauth_ready "$project"; do
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG/$NAME.out" >&2; die "$NAME died (logs: $LOG/$NAME*.{out,log}, $LOG/cinder-noauth-wsgi.log)"; }
      (( $(date +%s) < deadline )) || die "$NAME not ready after 120 s (logs: $LOG/$NAME*.{out,log})"
      sleep 0.5
    done
    # uwsgi writes only its pid into the pidfile; keep "PID STARTTIME" (guards against pid reuse)
    mv "$RUN/$NAME.pid.tmp" "$RUN/$NAME.pid"
  fi
  cat > "$NOAUTH_DIR/noauth.env.tmp" <<EOF
CINDER_LAB_NOAUTH_ENDPOINT=http://127.0.0.1:$NOAUTH_PORT/v3
CINDER_LAB_NOAUTH_PROJECT=$project
CINDER_LAB_NOAUTH_USER=admin
EOF
  mv "$NOAUTH_DIR/noauth.env.tmp" "$NOAUTH_DIR/noauth.env"
  chmod 644 "$NOAUTH_DIR/noauth.env"
  log "$NAME ready in $(( $(now_ms) - t0 ))ms"
}

main() {
  [[ $(id -u) == 0 ]] || die "run as root (the lab runs system daemons)"
  local install=1
  case ${1:-} in
    stop-noauth) stop_noauth; return 0 ;;
    noauth) up_noauth; return 0 ;;
    status)
      if pid=$(noauth_pid); then echo "$NAME running (pid $pid) on 127.0.0.1:$NOAUTH_PORT"; cat "$NOAUTH_DIR/noauth.env" 2>/dev/null
      else echo "$NAME stopped"; return 1; fi
      return 0 ;;
    --no-install) install=0 ;;
    '') ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
  local t0 t1; t0=$(now_ms)
  if ((install)); then
    "$LAB" install
    log "install: $(( $(now_ms) - t0 ))ms"
  fi
  t1=$(now_ms)
  "$LAB" up --auth keystone --backend fake,rbd,tgt
  log "up (keystone; fake,rbd,tgt): $(( $(now_ms) - t1 ))ms"
  up_noauth
  log "lab ready in $(( $(now_ms) - t0 ))ms: keystone api http://127.0.0.1:8776/v3, noauth api http://127.0.0.1:$NOAUTH_PORT/v3, glance http://127.0.0.1:9292"
}
main "$@"
