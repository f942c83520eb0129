#!/usr/bin/env bash
# Runs one benchmark (or all) with Node 24; each prints its own figures (bench/README.md).
#   bash scripts/bench.sh startup|node-stage|controller|openstack-client|scale|fuzz|chaos [args...]
#   bash scripts/bench.sh all      (all but fuzz and chaos, which run for a long time: run them by
#                                   name; scale with 500 and 1,000 volumes, `scale` alone: up to 5,000)
#   bash scripts/bench.sh scale --purge   (deletes what an interrupted scale run left)
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=$(bash scripts/ensure-node.sh)
export PATH="$(dirname "$NODE"):$PATH"
[ -d node_modules ] || bash scripts/npm-deps.sh
name=${1:-}
[ -n "$name" ] || { echo "usage: scripts/bench.sh startup|node-stage|controller|openstack-client|scale|fuzz|chaos|all [args]" >&2; exit 2; }
shift
run() {
  # startup.ts and scale.ts run the image's program: the esbuild bundle (scripts/bundle.sh) via
  # bin/cinder-csi (not for `scale --purge`, which starts no driver).
  if [ "$1" = startup ] || { [ "$1" = scale ] && [[ " ${*:2} " != *" --purge "* ]]; }; then
    npm run --silent bundle
  fi
  echo "== bench/$1.ts"
  node "bench/$1.ts" "${@:2}"
}
if [ "$name" = all ]; then
  for b in startup node-stage controller openstack-client; do run "$b"; done
  run scale --steps 500,1000
else
  [ -f "bench/$name.ts" ] || { echo "bench.sh: no bench/$name.ts" >&2; exit 2; }
  run "$name" "$@"
fi
