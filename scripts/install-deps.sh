#!/usr/bin/env bash
# Installs the project's npm dependencies when they are missing or older than the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -L node_modules ]; then
  # A node_modules linked from another checkout belongs to that checkout: `npm ci` would empty it.
  echo "spillway: node_modules is a link; not installing into it (run npm ci where it lives if needed)" >&2
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "spillway: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
