#!/usr/bin/env bash
# `npm run fuzz`: the long run of the money fuzz (docs/FUZZING.md) against real PostgreSQL, Redis
# and Temporal. FUZZ_MINUTES (default 10) bounds it; FUZZ_SEED/FUZZ_PATH replay a printed failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-temporal.sh >/dev/null
# The final checks run the independent audit from dist/.
npm run --silent compile
FUZZ_MINUTES="${FUZZ_MINUTES:-10}" exec npx jest --runInBand test/money.fuzz.e2e.ts "$@"
