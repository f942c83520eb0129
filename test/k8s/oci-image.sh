#!/bin/bash
# oci-image.sh - writes a one-layer OCI image archive (an OCI image layout in a tar) from a root
# filesystem directory, without a container engine or a registry: the layer is a reproducible tar
# (sorted, mtime 0, owner 0), blobs are named by their sha256, the index names the image with the
# annotations `ctr images import` reads (io.containerd.image.name, org.opencontainers.image.ref.name).
#
#   oci-image.sh OUT.tar NAME:TAG ROOTFS_DIR ENTRYPOINT [ARG...]
#
# Used by test/k8s/kube-node.sh for the lab node's sandbox (pause) and test (busybox) images.
set -Eeuo pipefail
export LC_ALL=C

out=${1:?OUT.tar} name=${2:?NAME:TAG} rootfs=${3:?ROOTFS_DIR}
shift 3
(($# > 0)) || { echo "oci-image.sh: ENTRYPOINT missing" >&2; exit 2; }
[[ -d $rootfs ]] || { echo "oci-image.sh: $rootfs is not a directory" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci/blobs/sha256"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
blob() { # blob FILE : moves FILE into blobs/sha256, prints its digest (hex)
  local d
  d=$(sha "$1")
  mv "$1" "$work/oci/blobs/sha256/$d"
  echo "$d"
}

# layer: uncompressed, so its digest is also the diff id
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$rootfs" -cf "$work/layer.tar" .
layer_size=$(size "$work/layer.tar")
layer=$(blob "$work/layer.tar")

jq -cn --arg diff "sha256:$layer" --args '{
  architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z",
  config: { Entrypoint: $ARGS.positional, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            WorkingDir: "/" },
  rootfs: { type: "layers", diff_ids: [$diff] },
  history: [{ created: "1970-01-01T00:00:00Z", created_by: "test/k8s/oci-image.sh" }]
}' "$@" >"$work/config.json"
config_size=$(size "$work/config.json")
config=$(blob "$work/config.json")

jq -cn --arg c "sha256:$config" --argjson cs "$config_size" --arg l "sha256:$layer" --argjson ls "$layer_size" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
  layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls }]
}' >"$work/manifest.json"
manifest_size=$(size "$work/manifest.json")
manifest=$(blob "$work/manifest.json")

jq -cn --arg m "sha256:$manifest" --argjson ms "$manifest_size" --arg name "$name" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
    platform: { architecture: "amd64", os: "linux" },
    annotations: { "io.containerd.image.name": $name, "org.opencontainers.image.ref.name": ($name | sub(".*:"; "")) } }]
}' >"$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "sha256:$manifest"
