#!/usr/bin/env bash
# Bundles the driver for the image (bench/README.md, "Memory and start-up"): src/cli/main.ts and
# everything it imports, node_modules included, into dist/bundle/ with esbuild: main.js plus one
# chunk per lazily imported part (controller, Kubernetes client, undici, prom-client, ...), so a
# mode still loads only what it uses. The image runs it with bin/cinder-csi; tests run the sources.
#   bash scripts/bundle.sh          (npm run bundle; ESBUILD=/path/to/esbuild overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ESBUILD=${ESBUILD:-node_modules/.bin/esbuild}
rm -rf dist/bundle
# Chunks sit beside main.js, two levels below the project root like dist/cli/*.js, so paths
# relative to import.meta.url (package.json for the version) resolve the same way.
# The banner gives CommonJS dependencies a `require` for Node's built-in modules.
"$ESBUILD" src/cli/main.ts --bundle --platform=node --format=esm --target=node24 \
  --splitting --outdir=dist/bundle --entry-names='[name]' --chunk-names='[name]-[hash]' \
  --minify --legal-comments=none --log-level=warning \
  '--banner:js=import{createRequire as __cjsRequire}from"node:module";const require=__cjsRequire(import.meta.url);'
test -f dist/bundle/main.js
