# shellcheck shell=bash
# kube-node-lib.sh - up/down/status/env/import-image of test/k8s/kube-node.sh (sourced by it, which
# defines the paths, log/die and the process helpers).

# ---------------------------------------------------------------- certificates and configuration
node_ip() { # the address of the default route's interface (the kubelet refuses a loopback node IP)
  local ip
  ip=$(ip -o -4 route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p') || true
  [[ -n $ip ]] || ip=$(ip -o -4 addr show scope global | awk '{ sub("/.*", "", $4); print $4; exit }')
  [[ -n $ip ]] || die "no non-loopback IPv4 address for the node (the kubelet needs one)"
  echo "$ip"
}

issue_cert() { # issue_cert NAME SUBJECT EXT... : $PKI/NAME.{key,crt} from the lab CA (kept while valid)
  local name=$1 subj=$2; shift 2
  if [[ -s $PKI/$name.crt ]] && openssl verify -CAfile "$KUBE_LAB_CA" "$PKI/$name.crt" >/dev/null 2>&1 &&
    [[ "$(openssl x509 -noout -subject -nameopt compat -in "$PKI/$name.crt")" == "subject=$subj" ]] &&
    cmp -s <(printf '%s\n' "$@") "$PKI/$name.ext"; then
    return 0
  fi
  log "issuing $name certificate ($subj) from the lab CA"
  printf '%s\n' "$@" >"$PKI/$name.ext"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$KUBE_LAB_CA" -CAkey "$LAB_STATE/pki/ca.key" -CAcreateserial \
    -CAserial "$PKI/ca.srl" -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr"
  chmod 0600 "$PKI/$name.key"
}

gen_pki() { # the node's client certificate (Node authorizer identity) and the kubelet's serving one
  local ip=$1
  mkdir -p "$PKI"; chmod 0700 "$PKI"
  issue_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE" \
    "extendedKeyUsage=clientAuth" "keyUsage=digitalSignature,keyEncipherment"
  issue_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE" \
    "subjectAltName=DNS:$NODE,IP:$ip,IP:127.0.0.1" "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment"
  (umask 077 && cat >"$STATE/kubelet.kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-lab
  cluster:
    server: $KUBE_LAB_SERVER
    certificate-authority: $KUBE_LAB_CA
users:
- name: system:node:$NODE
  user:
    client-certificate: $PKI/kubelet-client.crt
    client-key: $PKI/kubelet-client.key
contexts:
- name: kube-lab
  context:
    cluster: kube-lab
    user: system:node:$NODE
current-context: kube-lab
EOF
  ) && mv "$STATE/kubelet.kubeconfig.tmp" "$STATE/kubelet.kubeconfig"
}

put() { # put FILE : stdin into FILE if it differs; status 0 when it changed
  local file=$1
  cat >"$file.tmp"
  if cmp -s "$file.tmp" "$file"; then rm -f "$file.tmp"; return 1; fi
  mv "$file.tmp" "$file"
}

write_containerd_config() { # status 0 when it changed
  put "$STATE/containerd.toml" <<EOF
# kube-node.sh: the lab node's PRIVATE containerd (never /etc/containerd, /var/lib/containerd)
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  # the CRI asks runc for negative OOM score adjustments (sandboxes -998, Guaranteed pods -997),
  # which need CAP_SYS_RESOURCE; root lacks it in some sandboxes (this machine's too): clamp them
  # to [containerd's own value, 1000] instead of failing every sandbox
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF"
EOF
}

write_cni_config() { # a bridge network: the runtime reports NetworkReady; pods use hostNetwork
  mkdir -p "$CNI_CONF"
  put "$CNI_CONF/10-kube-node.conflist" <<'EOF' || true
{
  "cniVersion": "0.4.0",
  "name": "kube-node",
  "plugins": [
    { "type": "bridge", "bridge": "kn-br0", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.250.0/24" }]] } },
    { "type": "loopback" }
  ]
}
EOF
}

write_kubelet_config() { # status 0 when it changed
  local ip=$1
  mkdir -p "$STATE/volume-plugins"
  put "$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $KUBE_LAB_CA
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failSwapOn: false
featureGates:
  DevicePlugins: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
makeIPTablesUtilChains: false
volumePluginDir: $STATE/volume-plugins
serializeImagePulls: false
# images cannot be pulled again here: never collect them; evict only when the machine is nearly full
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
}

kubelet_args() { # kubelet_args NODE_IP
  printf '%s\n' "$BIN/kubelet" --config "$STATE/kubelet-config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$ROOT" --cert-dir "$ROOT/pki" --seccomp-profile-root "$ROOT/seccomp" --hostname-override "$NODE" --node-ip "$1" \
    --container-runtime remote --container-runtime-endpoint "unix://$SOCK" \
    --pod-infra-container-image "$PAUSE_IMAGE" --v 2
}

running_args() { # running_args NAME : the command line of the running daemon, one argument a line
  local pid
  pid=$(pidof_svc "$1") || return 0
  tr '\0' '\n' <"/proc/$pid/cmdline"
}

# ---------------------------------------------------------------- sysctls the kubelet changes
record_sysctls() { # before the kubelet's first start: the values down restores
  [[ -s $STATE/sysctl.orig ]] && return 0
  is_running kubelet && return 0
  local k
  for k in "${SYSCTLS[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$STATE/sysctl.orig.tmp"
  mv "$STATE/sysctl.orig.tmp" "$STATE/sysctl.orig"
}

restore_sysctls() {
  [[ -s $STATE/sysctl.orig ]] || return 0
  local line
  while IFS= read -r line; do
    [[ $line == *=* ]] && sysctl -q -w "$line" >/dev/null || log "could not restore $line"
  done <"$STATE/sysctl.orig"
  log "restored sysctls: $(paste -sd' ' "$STATE/sysctl.orig")"
  rm -f "$STATE/sysctl.orig"
}

# ---------------------------------------------------------------- images
image_present() { ctr_ images ls -q "name==$1" 2>/dev/null | grep -qx "$1"; }

import_archive() { # import_archive TAR NAME
  local tar=$1 name=$2 t0
  t0=$(now_s)
  ctr_ images import --snapshotter overlayfs "$tar" >&2 || die "ctr images import $tar failed"
  image_present "$name" || die "imported $tar but containerd has no image $name"
  log "TIMING import $name: $(($(now_s) - t0))s"
}

import_images() {
  image_present "$PAUSE_IMAGE" || import_archive "$IMAGES/pause.tar" "$PAUSE_IMAGE"
  image_present "$BUSYBOX_IMAGE" || import_archive "$IMAGES/busybox.tar" "$BUSYBOX_IMAGE"
}

cmd_import_image() { # import-image NAME [AS] : from the project's buildah storage (test/image/lib.sh)
  local name=${1:?image name, e.g. localhost/cinder-csi:test} as=${2:-${1:-}} tmp t0
  t0=$(now_s)
  is_running containerd || die "containerd is not running: run '$0 up'"
  tmp=$(mktemp -d)
  IMPORT_TMP=$tmp
  trap 'rm -rf "$IMPORT_TMP"' EXIT
  # under the image storage's lock (shared): no build's clean-up or pruning removes it meanwhile
  # shellcheck disable=SC2016
  progress_run "buildah push $name to an OCI archive (as $as)" "$LOG/import-image.log" \
    bash -c '. "$1/../image/lib.sh" && setup_storage && image_lock shared "import-image" &&
      { image_exists "$2" || die "no image $2 in the project image storage (test/image/build.sh --keep --tag $2)"; } &&
      bh push --format oci "$2" "oci-archive:$3:$4"' \
    _ "$HERE" "$name" "$tmp/image.tar" "$as" >&2 || die "buildah push failed (log: $LOG/import-image.log)"
  progress_run "ctr images import $as" "$LOG/import-image.log" \
    ctr --address "$SOCK" --namespace k8s.io images import --snapshotter overlayfs "$tmp/image.tar" >&2 ||
    die "ctr images import failed (log: $LOG/import-image.log)"
  image_present "$as" || die "imported, but containerd has no image $as (names: $(ctr_ images ls -q | paste -sd' '))"
  rm -rf "$tmp"
  log "TIMING import-image $name as $as: $(($(now_s) - t0))s"
}

# ---------------------------------------------------------------- up
node_ready() { # Ready=True and no not-ready/unreachable taint
  kcurl "/api/v1/nodes/$NODE" | jq -e '
    ([.status.conditions[]? | select(.type == "Ready" and .status == "True")] | length == 1) and
    ([.spec.taints[]? | select(.key | startswith("node.kubernetes.io/not-ready") or startswith("node.kubernetes.io/unreachable"))] | length == 0)'
}

cmd_up() {
  local t0 ip restart_ctrd=0 restart_kubelet=0 want
  t0=$(now_s)
  [[ -x $BIN/kubelet ]] || die "the kubelet is not built: run '$0 install' first"
  command -v containerd >/dev/null || die "containerd is not installed: run '$0 install' first"
  [[ -s $IMAGES/pause.tar && -s $IMAGES/busybox.tar ]] || die "the node's images are not built: run '$0 install' first"
  lab_env
  kcurl /readyz >/dev/null 2>&1 || die "the lab API server ($KUBE_LAB_SERVER) is not up: run 'kube-lab.sh up' first"
  mkdir -p "$STATE" "$RUN" "$LOG" "$ROOT" "$CTRD_ROOT"
  ip=$(node_ip)
  gen_pki "$ip"
  write_cni_config
  write_containerd_config && restart_ctrd=1
  write_kubelet_config "$ip" && restart_kubelet=1
  want=$(kubelet_args "$ip")
  if is_running kubelet && [[ $(running_args kubelet) != "$want" ]]; then restart_kubelet=1; fi
  [[ $PKI/kubelet-serving.crt -nt $RUN/kubelet.pid || $PKI/kubelet-client.crt -nt $RUN/kubelet.pid ]] && restart_kubelet=1
  if ((restart_ctrd)) && is_running containerd; then
    log "containerd's configuration changed: restarting it (and the kubelet)"
    stop_bg kubelet; stop_bg containerd; restart_kubelet=0
  fi
  if ((restart_kubelet)) && is_running kubelet; then log "the kubelet's configuration changed: restarting it"; stop_bg kubelet; fi

  start_bg containerd containerd --config "$STATE/containerd.toml"
  wait_for containerd "containerd on $SOCK" 60 ctr_ version
  import_images
  record_sysctls
  mapfile -t args <<<"$want"
  start_bg kubelet "${args[@]}"
  wait_for kubelet "kubelet healthz on 127.0.0.1:$HEALTHZ_PORT" 120 curl -sf --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz"
  wait_for kubelet "node $NODE Ready and untainted (node-lifecycle controller)" 180 node_ready
  log "TIMING up: $(($(now_s) - t0))s; node $NODE ($ip), eval \"\$($0 env)\""
}

# ---------------------------------------------------------------- down
our_shims() { # pids of containerd shims started for our socket (they outlive containerd)
  local f
  for f in $(grep -lsF -- "$SOCK" /proc/[0-9]*/cmdline 2>/dev/null); do
    tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "-address $SOCK " && { f=${f#/proc/}; echo "${f%/cmdline}"; }
  done
  return 0
}

stop_tasks() { # every container's task (CRI's containers and sandboxes alike) killed and deleted
  local id n=0
  for id in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks rm -f "$id" >/dev/null 2>&1 || ctr_ tasks kill -s SIGKILL --all "$id" >/dev/null 2>&1 || true
    n=$((n + 1))
  done
  ((n == 0)) || log "stopped $n container tasks"
}

our_mounts() { # mount points at or under the node's directories, deepest first (findmnt escapes)
  findmnt -rn -o TARGET | awk -v a="$STATE" -v b="$RUN" '
    $0 == a || index($0, a "/") == 1 || $0 == b || index($0, b "/") == 1' | sort -r
}

unmount_all() { # everything mounted under the node's directories, deepest first
  local m n=0
  while IFS= read -r m; do
    m=$(printf '%b' "$m")
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    n=$((n + 1))
  done < <(our_mounts)
  ((n == 0)) || log "unmounted $n mounts under $STATE and $RUN"
}

remove_pod_cgroups() { # the kubelet's (empty) kubepods hierarchy in every cgroup v1 controller
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

cmd_down() {
  local t0 p
  t0=$(now_s)
  stop_bg kubelet
  if is_running containerd; then stop_tasks; fi
  stop_bg containerd
  for p in $(our_shims); do log "killing leftover shim $p"; kill -KILL "$p" 2>/dev/null || true; done
  unmount_all
  restore_sysctls
  remove_pod_cgroups
  if [[ ${1:-} == --purge ]]; then
    lab_env
    if kcurl /readyz >/dev/null 2>&1; then
      kcurl -X DELETE "/api/v1/nodes/$NODE" >/dev/null 2>&1 && log "deleted Node $NODE" || true
    fi
    # never rm -rf through a mount (a volume still bind-mounted into a pod directory)
    [[ -z $(our_mounts) ]] || die "not purging: still mounted under $STATE or $RUN: $(our_mounts | head -3 | paste -sd' ')"
    log "purging $STATE $RUN and the kubelet's pod logs"
    rm -rf "$STATE" "$RUN" "$POD_LOGS" /var/log/containers
  fi
  log "TIMING down: $(($(now_s) - t0))s"
}

# ---------------------------------------------------------------- status / env
cmd_status() {
  local name pid
  for name in containerd kubelet; do
    if pid=$(pidof_svc "$name"); then
      echo "$name: running (pid $pid, rss $(($(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024)) MiB)"
    else
      echo "$name: stopped"
    fi
  done
  if is_running containerd; then
    echo "images: $(ctr_ images ls -q | paste -sd' ')"
    echo "tasks: $(ctr_ tasks ls -q | wc -l)"
  fi
  lab_env
  if kcurl /readyz >/dev/null 2>&1; then
    echo "node $NODE: $(kcurl "/api/v1/nodes/$NODE" 2>/dev/null |
      jq -r '[.status.conditions[]? | select(.type == "Ready") | "Ready=\(.status) (\(.reason))"] + [.spec.taints[]? | "taint \(.key)"] | join(", ")' || echo 'not registered')"
  fi
  [[ -x $BIN/kubelet ]] && echo "built: $BIN/kubelet" || echo "built: no (run $0 install)"
}

cmd_env() {
  cat <<EOF
export KUBE_NODE_NAME=$NODE
export KUBE_NODE_KUBELET_ROOT=$ROOT
export KUBE_NODE_PLUGINS_DIR=$ROOT/plugins
export KUBE_NODE_REGISTRATION_DIR=$ROOT/plugins_registry
export KUBE_NODE_CONTAINERD_SOCKET=$SOCK
export KUBE_NODE_CONTAINERD_ROOT=$CTRD_ROOT
export KUBE_NODE_STATE=$STATE
export KUBE_NODE_RUN=$RUN
export KUBE_NODE_LOG=$LOG
export KUBE_NODE_POD_LOGS=$POD_LOGS
export KUBE_NODE_PAUSE_IMAGE=$PAUSE_IMAGE
export KUBE_NODE_BUSYBOX_IMAGE=$BUSYBOX_IMAGE
export KUBE_NODE_SCRIPT=$HERE/kube-node.sh
EOF
}
