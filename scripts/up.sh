#!/usr/bin/env bash
# `npm start`: the whole stack on embedded defaults. Ctrl-C stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-temporal.sh >/dev/null
npm run --silent build
npm run --silent build:console
exec node dist/scripts/stack.js
