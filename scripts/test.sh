#!/usr/bin/env bash
# Runs every test against a throw-away PostgreSQL cluster that is removed on
# exit (also on failure). Installs what is missing first.
#
#   scripts/test.sh                 all tests: Swift tests (their HTTP exchanges checked
#                                   against docs/openapi.yaml), the dashboard's units and the
#                                   page in a real browser, the API fuzzed from its spec, and
#                                   short fault-injection and failover runs
#   scripts/test.sh --filter NAME   only Swift tests matching NAME (swift test --filter)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib/common.sh

ensure_packages "${BUILD_PACKAGES[@]}" curl python3 python3-venv chromium nginx nodejs openssl prometheus prometheus-alertmanager
ensure_swift
pytools=$(ensure_python_tools)

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
# Tests verify webhook signatures with the Standard Webhooks reference library.
export TOCSIN_TEST_PYTHON="$pytools/bin/python"

# A module may use only what it declares (Package.swift is the dependency graph).
swift build --build-tests --explicit-target-dependency-import-check=error
export TOCSIN_BIN="$root/.build/debug/tocsin"
# Every exchange of the API tests is recorded and checked against the spec below.
export TOCSIN_CONTRACT_LOG="$workdir/contract.jsonl"
swift test --skip-build "$@"
if [ $# -gt 0 ]; then exit 0; fi

echo "== the API tests' responses against docs/openapi.yaml" >&2
"$pytools/bin/python" scripts/check_contract_selftest.py
"$pytools/bin/python" scripts/check_contract.py --quiet "$TOCSIN_CONTRACT_LOG"
unset TOCSIN_CONTRACT_LOG

echo "== the dashboard's modules (node --test)" >&2
scripts/test-dashboard-units.sh

echo "== the dashboard in headless Chromium" >&2
python3 scripts/e2e/dashboard_e2e.py

echo "== docker/compose.yaml and scripts/cluster.sh (profile ha: scripts/ha-cluster.sh) describe the same topology" >&2
python3 scripts/check_topology.py

echo "== the parsers fuzzed with libFuzzer (Fuzz/, 30 s a target, two at a time)" >&2
scripts/fuzz.sh 30

echo "== the API fuzzed from docs/openapi.yaml (schemathesis, 60 s)" >&2
FUZZ_KEEP=0 FUZZ_VENV="$pytools" scripts/fuzz_api.sh 60

echo "== fault injection (short form): the cluster under load, processes killed, PostgreSQL restarted" >&2
scripts/chaos.sh 60 --short

echo "== failover (short form): the HA cluster (Patroni) under load, its primary killed twice and switched over once" >&2
scripts/failover.sh --short
