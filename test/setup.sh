#!/usr/bin/env bash
# Everything the integration suites need, idempotent and cached per machine:
#  - the lab Cinder (test/lab-up.sh: Keystone API :8776 + noauth API :8786, fake/rbd/tgt backends);
#  - a real kube-apiserver + etcd (test/k8s/kube-lab.sh; built once from Debian's source package,
#    about 5.5 min on 2 cores, then cached under /var/cache/cinder-csi/k8s).
# Used by scripts/test.sh and scripts/demo.sh (the demo needs only the lab: --lab-only).
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
t0=$(date +%s)
lab_only=0
[ "${1:-}" = "--lab-only" ] && lab_only=1
# Host tools the node service uses on real loop devices (mkfs/resize for xfs and btrfs are not on
# a fresh machine; ext4 and util-linux are; parted makes a partition table in one test).
missing=()
for t in mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs parted:parted losetup:mount blkid:util-linux; do
  command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test/setup.sh: apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$lab_only" = 0 ]; then
  # Debian packages first, one apt at a time; then the API server build (CPU) runs in the
  # background while the lab's services come up (I/O, waiting).
  bash test/lab/cinder-lab.sh install
  bash test/k8s/kube-lab.sh install > /tmp/cinder-csi-kube-install.log 2>&1 &
  kube_install=$!
fi
bash test/lab-up.sh
if [ "$lab_only" = 0 ]; then
  if ! wait "$kube_install"; then
    tail -n 30 /tmp/cinder-csi-kube-install.log >&2
    echo "test/setup.sh: kube-apiserver install failed" >&2
    exit 1
  fi
  tail -n 3 /tmp/cinder-csi-kube-install.log
  bash test/k8s/kube-lab.sh up
fi
echo "test/setup.sh: ready in $(( $(date +%s) - t0 ))s"
