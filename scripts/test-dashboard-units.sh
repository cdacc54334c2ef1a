#!/usr/bin/env bash
# Unit tests of the dashboard's pure modules (Sources/TocsinAPI/Dashboard/*.js:
# formatting, chart arithmetic, CSV, URL state, …) with Node's built-in test
# runner: Tests/Dashboard/*.test.mjs. No npm packages. Installs Debian's
# nodejs when node is missing; needs Node 18 or newer.
#
#   scripts/test-dashboard-units.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

if ! command -v node >/dev/null 2>&1; then
    ensure_packages nodejs
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "error: Node 18 or newer is required for node --test (found $(node --version))" >&2
    exit 1
fi

# The files themselves rather than the directory: Node 18–20 search a directory
# argument, Node 21 and later take arguments as globs and reject a directory.
shopt -s nullglob
tests=(Tests/Dashboard/*.test.mjs)
if [ ${#tests[@]} -eq 0 ]; then
    echo "error: no test files in Tests/Dashboard/" >&2
    exit 1
fi
exec node --test "${tests[@]}"
