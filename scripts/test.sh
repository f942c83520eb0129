#!/usr/bin/env bash
# The project's test command (README). On a fresh Debian 12 machine as root it does all set-up
# itself: Node 24, npm dependencies, the lab Cinder (Keystone + noauth, fake/rbd/tgt backends), and
# whatever else the integration suites need; then it runs every test.
#
#   bash scripts/test.sh                 set up everything, run all tests (what CI runs)
#   bash scripts/test.sh --no-setup      run all tests against what is already up
#   bash scripts/test.sh FILE...         run only these test files (no set-up)
#
# Tests that need root or the lab skip with a clear reason when those are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=$(bash scripts/ensure-node.sh)
export PATH="$(dirname "$NODE"):$PATH"
setup=1
files=()
for a in "$@"; do
  case "$a" in
    --no-setup) setup=0 ;;
    -*) echo "test.sh: unknown option $a" >&2; exit 2 ;;
    *) files+=("$a"); setup=0 ;;
  esac
done
[ -d node_modules ] || bash scripts/npm-deps.sh
if [ "$setup" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    bash test/setup.sh
  else
    echo "test.sh: not root: skipping lab set-up; integration tests will skip" >&2
  fi
fi
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find test/unit test/integration -name '*.test.ts' | sort)
fi
exec node --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
