#!/usr/bin/env bash
# Ingestion and read benchmark, against its own throw-away PostgreSQL cluster
# (default durability settings; removed on exit) and the release build.
#
#   scripts/bench/ingest.sh [N]       N events (default 1,000,000; or TOCSIN_BENCH_EVENTS)
#   TOCSIN_BENCH_BIG=0 scripts/bench/ingest.sh 100000     quick run: skips the 10 M part
#
# What it measures, in one run against one database:
#   (a) COPY: N generated events (the product's mix over the last 3 hours),
#       loaded with psql \copy into metric_events                → events/s
#   (b) HTTP: the same N events through POST /api/metrics, 1,000 per
#       request, 4 keep-alive connections, to `tocsin serve`; every answer
#       must be 202 and count(*) must be N afterwards              → events/s
#       Targets: (b)/(a) >= 0.9 in wall-clock time and >= 0.6 in events per
#       server CPU-second (PostgreSQL and tocsin serve); tocsin serve at
#       most 3 µs of CPU per event. Also the server's peak RSS (VmHWM).
#   (c) Reads: with TOCSIN_BENCH_BIG_EVENTS (default 10,000,000) events over
#       30 days, GET /api/monitoring/metrics?window=24h, 2 warm-up then 20
#       timed requests: median and p95. Each request sends
#       `Cache-Control: no-cache`, which bypasses the summary's one-second
#       cache: the figure is the query's own cost. Target: median <= 10 ms.
#
# Exits non-zero only when the set-up fails, never on a missed target.
# Progress goes to stderr, the figures to stdout. BENCH_KEEP=1 keeps the
# work directory (logs, EXPLAIN output) after the cluster is stopped;
# TOCSIN_BENCH_PERF=1 profiles tocsin serve with perf during (b) and (c).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"

N=${1:-${TOCSIN_BENCH_EVENTS:-1000000}}
BIG=${TOCSIN_BENCH_BIG:-1}
BIG_N=${TOCSIN_BENCH_BIG_EVENTS:-10000000}
case "$N" in ''|*[!0-9]*) echo "usage: $0 [N]   (N: number of events, e.g. 1000000)" >&2; exit 2 ;; esac
case "$BIG_N" in ''|*[!0-9]*) echo "error: TOCSIN_BENCH_BIG_EVENTS must be a number" >&2; exit 2 ;; esac
[ "$N" -ge 1000 ] || { echo "error: N must be at least 1000" >&2; exit 2; }

bench_init ingest
bench_requirements
bench_build
bench_postgres
bench_schema

copy_file="$BENCH_DIR/events.copy"
bodies_file="$BENCH_DIR/bodies.jsonl"
bench_log "generating $N events (COPY text and request bodies)"
python3 "$BENCH_SCRIPTS/events.py" files --count "$N" --copy "$copy_file" --bodies "$bodies_file" --batch 1000 --span-hours 3

now_s() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
json_get() { python3 -c "import json, sys; v = json.loads(sys.argv[1])[sys.argv[2]]; print(v if not isinstance(v, float) else f'{v:.3f}')" "$1" "$2"; }

# (a) COPY
bench_sql "CHECKPOINT" >/dev/null
bench_log "(a) loading $N events with psql \\copy"
pg_cpu0=$(bench_pg_cpu)
t0=$(now_s)
bench_psql -c "\\copy metric_events (occurred_at, name, platform, value, labels) FROM '$copy_file'"
t1=$(now_s)
copy_s=$(elapsed "$t0" "$t1")
copy_pg_cpu=$(elapsed "$pg_cpu0" "$(bench_pg_cpu)")
stored=$(bench_sql "SELECT count(*) FROM metric_events")
[ "$stored" = "$N" ] || bench_die "COPY stored $stored events, expected $N"
in_default=$(bench_sql "SELECT count(*) FROM metric_events_default")
[ "$in_default" = 0 ] || bench_log "warning: $in_default events landed in the default partition"
copy_rate=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" "$N" "$copy_s")
bench_log "(a) $copy_s s, $copy_rate events/s"
bench_sql "TRUNCATE metric_events" >/dev/null
bench_sql "CHECKPOINT" >/dev/null

# (b) HTTP
port=$(free_port)
# The default ingest limit (100 requests/s per key) is below what this
# machine's server takes in: the figure is the server's, not the limiter's.
bench_start serve PORT="$port" RATE_LIMITS=ingest=0,read=0,alerts=0,admin=0 -- serve
serve_pid=$BENCH_LAST_PID
bench_wait_ready "$port" "$serve_pid" serve
bench_log "(b) posting $N events to http://127.0.0.1:$port/api/metrics (1,000 per request, 4 connections)"
bench_profile_start "$serve_pid" "$BENCH_DIR/serve-ingest.perf"
pg_cpu0=$(bench_pg_cpu)
serve_cpu0=$(bench_cpu "$serve_pid")
result=$(python3 "$BENCH_SCRIPTS/client.py" ingest --url "http://127.0.0.1:$port" --key "$BENCH_KEY" \
    --bodies "$bodies_file" --connections 4)
http_pg_cpu=$(elapsed "$pg_cpu0" "$(bench_pg_cpu)")
http_serve_cpu=$(elapsed "$serve_cpu0" "$(bench_cpu "$serve_pid")")
bench_profile_stop "$BENCH_DIR/serve-ingest.perf" "$BENCH_DIR/serve-ingest-profile.txt"
if [ -s "$BENCH_DIR/serve-ingest-profile.txt" ]; then
    bench_log "(b) hottest functions of tocsin serve during ingestion (perf, self time):"
    head -n 25 "$BENCH_DIR/serve-ingest-profile.txt" | cut -c1-160 | sed 's/^/    /' >&2
fi
kill -0 "$serve_pid" 2>/dev/null || { tail -n 20 "$BENCH_DIR/serve.log" >&2; bench_die "tocsin serve died during ingestion"; }
failures=$(json_get "$result" failures)
if [ "$failures" != 0 ]; then
    echo "$result" >&2
    bench_die "$failures requests were not answered 202 with every event accepted"
fi
http_s=$(json_get "$result" seconds)
stored=$(bench_sql "SELECT count(*) FROM metric_events")
[ "$stored" = "$N" ] || bench_die "after ingestion metric_events holds $stored events, expected $N"
http_rate=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" "$N" "$http_s")
rss_mib=$(bench_peak_rss "$serve_pid")
req_p50=$(json_get "$result" latency_ms_p50)
req_p95=$(json_get "$result" latency_ms_p95)
bench_log "(b) $http_s s, $http_rate events/s; request latency p50 $req_p50 ms, p95 $req_p95 ms; peak RSS $rss_mib MiB"
ratio=$(bench_ratio "$http_rate" "$copy_rate")
ingest_ok=$(bench_check "$http_rate" "$copy_rate" ">=" 0.9)
rm -f "$bodies_file"

# (c) Reads over a big table
if [ "$BIG" != 0 ]; then
    bench_sql "TRUNCATE metric_events" >/dev/null
    bench_log "(c) loading $BIG_N events over 30 days (INSERT ... SELECT generate_series, 2 sessions)"
    t0=$(now_s)
    bench_events_sql "$BIG_N" "now() - interval '30 days' + interval '1 hour'" "now()" 2
    t1=$(now_s)
    load_s=$(elapsed "$t0" "$t1")
    bench_log "(c) loaded in $load_s s; VACUUM ANALYZE"
    t0=$(now_s)
    bench_sql "VACUUM (ANALYZE) metric_events" >/dev/null
    t1=$(now_s)
    vacuum_s=$(elapsed "$t0" "$t1")
    # Events loaded with SQL, not through the API, have no hourly rollups yet.
    bench_log "(c) building the hourly rollups of the loaded events"
    t0=$(now_s)
    bench_sql "SELECT tocsin_rebuild_rollups('-infinity', 'infinity')" >/dev/null
    t1=$(now_s)
    rollup_s=$(elapsed "$t0" "$t1")
    in_window=$(bench_sql "SELECT count(*) FROM metric_events WHERE occurred_at >= now() - interval '24 hours'")
    bench_log "(c) vacuumed in $vacuum_s s; $in_window events in the last 24 hours; timing GET /api/monitoring/metrics?window=24h"
    bench_profile_start "$serve_pid" "$BENCH_DIR/serve-read.perf"
    serve_cpu0=$(bench_cpu "$serve_pid")
    timing=$(python3 "$BENCH_SCRIPTS/client.py" time --url "http://127.0.0.1:$port/api/monitoring/metrics?window=24h" \
        --key "$BENCH_KEY" --count 20 --warmup 2)
    if python3 -c "import json, sys; sys.exit(0 if 'error' in json.loads(sys.argv[1]) else 1)" "$timing"; then
        echo "$timing" >&2
        bench_die "GET /api/monitoring/metrics failed"
    fi
    read_serve_cpu=$(elapsed "$serve_cpu0" "$(bench_cpu "$serve_pid")")
    bench_profile_stop "$BENCH_DIR/serve-read.perf" "$BENCH_DIR/serve-read-profile.txt"
    if [ -s "$BENCH_DIR/serve-read-profile.txt" ]; then
        bench_log "(c) hottest functions of tocsin serve during the reads (perf, self time):"
        head -n 25 "$BENCH_DIR/serve-read-profile.txt" | cut -c1-160 | sed 's/^/    /' >&2
    fi
    read_median=$(json_get "$timing" median_ms)
    read_p95=$(json_get "$timing" p95_ms)
    read_ok=$(python3 -c "import sys; print(int(float(sys.argv[1]) <= 10))" "$read_median")
    rss_after=$(bench_peak_rss "$serve_pid")
    # The summary's query (a copy of MetricReads.summary's), for the record.
    bench_psql -c "EXPLAIN (ANALYZE, BUFFERS)
        SELECT platform, grouping(platform) = 1 AS is_total, name, count(*) AS n, avg(value) AS average,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY value) FILTER (WHERE name = ANY('{webhook.latency,api.latency}'::text[])) AS p95
        FROM metric_events
        WHERE name = ANY('{oauth.success,oauth.failure,upload.success,upload.failure,webhook.received,webhook.processed,webhook.latency,token.refresh.success,token.refresh.failure,api.call,api.latency,worker.run,worker.duration}'::text[])
          AND occurred_at >= now() - interval '24 hours' AND occurred_at < now()
          AND (NULL::text IS NULL OR platform = NULL::text)
        GROUP BY GROUPING SETS ((platform, name), (name))" >"$BENCH_DIR/summary-explain.txt" 2>&1 || true
    if [ "$read_ok" != 1 ]; then
        bench_log "(c) EXPLAIN ANALYZE of the summary query:"
        sed 's/^/    /' "$BENCH_DIR/summary-explain.txt" >&2
    fi
fi

echo
echo "Tocsin ingestion benchmark ($(nproc) CPUs, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), default durability; $(bench_load) at the end)"
bench_row "(a) COPY, $N events" "$copy_rate/s" "$copy_s s"
bench_row "(b) POST /api/metrics, 1,000/request, 4 conns" "$http_rate/s" "$http_s s; request p50 $req_p50 ms, p95 $req_p95 ms"
bench_row "(b)/(a)" "$ratio" "target >= 0.9: $(bench_verdict "$ingest_ok")"
bench_row "CPU seconds, (a): PostgreSQL" "$copy_pg_cpu s"
bench_row "CPU seconds, (b): PostgreSQL + tocsin serve" "$http_pg_cpu + $http_serve_cpu s"
cpu_ratio=$(python3 -c "import sys; a, b, c = map(float, sys.argv[1:]); print(f'{a / (b + c):.2f}')" "$copy_pg_cpu" "$http_pg_cpu" "$http_serve_cpu")
cpu_ok=$(python3 -c "import sys; print(int(float(sys.argv[1]) >= 0.6))" "$cpu_ratio")
us_per_event=$(python3 -c "import sys; print(f'{float(sys.argv[1]) * 1e6 / int(sys.argv[2]):.2f}')" "$http_serve_cpu" "$N")
us_ok=$(python3 -c "import sys; print(int(float(sys.argv[1]) <= 3))" "$us_per_event")
bench_row "(b)/(a) in events per server CPU-second" "$cpu_ratio" "target >= 0.6: $(bench_verdict "$cpu_ok") (less sensitive to other load than the wall-clock ratio)"
bench_row "tocsin serve CPU per event in (b)" "$us_per_event µs" "target <= 3 µs: $(bench_verdict "$us_ok")"
bench_row "tocsin serve peak RSS (VmHWM) after (b)" "$rss_mib MiB"
if [ "$BIG" != 0 ]; then
    bench_row "(c) load $BIG_N events over 30 days" "$load_s s" "INSERT ... SELECT, 2 sessions; VACUUM ANALYZE $vacuum_s s; rollups $rollup_s s"
    bench_row "(c) GET metrics?window=24h, median of 20" "$read_median ms" "target <= 10 ms: $(bench_verdict "$read_ok")"
    bench_row "(c) GET metrics?window=24h, p95 of 20" "$read_p95 ms" "($in_window events in the window; tocsin serve CPU $read_serve_cpu s for 22 requests)"
    bench_row "tocsin serve peak RSS (VmHWM) at the end" "$rss_after MiB"
else
    bench_row "(c) 10 M events read" "skipped" "TOCSIN_BENCH_BIG=0"
fi

bench_figure "ingest: POST 1,000/request × 4 conns vs COPY ($N events)" "$http_rate events/s" "COPY $copy_rate events/s" \
    "$ratio" ">= 0.9" "$(bench_met "$ingest_ok")"
bench_figure "ingest: events per server CPU-second vs COPY" "$cpu_ratio" "COPY: PostgreSQL CPU only" "$cpu_ratio" ">= 0.6" \
    "$(bench_met "$cpu_ok")"
bench_figure "ingest: tocsin serve CPU per event" "$us_per_event µs" "-" "-" "<= 3 µs" "$(bench_met "$us_ok")"
if [ "$BIG" != 0 ]; then
    bench_figure "summary, 24 h over $BIG_N events, median of 20 (uncached)" "$read_median ms" "-" "-" "<= 10 ms" \
        "$(bench_met "$read_ok")"
    bench_figure "summary, 24 h over $BIG_N events, p95 of 20 (uncached)" "$read_p95 ms" "-" "-" "-" "-"
fi
