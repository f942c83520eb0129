#!/usr/bin/env bash
# Installs the npm dependencies from package-lock.json. `npm ci` first; the npm registry mirror this
# project is built against serves only the linux-x64 builds of some packages with per-platform
# optional binaries (biome), so their other-platform entries are missing from the lockfile and
# `npm ci` refuses it as "out of sync". Then `npm install --no-save` installs the same locked
# versions without rewriting the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! npm ci --no-audit --no-fund 2> /tmp/cinder-csi-npm-ci.log; then
  if grep -q 'Missing: @biomejs/cli-' /tmp/cinder-csi-npm-ci.log; then
    echo "npm-deps: npm ci refused the lockfile (other-platform biome binaries not served here); npm install --no-save" >&2
    npm install --no-audit --no-fund --no-save
  else
    cat /tmp/cinder-csi-npm-ci.log >&2
    exit 1
  fi
fi
