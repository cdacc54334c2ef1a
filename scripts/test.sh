#!/usr/bin/env bash
# Runs every test against a throw-away PostgreSQL cluster that is removed on
# exit (also on failure). Installs what is missing first.
#
#   scripts/test.sh                 all tests: Swift tests, the dashboard in a real
#                                   browser, and a short fault-injection run
#   scripts/test.sh --filter NAME   only Swift tests matching NAME (swift test --filter)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib/common.sh

ensure_packages "${BUILD_PACKAGES[@]}" curl python3 chromium nginx
ensure_swift

workdir=$(mktemp -d /tmp/tocsin-test.XXXXXX)
chmod 755 "$workdir"
cleanup() {
    pg_stop "$workdir/pg"
    rm -rf "$workdir"
}
trap cleanup EXIT

pg_init "$workdir/pg" fast
pgport=$(free_port)
pg_start "$workdir/pg" "$pgport"

# Tests create their own databases through this server; tests that need to
# stop or restart a server start private ones from TOCSIN_TEST_PG_BINDIR.
export DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/postgres"
export TOCSIN_TEST_PG_BINDIR="$(pg_bindir)"
export TOCSIN_TEST_TMPDIR="$workdir"

swift build --build-tests
export TOCSIN_BIN="$root/.build/debug/tocsin"
swift test --skip-build "$@"
if [ $# -gt 0 ]; then exit 0; fi

echo "== the dashboard in headless Chromium" >&2
python3 scripts/e2e/dashboard_e2e.py

echo "== docker/compose.yaml and scripts/cluster.sh describe the same topology" >&2
python3 scripts/check_topology.py

echo "== fault injection (short form): the cluster under load, processes killed, PostgreSQL restarted" >&2
scripts/chaos.sh 60 --short
