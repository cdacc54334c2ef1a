# shellcheck shell=bash
# Shared by scripts/chaos.sh and scripts/failover.sh: the fault tests' rules,
# traffic, drain and checks. Source it after scripts/lib/common.sh and
# scripts/lib/cluster.sh, with the cluster's environment loaded (URL, KEY,
# DATABASE_URL); it defines functions only. Each run keeps its files in a
# work directory W: rules.yaml, slack.jsonl, traffic.json, attempts.csv,
# faults.log (the format is in scripts/lib/checks.py).

FAULTS_LIB=${FAULTS_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# faults_rules W — the short-window rules (scripts/lib/fault-rules.yaml) as
# W/rules.yaml, for ALERT_RULES_FILE.
faults_rules() {
    cp "$FAULTS_LIB/fault-rules.yaml" "$1/rules.yaml"
}

# faults_traffic_start W DURATION TAIL PREFIX — scripts/lib/traffic.py on
# $URL in the background (W/traffic.json, W/attempts.csv, W/traffic.err);
# sets TRAFFIC_PID.
faults_traffic_start() {
    local w=$1 duration=$2 tail=$3 prefix=$4
    python3 "$FAULTS_LIB/traffic.py" "$URL" "$KEY" "$duration" "$tail" "$w/traffic.json" \
        --attempts "$w/attempts.csv" --prefix "$prefix" 2>"$w/traffic.err" &
    TRAFFIC_PID=$!
}

# faults_traffic_alive W — fails (printing its errors) when the traffic
# generator has stopped early.
faults_traffic_alive() {
    kill -0 "$TRAFFIC_PID" 2>/dev/null && return 0
    cat "$1/traffic.err" >&2
    return 1
}

# faults_traffic_wait W TAIL — waits for the generator's last batches.
faults_traffic_wait() {
    local w=$1 tail=$2
    cluster_log "faults over; waiting for the traffic generator's last batches (at most ${tail}s)"
    if ! wait "$TRAFFIC_PID"; then
        cat "$w/traffic.err" >&2
        TRAFFIC_PID=""
        return 1
    fi
    TRAFFIC_PID=""
}

# faults_drain SECONDS — waits (bounded) for open alerts to resolve and the
# outbox to empty; sets DRAINED to 1 or 0.
faults_drain() {
    local seconds=$1 state=""
    cluster_log "draining: waiting (at most ${seconds}s) for open alerts to resolve and the outbox to empty"
    DRAINED=0
    for _ in $(seq 1 $((seconds * 2))); do
        state=$(cluster_sql "SELECT (SELECT count(*) FROM notifications WHERE status = 'pending') || ' ' ||
                                    (SELECT count(*) FROM alerts WHERE status <> 'resolved')" 2>/dev/null || echo "? ?")
        if [ "$state" = "0 0" ]; then DRAINED=1; break; fi
        sleep 0.5
    done
    if [ "$DRAINED" = 1 ]; then
        cluster_log "drained"
    else
        cluster_log "not drained within ${seconds}s (pending notifications, open alerts: $state)"
    fi
    # Let the receiver's log settle (a delivery may be in flight as it is marked).
    sleep 1
}

# faults_check TITLE W [checks.py options...] — the checks; fails when a
# must fails.
faults_check() {
    local title=$1 w=$2
    shift 2
    python3 "$FAULTS_LIB/checks.py" --title "$title" --work "$w" --psql "$(pg_bindir)/psql" --db "$DATABASE_URL" \
        --drained "${DRAINED:-0}" --attempts "$w/attempts.csv" "$@"
}
