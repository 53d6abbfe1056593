#!/usr/bin/env bash
# What `npm run bench -- stack` needs besides the stack itself, installed when missing:
#  - wrk (Debian package), the closed-loop HTTP load generator;
#  - the fixed-rate driver bench/fixed-rate/main.go, built with the local Go toolchain (the one
#    that builds the Temporal CLI) into a cache outside the repo. wrk2, the usual fixed-rate wrk,
#    is not packaged by Debian.
# Prints the driver's path.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "spillway: installing wrk (apt-get)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 wrk >/dev/null
  else
    echo "spillway: the stack benchmark needs wrk; install it (Debian/Ubuntu: sudo apt-get install wrk)" >&2
    exit 1
  fi
fi
if ! command -v go >/dev/null 2>&1; then
  echo "spillway: the fixed-rate driver needs Go (https://go.dev/dl) to build once" >&2
  exit 1
fi
CACHE="${SPILLWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spillway}/bench"
BIN="$CACHE/fixed-rate"
SRC=bench/fixed-rate/main.go
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
  mkdir -p "$CACHE"
  echo "spillway: building the fixed-rate driver into $BIN" >&2
  GOTOOLCHAIN=local go build -o "$BIN.tmp" "$SRC" >&2
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
