#!/usr/bin/env bash
# `npm test`: the whole suite against real PostgreSQL, Redis and Temporal (started when absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-temporal.sh >/dev/null
npx tsc -p tsconfig.json --noEmit
exec npx jest --runInBand "$@"
