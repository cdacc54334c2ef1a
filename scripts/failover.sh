#!/usr/bin/env bash
# Failover under load on the highly-available topology (scripts/ha-cluster.sh:
# etcd, three PostgreSQL nodes under Patroni with synchronous_mode, nginx,
# 2 × serve, 2 × worker on the multi-host DATABASE_URL), all on 127.0.0.1:
#
#   - steady ingestion through nginx by scripts/lib/traffic.py (chaos.sh's
#     generator): batches with an Idempotency-Key, retried with the same key
#     until acknowledged, with failure bursts that make the short-window
#     rules of scripts/lib/fault-rules.yaml fire and resolve;
#   - Slack is scripts/receivers/http_receiver.py (answering 200);
#   - three database faults, at 15 %, 45 % and 75 % of DURATION, each once
#     the cluster is whole again (a leader, a synchronous standby, three
#     nodes on one timeline):
#       kill-1      SIGKILL of the primary's Patroni and postmaster together;
#                   Patroni promotes the synchronous standby once the leader
#                   key expires (ttl); scripts/ha-cluster.sh then starts the
#                   killed node's Patroni again and it rejoins as a standby
#                   (pg_rewind);
#       switchover  a planned `patronictl switchover --leader L --candidate S
#                   --force` to the synchronous standby;
#       kill-2      as kill-1, on the primary of the moment.
#     For each: when the database took writes again (a read-write session
#     through the multi-host URL), when the old primary ran again as a
#     standby, and when the LISTEN sessions of the four Tocsin processes were
#     back on the new primary.
# Then traffic stops, the outbox drains (bounded), and these are checked
# (scripts/lib/checks.py; one line each; the run fails when a must fails):
#   events acknowledged with 2xx = events stored                          must
#   open alerts duplicated per rule and group = 0                         must
#   alert transitions without a sent or dead notification = 0             must
#   notifications marked sent that Slack never acknowledged = 0           must
#   scheduled evaluations per rule, group and interval ≤ 1                must
#   deliveries received twice: reported, each with what explains it
#   per fault: time from the fault to the first 2xx ingest (none: must),
#     the longest ingest outage, the 503s answered; the fault itself went
#     as planned (a new leader, the old primary rejoined)                 must
# and Patroni's settings (ttl, loop_wait, retry_timeout, synchronous_mode)
# are printed, with a digest of the Tocsin processes' warnings and errors.
#
#   scripts/failover.sh [DURATION] [--short] [--interval N] [--keep]
#
# DURATION: seconds of traffic (default 300, 60 to 3600).
# --short: 100 s of traffic and shorter waits, for scripts/test.sh (CI): the
#          whole run stays under about 4 minutes.
# --interval N: ALERT_CHECK_INTERVAL (default 1).
# --keep: keep the work directory (logs, data, receiver log) — it is always
#         kept when a check fails.
# TOCSIN_BIN=/path/to/tocsin skips the release build (e.g. .build/debug/tocsin).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"
source "$ROOT/scripts/lib/ha.sh"
source "$ROOT/scripts/lib/faults.sh"

DURATION=300
SHORT=0
INTERVAL=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --short) SHORT=1 ;;
        --interval) INTERVAL=${2:?--interval needs seconds}; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        [0-9]*) DURATION=$1 ;;
        *) echo "error: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if ! [ "$DURATION" -ge 60 ] 2>/dev/null || [ "$DURATION" -gt 3600 ]; then
    echo "error: DURATION must be 60 to 3600 seconds" >&2
    exit 2
fi
DRAIN=120
TAIL=60
if [ "$SHORT" = 1 ]; then
    [ "$DURATION" -gt 100 ] && DURATION=100
    DRAIN=45
    TAIL=20
fi

ensure_packages etcd-server patroni python3-etcd postgresql nginx curl python3
TOCSIN_BIN=$(cluster_tocsin_binary)
export TOCSIN_BIN

W=$(mktemp -d /tmp/tocsin-failover.XXXXXX)
chmod 755 "$W"
TRAFFIC_PID=""
RECEIVER_PID=""
FAILED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$TRAFFIC_PID" ] && kill "$TRAFFIC_PID" 2>/dev/null
    if [ -e "$W/cluster.env" ]; then "$ROOT/scripts/ha-cluster.sh" --stop "$W/cluster.env" || true; fi
    [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ] || [ "$FAILED" = 1 ]; then
        cluster_log "work directory kept: $W (Patroni/PostgreSQL logs in $W/cluster/logs, Tocsin logs in" \
                    "$W/cluster/tocsin/logs, faults $W/faults.log, Slack receiver log $W/slack.jsonl)"
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
fault_log() { echo "$*" >>"$W/faults.log"; }
: >"$W/faults.log"

cluster_log "failover: ${DURATION}s of traffic, two primary kills and a switchover (ALERT_CHECK_INTERVAL=$INTERVAL), work directory $W"

# ---- Fake Slack, rules with short windows, the HA cluster -------------------------
cluster_receiver "$W/slack.jsonl" "$W/receiver.out"
faults_rules "$W"
env -u DATABASE_URL "$ROOT/scripts/ha-cluster.sh" --background --env-file "$W/cluster.env" --dir "$W/cluster" \
    --env ALERT_RULES_FILE="$W/rules.yaml" \
    --env ALERT_CHECK_INTERVAL="$INTERVAL" \
    --env SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack" \
    --env NOTIFY_RETRY_BASE_SECONDS=0.2 \
    --env NOTIFY_TIMEOUT_SECONDS=2 \
    --env NOTIFY_LEASE_SECONDS=12 \
    || cluster_die "the HA cluster did not start"
cluster_load "$W/cluster.env"
receiver_control '{"mode": "ok", "fail_ratio": 0, "rate_limit_ratio": 0}'

ha_state config >"$W/patroni-settings"
setting() { sed -n "s/^$1=//p" "$W/patroni-settings"; }
TTL=$(setting ttl)
SETTINGS="Patroni: ttl $TTL, loop_wait $(setting loop_wait), retry_timeout $(setting retry_timeout), synchronous_mode $(setting synchronous_mode) (synchronous_node_count $(setting synchronous_node_count)), maximum_lag_on_failover $(setting maximum_lag_on_failover), use_pg_rewind $(setting use_pg_rewind), use_slots $(setting use_slots)"
cluster_log "$SETTINGS"
ha_state show | sed 's/^/    /' >&2

# listen_sessions — "COUNT LAST_BACKEND_START" of the Tocsin LISTEN sessions
# on the primary: a listener's connection last ran LISTEN, or the SELECT 1
# it sends after 15 s of silence.
listen_sessions() {
    PGCONNECT_TIMEOUT=2 cluster_sql "SELECT count(*) || ' ' || coalesce(extract(epoch FROM max(backend_start))::text, '0')
        FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database()
         AND pid <> pg_backend_pid() AND (query ILIKE 'LISTEN %' OR query = 'SELECT 1')" 2>/dev/null
}
# writable — a read-write session through the multi-host URL.
writable() {
    [ "$(PGCONNECT_TIMEOUT=2 cluster_sql "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]
}
EXPECTED_LISTEN=4
for _ in $(seq 1 100); do
    read -r n _ <<<"$(listen_sessions || echo "0 0")"
    [ "${n:-0}" -ge "$EXPECTED_LISTEN" ] && break
    sleep 0.2
done
cluster_log "LISTEN sessions on the primary before the faults: ${n:-0} (expected $EXPECTED_LISTEN: api ×2, worker ×2)"

# healthy SECONDS — waits until the cluster is whole: a leader, a
# synchronous standby, three members on the leader's timeline.
healthy() {
    local deadline=$((SECONDS + $1)) out tl
    while [ "$SECONDS" -lt "$deadline" ]; do
        out=$(ha_state show 2>/dev/null || true)
        tl=$(echo "$out" | awk '$2 == "leader" { print $4 }')
        if [ -n "$tl" ] && echo "$out" | awk '$2 == "sync_standby" && ($3 == "running" || $3 == "streaming") { found = 1 } END { exit !found }' \
            && [ "$(echo "$out" | awk -v tl="$tl" '($3 == "running" || $3 == "streaming") && $4 == tl' | wc -l)" -ge 3 ]; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# after_fault LABEL T0 OLD_LEADER — the recovery of one fault: a new leader
# that takes writes (through the multi-host URL), the old primary rejoined,
# the LISTEN sessions back.
after_fault() {
    local label=$1 t0=$2 old=$3 new="" t n last deadline=$((SECONDS + 3 * TTL + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        new=$(ha_state leader 2>/dev/null || true)
        if [ -n "$new" ] && [ "$new" != "$old" ] && writable; then break; fi
        new=""
        sleep 0.1
    done
    if [ -z "$new" ]; then
        fault_log "$(now) failed $label no new leader taking writes within $((3 * TTL + 30)) s"
        cluster_log "$label: no new leader taking writes: $(ha_state show 2>&1 | paste -sd';' -)"
        return 1
    fi
    fault_log "$(now) db-end $label leader=$new"
    cluster_log "$label: new leader $new takes writes $(since "$t0") s after the fault"
    if ha_state wait --members 3 --member "$old" --timeout 90 >/dev/null 2>>"$W/$label.err"; then
        fault_log "$(now) rejoined $label node=$old"
        cluster_log "$label: $old runs as a standby again after $(since "$t0") s"
    else
        fault_log "$(now) failed $label $old did not rejoin as a standby within 90 s"
        cluster_log "$label: $old did not rejoin ($(tail -n 1 "$W/$label.err"))"
    fi
    n=0
    last=0
    for _ in $(seq 1 60); do
        read -r n last <<<"$(listen_sessions || echo "0 0")"
        [ "${n:-0}" -ge "$EXPECTED_LISTEN" ] && break
        sleep 0.5
    done
    t=$(awk -v a="${last:-0}" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    fault_log "$(now) listen $label sessions=${n:-0} expected=$EXPECTED_LISTEN last=$t"
    cluster_log "$label: LISTEN sessions on the primary ${n:-0}/$EXPECTED_LISTEN (the last connected $t s after the fault)"
}

kill_primary() {
    local label=$1 leader ppid pm t0
    leader=$(ha_state leader) || { fault_log "$(now) failed $label no leader to kill"; return 1; }
    ppid=$(ha_pid "$leader")
    pm=$(ha_postmaster "$leader" || true)
    t0=$(now)
    kill -KILL "$ppid" ${pm:+"$pm"}
    fault_log "$t0 db-begin $label node=$leader patroni_pid=$ppid postmaster_pid=${pm:-none}"
    cluster_log "$label: SIGKILL $leader's Patroni ($ppid) and postmaster (${pm:-not running})"
    after_fault "$label" "$t0" "$leader"
}

switchover() {
    local label=$1 leader candidate t0
    leader=$(ha_state leader) || { fault_log "$(now) failed $label no leader"; return 1; }
    candidate=$(ha_state sync | head -n 1)
    [ -n "$candidate" ] || { fault_log "$(now) failed $label no synchronous standby to switch over to"; return 1; }
    t0=$(now)
    fault_log "$t0 db-begin $label from=$leader to=$candidate"
    cluster_log "$label: patronictl switchover --leader $leader --candidate $candidate --force"
    # In the background: the recovery is timed while patronictl waits for it.
    ha_patronictl switchover --leader "$leader" --candidate "$candidate" --force >>"$W/switchover.log" 2>&1 &
    local ctl=$!
    after_fault "$label" "$t0" "$leader" || true
    if ! wait "$ctl"; then
        fault_log "$(now) failed $label patronictl switchover failed"
        cat "$W/switchover.log" >&2
    fi
}

# ---- Traffic and faults ------------------------------------------------------------
faults_traffic_start "$W" "$DURATION" "$TAIL" failover
start=$SECONDS
plan=("kill-1:$((DURATION * 15 / 100))" "switchover:$((DURATION * 45 / 100))" "kill-2:$((DURATION * 75 / 100))")
for step in "${plan[@]}"; do
    label=${step%%:*}
    at=${step#*:}
    while [ $((SECONDS - start)) -lt "$at" ]; do
        faults_traffic_alive "$W" || { FAILED=1; cluster_die "the traffic generator stopped early"; }
        sleep 0.5
    done
    if ! healthy 60; then
        # A db-begin so that checks.py reports the fault, then why it failed.
        fault_log "$(now) db-begin $label skipped=yes"
        fault_log "$(now) failed $label skipped: the cluster was not whole (leader, synchronous standby, 3 nodes) within 60 s"
        cluster_log "$label: skipped, the cluster is not whole: $(ha_state show 2>&1 | paste -sd';' -)"
        continue
    fi
    case "$label" in
        kill-*) kill_primary "$label" || true ;;
        switchover) switchover "$label" || true ;;
    esac
done
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
    faults_traffic_alive "$W" || { FAILED=1; cluster_die "the traffic generator stopped early"; }
    sleep 0.5
done
faults_traffic_wait "$W" "$TAIL" || { FAILED=1; cluster_die "the traffic generator failed"; }

# ---- Drain, checks -----------------------------------------------------------------
faults_drain "$DRAIN"
ha_state show >"$W/patroni-final" 2>&1 || true

digest() {
    local f name
    echo
    echo "  Tocsin warnings and errors, by process (message without its error detail; count):"
    for f in "$CLUSTER_LOG_DIR"/api-*.log "$CLUSTER_LOG_DIR"/worker-*.log; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .log)
        grep -E '^[0-9T:.-]+Z (warning|error|critical) ' "$f" | cut -d' ' -f2- | sed -E 's/ (error|errors)=.*//' \
            | sort | uniq -c | sort -rn | head -n 6 | sed "s/^/    $name: /" || true
    done
    echo "  Patroni at the end:"
    sed 's/^/    /' "$W/patroni-final"
}

set +e
faults_check failover "$W" --exits "$W/cluster/tocsin/exits.log" --exits "$W/cluster/exits.log" \
    --duplicates report --setting "$SETTINGS"
rc=$?
set -e
digest
if [ "$rc" != 0 ]; then
    FAILED=1
    exit 1
fi
