#!/usr/bin/env bash
# Installs Debian's Chromium for the console's browser tests (Playwright drives it; no browser
# download of Playwright's own). Prints the browser's path.
set -euo pipefail
find_browser() { command -v chromium || command -v chromium-browser || true; }
browser="${CHROMIUM_PATH:-$(find_browser)}"
if [ -z "$browser" ]; then
  echo "spillway: installing chromium (Debian package) for the console tests" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
  browser="$(find_browser)"
fi
[ -x "$browser" ] || { echo "spillway: no chromium found" >&2; exit 1; }
echo "$browser"
