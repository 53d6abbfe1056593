#!/usr/bin/env bash
# Prints the path of a Temporal CLI (dev server + Web UI). Uses `temporal` from PATH when present;
# otherwise builds the pinned CLI from Go modules once into a cache outside the repo and reuses it.
set -euo pipefail
VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
if [ -n "${TEMPORAL_CLI:-}" ] && [ -x "$TEMPORAL_CLI" ]; then echo "$TEMPORAL_CLI"; exit 0; fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
CACHE="${SPILLWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spillway}/temporal-$VERSION"
BIN="$CACHE/temporal"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "spillway: no 'temporal' on PATH and no Go toolchain to build it; install Go (https://go.dev/dl) or the Temporal CLI" >&2
  exit 1
fi
mkdir -p "$CACHE"
# Concurrent first runs (a test run beside `npm start`) build once: the others wait on the lock.
exec 9>"$CACHE.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
echo "spillway: building the Temporal CLI $VERSION from Go modules into $CACHE (first run only, a few minutes)" >&2
started=$(date +%s)
# Later CLI tags carry a replace directive that `go install` refuses; v1.5.1 does not.
staging="$(mktemp -d "$CACHE.tmp.XXXXXX")"
GOTOOLCHAIN=local GOBIN="$staging" go install "github.com/temporalio/cli/cmd/temporal@$VERSION" >&2
mv "$staging/temporal" "$BIN"
rmdir "$staging"
echo "spillway: built $BIN in $(( $(date +%s) - started ))s" >&2
echo "$BIN"
