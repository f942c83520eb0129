#!/usr/bin/env bash
# The main job: the driver against the lab Cinder, with a visible end-to-end walk-through.
# On a fresh Debian 12 machine as root it does all set-up itself (Node 24, npm deps, the lab).
#
#   bash scripts/demo.sh [--type tgt|rbd|fake] [--keep] [--name NAME] [--no-setup]
#
#   --no-setup   the lab is known to be up (scripts/test.sh set it up): skip test/setup.sh
#
# What is real and what is simulated: see README.md ("What the demo does"). Each run has its own
# work directory, socket and driver log (so demos may run side by side); they are removed at the
# end unless the run failed or --keep was given. Whatever the outcome, the walk-through deletes
# everything it created in Cinder (CINDER_CSI_DEMO_FAIL_AT=<step> injects a failure to prove it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
type=tgt
keep=0
setup=1
name_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --type) type=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-setup) setup=0; shift ;;
    --name) name_args=(--name "$2"); shift 2 ;;
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

if [ "$setup" = 1 ]; then
  echo "== setting up the lab Cinder (idempotent)"
  bash test/setup.sh --lab-only
fi

id="$type-$(date +%Y%m%d-%H%M%S)-$$"
work=/var/lib/cinder-csi-demo/$id
run=/run/cinder-csi-demo/$id
logdir=/var/log/cinder-csi-demo
mkdir -p "$work/kubelet" "$work/hostroot" "$work/doubles" "$run" "$logdir"
driver_log=$logdir/driver-$id.log
# The lab's admin credentials (Keystone), as an operator's OS_* environment would give them.
eval "$(bash test/lab/cinder-lab.sh env)"
export OS_AUTH_TYPE=password

# Simulated kernel pieces: iscsiadm / rbd doubles attach the lab's real volume data as loop devices.
export CSI_HOST_ROOT="$work/hostroot" CSI_DOUBLES_STATE="$work/doubles" CSI_DOUBLES_NODE="$NODE"
mkdir -p "$CSI_HOST_ROOT/etc/iscsi"
echo "InitiatorName=iqn.2004-10.com.ubuntu:01:cinder-csi-demo" > "$CSI_HOST_ROOT/etc/iscsi/initiatorname.iscsi"

sock="$run/csi.sock"
echo "== starting cinder-csi --mode all (log: $driver_log)"
PATH="$repo/test/doubles/bin:$PATH" node src/cli/main.ts --mode all \
  --endpoint "unix://$sock" --node-id demo-node --node-zone nova \
  --host-root "$CSI_HOST_ROOT" --kubelet-root "$work/kubelet" --state-dir "$work/state" \
  --log-level "${CSI_LOG_LEVEL:-debug}" > "$driver_log" 2>&1 &
driver=$!
rc=0
cleanup() {
  kill -TERM "$driver" 2>/dev/null && wait "$driver" 2>/dev/null || true
  if [ "$keep" = 0 ]; then
    # loop devices and rbd-fuse mounts the doubles made; then this run's directories
    node --input-type=module -e "import('$repo/test/doubles/index.ts').then(m => m.releaseDoubles('$work/doubles'))" || true
    findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$run"
    rmdir /run/cinder-csi-demo 2>/dev/null || true
    if ! findmnt -rn -o TARGET | grep -qF "$work/"; then
      rm -rf "$work"
      rmdir /var/lib/cinder-csi-demo 2>/dev/null || true
    fi
    [ "$rc" = 0 ] && rm -f "$driver_log"
  fi
}
trap cleanup EXIT

echo "== walk-through"
node test/demo/walkthrough.ts --endpoint "unix://$sock" --node-id demo-node \
  --kubelet-root "$work/kubelet" --type "$type" --zone nova --driver-log "$driver_log" "${name_args[@]}" || rc=$?
if [ "$rc" != 0 ]; then
  echo "== driver log (last 40 lines; all of it: $driver_log)"
  tail -n 40 "$driver_log"
fi
exit "$rc"
