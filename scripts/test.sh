#!/usr/bin/env bash
# The project's test command: typecheck-free fast path for the tests themselves.
#   scripts/test.sh                 unit + integration tests (integration tests skip with a reason when
#                                   the lab / root is not available)
#   scripts/test.sh --lab           first install and bring up the lab Cinder (keystone, fake+rbd+tgt)
#   scripts/test.sh FILE...         only these test files
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=$(scripts/ensure-node.sh)
export PATH="$(dirname "$NODE"):$PATH"
lab=0
files=()
for a in "$@"; do
  case "$a" in
    --lab) lab=1 ;;
    *) files+=("$a") ;;
  esac
done
[ -d node_modules ] || npm ci --no-audit --no-fund
if [ "$lab" = 1 ]; then
  bash test/lab-up.sh
fi
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find test/unit test/integration -name '*.test.ts' | sort)
fi
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
