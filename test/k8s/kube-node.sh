#!/bin/bash
# kube-node.sh - a real Kubernetes node on this machine for the lab's API server (kube-lab.sh):
# containerd (Debian's 1.6, PRIVATE config, root, state and socket; CRI plugin; runc with cgroupfs;
# overlayfs) and the lab's kubelet 1.20 (built by `kube-lab.sh install`, with 1.26's localhost
# :authority fix), registered as node $KUBE_NODE_NAME with a node certificate from the lab CA.
# Nothing can be pulled here: the sandbox (pause, compiled statically from the Kubernetes source
# tree) and a test image (Debian's busybox-static) are built locally and imported.
#
#   kube-node.sh install       apt-get install containerd runc containernetworking-plugins
#                              busybox-static gcc libc6-dev; waits for/needs the kubelet binary
#                              (kube-lab.sh install builds it); builds the two images (OCI archives
#                              in $CACHE/node-images); idempotent
#   kube-node.sh up            node certificates, configs, containerd, image import, kubelet; waits
#                              until the node is Ready and untainted; idempotent
#   kube-node.sh down [--purge]
#                              stop the kubelet, every container and sandbox, containerd; unmount
#                              everything under the node's directories; restore the sysctls the
#                              kubelet changed; --purge also wipes the state and deletes the Node
#                              object; safe to run twice
#   kube-node.sh stop-kubelet  stop only the kubelet (containers and mounts stay, as when a real
#                              node's kubelet restarts); start-kubelet = up
#   kube-node.sh status        processes, node condition, containers
#   kube-node.sh env           KUBE_NODE_* variables (eval "$(kube-node.sh env)")
#   kube-node.sh import-image NAME [AS]
#                              a buildah image (e.g. localhost/cinder-csi:test from
#                              test/image/build.sh --keep) into the node's containerd, named AS
#                              there (default NAME); pods use it with imagePullPolicy: Never
#   kube-node.sh ctr ARGS...   ctr on the node's containerd, namespace k8s.io
#
# For whoever runs pods or a CSI plugin on this node (the values `env` prints; defaults):
#   node name                  KUBE_NODE_NAME=kube-lab-node (label kubernetes.io/hostname too)
#   kubelet root (--root-dir)  /var/lib/kube-node/kubelet: CSI registration sockets go into
#                              <root>/plugins_registry/, plugin sockets into <root>/plugins/<driver>/;
#                              kubelet 1.20 stages at <root>/plugins/kubernetes.io/csi/pv/<pv>/globalmount
#                              and publishes at <root>/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount
#   containerd socket          /run/kube-node/containerd.sock (namespace k8s.io; `kube-node.sh ctr`)
#   containerd root / state    /var/lib/kube-node/containerd, /run/kube-node/containerd
#   logs                       /var/log/kube-node/{containerd,kubelet}.out; container logs where
#                              kubelet 1.20 always writes them: /var/log/pods/<ns>_<pod>_<uid>/
#   images                     localhost/kube-node/pause:3.4 (sandbox), localhost/kube-node/busybox:1
#                              (busybox-static; sh and every applet in /bin); pods must not pull:
#                              a tag other than :latest keeps the default imagePullPolicy IfNotPresent
#   pods                       schedule onto the node with nodeName or the scheduler (the node has no
#                              taints once Ready); hostNetwork: true (the CNI config only makes the
#                              runtime report the network ready; pod networking is not set up);
#                              the kubelet makes its root dir rshared itself (mount propagation)
#                              e.g. (admin kubeconfig of `kube-lab.sh env`; the namespace's default
#                              ServiceAccount and its token Secret (.secrets) must exist before a
#                              pod can be created in it, or automountServiceAccountToken: false):
#                                spec: {nodeSelector: {kubernetes.io/hostname: kube-lab-node},
#                                  hostNetwork: true, restartPolicy: Never, containers: [{name: c,
#                                  image: localhost/kube-node/busybox:1, imagePullPolicy: Never,
#                                  command: [sh, -c, 'echo hello']}]}
#                              test/integration/kube/node.test.ts and kube-node.ts (helpers: ensureKubeNode,
#                              podContainers, mountsUnder) do exactly this
#   OOM scores                 root lacks CAP_SYS_RESOURCE on some machines (this one): containerd
#                              runs with restrict_oom_score_adj, negative oom_score_adj are clamped
#   API server -> kubelet      the API server has no kubelet client certificate, so `kubectl logs`
#                              and exec through the API server are refused by the kubelet; read the
#                              log files above instead
#   restarts                   `up` restarts containerd/the kubelet only when their configuration
#                              changed; `down` kills every container (pods in the API come back on
#                              the next `up`, as after a reboot)
#
# Daemons run in their own sessions (setsid), pid files in $RUN, logs in $LOG. The kubelet changes
# vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops and kernel.keys.root_max*:
# `up` records them before the kubelet's first start, `down` restores them. Timings: TIMING lines.
set -Eeuo pipefail
shopt -s inherit_errexit
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export DEBIAN_FRONTEND=noninteractive

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_LAB=$HERE/kube-lab.sh
CACHE=${KUBE_LAB_CACHE:-/var/cache/cinder-csi/k8s}
BIN=$CACHE/bin
IMAGES=$CACHE/node-images
STATE=${KUBE_NODE_STATE:-/var/lib/kube-node}
RUN=${KUBE_NODE_RUN:-/run/kube-node}
LOG=${KUBE_NODE_LOG:-/var/log/kube-node}
NODE=${KUBE_NODE_NAME:-kube-lab-node}
KUBELET_PORT=${KUBE_NODE_KUBELET_PORT:-10250}
HEALTHZ_PORT=${KUBE_NODE_HEALTHZ_PORT:-10248}
ROOT=$STATE/kubelet
CTRD_ROOT=$STATE/containerd
CTRD_STATE=$RUN/containerd
SOCK=$RUN/containerd.sock
CNI_CONF=$STATE/cni/net.d
PKI=$STATE/pki
POD_LOGS=/var/log/pods
PAUSE_IMAGE=localhost/kube-node/pause:3.4
BUSYBOX_IMAGE=localhost/kube-node/busybox:1
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)
PKGS=(containerd runc containernetworking-plugins busybox-static gcc libc6-dev jq openssl curl)

# shellcheck source=scripts/progress.sh
. "$HERE/../../scripts/progress.sh"

# shellcheck source=scripts/daemon-lib.sh
. "$HERE/../../scripts/daemon-lib.sh"

ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

lab_env() { # KUBE_LAB_* of the lab API server
  eval "$(bash "$KUBE_LAB" env)"
  LAB_STATE=$(dirname "$KUBE_LAB_KUBECONFIG")
}
kcurl() { # kcurl [CURL ARGS...] PATH : admin request to the lab API server
  local path=${*: -1} token
  token=$(awk -F, '$2 == "kube-lab-admin" { print $1 }' "$LAB_STATE/pki/tokens.csv")
  curl -sS --fail-with-body --max-time 20 --cacert "$KUBE_LAB_CA" -H "Authorization: Bearer $token" \
    "${@:1:$#-1}" "$KUBE_LAB_SERVER$path"
}

# ---------------------------------------------------------------- install
build_pause() {
  local src
  src=$(compgen -G "$CACHE/src/kubernetes-*/build/pause/linux/pause.c" | head -1) ||
    die "no Kubernetes source tree under $CACHE/src: run kube-lab.sh install first"
  log "compiling $src statically"
  gcc -Os -Wall -Werror -static -DVERSION=v3.4-kube-lab -o "$IMAGES/pause.bin" "$src"
}

build_images() {
  local t0 d
  mkdir -p "$IMAGES"
  if [[ ! -s $IMAGES/pause.tar ]]; then
    t0=$(now_s)
    [[ -x $IMAGES/pause.bin ]] || build_pause
    d=$(mktemp -d) && install -m 0755 "$IMAGES/pause.bin" "$d/pause"
    bash "$HERE/oci-image.sh" "$IMAGES/pause.tar" "$PAUSE_IMAGE" "$d" /pause >/dev/null
    rm -rf "$d"
    log "TIMING image $PAUSE_IMAGE: $(($(now_s) - t0))s ($IMAGES/pause.tar)"
  fi
  if [[ ! -s $IMAGES/busybox.tar ]]; then
    t0=$(now_s)
    d=$(mktemp -d)
    mkdir -p "$d/bin" "$d/tmp" "$d/etc" "$d/proc" "$d/sys" "$d/dev" "$d/root"
    chmod 1777 "$d/tmp"
    install -m 0755 /bin/busybox "$d/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do [[ $applet == busybox ]] || ln -s busybox "$d/bin/$applet"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
    echo 'root:x:0:' >"$d/etc/group"
    bash "$HERE/oci-image.sh" "$IMAGES/busybox.tar" "$BUSYBOX_IMAGE" "$d" /bin/sh >/dev/null
    rm -rf "$d"
    log "TIMING image $BUSYBOX_IMAGE: $(($(now_s) - t0))s ($IMAGES/busybox.tar)"
  fi
}

cmd_install() {
  local t_all t0 missing=() p
  t_all=$(now_s)
  mkdir -p "$CACHE" "$LOG"
  for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    t0=$(now_s)
    # containerd's postinst only enables its systemd unit and starts it when systemd runs
    # (/run/systemd/system); the lab's containerd is started by `up` with its own config
    progress_run "apt-get install ${missing[*]}" "$LOG/apt.log" apt-get install "${APT_OPTS[@]}" "${missing[@]}" >&2 ||
      { progress_run "apt-get update; apt-get install ${missing[*]}" "$LOG/apt.log" \
        bash -c 'apt-get update -q && apt-get install "$@"' _ "${APT_OPTS[@]}" "${missing[@]}" >&2; } ||
      die "apt-get install failed (log: $LOG/apt.log)"
    log "TIMING apt-get install: $(($(now_s) - t0))s"
  fi
  build_images
  if [[ ! -x $BIN/kubelet ]]; then
    # kube-lab.sh install builds it (under a lock: waits for a build already running)
    t0=$(now_s)
    progress_run "kube-lab.sh install (builds the kubelet; minutes, once per machine)" "$LOG/kube-lab-install.log" \
      bash "$KUBE_LAB" install >&2 || die "kube-lab.sh install failed (log: $LOG/kube-lab-install.log)"
    log "TIMING kubelet build: $(($(now_s) - t0))s"
  fi
  [[ -x $BIN/kubelet ]] || die "$BIN/kubelet missing after kube-lab.sh install"
  log "TIMING install total: $(($(now_s) - t_all))s"
}

# . "$HERE/kube-node-lib.sh" defines the config writers, up/down
# shellcheck source=test/k8s/kube-node-lib.sh
. "$HERE/kube-node-lib.sh"

lock() { # one install/up/down/... at a time (tests of several engineers may call `up` at once)
  mkdir -p /run/lock
  exec 8>/run/lock/kube-node.lock
  flock -w 600 8 || die "another kube-node.sh held /run/lock/kube-node.lock for 10 min"
}

main() {
  local cmd=${1:-}; shift || true
  case $cmd in
    install | up | down | stop-kubelet | start-kubelet) lock ;;
  esac
  case $cmd in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    stop-kubelet) stop_bg kubelet ;;
    start-kubelet) cmd_up "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    import-image) cmd_import_image "$@" ;;
    ctr) ctr_ "$@" ;;
    *) die "usage: $0 install|up|down [--purge]|stop-kubelet|start-kubelet|status|env|import-image NAME [AS]|ctr ARGS..." ;;
  esac
}
main "$@"
