# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this file
# Shared settings for test/image/*.sh (sourced, not executed).
#
# Images live in a storage of their own (vfs driver, no overlay or fuse needed) so that this
# project's image tests never touch another user's podman/buildah storage on the same machine.
# Builds run with BUILDAH_ISOLATION=chroot: no user namespaces, no cgroups, no network setup,
# which is what works inside CI sandboxes without a container engine.

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IMAGE_DIR/../.." && pwd)
# shellcheck source=scripts/progress.sh
. "$REPO_ROOT/scripts/progress.sh"

# Cache of base-image archives, reused across CI runs on one machine (keyed by input hash).
CACHE_ROOT=${CINDER_CSI_IMAGE_CACHE:-/var/cache/cinder-csi/image}
# Container storage (graph root) used for every build; also survives between runs.
STORAGE_ROOT=${CINDER_CSI_IMAGE_STORAGE:-/var/lib/cinder-csi-image/storage}
RUN_ROOT=${CINDER_CSI_IMAGE_RUNROOT:-/run/cinder-csi-image}

# Pinned inputs of the base image; changing any of them changes the cache key.
DEBIAN_SUITE=${CINDER_CSI_BASE_SUITE:-bookworm}
DEBIAN_MIRROR=${CINDER_CSI_BASE_MIRROR:-http://deb.debian.org/debian}
# npm that understands package-lock.json as this project writes it (lockfiles written by npm 11.19
# omit other platforms' optional packages, which older npm ci rejects as out of sync).
NPM_VERSION=${CINDER_CSI_NPM_VERSION:-11.19.1}

export BUILDAH_ISOLATION=chroot
export STORAGE_DRIVER=vfs
export CONTAINERS_STORAGE_CONF="$RUN_ROOT/storage.conf"
export CONTAINERS_CONF="$IMAGE_DIR/containers.conf"
export LC_ALL=C.UTF-8

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Writes the storage.conf that points buildah at our own vfs graph root.
setup_storage() {
  mkdir -p "$STORAGE_ROOT" "$RUN_ROOT" "$CACHE_ROOT"
  cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$STORAGE_ROOT"
runroot = "$RUN_ROOT/runroot"
EOF
}

# buildah with our storage; every call has a wall-clock limit so a hung build cannot block CI.
bh() {
  timeout --kill-after=30 "${BH_TIMEOUT:-1800}" buildah --storage-driver vfs --root "$STORAGE_ROOT" \
    --runroot "$RUN_ROOT/runroot" "$@"
}

image_exists() { bh inspect --type image "$1" >/dev/null 2>&1; }

need_tools() {
  local missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      local apt_log=/var/log/cinder-csi/image-apt.log
      progress_run "[image] apt-get install buildah debootstrap runc" "$apt_log" bash -c '
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
          --no-install-recommends buildah debootstrap runc' >&2 || die "apt-get install failed (log: $apt_log)"
    else
      die "missing tools: ${missing[*]} (apt-get install buildah debootstrap)"
    fi
  fi
}

# One lock per image storage: builds (build.sh, base.sh) take it exclusively, readers that need an
# image to stay while they use it (kube-node.sh import-image) take it shared. A build's clean-up
# removes only what builds leave behind, never another user's named image, but builds must not
# overlap (vfs space, the shared build log, dangling layers of a build still running).
#   image_lock exclusive|shared WHAT     waits (progress line every 15 s, at most 60 min) on fd 9
# A script started under the lock (build.sh runs base.sh) inherits CINDER_CSI_IMAGE_LOCKED and does
# not wait for itself.
LOCK_FILE=${CINDER_CSI_IMAGE_LOCK:-${STORAGE_ROOT%/}.lock}
image_lock() {
  local mode=$1 what=$2 t0=$SECONDS
  [ -z "${CINDER_CSI_IMAGE_LOCKED:-}" ] || return 0
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>>"$LOCK_FILE"
  until flock "--$mode" -w "${PROGRESS_EVERY:-15}" 9; do
    ((SECONDS - t0 < 3600)) || die "$what: another image build held $LOCK_FILE for 60 min"
    log "$what: waiting for another image build to finish ($((SECONDS - t0)) s; lock $LOCK_FILE)"
  done
  ((SECONDS - t0 < 2)) || log "$what: got the image lock after $((SECONDS - t0)) s"
  export CINDER_CSI_IMAGE_LOCKED=$$
}

# A hash of everything the project image is built from: the Dockerfile and its COPY sources (in
# CONTEXT), the build scripts, and the base image's reference (which carries its own input hash).
#   source_hash CONTEXT BASE_REF
source_hash() {
  local context=$1 base=$2
  {
    echo "$base"
    (cd "$context" && find Dockerfile .dockerignore package.json package-lock.json tsconfig.json \
      tsconfig.build.json proto src bin scripts/bundle.sh scripts/snapshot-prelude.js \
      scripts/build-snapshot.sh -type f -print0 2>/dev/null |
      LC_ALL=C sort -z | xargs -0 sha256sum)
    (cd "$IMAGE_DIR" && sha256sum build.sh lib.sh base.sh containers.conf)
  } | sha256sum | cut -c1-16
}
# Images tagged by source_hash (build.sh --cached) kept in the storage: the newest ones only.
SOURCE_TAG_REPO=localhost/cinder-csi
SOURCE_TAG_PREFIX=src-
SOURCE_IMAGES_KEPT=${CINDER_CSI_SOURCE_IMAGES_KEPT:-3}
