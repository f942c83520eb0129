#!/usr/bin/env bash
# Bundles the driver for the image (bench/README.md, startup.ts): src/cli/main.ts and
# everything it imports, node_modules included, into dist/bundle/ with esbuild: main.js plus one
# chunk per lazily imported part (controller, Kubernetes client, undici, prom-client, ...), so a
# mode still loads only what it uses. The image runs it with bin/cinder-csi; tests run the sources.
#   bash scripts/bundle.sh [OUTDIR]   (npm run bundle; default OUTDIR dist/bundle; ESBUILD=/path
#                                      overrides the esbuild binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ESBUILD=${ESBUILD:-node_modules/.bin/esbuild}
out=${1:-dist/bundle}
rm -rf "$out"
# Chunks sit beside main.js, two levels below the project root like dist/cli/*.js, so paths
# relative to import.meta.url (package.json for the version) resolve the same way.
# The banner gives CommonJS dependencies a `require` for Node's built-in modules.
"$ESBUILD" src/cli/main.ts src/kube/client-node.ts --bundle --platform=node --format=esm --target=node24 \
  --splitting --outdir="$out" --entry-names='[name]' --chunk-names='[name]-[hash]' \
  --minify --legal-comments=none --log-level=warning \
  '--banner:js=import{createRequire as __cjsRequire}from"node:module";const require=__cjsRequire(import.meta.url);'
test -f "$out/main.js"
# The startup snapshot's builder script (src/cli/snapshot.ts; scripts/build-snapshot.sh makes the
# blob from it with the node that will run it): one CommonJS file, as `node --build-snapshot` takes
# it, everything but @kubernetes/client-node inside (that one comes from client-node.js above).
"$ESBUILD" src/cli/snapshot.ts --bundle --platform=node --format=cjs --target=node24 \
  --outfile="$out/snapshot.cjs" --minify --legal-comments=none --log-level=warning \
  --external:@kubernetes/client-node --define:import.meta.url=__csiUrl \
  "--banner:js=$(cat scripts/snapshot-prelude.js)"
