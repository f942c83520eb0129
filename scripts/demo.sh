#!/usr/bin/env bash
# The main job: the driver against the lab Cinder, with a visible end-to-end walk-through.
# On a fresh Debian 12 machine as root it does all set-up itself (Node 24, npm deps, the lab).
#
#   bash scripts/demo.sh [--type tgt|rbd|fake] [--keep]
#
# What is real and what is simulated: see README.md ("What the demo does").
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
type=tgt
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --type) type=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: needs root (it runs a Cinder, loop devices and mounts)" >&2
  exit 1
fi
NODE=$(bash scripts/ensure-node.sh)
export PATH="$(dirname "$NODE"):$PATH"
[ -d node_modules ] || bash scripts/npm-deps.sh

echo "== setting up the lab Cinder (idempotent)"
bash test/setup.sh --lab-only

work=/var/lib/cinder-csi-demo
run=/run/cinder-csi-demo
logdir=/var/log/cinder-csi-demo
rm -rf "$work/hostroot" "$work/doubles"
mkdir -p "$work/kubelet" "$work/hostroot" "$work/doubles" "$run" "$logdir"
# The lab's admin credentials (Keystone), as an operator's OS_* environment would give them.
eval "$(bash test/lab/cinder-lab.sh env)"
export OS_AUTH_TYPE=password

# Simulated kernel pieces: iscsiadm / rbd doubles attach the lab's real volume data as loop devices.
export CSI_HOST_ROOT="$work/hostroot" CSI_DOUBLES_STATE="$work/doubles" CSI_DOUBLES_NODE="$NODE"
mkdir -p "$CSI_HOST_ROOT/etc/iscsi"
echo "InitiatorName=iqn.2004-10.com.ubuntu:01:cinder-csi-demo" > "$CSI_HOST_ROOT/etc/iscsi/initiatorname.iscsi"

sock="$run/csi.sock"
echo "== starting cinder-csi --mode all (log: $logdir/driver.log)"
PATH="$repo/test/doubles/bin:$PATH" node src/cli/main.ts --mode all \
  --endpoint "unix://$sock" --node-id demo-node --node-zone nova \
  --host-root "$CSI_HOST_ROOT" --kubelet-root "$work/kubelet" --state-dir "$work/state" \
  --log-level "${CSI_LOG_LEVEL:-debug}" > "$logdir/driver.log" 2>&1 &
driver=$!
cleanup() {
  kill -TERM "$driver" 2>/dev/null && wait "$driver" 2>/dev/null || true
  if [ "$keep" = 0 ]; then
    node --input-type=module -e "import('$repo/test/doubles/index.ts').then(m => m.releaseDoubles('$work/doubles'))" || true
  fi
}
trap cleanup EXIT

echo "== walk-through"
rc=0
node test/demo/walkthrough.ts --endpoint "unix://$sock" --node-id demo-node \
  --kubelet-root "$work/kubelet" --type "$type" --zone nova --driver-log "$logdir/driver.log" || rc=$?
if [ "$rc" != 0 ]; then
  echo "== driver log (last 40 lines)"
  tail -n 40 "$logdir/driver.log"
fi
exit "$rc"
