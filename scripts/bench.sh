#!/usr/bin/env bash
# Runs one benchmark (or all) with Node 24; each prints its own figures (bench/README.md).
#   bash scripts/bench.sh startup|node-stage|controller|openstack-client|fuzz|chaos [args...]
#   bash scripts/bench.sh all      (all but chaos, which runs for a long time: run it by name)
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=$(bash scripts/ensure-node.sh)
export PATH="$(dirname "$NODE"):$PATH"
[ -d node_modules ] || bash scripts/npm-deps.sh
name=${1:-}
[ -n "$name" ] || { echo "usage: scripts/bench.sh startup|node-stage|controller|openstack-client|fuzz|chaos|all [args]" >&2; exit 2; }
shift
run() {
  # startup.ts runs the image's program: the esbuild bundle (scripts/bundle.sh) via bin/cinder-csi.
  [ "$1" = startup ] && npm run --silent bundle
  echo "== bench/$1.ts"
  node "bench/$1.ts" "${@:2}"
}
if [ "$name" = all ]; then
  for b in startup node-stage controller openstack-client; do run "$b"; done
else
  [ -f "bench/$name.ts" ] || { echo "bench.sh: no bench/$name.ts" >&2; exit 2; }
  run "$name" "$@"
fi
