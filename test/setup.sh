#!/usr/bin/env bash
# Everything the integration suites need, idempotent: the lab Cinder (both auth modes, all three
# backends), the host tools for node tests. Used by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash test/lab-up.sh
echo "test/setup.sh: ready in $(( $(date +%s) - t0 ))s"
