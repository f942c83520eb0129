#!/usr/bin/env bash
# The project's test command (README). On a fresh Debian 12 machine as root it does all set-up
# itself: Node 24, npm dependencies, the lab Cinder (Keystone + noauth, fake/rbd/tgt backends), and
# whatever else the integration suites need; then it runs every test.
#
#   bash scripts/test.sh                 set up everything, run all tests (what CI runs)
#   bash scripts/test.sh --no-setup      run all tests against what is already up
#   bash scripts/test.sh FILE...         run only these test files (no set-up)
#
# Tests that need root or the lab skip with a clear reason when those are missing. Every run ends
# with the list of skips (suites and tests, with reasons) right before node's summary lines. Under
# CI (CI=true, as .ci/run sets it) a skip is a failure unless its reason is on the short list of
# true machine limits in scripts/allowed-skips.txt; so is running without root.
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
ci=0
case "${CI:-}" in true|TRUE|True|1|yes) ci=1 ;; esac
[ -d node_modules ] || bash scripts/npm-deps.sh
if [ "$setup" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    bash test/setup.sh
  elif [ "$ci" = 1 ]; then
    echo "test.sh: CI=$CI but not root: CI must run the lab and the root tests (run as root)" >&2
    exit 1
  else
    echo "test.sh: not root: skipping lab set-up; integration tests will skip" >&2
  fi
fi
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find test/unit test/integration -name '*.test.ts' | sort)
fi
verdict=$(mktemp "${TMPDIR:-/tmp}/cinder-csi-test-verdict.XXXXXX")
trap 'rm -f "$verdict"' EXIT
rc=0
# No --test-force-exit: with it Node 24 can drop part of a file's results and still exit 0
# (nodejs/node#64833: 26 of 50 tests reported here), which would hide failures and skips. A file
# that leaks a handle after its tests pass would instead keep the run waiting, so the whole run is
# bounded: past CINDER_CSI_TEST_RUN_TIMEOUT seconds (default 4500) it is stopped and fails; the
# reporter's last progress line names the file that hung.
run_timeout=${CINDER_CSI_TEST_RUN_TIMEOUT:-4500}
CINDER_CSI_TEST_VERDICT=$verdict timeout --kill-after=60 "$run_timeout" \
  node --test --test-concurrency=1 --test-timeout=900000 \
  --test-reporter=./scripts/test-reporter.ts --test-reporter-destination=stdout "${files[@]}" || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "test.sh: the test run exceeded ${run_timeout}s and was stopped (a test file hangs: see the last progress line)" >&2
  rc=1
fi
# The reporter printed the skip list and, under CI, which skips are not allowed (before node's
# summary lines, which stay last); here only the exit status follows from it.
if [ "$ci" = 1 ]; then
  bad=$(sed -n 's/^not-allowed //p' "$verdict")
  if [ -z "$bad" ]; then
    echo "test.sh: the skip reporter wrote no verdict; failing (CI)" >&2
    rc=1
  elif [ "$bad" != 0 ] && [ "$rc" = 0 ]; then
    rc=1
  fi
fi
exit "$rc"
