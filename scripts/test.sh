#!/usr/bin/env bash
# `npm test`: the whole suite against real PostgreSQL, Redis and Temporal (started when absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-temporal.sh >/dev/null
# ESLint (eslint.config.mjs) and Prettier (.prettierrc.json) report nothing.
npm run --silent lint
# Type-checks everything and builds dist/ (tsc, then tsc-alias): the fault tests run the compiled worker, as operators do.
npm run --silent compile
# The OpenAPI document the code generates passes Redocly's recommended rules (redocly.yaml).
bash scripts/openapi.sh lint --built
# The console's assets and a browser for its Playwright tests (Debian's chromium; no browser download).
npm run --silent build:console
CHROMIUM_PATH="$(bash scripts/install-browser.sh)"
export CHROMIUM_PATH
exec npx jest --runInBand "$@"
