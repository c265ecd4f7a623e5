#!/usr/bin/env bash
# Builds the bedside web app (web/bedside) into server/bedside/static, which the server serves at /bedside/.
# npm is needed at install time only (packages from the npm registry, pinned by package-lock.json); nothing
# is fetched at run time. Without npm the server still runs and /bedside/ says the app is not built.
# Usage: scripts/build_bedside.sh PYTHON
set -euo pipefail
PY=${1:?usage: build_bedside.sh PYTHON}
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
    echo "build_bedside: npm not found: the bedside app is not built (its tests skip)" >&2
    [ -z "${CI:-}" ] || exit 1
    exit 0
fi
(cd web/bedside && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build -- --logLevel warn)
"$PY" -m server.bedside.build
