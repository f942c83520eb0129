#!/usr/bin/env bash
# Everything the integration suites need, idempotent and cached per machine:
#  - host tools the suites use (xfsprogs, btrfs-progs, parted, fuse3 for rbd-fuse);
#  - the lab Cinder (test/lab-up.sh: Keystone API :8776 + noauth API :8786, fake/rbd/tgt backends);
#  - a real kube-apiserver + etcd + kube-controller-manager + kube-scheduler (test/k8s/kube-lab.sh;
#    built once from Debian's source package, ~10 min on 2 cores, then cached under
#    /var/cache/cinder-csi/k8s);
#  - a real node of that API server (test/k8s/kube-node.sh: containerd with a private config and
#    the kubelet built with the API server; pause and busybox images built here, nothing pulled).
# Used by scripts/test.sh and scripts/demo.sh (the demo needs only the lab: --lab-only).
#
# Output: one line per step and its result, a heartbeat line at least every 15 s on long steps
# (what runs, for how long, the full log's path); full logs in /var/log/cinder-csi (set-up),
# /var/log/cinder-lab (the lab), /var/log/kube-lab (the API server) and /var/log/kube-node (the node).
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
# shellcheck source=scripts/progress.sh
. scripts/progress.sh
t0=$(date +%s)
LOGDIR=${CINDER_CSI_SETUP_LOG:-/var/log/cinder-csi}
mkdir -p "$LOGDIR"
lab_only=0
[ "${1:-}" = "--lab-only" ] && lab_only=1
step() { printf '[%s] test/setup.sh: %s\n' "$(date +%H:%M:%S)" "$*"; }

# Host tools the node service and the tool doubles use on real loop devices (mkfs/resize for xfs
# and btrfs are not on a fresh machine; ext4 and util-linux are; parted makes a partition table
# in one test; fusermount unmounts rbd-fuse, which only *recommends* fuse).
missing=()
for t in mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs parted:parted losetup:mount blkid:util-linux \
  fusermount:fuse3; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  progress_run "apt-get install ${missing[*]}" "$LOGDIR/apt.log" bash -c '
    apt-get -o DPkg::Lock::Timeout=900 update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
      --no-install-recommends "$@"' apt "${missing[@]}"
else
  step "host tools present (mkfs.xfs, mkfs.btrfs, parted, losetup, blkid, fusermount)"
fi
if [ "$lab_only" = 0 ]; then
  # Debian packages first, one apt at a time; then the API server build (CPU) runs in the
  # background while the lab's services come up (I/O, waiting).
  bash test/lab/cinder-lab.sh install 2>&1 | progress_filter "lab install" /var/log/cinder-lab
  kube_log=$LOGDIR/kube-install.log
  step "kube-apiserver, kube-controller-manager, kube-scheduler: install/build in the background (log: $kube_log)"
  printf '===== %s kube-lab.sh install\n' "$(date -Is)" >>"$kube_log"
  bash test/k8s/kube-lab.sh install >>"$kube_log" 2>&1 </dev/null &
  kube_install=$!
fi
bash test/lab-up.sh 2>&1 | progress_filter "lab up" /var/log/cinder-lab
if [ "$lab_only" = 0 ]; then
  progress_wait "kube-lab install (background build; cached after the first run)" "$kube_log" "$kube_install" ||
    { step "kube-apiserver install failed (log: $kube_log)" >&2; exit 1; }
  bash test/k8s/kube-lab.sh up 2>&1 | progress_filter "kube-lab up" /var/log/kube-lab
  bash test/k8s/kube-node.sh install 2>&1 | progress_filter "kube-node install" /var/log/kube-node
  bash test/k8s/kube-node.sh up 2>&1 | progress_filter "kube-node up" /var/log/kube-node
fi
step "ready in $(($(date +%s) - t0))s"
