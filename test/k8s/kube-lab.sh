#!/bin/bash
# kube-lab.sh - a real kube-apiserver (Kubernetes 1.20, built from Debian bookworm's `kubernetes`
# source package) with etcd on 127.0.0.1, for integration tests of the driver's Kubernetes glue.
#
#   kube-lab.sh install     fetch the source through a PRIVATE apt configuration (deb-src entry;
#                           /etc/apt is not touched), apt-get install golang-go etcd-server and
#                           golang-github-modern-go-reflect2-dev, build kube-apiserver,
#                           kube-controller-manager and kube-scheduler once into the cache
#                           (idempotent; prints timings and a progress line every 15 s)
#   kube-lab.sh up          certificates, service-account keys, static tokens, etcd, kube-apiserver
#                           (RBAC), kube-controller-manager with the controllers a real control
#                           plane runs (kubeadm's set: all default ones incl. persistentvolume-binder,
#                           -expander, pvc-protection, attachdetach; plus bootstrapsigner,
#                           tokencleaner), kube-scheduler; idempotent (restarts what is outdated)
#   kube-lab.sh down        stop everything (state is kept; `down --purge` also wipes it)
#   kube-lab.sh status      processes and health
#   kube-lab.sh env         KUBE_LAB_* variables and KUBECONFIG (eval "$(kube-lab.sh env)")
#   kube-lab.sh token NAMESPACE SERVICEACCOUNT [SECONDS]
#                           mint a token for a ServiceAccount (TokenRequest API), print it
#   kube-lab.sh kubeconfig NAMESPACE SERVICEACCOUNT FILE
#                           write a kubeconfig for that ServiceAccount's minted token
#   kube-lab.sh stop-apiserver | start-apiserver | restart-apiserver
#                           kube-apiserver only, etcd keeps running (watch-recovery tests)
#
# Everything listens on 127.0.0.1 only. Daemons run in their own sessions (setsid), pid files in
# $RUN, logs in $LOG. The binaries are built once per machine into $CACHE (override with
# KUBE_LAB_CACHE) since the build takes ~6+ minutes on 2 cores.
set -Eeuo pipefail
shopt -s inherit_errexit
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export DEBIAN_FRONTEND=noninteractive

CACHE=${KUBE_LAB_CACHE:-/var/cache/cinder-csi/k8s}
STATE=${KUBE_LAB_STATE:-/var/lib/kube-lab}
RUN=${KUBE_LAB_RUN:-/run/kube-lab}
LOG=${KUBE_LAB_LOG:-/var/log/kube-lab}
API_PORT=${KUBE_LAB_API_PORT:-6443}
ETCD_CLIENT_PORT=${KUBE_LAB_ETCD_PORT:-2479}
ETCD_PEER_PORT=${KUBE_LAB_ETCD_PEER_PORT:-2480}
KCM_PORT=${KUBE_LAB_KCM_PORT:-10257}
SCHED_PORT=${KUBE_LAB_SCHEDULER_PORT:-10259}
# kubeadm's controller set: every controller enabled by default plus the bootstrap-token ones
KCM_CONTROLLERS='*,bootstrapsigner,tokencleaner'
SERVICE_CIDR=10.96.0.0/16
SUITE=bookworm
MIRROR=${KUBE_LAB_MIRROR:-http://deb.debian.org/debian}
BIN=$CACHE/bin
APT_OPTS=(-y -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)
PKGS=(golang-go etcd-server golang-github-modern-go-reflect2-dev openssl curl jq dpkg-dev make rsync)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/progress.sh
. "$HERE/../../scripts/progress.sh"
# shellcheck source=scripts/daemon-lib.sh
. "$HERE/../../scripts/daemon-lib.sh"
# shellcheck source=test/k8s/kube-lab-install.sh
. "$HERE/kube-lab-install.sh"

# ---------------------------------------------------------------- ports
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_free_or_ours() { # port_free_or_ours SERVICE PORT... : die if a port is taken by something we did not start
  local svc=$1 port; shift
  is_running "$svc" && return 0
  for port in "$@"; do
    port_open "$port" && die "127.0.0.1:$port is already in use by another process; stop it or set KUBE_LAB_*_PORT"
  done
  return 0
}

# ---------------------------------------------------------------- certificates, tokens, kubeconfigs
PKI=$STATE/pki
SERVER=https://127.0.0.1:$API_PORT
AUDIENCE=https://kubernetes.default.svc.cluster.local

gen_pki() { # CA, serving certificate, service-account key pair (kept across up/down)
  mkdir -p "$PKI"; chmod 0700 "$PKI"
  if [[ ! -s $PKI/ca.crt ]]; then
    log "generating CA"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kube-lab-ca" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  fi
  if [[ ! -s $PKI/apiserver.crt ]]; then
    log "generating kube-apiserver serving certificate"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment" >"$PKI/apiserver.ext"
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -s $PKI/sa.key ]]; then
    log "generating service-account signing key"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  # static tokens: the admin (system:masters), kube-controller-manager's and kube-scheduler's
  # identities (the scheduler's is added to a tokens.csv of an older kube-lab: the API server reads
  # the file at start, so cmd_up restarts it then)
  [[ -e $PKI/tokens.csv ]] || (umask 077 && : >"$PKI/tokens.csv")
  local line
  for line in "kube-lab-admin,kube-lab-admin,system:masters" \
    "system:kube-controller-manager,system:kube-controller-manager" "system:kube-scheduler,system:kube-scheduler"; do
    [[ -n $(static_token "${line%%,*}") ]] || echo "$(openssl rand -hex 24),$line" >>"$PKI/tokens.csv"
  done
  chmod 0600 "$PKI"/*.key
  write_kubeconfig "$STATE/admin.kubeconfig" kube-lab-admin "$(static_token kube-lab-admin)"
  write_kubeconfig "$STATE/kcm.kubeconfig" system:kube-controller-manager "$(static_token system:kube-controller-manager)"
  write_kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler "$(static_token system:kube-scheduler)"
}

static_token() { awk -F, -v u="$1" '$2 == u { print $1 }' "$PKI/tokens.csv"; }

write_kubeconfig() { # write_kubeconfig FILE USER TOKEN (mode 0600)
  local file=$1 user=$2 token=$3
  (umask 077 && cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-lab
  cluster:
    server: $SERVER
    certificate-authority: $PKI/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: kube-lab
  context:
    cluster: kube-lab
    user: $user
current-context: kube-lab
EOF
  ) && mv "$file.tmp" "$file"
}

kcurl() { # kcurl [CURL ARGS...] PATH : admin request to the API server
  local path=${*: -1}
  curl -sS --fail-with-body --max-time 30 --cacert "$PKI/ca.crt" \
    -H "Authorization: Bearer $(static_token kube-lab-admin)" "${@:1:$#-1}" "$SERVER$path"
}

# ---------------------------------------------------------------- up / down
cmd_up() {
  local t0
  t0=$(now_s)
  [[ -x $BIN/kube-apiserver ]] || die "kube-apiserver is not built: run '$0 install' first"
  command -v etcd >/dev/null || die "etcd is not installed: run '$0 install' first"
  mkdir -p "$STATE" "$RUN" "$LOG"
  gen_pki
  port_free_or_ours etcd "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
  start_bg etcd etcd --name kube-lab --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kube-lab=http://127.0.0.1:$ETCD_PEER_PORT" \
    --quota-backend-bytes 1073741824 --log-level warn
  wait_for etcd "etcd on 127.0.0.1:$ETCD_CLIENT_PORT" 60 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
  # an API server started before its tokens.csv gained an identity does not know that token
  if is_running kube-apiserver && [[ $PKI/tokens.csv -nt $RUN/kube-apiserver.pid ]]; then
    log "tokens.csv changed since kube-apiserver started: restarting it"
    stop_bg -t 3 kube-apiserver
  fi
  apiserver_up
  if [[ -x $BIN/kube-controller-manager ]]; then
    # the controllers a real control plane runs (kubeadm's set); a manager started by an older
    # kube-lab with a shorter list is restarted
    local kcm_args=(--kubeconfig "$STATE/kcm.kubeconfig" --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --port 0
      --controllers "$KCM_CONTROLLERS"
      --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt"
      --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key"
      --leader-elect=false --use-service-account-credentials=true
      --authentication-skip-lookup=true --v 1)
    restart_if_args_changed kube-controller-manager "${kcm_args[@]}"
    port_free_or_ours kube-controller-manager "$KCM_PORT"
    start_bg kube-controller-manager "$BIN/kube-controller-manager" "${kcm_args[@]}"
    wait_for kube-controller-manager "kube-controller-manager on 127.0.0.1:$KCM_PORT" 60 \
      curl -skf --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
  else
    log "kube-controller-manager not built: ServiceAccount token Secrets are not created (TokenRequest works)"
  fi
  if [[ -x $BIN/kube-scheduler ]]; then
    local sched_args=(--kubeconfig "$STATE/scheduler.kubeconfig" --bind-address 127.0.0.1
      --secure-port "$SCHED_PORT" --port 0 --leader-elect=false --authentication-skip-lookup=true --v 1)
    restart_if_args_changed kube-scheduler "${sched_args[@]}"
    port_free_or_ours kube-scheduler "$SCHED_PORT"
    start_bg kube-scheduler "$BIN/kube-scheduler" "${sched_args[@]}"
    wait_for kube-scheduler "kube-scheduler on 127.0.0.1:$SCHED_PORT" 60 \
      curl -skf --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
  else
    log "kube-scheduler not built (run '$0 install'): pods are not scheduled"
  fi
  log "TIMING up: $(($(now_s) - t0))s; API server $SERVER (eval \"\$($0 env)\")"
}

restart_if_args_changed() { # restart_if_args_changed NAME ARGS... : stop NAME if it runs with other arguments
  local name=$1 pid want have; shift
  pid=$(pidof_svc "$name") || return 0
  want=$(printf '%s\n' "$@")
  have=$(tr '\0' '\n' <"/proc/$pid/cmdline" | tail -n +2)
  [[ $want == "$have" ]] && return 0
  log "$name runs with other arguments (an older kube-lab): restarting it"
  stop_bg "$name"
}

apiserver_up() {
  port_free_or_ours kube-apiserver "$API_PORT"
  start_bg kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode Node,RBAC --anonymous-auth=false \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer "$AUDIENCE" --api-audiences "$AUDIENCE" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --enable-priority-and-fairness=false --profiling=false --event-ttl 1h --v 1
  wait_for kube-apiserver "kube-apiserver on $SERVER" 120 kcurl /readyz
}

cmd_down() {
  stop_bg kube-scheduler kube-controller-manager
  stop_bg -t 3 kube-apiserver
  stop_bg etcd
  if [[ ${1:-} == --purge ]]; then log "purging $STATE"; rm -rf "$STATE"; fi
}

# stop-apiserver / start-apiserver / restart-apiserver: kube-apiserver only (watch-recovery tests)
# kube-apiserver drains long-running requests (watches) for up to a minute on SIGTERM; the state
# is in etcd, so a short grace is enough (and a kill is what a crashed API server looks like)
cmd_stop_apiserver() { stop_bg -t 3 kube-apiserver; }
cmd_start_apiserver() {
  is_running etcd || die "etcd is not running: run '$0 up'"
  apiserver_up
}
cmd_restart_apiserver() {
  cmd_stop_apiserver
  cmd_start_apiserver
}

cmd_status() {
  local name pid
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    if pid=$(pidof_svc "$name"); then
      echo "$name: running (pid $pid, rss $(($(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024)) MiB)"
    else
      echo "$name: stopped"
    fi
  done
  if is_running kube-apiserver; then echo "readyz: $(kcurl /readyz 2>&1 || true)"; fi
  [[ -x $BIN/kube-apiserver ]] && echo "built: $BIN/kube-apiserver" || echo "built: no (run $0 install)"
}

cmd_env() {
  cat <<EOF
export KUBE_LAB_SERVER=$SERVER
export KUBE_LAB_CA=$PKI/ca.crt
export KUBE_LAB_KUBECONFIG=$STATE/admin.kubeconfig
export KUBE_LAB_AUDIENCE=$AUDIENCE
export KUBE_LAB_BIN=$BIN
export KUBE_LAB_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
EOF
}

cmd_token() { # token NAMESPACE SERVICEACCOUNT [SECONDS]
  local ns=${1:?namespace} sa=${2:?serviceaccount} secs=${3:-3600}
  kcurl -X POST -H 'Content-Type: application/json' \
    -d "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\",\"spec\":{\"audiences\":[\"$AUDIENCE\"],\"expirationSeconds\":$secs}}" \
    "/api/v1/namespaces/$ns/serviceaccounts/$sa/token" | jq -er .status.token
}

cmd_kubeconfig() { # kubeconfig NAMESPACE SERVICEACCOUNT FILE
  local ns=${1:?namespace} sa=${2:?serviceaccount} file=${3:?file} token
  token=$(cmd_token "$ns" "$sa")
  write_kubeconfig "$file" "system:serviceaccount:$ns:$sa" "$token"
  log "wrote $file (ServiceAccount $ns/$sa)"
}

# ---------------------------------------------------------------- main
main() {
  local cmd=${1:-}; shift || true
  case $cmd in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    stop-apiserver) cmd_stop_apiserver "$@" ;;
    start-apiserver) cmd_start_apiserver "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    token) cmd_token "$@" ;;
    kubeconfig) cmd_kubeconfig "$@" ;;
    *) die "usage: $0 install|up|down [--purge]|stop-apiserver|start-apiserver|restart-apiserver|status|env|token NS SA [SECS]|kubeconfig NS SA FILE" ;;
  esac
}
main "$@"
