#!/bin/sh
# Builds the driver's startup snapshot (bench/README.md, startup.ts): DIR/dist/bundle/snapshot.blob
# from DIR/dist/bundle/snapshot.cjs (scripts/bundle.sh), with the `node` first in PATH. A blob
# works only with the node binary that made it, so this runs where the program runs: the image's
# runtime stage (Dockerfile), or a checkout after `npm run bundle`. bin/cinder-csi starts from the
# blob when it is there (and newer than that node), else from dist/bundle/main.js.
#   sh scripts/build-snapshot.sh [DIR]   (default: the checkout this script is in)
# POSIX sh: the runtime image has no bash guarantee. The builder runs with an empty environment
# (PATH only): what modules read from the environment at load time must not be the build machine's.
set -eu
dir=${1:-$(dirname "$0")/..}
bundle=$(cd "$dir/dist/bundle" && pwd)
test -f "$bundle/snapshot.cjs" || { echo "build-snapshot: no $bundle/snapshot.cjs (npm run bundle)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node -e 'process.stdout.write(JSON.stringify(require("node:http2").constants))' >"$tmp/h2c.json"
# withoutCodeCache: a blob with V8's code cache of the built-ins is 3 MiB bigger and its start costs
# ~80 ms more CPU than compiling what is used (measured in bench/README.md).
printf '{"builder":"%s","withoutCodeCache":true}\n' "$bundle/snapshot.cjs" >"$tmp/config.json"
rm -f "$bundle/snapshot.blob"
if ! env -i PATH="$PATH" CINDER_CSI_SNAPSHOT_H2C="$tmp/h2c.json" \
  node --snapshot-blob "$tmp/snapshot.blob" --build-snapshot-config "$tmp/config.json" >"$tmp/log" 2>&1; then
  tail -n 20 "$tmp/log" >&2
  echo "build-snapshot: node --build-snapshot failed; bin/cinder-csi will start from the bundle" >&2
  exit 1
fi
# It must start: a blob that does not would stop every start of bin/cinder-csi.
version=$(node --snapshot-blob "$tmp/snapshot.blob" -- --version)
case $version in
  cinder-csi\ *) ;;
  *) echo "build-snapshot: the blob does not start (--version: $version)" >&2; exit 1 ;;
esac
mv "$tmp/snapshot.blob" "$bundle/snapshot.blob"
echo "build-snapshot: $bundle/snapshot.blob ($version, node $(node --version))"
