#!/usr/bin/env bash
# The OpenAPI document, from the code and without network:
#   bash scripts/openapi.sh lint [--built]   builds dist/openapi.json and lints it (Redocly, redocly.yaml)
#   bash scripts/openapi.sh client           regenerates the typed client's document and types (libs/client)
#   bash scripts/openapi.sh types IN OUT     only the types of document IN, into OUT (the up-to-date test)
# --built: dist/ is already compiled (npm test compiles it first).
set -euo pipefail
cd "$(dirname "$0")/.."
action="${1:?lint, client or types}"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
types() {
  npx openapi-typescript "$1" --redocly libs/client/redocly.yaml --default-non-nullable=false --output "$2"
}
if [ "$action" = types ]; then types "${2:?document}" "${3:?output}"; exit 0; fi
[ "${2:-}" = "--built" ] || npx tsc -p tsconfig.build.json
node dist/scripts/openapi.js dist/openapi.json
case "$action" in
  lint) npx redocly lint --config redocly.yaml dist/openapi.json ;;
  client)
    cp dist/openapi.json libs/client/openapi.json
    types libs/client/openapi.json libs/client/src/generated/openapi.ts
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
