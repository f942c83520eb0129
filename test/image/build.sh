#!/usr/bin/env bash
# Builds the project's Dockerfile here, without a Docker engine or a registry, and proves the image
# runs: buildah (chroot isolation, vfs storage) builds it on a local base image (test/image/base.sh:
# debootstrap bookworm + Node.js 24), then runs the image's own commands in a container:
#   cinder-csi --version          the compiled driver starts and reports the package version
#   startup snapshot              the blob made in the runtime stage starts with the image's node
#   iscsiadm, rbd, rbd-nbd, multipath, mkfs.ext4/xfs/btrfs, blkid, findmnt, udevadm   answer
#   id -u                         the default user is the non-root 10001 (controller)
#
#   test/image/build.sh [--tag REF] [--keep] [--cached] [--context DIR]
#     --context DIR   build from DIR (e.g. a `git archive` export) instead of the working tree
#     --cached        the image of these sources: tag localhost/cinder-csi:src-<hash of the sources,
#                     build scripts and base> (lib.sh source_hash), kept; when the storage already
#                     holds it, it is not built again (the checks still run). The tests that need the
#                     image (image.test.ts, node-image.test.ts, the pod variant of the kubelet suite)
#                     share it this way: one build per source tree. Only the newest
#                     $SOURCE_IMAGES_KEPT such images are kept.
# stdout ends with "image: tag REF" (the image built or reused) and "image: all checks passed".
#
# Both the base image and buildah's layer cache stay in $STORAGE_ROOT, so a second run with the same
# package-lock.json and Dockerfile reuses the apt and npm layers and takes a fraction of the time.
# Builds are serialised (lib.sh image_lock) and each one cleans up only what builds leave behind
# (working containers, untagged images, the images it made and does not keep): never another
# user's image. Prints timings; exits non-zero when the build or any check fails.
set -Eeuo pipefail
# shellcheck source=test/image/lib.sh
. "$(dirname "$0")/lib.sh"

TAG=localhost/cinder-csi:test
KEEP=0
CACHED=0
CONTEXT=$REPO_ROOT
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --cached) CACHED=1; KEEP=1; shift ;;
    --context) CONTEXT=$(cd "$2" && pwd); shift 2 ;;
    *) die "unknown argument $1 (usage: build.sh [--tag REF] [--keep] [--cached] [--context DIR])" ;;
  esac
done

t0=$(date +%s)
need_tools buildah debootstrap
setup_storage
image_lock exclusive "[image] build"
base=$(bash "$IMAGE_DIR/base.sh")
t1=$(date +%s)
log "base image $base ready in $((t1 - t0)) s"
[ "$CACHED" = 0 ] || TAG="$SOURCE_TAG_REPO:$SOURCE_TAG_PREFIX$(source_hash "$CONTEXT" "$base")"

images_by_id() { bh images --all --format '{{.ID}} {{.Name}}:{{.Tag}}' 2>/dev/null || true; }
# What was there before this build (other users' images among them) stays.
before_ids=$(images_by_id | awk '{ print $1 }')
# Working containers are made by builds only, and builds are serialised: any is a leftover. Images:
# the untagged ones (a killed build's) and the ones this build made, except the result with --keep.
cleanup() {
  bh rm --all >/dev/null 2>&1 || true
  local id name
  images_by_id | while read -r id name; do
    [ "$name" != "$base" ] || continue
    if [ "$KEEP" = 1 ] && [ "$name" = "$TAG" ]; then continue; fi
    if [ "$name" = '<none>:<none>' ] || ! grep -qx "$id" <<<"$before_ids"; then
      bh rmi --force "$id" >/dev/null 2>&1 || true
    fi
  done
}
trap cleanup EXIT

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$CONTEXT/package.json" | head -1)
[ -n "$version" ] || die "cannot read the version from package.json"
if [ "$CACHED" = 1 ] && image_exists "$TAG"; then
  log "$TAG (these sources) is in the storage already: not building it again"
  t2=$(date +%s)
else
log "building $TAG (version $version) from $CONTEXT"
# No --layers: with the vfs driver every cached layer is a full copy of the filesystem, so a
# per-step cache would cost gigabytes per run; the expensive, stable part (the base) is cached.
: >"$RUN_ROOT/build.log"
progress_run "[image] buildah bud (Dockerfile: npm ci, tsc, runtime packages; minutes)" "$RUN_ROOT/build.log" \
  bh bud --layers=false --pull=never --jobs 1 ${TARGET:+--target "$TARGET"} \
  --build-arg BASE_IMAGE="$base" \
  --build-arg VERSION="$version" \
  --build-arg NPM_CI_FALLBACK=1 \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -f "$CONTEXT/Dockerfile" -t "$TAG" "$CONTEXT" >&2 \
  || die "image build failed (full log: $RUN_ROOT/build.log)"
t2=$(date +%s)
log "image built in $((t2 - t1)) s"
fi
if [ "$CACHED" = 1 ]; then
  # the newest source-tagged images stay (other trees' tests may still use theirs), older ones go
  bh images --format '{{.CreatedAtRaw}}|{{.Name}}:{{.Tag}}' 2>/dev/null |
    grep -F "|$SOURCE_TAG_REPO:$SOURCE_TAG_PREFIX" | sort -r | tail -n "+$((SOURCE_IMAGES_KEPT + 1))" |
    cut -d'|' -f2 | while read -r old; do
      [ "$old" = "$TAG" ] && continue
      log "removing the older source-tagged image $old (keeping the newest $SOURCE_IMAGES_KEPT)"
      bh rmi --force "$old" >/dev/null 2>&1 || true
    done
fi
echo "image: tag $TAG"

[ -z "${TARGET:-}" ] || { log "built target $TARGET only (TARGET set); no checks"; exit 0; }
ctr=$(bh from --pull=never "$TAG")

failures=0
# check NAME EXPECTED-REGEX COMMAND...: runs COMMAND in the container, output must match.
check() {
  local name=$1 want=$2 out
  shift 2
  if out=$(BH_TIMEOUT=120 bh run "$ctr" -- "$@" 2>&1) && grep -Eq "$want" <<<"$out"; then
    log "ok   $name: $(head -1 <<<"$out")"
  else
    log "FAIL $name: $(head -3 <<<"$out")"
    failures=$((failures + 1))
  fi
}
check 'cinder-csi --version' "^cinder-csi $version" cinder-csi --version
check 'node --version' '^v24\.' node --version
check 'default user is non-root' '^10001$' id -u
check 'iscsiadm --version' 'iscsiadm version' iscsiadm --version
check 'rbd --version' 'ceph version' rbd --version
check 'rbd-nbd --version' 'ceph version' rbd-nbd --version
check 'multipath -h' 'multipath-tools' sh -c 'multipath -h 2>&1; true'
check 'mkfs.ext4 -V' 'mke2fs' sh -c 'mkfs.ext4 -V 2>&1'
check 'mkfs.xfs -V' 'mkfs.xfs version' mkfs.xfs -V
check 'mkfs.btrfs --version' 'btrfs-progs' mkfs.btrfs --version
check 'resize/repair tools present' 'xfs_repair$' \
  sh -c 'command -v resize2fs && command -v e2fsck && command -v xfs_growfs && command -v xfs_repair'
check 'util-linux tools' 'findmnt from util-linux' sh -c 'blkid -V && lsblk --version && findmnt --version'
check 'udevadm --version' '^[0-9]+' udevadm --version
check 'npm removed from runtime' '^absent$' sh -c 'command -v npm >/dev/null && echo present || echo absent'
check 'one bundled program, no node_modules' '^bundled$' \
  sh -c 'test -f /opt/cinder-csi/dist/bundle/main.js && ! test -e /opt/cinder-csi/node_modules && echo bundled'
check 'startup snapshot of the image node' "^cinder-csi $version" \
  node --snapshot-blob /opt/cinder-csi/dist/bundle/snapshot.blob -- --version
labels=$(bh inspect --type image --format '{{.OCIv1.Config.Labels}}' "$TAG" 2>/dev/null || true)
if grep -q "org.opencontainers.image.version:$version" <<<"$labels"; then
  log "ok   OCI labels: version $version"
else
  log "FAIL OCI labels: $labels"
  failures=$((failures + 1))
fi
t3=$(date +%s)

size=$(bh images --format '{{.Size}}' "$TAG" 2>/dev/null || echo '?')
log "checks done in $((t3 - t2)) s; total $((t3 - t0)) s; image size ${size}"
if [ "$failures" -gt 0 ]; then
  echo "image: $failures checks failed"
  exit 1
fi
echo "image: all checks passed"
