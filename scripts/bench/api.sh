#!/usr/bin/env bash
# HTTP benchmark of the scaled-out topology (scripts/cluster.sh: nginx in
# front of 2 × `tocsin serve`, 2 × `tocsin worker`, PostgreSQL), with wrk
# through nginx:
#
#   1. reference: nginx serving a static JSON file of the same size as the
#      GET /api/monitoring/metrics response;
#   2. GET /api/monitoring/metrics?window=24h with a bearer key (read scope);
#   3. POST /api/metrics, 100 events per request (the same body each time).
#
# Each: `wrk -t2 -c64 -d30s --latency`. Printed: requests/s, p50 and p99
# latency, non-2xx answers (counted by a wrk Lua response hook), and the
# ratio tocsin / reference. The bar: zero non-2xx answers (socket errors,
# e.g. wrk's 2 s timeouts, are counted too).
#
#   scripts/bench/api.sh [SECONDS]       default 30 s per run (or TOCSIN_BENCH_SECONDS)
#   TOCSIN_BENCH_API_EVENTS=50000 scripts/bench/api.sh
#                                        events stored before the runs (default 1,000),
#                                        in the last 6 hours: the summary reads them all,
#                                        so this sets how much the GET is database work
#
# TOCSIN_BIN=/path/to/tocsin skips the release build (.build-deploy); a debug
# binary gives much lower figures. The tocsin processes log at LOG_LEVEL
# (default warning here: the per-request info lines are not what is measured).
# Everything runs on this machine: wrk, nginx, tocsin and PostgreSQL share
# its CPUs. Exits non-zero only when the set-up fails or an answer is not 2xx.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"
# shellcheck source=scripts/bench/figures.sh
source "$ROOT/scripts/bench/figures.sh"

SECS=${1:-${TOCSIN_BENCH_SECONDS:-30}}
EVENTS=${TOCSIN_BENCH_API_EVENTS:-1000}
case "$SECS" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
case "$EVENTS" in ''|*[!0-9]*) echo "error: TOCSIN_BENCH_API_EVENTS must be a number" >&2; exit 2 ;; esac
CONNECTIONS=64
THREADS=2

ensure_packages wrk nginx postgresql curl python3
TOCSIN_BIN=$(cluster_tocsin_binary)
export TOCSIN_BIN

W=$(mktemp -d /tmp/tocsin-bench-api.XXXXXX)
chmod 755 "$W"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    cluster_stop "$W/cluster.env"
    if [ -n "${BENCH_KEEP:-}" ] || [ "$rc" != 0 ]; then cluster_log "keeping $W"; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    cluster_log "warning: the load average is $load on $(nproc) CPUs: other work will skew the figures"
fi

# The reference file, served by the same nginx (same worker processes,
# same access log), at /_reference/metrics.json.
mkdir -p "$W/static/_reference"
chmod -R 755 "$W/static"
cat >"$W/snippet.conf" <<EOF
location = /_reference/metrics.json {
    root $W/static;
    default_type application/json;
}
EOF

env -u DATABASE_URL "$ROOT/scripts/cluster.sh" --background --env-file "$W/cluster.env" --dir "$W/cluster" \
    --nginx-snippet "$W/snippet.conf" --env LOG_LEVEL="${LOG_LEVEL:-warning}" --env RATE_LIMITS=ingest=0,read=0,admin=0 \
    || cluster_die "the cluster did not start"
cluster_load "$W/cluster.env"

# Some data, so that the summary reads real rows: EVENTS events of the
# product's mix over the last 6 hours, on three platforms; then ANALYZE, as
# autovacuum would have done by then.
cluster_log "loading $EVENTS events"
python3 - "$URL" "$KEY" "$EVENTS" <<'EOF'
import json, random, sys, time, urllib.request
url, key, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(1)
names = ["upload.success"] * 6 + ["upload.failure", "oauth.success", "oauth.failure", "token.refresh.success",
         "token.refresh.failure", "webhook.received", "webhook.processed", "api.latency", "webhook.latency"]
now = time.time()
while total > 0:
    events = []
    for _ in range(min(10000, total)):
        total -= 1
        name = rng.choice(names)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - rng.uniform(0, 6 * 3600)))
        e = {"name": name, "platform": rng.choice(["tiktok", "instagram", "youtube"]), "occurred_at": at}
        if name.endswith("latency"):
            e["value"] = round(rng.uniform(0.05, 2.0), 3)
        events.append(e)
    req = urllib.request.Request(f"{url}/api/metrics", data=json.dumps(events).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 202, r.status
EOF
cluster_sql "ANALYZE metric_events" >/dev/null
curl -fsS -H "Authorization: Bearer $KEY" "$URL/api/monitoring/metrics?window=24h" -o "$W/static/_reference/metrics.json"
chmod 644 "$W/static/_reference/metrics.json"
size=$(stat -c %s "$W/static/_reference/metrics.json")
[ "$size" -gt 100 ] || cluster_die "the metrics response is unexpectedly small ($size bytes)"

# wrk scripts: a response hook counts non-2xx answers per thread; done()
# prints the total on a line of its own.
common_lua='
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
    if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
    local total = 0
    for _, t in ipairs(threads) do total = total + t:get("non2xx") end
    io.write(string.format("NON2XX %d\n", total))
    io.write(string.format("ERRORS %d\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
'
printf '%s\n' "$common_lua" >"$W/static.lua"
{
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$KEY"
    printf '%s\n' "$common_lua"
} >"$W/get.lua"
python3 - "$W/body.json" <<'EOF'
import json, sys
names = ["upload.success"] * 6 + ["upload.failure", "oauth.success", "token.refresh.success", "api.latency"]
events = []
for i in range(100):
    e = {"name": names[i % len(names)], "platform": ["tiktok", "instagram"][i % 2]}
    if e["name"] == "api.latency":
        e["value"] = 0.12
    events.append(e)
open(sys.argv[1], "w").write(json.dumps(events, separators=(",", ":")))
EOF
{
    printf 'wrk.method = "POST"\n'
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$KEY"
    printf 'wrk.headers["Content-Type"] = "application/json"\n'
    printf 'wrk.body = [=[%s]=]\n' "$(cat "$W/body.json")"
    printf '%s\n' "$common_lua"
} >"$W/post.lua"

# run NAME LUA URL — one wrk run; sets RPS, P50, P99 (ms), NON2XX, ERRORS.
run() {
    local name=$1 lua=$2 url=$3 out="$W/wrk-$1.txt"
    cluster_log "wrk: $name (${SECS}s, $CONNECTIONS connections)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECS}s" --latency -s "$lua" "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; cluster_die "wrk failed"; }
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    P50=$(awk '$1 == "50%" { print $2 }' "$out" | to_ms)
    P99=$(awk '$1 == "99%" { print $2 }' "$out" | to_ms)
    NON2XX=$(awk '/^NON2XX/ { print $2 }' "$out")
    ERRORS=$(awk '/^ERRORS/ { print $2 }' "$out")
    REQUESTS=$(awk '/requests in/ { print $1 }' "$out")
}
to_ms() {
    awk '{ v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
           if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000;
           printf "%.2f", v }'
}

run reference "$W/static.lua" "$URL/_reference/metrics.json"
ref_rps=$RPS ref_p50=$P50 ref_p99=$P99 ref_bad=$NON2XX ref_err=$ERRORS
run get "$W/get.lua" "$URL/api/monitoring/metrics?window=24h"
get_rps=$RPS get_p50=$P50 get_p99=$P99 get_bad=$NON2XX get_err=$ERRORS
before=$(cluster_sql "SELECT count(*) FROM metric_events")
run post "$W/post.lua" "$URL/api/metrics"
post_rps=$RPS post_p50=$P50 post_p99=$P99 post_bad=$NON2XX post_err=$ERRORS post_requests=$REQUESTS
after=$(cluster_sql "SELECT count(*) FROM metric_events")

# The peak RSS (VmHWM) of the tocsin serve processes after the load, in MiB.
serve_rss=0
for name in $CLUSTER_PROCESSES; do
    var="PID_$(echo "$name" | tr 'a-z-' 'A-Z_')"
    pid=${!var:-}
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q ' serve' || continue
    rss=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    [ "${rss:-0}" -gt "$serve_rss" ] && serve_rss=$rss
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
binary_kind=release
case "$TOCSIN_BIN" in *debug*) binary_kind="debug (TOCSIN_BIN)" ;; esac

echo
echo "API through nginx: wrk -t$THREADS -c$CONNECTIONS -d${SECS}s --latency; 2 × tocsin serve ($binary_kind), $EVENTS events stored, $(nproc) CPUs, load before: $load"
printf '  %-44s %12s %10s %10s %8s %8s\n' "" "requests/s" "p50 ms" "p99 ms" "non-2xx" "errors"
printf '  %-44s %12s %10s %10s %8s %8s\n' "reference: nginx, static JSON ($size bytes)" "$ref_rps" "$ref_p50" "$ref_p99" "$ref_bad" "$ref_err"
printf '  %-44s %12s %10s %10s %8s %8s\n' "GET /api/monitoring/metrics?window=24h" "$get_rps" "$get_p50" "$get_p99" "$get_bad" "$get_err"
printf '  %-44s %12s %10s %10s %8s %8s\n' "POST /api/metrics (100 events)" "$post_rps" "$post_p50" "$post_p99" "$post_bad" "$post_err"
echo "  GET  tocsin / reference: requests/s $(ratio "$get_rps" "$ref_rps"), p50 $(ratio "$get_p50" "$ref_p50")×, p99 $(ratio "$get_p99" "$ref_p99")×"
echo "  POST tocsin / reference: requests/s $(ratio "$post_rps" "$ref_rps"); $(awk -v r="$post_rps" 'BEGIN { printf "%.0f", r * 100 }') events/s; $post_requests requests answered, $((after - before)) events stored"
echo "  tocsin serve peak RSS (VmHWM) after the load: $serve_rss MiB (target <= 64 MiB)"
post_events=$(awk -v r="$post_rps" 'BEGIN { printf "%.0f", r * 100 }')
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo missed; fi; }
bench_figure "API: GET summary through nginx, $CONNECTIONS conns" "$get_rps req/s" "nginx static $ref_rps req/s" \
    "$(ratio "$get_rps" "$ref_rps")" ">= 2000 req/s" "$(met "$get_rps >= 2000")"
bench_figure "API: GET summary p99" "$get_p99 ms" "nginx static $ref_p99 ms" "$(ratio "$get_p99" "$ref_p99")" "<= 100 ms" \
    "$(met "$get_p99 <= 100")"
bench_figure "API: POST batches of 100 through nginx" "$post_events events/s" "-" "-" ">= 60000 events/s" \
    "$(met "$post_events >= 60000")"
bench_figure "memory: tocsin serve peak RSS under api.sh" "$serve_rss MiB" "-" "-" "<= 64 MiB" "$(met "$serve_rss <= 64")"
bad=$((get_bad + post_bad + get_err + post_err))
if [ "$bad" = 0 ]; then
    echo "  non-2xx answers and socket errors: 0 — bar met"
else
    echo "  non-2xx answers and socket errors: $bad — bar missed (see $W/wrk-*.txt)"
    exit 1
fi
