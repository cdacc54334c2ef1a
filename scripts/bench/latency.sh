#!/usr/bin/env bash
# Alert latency: from sending the events that cross a rule's threshold to
# Slack holding the message. `tocsin run` with the default configuration —
# the default rules, ALERT_CHECK_INTERVAL 60 — and SLACK_WEBHOOK_URL pointing
# at scripts/receivers/http_receiver.py on 127.0.0.1.
#
# Each trial sends 10 upload.failure events for a platform never seen
# before (p1, p2, …) in one POST /api/metrics: high_error_rate (failure
# rate above 5 % with at least 10 attempts, per platform) opens a fresh alert
# and fires. The latency is from just before the POST to the receiver's
# arrival time of that alert's Slack message (same clock). Trials are 1.5 s
# apart or more; one warm-up trial is not counted.
#
#   scripts/bench/latency.sh [TRIALS]     default 20
#
# Targets: p50 < 250 ms, p95 < 500 ms. For comparison, Prometheus +
# Alertmanager at default settings: 82 s median; tuned: 0.9 s.
# TOCSIN_BIN=/path/to/tocsin skips the release build (.build-deploy).
# Exits non-zero only when the set-up fails or a message never arrives.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"

TRIALS=${1:-20}
case "$TRIALS" in ''|*[!0-9]*) echo "usage: $0 [TRIALS]" >&2; exit 2 ;; esac

ensure_packages postgresql curl python3
TOCSIN_BIN=$(cluster_tocsin_binary)

W=$(mktemp -d /tmp/tocsin-bench-latency.XXXXXX)
chmod 755 "$W"
RUN_PID=""
RECEIVER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$RUN_PID" ] && cluster_stop_pid "$RUN_PID" 15
    [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null
    [ -d "$W/pg/data" ] && pg_stop "$W/pg"
    wait 2>/dev/null || true
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

cluster_install_tocsin "$TOCSIN_BIN" "$W"
TOCSIN="$W/bin/tocsin"
cluster_log "starting PostgreSQL (default durability settings)"
pg_init "$W/pg"
pg_port=$(free_port)
pg_start "$W/pg" "$pg_port"
"$(pg_bindir)/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres tocsin
export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/tocsin"

cluster_receiver "$W/slack.jsonl" "$W/receiver.out"
"$TOCSIN" migrate >"$W/migrate.log" 2>&1 || { cat "$W/migrate.log" >&2; cluster_die "tocsin migrate failed"; }
KEY=$("$TOCSIN" keys create --scope ingest,read --name latency-bench 2>>"$W/migrate.log" | tail -n 1)
[ -n "$KEY" ] || cluster_die "tocsin keys create printed no key"

port=$(free_port)
# The default configuration, except where Slack is and the log level.
env HOST=127.0.0.1 PORT="$port" LOG_LEVEL="${LOG_LEVEL:-warning}" LOG_FORMAT=text \
    SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack" \
    "$TOCSIN" run >"$W/run.log" 2>&1 &
RUN_PID=$!
cluster_wait_http "http://127.0.0.1:$port/readyz" 60 "$RUN_PID" \
    || { tail -n 20 "$W/run.log" >&2; cluster_die "tocsin run did not become ready"; }
for _ in $(seq 1 100); do
    n=$("$(pg_bindir)/psql" -X -tA "$DATABASE_URL" -c "SELECT count(*) FROM workers WHERE stopped_at IS NULL")
    [ "$n" -ge 1 ] && break
    sleep 0.1
done
binary_kind=release
case "$TOCSIN_BIN" in *debug*) binary_kind="debug (TOCSIN_BIN)" ;; esac

python3 - "http://127.0.0.1:$port" "$KEY" "http://127.0.0.1:$RECEIVER_PORT" "$TRIALS" "$binary_kind" "$load" <<'EOF'
import json, sys, time, urllib.request

url, key, receiver, trials, binary, load = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]

def post_events(platform):
    body = json.dumps([{"name": "upload.failure", "platform": platform}] * 10).encode()
    req = urllib.request.Request(f"{url}/api/metrics", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 202:
            raise SystemExit(f"POST /api/metrics answered {r.status}")

def arrival(platform, deadline):
    """The receiver's arrival time of the [FIRING] high_error_rate message for platform."""
    title = f"[FIRING] high_error_rate · {platform}"
    while time.time() < deadline:
        with urllib.request.urlopen(f"{receiver}/_requests", timeout=5) as r:
            for record in json.loads(r.read()):
                try:
                    if json.loads(record["body"]).get("text") == title:
                        return record["at"]
                except ValueError:
                    pass
        time.sleep(0.005)
    return None

def trial(platform):
    t0 = time.time()
    post_events(platform)
    at = arrival(platform, t0 + 120)
    if at is None:
        raise SystemExit(f"no Slack message for {platform} within 120 s")
    return (at - t0) * 1000

trial("warmup")
time.sleep(1.5)
latencies = []
for i in range(1, trials + 1):
    ms = trial(f"p{i}")
    latencies.append(ms)
    sys.stderr.write(f"  trial {i:2}: {ms:7.1f} ms\n")
    time.sleep(1.5)

def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]

p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
print()
print(f"Alert latency, events sent → Slack message received: {trials} trials, each a fresh alert "
      f"(high_error_rate, platforms p1…p{trials}); tocsin run ({binary}), default rules and "
      f"ALERT_CHECK_INTERVAL 60; load before: {load}")
print(f"  min {min(latencies):.0f} ms, max {max(latencies):.0f} ms")
print(f"  p50 {p50:7.0f} ms   target < 250 ms   {'met' if p50 < 250 else 'missed'}")
print(f"  p95 {p95:7.0f} ms   target < 500 ms   {'met' if p95 < 500 else 'missed'}")
print("  reference: Prometheus + Alertmanager: 82 s median at default settings, 0.9 s tuned")
EOF
