#!/usr/bin/env bash
# Installs, builds, starts the local cluster, deploys examples/hello and prints a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
CORTEX=./build/src/apps/cortex
$CORTEX cluster up
$CORTEX deploy examples/hello
echo "waiting for hello to be live..."
for _ in $(seq 1 120); do
  if $CORTEX get hello -o json | grep -q '"status_code": "status_live"'; then break; fi
  sleep 0.5
done
$CORTEX get hello
$CORTEX predict hello examples/hello/sample.json
