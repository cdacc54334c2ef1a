#!/usr/bin/env bash
# Runs Tocsin on this machine: installs what is missing, starts a local
# PostgreSQL under .data/ (unless DATABASE_URL is set), migrates, builds a
# release binary and starts `tocsin run`. Ctrl-C stops it; the next run
# reuses the same database.
#
#   scripts/run.sh            the service on http://127.0.0.1:${PORT:-8080}
#   scripts/run.sh --demo     and synthetic traffic, so the dashboard moves
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib/common.sh

demo=false
for arg in "$@"; do
    case "$arg" in
        --demo) demo=true ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

ensure_packages "${BUILD_PACKAGES[@]}"
ensure_swift
mkdir -p .data

if [ -z "${DATABASE_URL:-}" ]; then
    pgdir="$root/.data/postgres"
    if [ ! -f "$pgdir/data/PG_VERSION" ]; then
        echo "creating a PostgreSQL cluster in .data/postgres" >&2
        pg_init "$pgdir"
        free_port > "$root/.data/postgres.port"
    fi
    pgport=$(cat "$root/.data/postgres.port")
    if ! pg_running "$pgdir"; then
        pg_start "$pgdir" "$pgport"
    fi
    bin=$(pg_bindir)
    if ! "$bin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'tocsin'" | grep -q 1; then
        "$bin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres tocsin
    fi
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/tocsin"
    echo "PostgreSQL: $DATABASE_URL (stop it with: $(pg_bindir)/pg_ctl -D .data/postgres/data stop)" >&2
fi

echo "building (release)…" >&2
swift build -c release --product tocsin --static-swift-stdlib >&2
tocsin="$root/.build/release/tocsin"
export LOG_FORMAT=${LOG_FORMAT:-text}

"$tocsin" migrate >&2

keyfile="$root/.data/admin-key"
if [ ! -s "$keyfile" ]; then
    name="admin-$(date +%Y%m%d%H%M%S)"
    (umask 077; "$tocsin" keys create --scope admin --name "$name" | tail -n 1 > "$keyfile")
fi

host=${HOST:-127.0.0.1}
port=${PORT:-8080}
echo
echo "Tocsin:    http://$host:$port/monitoring"
echo "Admin key: $(cat "$keyfile")   (kept in .data/admin-key)"
echo

if [ "$demo" = true ]; then
    # The demo's traffic would fill the terminal with access log lines: only
    # requests that did not succeed are logged.
    ACCESS_LOG=${ACCESS_LOG:-errors} "$tocsin" run &
    server=$!
    trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
    for _ in $(seq 1 100); do
        curl -fsS "http://$host:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$tocsin" demo --url "http://$host:$port" --key "$(cat "$keyfile")"
else
    exec "$tocsin" run
fi
