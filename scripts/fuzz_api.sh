#!/usr/bin/env bash
# Property-based fuzzing of a live Tocsin from docs/openapi.yaml, with
# schemathesis.
#
#   scripts/fuzz_api.sh [SECONDS]        # default 120, split across the keys
#
# Starts a throw-away PostgreSQL, a local webhook receiver and `tocsin run`
# (TOCSIN_BIN, default .build/debug/tocsin; MIGRATIONS_DIR and
# ALERT_RULES_FILE default to the repository's), seeds a few events, alerts
# and a silence, creates an admin, a read and an ingest key, and runs
# schemathesis once per key (Authorization: Bearer <key>) with the checks
#
#   not_a_server_error, status_code_conformance, content_type_conformance,
#   response_schema_conformance, response_headers_conformance and
#   positive_data_acceptance (a schema-valid request may get 2xx, 3xx, 401,
#   403, 404, 409, 422 or 429 — never another 4xx).
#
# The multi-field rules the spec states in prose are applied to positive
# requests by scripts/fuzz_api_hooks.py. The SSE stream is not fuzzed (it
# never ends); it gets a smoke check instead. Every request goes to
# 127.0.0.1. The tocsin process must never die: a supervisor restarts it
# after a crash (so the run goes on) and every crash is a failure, reported
# with the server's fatal error and the requests sent just before it.
#
# Exits non-zero on any failure; schemathesis prints a curl command that
# reproduces each one. Reports (JUnit, and the server's log) are kept in the
# work directory printed at the start (FUZZ_KEEP=0 removes it on success).
#
# Environment: TOCSIN_BIN, MIGRATIONS_DIR, ALERT_RULES_FILE, FUZZ_VENV (where
# schemathesis is installed; default ~/.cache/tocsin-tools/…), FUZZ_WORKERS
# (schemathesis workers; default 1, as its generator is not thread-safe on
# Python 3.11), FUZZ_SEED, FUZZ_KEEP.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"

TOTAL=${1:-120}
[[ "$TOTAL" =~ ^[0-9]+$ && "$TOTAL" -ge 3 ]] || { echo "usage: $0 [SECONDS ≥ 3]" >&2; exit 2; }
TOCSIN_BIN=${TOCSIN_BIN:-$ROOT/.build/debug/tocsin}
[[ "$TOCSIN_BIN" = /* ]] || TOCSIN_BIN="$PWD/$TOCSIN_BIN"
export MIGRATIONS_DIR=${MIGRATIONS_DIR:-$ROOT/migrations}
export ALERT_RULES_FILE=${ALERT_RULES_FILE:-$ROOT/rules/default.yaml}
SPEC="$ROOT/docs/openapi.yaml"
WORKERS=${FUZZ_WORKERS:-1}

if [ ! -x "$TOCSIN_BIN" ]; then
    echo "error: $TOCSIN_BIN is not an executable; build it (swift build) or set TOCSIN_BIN" >&2
    exit 2
fi

# --- tools ------------------------------------------------------------------
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || ensure_packages postgresql
command -v curl >/dev/null || ensure_packages curl
command -v python3 >/dev/null || ensure_packages python3
ST="$(TOCSIN_PY_VENV=${FUZZ_VENV:-} ensure_python_tools)/bin/schemathesis"

# --- a throw-away world -----------------------------------------------------
WORK=$(mktemp -d /tmp/tocsin-fuzz.XXXXXX)
chmod 755 "$WORK"
echo "work directory: $WORK" >&2
SUPERVISOR_PID=""
RECEIVER_PID=""
ST_PID=""
FAILED=0
tocsin_pid() { cat "$WORK/tocsin.pid" 2>/dev/null || true; }
crashes() { if [ -f "$WORK/crashes" ]; then wc -l <"$WORK/crashes"; else echo 0; fi; }
cleanup() {
    local status=$? pid
    touch "$WORK/stop"
    if [ -n "$ST_PID" ]; then kill -TERM "$ST_PID" 2>/dev/null || true; wait "$ST_PID" 2>/dev/null || true; fi
    pid=$(tocsin_pid)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ -n "$SUPERVISOR_PID" ]; then wait "$SUPERVISOR_PID" 2>/dev/null || true; fi
    if [ -n "$RECEIVER_PID" ]; then kill "$RECEIVER_PID" 2>/dev/null || true; fi
    pg_stop "$WORK/pg"
    if [ "$status" = 0 ] && [ "${FUZZ_KEEP:-1}" = 0 ]; then rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_init "$WORK/pg" fast
PG_PORT=$(free_port)
pg_start "$WORK/pg" "$PG_PORT"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"

python3 "$ROOT/scripts/receivers/http_receiver.py" --port 0 >"$WORK/receiver.out" 2>&1 &
RECEIVER_PID=$!
for _ in $(seq 1 50); do grep -q '^listening' "$WORK/receiver.out" 2>/dev/null && break; sleep 0.1; done
RECEIVER_PORT=$(awk '/^listening/ {print $2}' "$WORK/receiver.out")
[ -n "$RECEIVER_PORT" ] || { echo "error: the webhook receiver did not start" >&2; cat "$WORK/receiver.out" >&2; exit 1; }
# Half the deliveries fail, so there are dead notifications to retry.
curl -sf -X POST "http://127.0.0.1:$RECEIVER_PORT/_control" -d '{"mode": "ok", "fail_ratio": 0.5}' >/dev/null
cat >"$WORK/notify.yaml" <<EOF
channels:
  - name: fuzz-hook
    kind: webhook
    url: http://127.0.0.1:$RECEIVER_PORT/hook
routes:
  - channels: [fuzz-hook]
EOF
export NOTIFY_CONFIG="$WORK/notify.yaml" NOTIFY_MAX_ATTEMPTS=2 NOTIFY_RETRY_BASE_SECONDS=1
export HOST=127.0.0.1 LOG_FORMAT=json LOG_LEVEL=info

"$TOCSIN_BIN" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; exit 1; }
make_key() {
    "$TOCSIN_BIN" keys create --scope "$1" --name "fuzz-$1" 2>&1 | grep -o 'tsn_[A-Za-z0-9_-]*' | head -n 1
}
ADMIN_KEY=$(make_key admin)
READ_KEY=$(make_key read)
INGEST_KEY=$(make_key ingest)
[ -n "$ADMIN_KEY" ] && [ -n "$READ_KEY" ] && [ -n "$INGEST_KEY" ] || { echo "error: could not create API keys" >&2; exit 1; }

API_PORT=$(free_port)
BASE="http://127.0.0.1:$API_PORT"
# Runs tocsin, and runs it again whenever it dies; each death is a line of
# $WORK/crashes (its exit status and the log line where it happened).
supervise() {
    local pid status
    while [ ! -e "$WORK/stop" ]; do
        "$TOCSIN_BIN" run --host 127.0.0.1 --port "$API_PORT" >>"$WORK/tocsin.log" 2>&1 &
        pid=$!
        echo "$pid" >"$WORK/tocsin.pid"
        status=0
        wait "$pid" || status=$?
        [ -e "$WORK/stop" ] && break
        echo "pid $pid exit $status log-line $(wc -l <"$WORK/tocsin.log")" >>"$WORK/crashes"
        sleep 0.5
    done
}
supervise &
SUPERVISOR_PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
if ! curl -sf "$BASE/readyz" >/dev/null 2>&1; then
    echo "error: tocsin did not become ready; its log:" >&2
    tail -n 30 "$WORK/tocsin.log" >&2
    exit 1
fi
echo "tocsin pid $(tocsin_pid) on $BASE (PostgreSQL on $PG_PORT, webhook receiver on $RECEIVER_PORT)" >&2

# Some state for the reads and actions to find: events, open alerts, a silence.
api() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
events='['
for i in $(seq 1 12); do events+='{"name":"upload.failure","platform":"tiktok"},{"name":"upload.success","platform":"instagram"},'; done
for i in $(seq 1 6); do events+='{"name":"token.refresh.failure"},{"name":"oauth.failure","platform":"instagram"},'; done
events+='{"name":"webhook.latency","platform":"tiktok","value":0.25,"labels":{"region":"eu"}},{"name":"api.latency","value":0.05}]'
api -X POST "$BASE/api/metrics" -H "Authorization: Bearer $INGEST_KEY" -d "$events" >/dev/null
api -X POST "$BASE/api/workers/alert-checker?wait=true" -H "Authorization: Bearer $ADMIN_KEY" >/dev/null
api -X POST "$BASE/api/silences" -H "Authorization: Bearer $ADMIN_KEY" \
    -d "{\"rule\":\"oauth_failures\",\"ends_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\",\"comment\":\"fuzz seed\"}" >/dev/null

# --- the stream: a smoke check (schemathesis cannot read an endless body) ---
stream_check() {
    local head
    head=$(curl -s -i -N --max-time 2 "$BASE/api/monitoring/stream" -H "Authorization: Bearer $READ_KEY" || true)
    if ! grep -qi '^content-type: text/event-stream' <<<"$head" || ! grep -q '^event: hello' <<<"$head"; then
        echo "FAIL GET /api/monitoring/stream: expected a text/event-stream starting with event: hello, got:" >&2
        head -n 12 <<<"$head" >&2
        FAILED=1
    fi
    if [ "$(api "$BASE/api/monitoring/stream" -H "Authorization: Bearer $INGEST_KEY")" != 403 ]; then
        echo "FAIL GET /api/monitoring/stream with an ingest key: expected 403" >&2
        FAILED=1
    fi
}
stream_check

# --- schemathesis, once per key ---------------------------------------------
cat >"$WORK/schemathesis.toml" <<EOF
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
EOF
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,positive_data_acceptance
PER_KEY=$(( TOTAL / 3 ))
export SCHEMATHESIS_HOOKS=fuzz_api_hooks PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}"

run_key() {
    local scope=$1 key=$2 status=0
    echo "=== schemathesis with the $scope key ($PER_KEY s) ===" >&2
    local seed=()
    [ -n "${FUZZ_SEED:-}" ] && seed=(--seed "$FUZZ_SEED")
    timeout --signal=TERM --kill-after=30 $(( PER_KEY + 60 )) \
        "$ST" --config-file "$WORK/schemathesis.toml" --no-color run "$SPEC" \
        --url "$BASE" \
        -H "Authorization: Bearer $key" \
        --checks "$CHECKS" \
        --exclude-path /api/monitoring/stream \
        --max-time "$PER_KEY" \
        --workers "$WORKERS" \
        --request-timeout 70 \
        --max-redirects 0 \
        --generation-database none \
        --output-sanitize false \
        --suppress-health-check all \
        --report junit --report-dir "$WORK/report-$scope" \
        "${seed[@]}" &
    # In the background, so that a signal to this script is handled at once.
    ST_PID=$!
    wait "$ST_PID" || status=$?
    ST_PID=""
    if [ "$status" != 0 ]; then
        echo "schemathesis with the $scope key failed (exit $status); the curl commands above reproduce each failure" >&2
        FAILED=1
    fi
    local after
    after=$(crashes)
    if [ "$after" -gt "$CRASHES_BEFORE" ]; then
        echo "FAIL tocsin crashed $(( after - CRASHES_BEFORE )) time(s) during the $scope run (restarted each time):" >&2
        local from=1
        [ "$CRASHES_BEFORE" -gt 0 ] && from=$(sed -n "${CRASHES_BEFORE}p" "$WORK/crashes" | awk '{print $NF}')
        tail -n $(( after - CRASHES_BEFORE )) "$WORK/crashes" | while read -r _ pid _ status _ line; do
            echo "  pid $pid, exit status $status; its fatal error and first frames in tocsin:" >&2
            { sed -n "${from},${line}p" "$WORK/tocsin.log" | grep -E 'Fatal error|^\*\*\* Swift runtime failure' | head -n 1 || true; } \
                | sed 's/^/    /' >&2
            { sed -n "${from},${line}p" "$WORK/tocsin.log" \
                | awk '/ crashed:/ {on = 1; next} on && /^Thread / {on = 0} on && / in tocsin at .*\/Sources\// && !/checkouts/' \
                | head -n 3 || true; } \
                | sed 's/^ *[0-9]* *\(\[[a-z]*\] *\)*0x[0-9a-f]* */    /' >&2
            from=$line
        done
        echo "  (the requests schemathesis sent just before each crash are listed above, under 'Server Unavailable')" >&2
        FAILED=1
    fi
    CRASHES_BEFORE=$after
    # A restart may still be under way: let it become ready before the next run.
    for _ in $(seq 1 100); do curl -sf "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
}
CRASHES_BEFORE=0
run_key admin "$ADMIN_KEY"
run_key read "$READ_KEY"
run_key ingest "$INGEST_KEY"

# --- the end ------------------------------------------------------------------
pid=$(tocsin_pid)
if [ "$(crashes)" = 0 ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && curl -sf "$BASE/healthz" >/dev/null; then
    echo "tocsin is still alive (pid $pid, never restarted)" >&2
elif [ "$(crashes)" != 0 ]; then
    echo "FAIL tocsin crashed $(crashes) time(s) in all" >&2
    FAILED=1
else
    echo "FAIL tocsin is not alive at the end; the end of its log:" >&2
    tail -n 20 "$WORK/tocsin.log" >&2
    FAILED=1
fi
if grep -q '"request failed"' "$WORK/tocsin.log"; then
    echo "500s in the server log, by cause:" >&2
    grep '"request failed"' "$WORK/tocsin.log" | grep -o '"error":"[^"]*"' | sort | uniq -c | sort -rn | head -n 20 >&2
fi
echo "reports and the server log: $WORK" >&2
if [ "$FAILED" != 0 ]; then
    echo "fuzz_api: FAILED" >&2
    exit 1
fi
echo "fuzz_api: passed" >&2
