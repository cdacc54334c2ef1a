#!/usr/bin/env bash
# Chaos test of the scaled-out topology (scripts/cluster.sh: nginx, 2 × serve,
# 2 × worker, PostgreSQL), all on 127.0.0.1:
#
#   - steady ingestion through nginx by a traffic generator: batches with an
#     Idempotency-Key, retried with the same key until acknowledged; bursts of
#     upload, token refresh and OAuth failures make short-window rules fire
#     (some go pending and resolve without firing) and resolve;
#   - every 10 s a random API or worker process is SIGKILLed (the cluster
#     starts it again), and PostgreSQL is restarted once (pg_ctl restart);
#   - Slack is scripts/receivers/http_receiver.py, failing 30 % of requests
#     and answering 429 to 5 %.
# Then traffic stops, the receiver recovers, the outbox drains (bounded), and
# these are checked (one line each; the run fails when a "must" fails):
#   events acknowledged (2xx) = events stored                          must
#   open alerts duplicated per rule and group = 0                      must
#   fired / resolved-after-fired transitions without a sent or dead
#     notification = 0                                                 must
#   notifications marked sent that Slack never acknowledged = 0        must
#   deliveries received twice: reported; each must fall in the
#     at-least-once window (a worker killed or PostgreSQL restarted
#     between the two deliveries)                                      must
#   scheduled evaluations per rule, group and interval ≤ 1             must
#   the PostgreSQL restart: time to the first 2xx ingest after it, the
#     longest ingest outage and the 503s answered (no 2xx at all fails)  must
#
#   scripts/chaos.sh [DURATION] [--short] [--interval N] [--keep] [--seed N]
#
# DURATION: seconds of traffic and faults (default 300, 30 to 3600).
# --short: at most 90 s of traffic and shorter waits, for scripts/test.sh:
#          the whole run stays under 3 minutes.
# --interval N: ALERT_CHECK_INTERVAL (default 1).
# --keep: keep the work directory (logs, receiver log, database) — it is
#         always kept when a check fails.
# TOCSIN_BIN=/path/to/tocsin skips the release build (e.g. .build/debug/tocsin).
# The rules, traffic, drain and checks are shared with scripts/failover.sh:
# scripts/lib/{faults.sh,fault-rules.yaml,traffic.py,checks.py}.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"
source "$ROOT/scripts/lib/faults.sh"

DURATION=300
SHORT=0
INTERVAL=1
KEEP=0
SEED=${RANDOM}
while [ $# -gt 0 ]; do
    case "$1" in
        --short) SHORT=1 ;;
        --interval) INTERVAL=${2:?--interval needs seconds}; shift ;;
        --keep) KEEP=1 ;;
        --seed) SEED=${2:?--seed needs a number}; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        [0-9]*) DURATION=$1 ;;
        *) echo "error: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if ! [ "$DURATION" -ge 30 ] 2>/dev/null || [ "$DURATION" -gt 3600 ]; then
    echo "error: DURATION must be 30 to 3600 seconds" >&2
    exit 2
fi
DRAIN=120
TAIL=60
if [ "$SHORT" = 1 ]; then
    [ "$DURATION" -gt 90 ] && DURATION=90
    DRAIN=45
    TAIL=15
fi
RANDOM=$SEED

ensure_packages nginx postgresql curl python3
TOCSIN_BIN=$(cluster_tocsin_binary)
export TOCSIN_BIN

W=$(mktemp -d /tmp/tocsin-chaos.XXXXXX)
chmod 755 "$W"
TRAFFIC_PID=""
RECEIVER_PID=""
FAILED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$TRAFFIC_PID" ] && kill "$TRAFFIC_PID" 2>/dev/null
    cluster_stop "$W/cluster.env"
    [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ] || [ "$FAILED" = 1 ]; then
        cluster_log "work directory kept: $W (cluster logs in $W/cluster/logs, Slack receiver log $W/slack.jsonl)"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cluster_log "chaos: ${DURATION}s of traffic and faults (seed $SEED, ALERT_CHECK_INTERVAL=$INTERVAL), work directory $W"

# ---- Fake Slack, rules with short windows, the cluster ---------------------
cluster_receiver "$W/slack.jsonl" "$W/receiver.out"
faults_rules "$W"
# The cluster gets a PostgreSQL of its own (the run restarts it).
env -u DATABASE_URL "$ROOT/scripts/cluster.sh" --background --env-file "$W/cluster.env" --dir "$W/cluster" \
    --env ALERT_RULES_FILE="$W/rules.yaml" \
    --env ALERT_CHECK_INTERVAL="$INTERVAL" \
    --env SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack" \
    --env NOTIFY_RETRY_BASE_SECONDS=0.2 \
    --env NOTIFY_TIMEOUT_SECONDS=2 \
    --env NOTIFY_LEASE_SECONDS=12 \
    || cluster_die "the cluster did not start"
cluster_load "$W/cluster.env"
# The entry point does not publish /metrics; each instance serves it to Prometheus.
first_api=${CLUSTER_API_PORTS%% *}
lb_metrics=$(curl -s -o /dev/null -w '%{http_code}' "$CLUSTER_URL/metrics")
api_metrics=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$first_api/metrics")
if [ "$lb_metrics" != 404 ] || [ "$api_metrics" != 200 ]; then
    FAILED=1
    cluster_die "/metrics: $lb_metrics through nginx (want 404), $api_metrics from an instance (want 200)"
fi
cluster_log "ok: /metrics is 404 through nginx and 200 on an instance"
receiver_control '{"mode": "ok", "fail_ratio": 0.3, "rate_limit_ratio": 0.05, "retry_after": "1"}'

# ---- Traffic ------------------------------------------------------------------
faults_traffic_start "$W" "$DURATION" "$TAIL" chaos

# ---- Faults -----------------------------------------------------------------------
: >"$W/faults.log"
victims=(api-1 api-2 worker-1 worker-2)
start=$SECONDS
pg_restart_at=$((DURATION * 2 / 5))
pg_restarted=0
next_kill=10
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
    elapsed=$((SECONDS - start))
    if [ "$elapsed" -ge "$next_kill" ]; then
        victim=${victims[$((RANDOM % ${#victims[@]}))]}
        pid=$(cluster_pid "$victim")
        if [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; then
            echo "$(date +%s.%N) kill $victim $pid" >>"$W/faults.log"
            cluster_log "SIGKILL $victim (pid $pid)"
        fi
        next_kill=$((next_kill + 10))
    fi
    if [ "$pg_restarted" = 0 ] && [ "$elapsed" -ge "$pg_restart_at" ]; then
        pg_restarted=1
        echo "$(date +%s.%N) db-begin pg-restart" >>"$W/faults.log"
        cluster_log "restarting PostgreSQL"
        as_pg "$(pg_bindir)/pg_ctl" -D "$CLUSTER_PG_DIR/data" -m fast -w -t 60 restart >>"$W/pg-restart.log" 2>&1 \
            || { cat "$W/pg-restart.log" >&2; FAILED=1; cluster_die "pg_ctl restart failed"; }
        echo "$(date +%s.%N) db-end pg-restart" >>"$W/faults.log"
    fi
    faults_traffic_alive "$W" || { FAILED=1; cluster_die "the traffic generator stopped early"; }
    sleep 0.5
done

faults_traffic_wait "$W" "$TAIL" || { FAILED=1; cluster_die "the traffic generator failed"; }
receiver_control '{"mode": "ok", "fail_ratio": 0, "rate_limit_ratio": 0, "script": []}'

# ---- Drain: alerts resolve once traffic stops; the outbox empties ------------------
faults_drain "$DRAIN"

# ---- Checks -------------------------------------------------------------------------
if ! faults_check chaos "$W" --exits "$W/cluster/exits.log" --duplicates must; then
    FAILED=1
    exit 1
fi
