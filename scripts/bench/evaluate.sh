#!/usr/bin/env bash
# Alert-rule evaluation benchmark, against its own throw-away PostgreSQL
# cluster (default durability settings; removed on exit) and the release build.
#
#   scripts/bench/evaluate.sh
#
# What it measures:
#   (a) The four default rules (rules/default.yaml) evaluated on demand,
#       POST /api/workers/alert-checker?wait=true to `tocsin serve` with a
#       `tocsin worker` claiming the request, with 100,000 events in
#       metric_events over 30 days (the last 15 minutes hold as many events
#       as in (b)): the median over 10 rounds of the time for the four rules,
#       as the sum of rule_evaluations.duration_ms (the evaluations' own time,
#       in the database) and as the HTTP round trip.
#   (b) The same with 10,000,000 events over 30 days (same last 15 minutes).
#       Target: (b)/(a) <= 1.5 — the cost follows the window, not the history.
#       (a) and (b) live in two databases of the cluster, each with its own
#       serve and worker, and their rounds alternate, so that other load on
#       the machine falls on both alike.
#   (c) 10,000 generated rules (count, ratio, aggregate over a window and
#       over the last N events, per platform or not; a fifth of those with a
#       label filter, a fifth grouped by two labels; composites of two rules;
#       SLO burn-rate rules over the hourly rollups; interval 60s) and two
#       `tocsin worker` processes (DB_POOL_SIZE=10, WORKER_CONCURRENCY=8) on
#       (b)'s 10 M events: once both are up and idle, every rule is made due
#       at once; the time until every rule has been evaluated again.
#       Target: all 10,000 within 60 s. Also evaluations/s, and each rule
#       type's median and p95 evaluation time (duration_ms).
#       Target: no type over 10 ms median.
#   (d) the same round again: the steady state of every interval. (c) is
#       the first round after start-up, in which each SLO rule also counts
#       its period (30 days of rollups) — which it then reuses for 10
#       minutes, so one interval in ten pays for it. Same figures and
#       targets as (c).
#   (e) each kind alone: one worker evaluating one rule at a time, 50
#       rules of each kind — in (c) and (d) sixteen evaluations share two
#       CPUs, and duration_ms counts the wait for one. Target: no kind over
#       10 ms median.
#
# Environment: TOCSIN_BENCH_SMALL (100000), TOCSIN_BENCH_BIG_EVENTS
# (10000000), TOCSIN_BENCH_RECENT (events in the last 15 minutes, 3500 —
# the rate of 10 M events over 30 days), TOCSIN_BENCH_RULES (10000),
# TOCSIN_BENCH_ROUNDS (10), TOCSIN_BENCH_ROUND_TIMEOUT (seconds (c) waits,
# 600), BENCH_KEEP=1 (keep the work directory with the logs),
# TOCSIN_BENCH_DIAG=1 (pg_stat_statements: the costliest statements of (c),
# planning included, and sampled wait events), TOCSIN_BENCH_PERF=1 (perf
# profile of one worker in (c)).
#
# Exits non-zero only when the set-up fails, never on a missed target.
# Progress goes to stderr, the figures to stdout.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "$0")/lib.sh"

SMALL=${TOCSIN_BENCH_SMALL:-100000}
BIG_N=${TOCSIN_BENCH_BIG_EVENTS:-10000000}
RECENT=${TOCSIN_BENCH_RECENT:-3500}
RULES=${TOCSIN_BENCH_RULES:-10000}
ROUNDS=${TOCSIN_BENCH_ROUNDS:-10}
ROUND_TIMEOUT=${TOCSIN_BENCH_ROUND_TIMEOUT:-600}
DIAG=${TOCSIN_BENCH_DIAG:-0}
for v in SMALL BIG_N RECENT RULES ROUNDS ROUND_TIMEOUT; do
    case "${!v}" in ''|*[!0-9]*) echo "error: $v must be a number, got '${!v}'" >&2; exit 2 ;; esac
done
if [ "$SMALL" -le "$RECENT" ] || [ "$BIG_N" -le "$RECENT" ]; then
    echo "error: the event counts must exceed TOCSIN_BENCH_RECENT" >&2
    exit 2
fi
[ "$ROUNDS" -ge 1 ] || { echo "error: TOCSIN_BENCH_ROUNDS must be at least 1" >&2; exit 2; }

bench_init evaluate
bench_requirements
bench_build
if [ "$DIAG" = 1 ]; then
    bench_postgres "shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track_planning = on"
else
    bench_postgres
fi

median() { python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.1f}')" "$@"; }
seconds_since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }
difference() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

declare -A DB PORT KEY SERVE_PID WORKER_PID
DB[a]=tocsin_a
DB[b]=tocsin_b

# on LABEL — the helpers act on that label's database from now on.
on() { bench_use_db "${DB[$1]}"; }

# load_history LABEL TOTAL — TOTAL - RECENT events over the 30 days before
# the last 15 minutes, then VACUUM ANALYZE.
load_history() {
    local label=$1 total=$2 parallel=1
    [ "$total" -ge 1000000 ] && parallel=2
    on "$label"
    bench_log "($label) loading $((total - RECENT)) events over 30 days"
    bench_events_sql $((total - RECENT)) "now() - interval '30 days' + interval '1 hour'" "now() - interval '15 minutes'" "$parallel"
    bench_log "($label) rebuilding the hourly rollups (SLO rules read them)"
    bench_sql "SELECT tocsin_rebuild_rollups('-infinity', 'infinity')" >/dev/null
    bench_log "($label) VACUUM ANALYZE metric_events, metric_rollups"
    bench_sql "VACUUM (ANALYZE) metric_events" >/dev/null
    bench_sql "VACUUM (ANALYZE) metric_rollups" >/dev/null
}

# load_recent LABEL — RECENT events in the last 13 minutes, replacing those
# of the last 15 minutes.
load_recent() {
    on "$1"
    bench_sql "DELETE FROM metric_events WHERE occurred_at >= now() - interval '15 minutes'" >/dev/null
    bench_events_sql "$RECENT" "now() - interval '13 minutes'" "now() - interval '2 seconds'" 1
    bench_sql "SELECT tocsin_rebuild_rollups(now() - interval '2 hours', now() + interval '1 hour')" >/dev/null
}

# round LABEL I — one on-demand evaluation of every rule (I = 0: warm-up).
# Appends "db_ms http_ms claim_ms run_ms" to rounds-LABEL.txt and the
# per-rule durations to rules-LABEL.txt.
round() {
    local label=$1 i=$2 before out code secs db evaluated by check_id http_ms claim_ms run_ms
    on "$label"
    before=$(bench_sql "SELECT coalesce(max(id), 0) FROM rule_evaluations")
    out=$(curl -sS -o "$BENCH_DIR/check.json" -w '%{http_code} %{time_total}' -X POST \
        -H "Authorization: Bearer ${KEY[$label]}" "http://127.0.0.1:${PORT[$label]}/api/workers/alert-checker?wait=true") \
        || bench_die "POST /api/workers/alert-checker failed"
    code=${out% *}
    secs=${out#* }
    if [ "$code" != 200 ]; then
        cat "$BENCH_DIR/check.json" >&2; echo >&2
        bench_die "POST /api/workers/alert-checker?wait=true answered $code"
    fi
    read -r evaluated by check_id < <(python3 -c "import json, sys; b = json.load(open(sys.argv[1])); print(b['evaluated'], b.get('evaluated_by'), b['id'])" "$BENCH_DIR/check.json")
    [ "$evaluated" = 4 ] || bench_log "warning: the check evaluated $evaluated rules, expected 4"
    bench_sql "SELECT rule_name, max(duration_ms) FROM rule_evaluations
               WHERE id > $before AND trigger = 'manual' GROUP BY rule_name, started_at" >"$BENCH_DIR/round.txt"
    db=$(awk -F'|' '{ s += $2 } END { printf "%.2f", s }' "$BENCH_DIR/round.txt")
    http_ms=$(python3 -c "import sys; print(f'{1000 * float(sys.argv[1]):.1f}')" "$secs")
    # Where the round trip went: until a worker claimed the request, and
    # from the claim until the results were written.
    read -r claim_ms run_ms < <(bench_sql "SELECT round(extract(epoch FROM claimed_at - requested_at) * 1000, 1),
        round(extract(epoch FROM completed_at - claimed_at) * 1000, 1) FROM check_requests WHERE id = $check_id" | tr '|' ' ')
    if [ "$i" = 0 ]; then
        bench_log "($label) warm-up: $db ms in the database, $http_ms ms over HTTP (evaluated by $by)"
        return
    fi
    echo "$db $http_ms $claim_ms $run_ms" >>"$BENCH_DIR/rounds-$label.txt"
    cat "$BENCH_DIR/round.txt" >>"$BENCH_DIR/rules-$label.txt"
    bench_log "($label) round $i: $db ms in the database, $http_ms ms over HTTP (claimed after $claim_ms ms, answered $run_ms ms later)"
}

# median_of LABEL N — the median of column N of rounds-LABEL.txt.
# shellcheck disable=SC2046  # one argument per line, on purpose
median_of() { median $(awk -v n="$2" '{ print $n }' "$BENCH_DIR/rounds-$1.txt"); }

rule_medians() {
    python3 - "$BENCH_DIR/rules-a.txt" "$BENCH_DIR/rules-b.txt" <<'PY'
import statistics, sys
def read(path):
    out = {}
    for line in open(path):
        name, ms = line.strip().split("|")
        out.setdefault(name, []).append(float(ms))
    return {k: statistics.median(v) for k, v in out.items()}
a, b = read(sys.argv[1]), read(sys.argv[2])
for name in sorted(a):
    print("  %-44s %9.1f ms %9.1f ms  x%.2f" % ("  " + name, a[name], b.get(name, float("nan")), b.get(name, 0) / a[name] if a[name] else 0))
PY
}

# --- (a) and (b): the default rules, on demand ---------------------------
for label in a b; do
    on "$label"
    bench_schema
    KEY[$label]=$BENCH_KEY
    # Workers read the rules applied in the database, not a file; the
    # default rules are checked on demand only (a one-day interval).
    ALERT_CHECK_INTERVAL=86400 LOG_LEVEL=warning "$TOCSIN" rules apply "$BENCH_DIR/default-rules.yaml" >>"$BENCH_DIR/migrate.log" 2>&1 \
        || { tail -n 20 "$BENCH_DIR/migrate.log" >&2; bench_die "tocsin rules apply failed"; }
    [ "$DIAG" = 1 ] && bench_sql "CREATE EXTENSION pg_stat_statements" >/dev/null
    PORT[$label]=$(free_port)
    bench_start "serve-$label" PORT="${PORT[$label]}" -- serve
    SERVE_PID[$label]=$BENCH_LAST_PID
    bench_wait_ready "${PORT[$label]}" "${SERVE_PID[$label]}" "serve-$label"
    bench_start "worker-$label" ALERT_CHECK_INTERVAL=86400 -- worker
    WORKER_PID[$label]=$BENCH_LAST_PID
done
for label in a b; do
    on "$label"
    bench_log "($label) waiting for the worker to register"
    for i in $(seq 1 300); do
        kill -0 "${WORKER_PID[$label]}" 2>/dev/null || { tail -n 20 "$BENCH_DIR/worker-$label.log" >&2; bench_die "tocsin worker exited"; }
        [ "$(bench_sql "SELECT count(*) FROM workers WHERE pid = ${WORKER_PID[$label]} AND stopped_at IS NULL")" = 1 ] && break
        sleep 0.1
    done
    [ "$(bench_sql "SELECT count(*) FROM alert_rules WHERE enabled")" = 4 ] || bench_die "the 4 default rules are not applied"
done

load_history a "$SMALL"
load_history b "$BIG_N"
load_recent a
load_recent b
for label in a b; do : >"$BENCH_DIR/rounds-$label.txt"; : >"$BENCH_DIR/rules-$label.txt"; done
for i in $(seq 0 "$ROUNDS"); do
    round a "$i"
    round b "$i"
done
a_db=$(median_of a 1) a_http=$(median_of a 2) a_claim=$(median_of a 3) a_run=$(median_of a 4)
b_db=$(median_of b 1) b_http=$(median_of b 2) b_claim=$(median_of b 3) b_run=$(median_of b 4)
ratio_db=$(bench_ratio "$b_db" "$a_db")
ratio_http=$(bench_ratio "$b_http" "$a_http")
history_ok=$(bench_check "$b_db" "$a_db" "<=" 1.5)
for label in a b; do
    bench_stop_pid "${WORKER_PID[$label]}"
    bench_stop_pid "${SERVE_PID[$label]}"
done

# --- (c): 10,000 rules, two workers, on (b)'s database ----------------------
on b
rules_file="$BENCH_DIR/rules.yaml"
python3 "$BENCH_SCRIPTS/rules.py" --count "$RULES" --out "$rules_file" --interval 60s
load_recent b
bench_log "(c) applying $RULES rules"
start_s=$(date +%s.%N)
LOG_LEVEL=warning "$TOCSIN" rules apply "$rules_file" >>"$BENCH_DIR/migrate.log" 2>&1 \
    || { tail -n 20 "$BENCH_DIR/migrate.log" >&2; bench_die "tocsin rules apply of the generated rules failed"; }
apply_s=$(seconds_since "$start_s")
bench_log "(c) starting 2 workers with $RULES rules (DB_POOL_SIZE=10, WORKER_CONCURRENCY=8)"
start_s=$(date +%s.%N)
wenv=(DB_POOL_SIZE=10 WORKER_CONCURRENCY=8 ALERT_CHECK_INTERVAL=60)
bench_start worker1 "${wenv[@]}" -- worker
w1=$BENCH_LAST_PID
bench_start worker2 "${wenv[@]}" -- worker
w2=$BENCH_LAST_PID
# Wait until both workers have registered, then stop their start-up round
# and wait until they are idle.
up=0
state=""
for i in $(seq 1 1200); do
    for p in "$w1" "$w2"; do
        kill -0 "$p" 2>/dev/null || { tail -n 20 "$BENCH_DIR"/worker?.log >&2; bench_die "a tocsin worker exited during start-up"; }
    done
    state=$(bench_sql "SELECT (SELECT count(*) FROM alert_rules WHERE enabled) || ' ' ||
                              (SELECT count(*) FROM workers WHERE pid IN ($w1, $w2) AND stopped_at IS NULL)")
    if [ "$state" = "$RULES 2" ]; then up=1; break; fi
    sleep 0.2
done
[ "$up" = 1 ] || bench_die "the workers did not load $RULES rules and register within 4 minutes (enabled rules, workers: $state)"
startup_s=$(seconds_since "$start_s")
bench_log "(c) both workers up after $startup_s s; waiting until they are idle"
for i in $(seq 1 120); do
    sleep 1
    bench_sql "UPDATE alert_rules SET next_due_at = now() + interval '1 hour' WHERE enabled AND next_due_at < now() + interval '10 minutes'" >/dev/null
    recent_evals=$(bench_sql "SELECT count(*) FROM rule_evaluations WHERE started_at > now() - interval '2 seconds'")
    [ "$recent_evals" = 0 ] && [ "$i" -ge 3 ] && break
done
bench_log "(c) all $RULES rules due now"
# full_round LABEL — makes every rule due at once and waits until each has
# been evaluated again (or ROUND_TIMEOUT passes). Sets T (the round's start),
# done_count and elapsed_s.
full_round() {
    T=$(bench_sql "BEGIN; UPDATE alert_rules SET next_due_at = now() WHERE enabled; SELECT now(); COMMIT;" | grep -v '^$' | tail -n 1)
    local deadline=$(( $(date +%s) + ROUND_TIMEOUT )) polls=0
    done_count=0
    elapsed_s=0
    while :; do
        sleep 0.5
        polls=$((polls + 1))
        if [ "$DIAG" = 1 ] && [ "$1" = c ]; then
            bench_sql "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') || ' | ' || left(regexp_replace(query, '\s+', ' ', 'g'), 60)
                       FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()" \
                >>"$BENCH_DIR/waits-c.txt" || true
        fi
        read -r done_count elapsed_s < <(bench_sql "SELECT count(*) FILTER (WHERE last_evaluated_at >= '$T'),
            coalesce(extract(epoch FROM max(last_evaluated_at) - '$T'::timestamptz), 0)::numeric(10,2)
            FROM alert_rules WHERE enabled" | tr '|' ' ')
        [ "$done_count" -ge "$RULES" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            bench_log "($1) gave up after $ROUND_TIMEOUT s: $done_count of $RULES rules evaluated"
            elapsed_s=$(bench_sql "SELECT extract(epoch FROM now() - '$T'::timestamptz)::numeric(10,2)")
            break
        fi
        if [ $((polls % 10)) = 0 ]; then
            bench_log "($1) $done_count rules evaluated after $(bench_sql "SELECT extract(epoch FROM now() - '$T'::timestamptz)::numeric(10,1)") s"
        fi
    done
}

[ "$DIAG" = 1 ] && bench_sql "SELECT pg_stat_statements_reset()" >/dev/null
bench_profile_start "$w1" "$BENCH_DIR/worker1.perf"
pg_cpu0=$(bench_pg_cpu)
workers_cpu0=$(bench_cpu "$w1" "$w2")
full_round c
round_pg_cpu=$(difference "$pg_cpu0" "$(bench_pg_cpu)")
round_workers_cpu=$(difference "$workers_cpu0" "$(bench_cpu "$w1" "$w2")")
bench_profile_stop "$BENCH_DIR/worker1.perf" "$BENCH_DIR/worker1-profile.txt"
if [ -s "$BENCH_DIR/worker1-profile.txt" ]; then
    bench_log "(c) hottest functions of one tocsin worker during the round (perf, self time):"
    head -n 30 "$BENCH_DIR/worker1-profile.txt" | cut -c1-160 | sed 's/^/    /' >&2
fi
if [ "$DIAG" = 1 ]; then
    bench_psql -P footer=off -c "
        SELECT calls, round(total_plan_time::numeric) AS plan_ms, round(total_exec_time::numeric) AS exec_ms,
               round(((total_plan_time + total_exec_time) / greatest(calls, 1))::numeric, 2) AS ms_per_call,
               left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement
        FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT 20" >"$BENCH_DIR/statements-c.txt" 2>&1 || true
    bench_log "(c) the costliest statements during the round (pg_stat_statements):"
    sed 's/^/    /' "$BENCH_DIR/statements-c.txt" >&2
    bench_log "(c) what the busy database sessions were doing, sampled every 0.5 s (pg_stat_activity):"
    sort "$BENCH_DIR/waits-c.txt" | uniq -c | sort -rn | head -n 12 | sed 's/^/    /' >&2
fi
# An evaluation's started_at is a little after its transaction's now(), which
# is what last_evaluated_at records: hence the extra second.
in_round="started_at >= '$T' AND started_at <= '$T'::timestamptz + make_interval(secs => $elapsed_s + 1)"
evals=$(bench_sql "SELECT count(*) FROM (SELECT DISTINCT rule_id, started_at FROM rule_evaluations WHERE $in_round) e")
per_worker=$(bench_sql "SELECT string_agg(n::text, ' + ' ORDER BY n DESC) FROM (
                            SELECT worker_id, count(DISTINCT (rule_id, started_at)) AS n FROM rule_evaluations
                            WHERE $in_round GROUP BY worker_id) w")
rules_per_s=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / max(float(sys.argv[2]), 0.001):.0f}')" "$done_count" "$elapsed_s")
evals_per_s=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / max(float(sys.argv[2]), 0.001):.0f}')" "$evals" "$elapsed_s")
round_ok=$(python3 -c "import sys; print(int(int(sys.argv[1]) >= int(sys.argv[3]) and float(sys.argv[2]) <= 60))" "$done_count" "$elapsed_s" "$RULES")
failed_logs=$(cat "$BENCH_DIR"/worker1.log "$BENCH_DIR"/worker2.log | grep -c "evaluation failed" || true)
[ "$failed_logs" = 0 ] || bench_log "warning: the workers logged $failed_logs failed evaluations (see $BENCH_DIR/worker?.log)"
breakdown=$(bench_psql -P footer=off -c "
    WITH ev AS (
        SELECT rule_id, max(duration_ms) AS d FROM rule_evaluations WHERE $in_round GROUP BY rule_id, started_at)
    SELECT r.kind || CASE WHEN r.definition ? 'last' THEN ' (last N)' WHEN r.kind = 'aggregate' THEN ' (window)' ELSE '' END
               || CASE WHEN r.definition ? 'where' THEN ', where' ELSE '' END
               || CASE WHEN r.kind = 'composite' THEN '' ELSE ', group_by ' || r.group_by END AS rule_type,
           count(*) AS evaluations, round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1) AS median_ms,
           round((percentile_cont(0.95) WITHIN GROUP (ORDER BY d))::numeric, 1) AS p95_ms,
           round((sum(d) / 1000)::numeric, 1) AS total_s
    FROM ev JOIN alert_rules r ON r.id = ev.rule_id
    GROUP BY 1 ORDER BY sum(d) DESC")
# The kinds of the issue: plain rules by kind, filtered ones, those grouped
# by two labels, composites, SLOs. Target: no kind over 10 ms median.
# kind_stats — sets kinds (the table), kinds_ok and slowest_kind for the
# round in_round selects.
kind_stats() {
    kinds=$(bench_psql -P footer=off -c "
        WITH ev AS (
            SELECT rule_id, max(duration_ms) AS d FROM rule_evaluations WHERE $in_round GROUP BY rule_id, started_at)
        SELECT CASE WHEN r.kind IN ('composite', 'slo') THEN r.kind
                    WHEN r.definition ? 'where' THEN 'filtered (where:)'
                    WHEN r.group_by LIKE '%,%' THEN 'grouped by two labels'
                    ELSE r.kind || CASE WHEN r.definition ? 'last' THEN ' (last N)' WHEN r.kind = 'aggregate' THEN ' (window)' ELSE '' END
               END AS kind,
               count(*) AS evaluations, round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 2) AS median_ms,
               round((percentile_cont(0.95) WITHIN GROUP (ORDER BY d))::numeric, 2) AS p95_ms
        FROM ev JOIN alert_rules r ON r.id = ev.rule_id
        GROUP BY 1 ORDER BY 1")
    kinds_ok=$(bench_sql "
        WITH ev AS (
            SELECT rule_id, max(duration_ms) AS d FROM rule_evaluations WHERE $in_round GROUP BY rule_id, started_at),
        k AS (
            SELECT CASE WHEN r.kind IN ('composite', 'slo') THEN r.kind WHEN r.definition ? 'where' THEN 'where'
                        WHEN r.group_by LIKE '%,%' THEN 'two' ELSE r.kind || (r.definition ? 'last')::text END AS kind,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median
            FROM ev JOIN alert_rules r ON r.id = ev.rule_id GROUP BY 1)
        SELECT (count(*) > 0 AND bool_and(median <= 10))::int FROM k")
    # The slowest kind's median, for the table of scripts/bench/all.sh.
    slowest_kind=$(bench_sql "
        WITH ev AS (
            SELECT rule_id, max(duration_ms) AS d FROM rule_evaluations WHERE $in_round GROUP BY rule_id, started_at),
        k AS (
            SELECT CASE WHEN r.kind IN ('composite', 'slo') THEN r.kind WHEN r.definition ? 'where' THEN 'filtered'
                        WHEN r.group_by LIKE '%,%' THEN 'two labels' ELSE r.kind || CASE WHEN r.definition ? 'last' THEN ' last N' ELSE '' END END AS kind,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median
            FROM ev JOIN alert_rules r ON r.id = ev.rule_id GROUP BY 1)
        SELECT kind || ' ' || round(median::numeric, 1) || ' ms' FROM k ORDER BY median DESC LIMIT 1")
}
kind_stats
c_kinds=$kinds c_kinds_ok=$kinds_ok c_slowest_kind=$slowest_kind c_elapsed_s=$elapsed_s c_done_count=$done_count

# --- (d): the same round again, in the steady state --------------------------
# The first round after start-up also counts each SLO's period (30 days of
# rollups), which a rule then reuses for 10 minutes: the second round is
# what every interval costs, with one period count in ten.
bench_log "(d) every rule due again: the steady state"
sleep 2
full_round d
in_round="started_at >= '$T' AND started_at <= '$T'::timestamptz + make_interval(secs => $elapsed_s + 1)"
kind_stats
d_kinds=$kinds d_kinds_ok=$kinds_ok d_slowest_kind=$slowest_kind d_elapsed_s=$elapsed_s d_done_count=$done_count
d_ok=$(python3 -c "import sys; print(int(int(sys.argv[1]) >= int(sys.argv[3]) and float(sys.argv[2]) <= 60))" "$d_done_count" "$d_elapsed_s" "$RULES")
d_rules_per_s=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / max(float(sys.argv[2]), 0.001):.0f}')" "$d_done_count" "$d_elapsed_s")
bench_stop_pid "$w1"
bench_stop_pid "$w2"

# --- (e): each kind alone ------------------------------------------------------
# In (c) and (d) sixteen evaluations share two CPUs, so duration_ms counts
# the wait for a CPU too. Here one worker evaluates one rule at a time: 50
# rules of each kind (periods still counted within 10 minutes, as in (d)).
bench_log "(e) one worker, one evaluation at a time: 50 rules of each kind"
bench_start worker3 DB_POOL_SIZE=4 WORKER_CONCURRENCY=1 ALERT_CHECK_INTERVAL=60 -- worker
w3=$BENCH_LAST_PID
for i in $(seq 1 600); do
    [ "$(bench_sql "SELECT count(*) FROM workers WHERE pid = $w3 AND stopped_at IS NULL")" = 1 ] && break
    sleep 0.2
done
sleep 3
bench_sql "UPDATE alert_rules SET next_due_at = now() + interval '1 hour' WHERE enabled" >/dev/null
kind_case="CASE WHEN kind IN ('composite', 'slo') THEN kind WHEN definition ? 'where' THEN 'where'
                WHEN group_by LIKE '%,%' THEN 'two' ELSE kind || (definition ? 'last')::text END"
T=$(bench_sql "BEGIN; UPDATE alert_rules SET next_due_at = now() WHERE id IN (
                   SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY $kind_case ORDER BY id) AS n FROM alert_rules WHERE enabled) s
                   WHERE n <= 50); SELECT now(); COMMIT;" | grep -v '^$' | tail -n 1)
sampled=$(bench_sql "SELECT count(*) FROM alert_rules WHERE next_due_at <= '$T'")
for i in $(seq 1 600); do
    [ "$(bench_sql "SELECT count(*) FROM alert_rules WHERE last_evaluated_at >= '$T'")" -ge "$sampled" ] && break
    sleep 0.5
done
elapsed_s=$(bench_sql "SELECT coalesce(extract(epoch FROM max(last_evaluated_at) - '$T'::timestamptz), 0)::numeric(10,2) FROM alert_rules")
in_round="started_at >= '$T' AND started_at <= '$T'::timestamptz + make_interval(secs => $elapsed_s + 1)"
kind_stats
e_kinds=$kinds e_kinds_ok=$kinds_ok e_slowest_kind=$slowest_kind
bench_stop_pid "$w3"

echo
echo "Tocsin rule evaluation benchmark ($(nproc) CPUs, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), default durability; $(bench_load) at the end)"
bench_row "(a) 4 default rules, $SMALL events, median" "$a_db ms" "in the database (sum of duration_ms)"
bench_row "    HTTP round trip, median" "$a_http ms" "claimed after $a_claim ms, answered $a_run ms later"
bench_row "(b) 4 default rules, $BIG_N events, median" "$b_db ms" "in the database (sum of duration_ms)"
bench_row "    HTTP round trip, median" "$b_http ms" "claimed after $b_claim ms, answered $b_run ms later"
bench_row "(b)/(a)" "$ratio_db" "target <= 1.5: $(bench_verdict "$history_ok") (HTTP round trips: $ratio_http)"
echo "  per rule, median of $ROUNDS rounds:              (a)          (b)"
rule_medians
bench_row "(c) $RULES rules, 2 workers: full round" "$c_elapsed_s s" "target: all $RULES within 60 s: $(bench_verdict "$round_ok") ($c_done_count evaluated)"
bench_row "(c) rules evaluated per second" "$rules_per_s/s" "evaluations in the round: $evals ($per_worker per worker) = $evals_per_s/s"
bench_row "(c) CPU seconds in the round" "$round_pg_cpu + $round_workers_cpu s" "PostgreSQL + the two workers"
bench_row "(c) tocsin rules apply of $RULES rules" "$apply_s s" "one transaction, a new rules version"
bench_row "(c) worker start-up with $RULES rules" "$startup_s s" "until both workers registered"
echo "  (c) where the time went (duration_ms of each evaluation, by rule type):"
sed 's/^/    /' <<<"$breakdown"
echo "  (c) each kind's evaluation time (duration_ms), target no kind over 10 ms median: $(bench_verdict "$c_kinds_ok"):"
sed 's/^/    /' <<<"$c_kinds"
bench_row "(d) the round again (steady state)" "$d_elapsed_s s" "target: all $RULES within 60 s: $(bench_verdict "$d_ok") ($d_done_count evaluated, $d_rules_per_s/s)"
echo "  (d) each kind's evaluation time (duration_ms), target no kind over 10 ms median: $(bench_verdict "$d_kinds_ok"):"
sed 's/^/    /' <<<"$d_kinds"
echo "  (e) each kind alone (one worker, one evaluation at a time; $sampled rules), target no kind over 10 ms median: $(bench_verdict "$e_kinds_ok"):"
sed 's/^/    /' <<<"$e_kinds"

# The issue's bars: 100,000 rules in one 60 s interval is the measured rate
# times 60 (the round holds RULES rules); "run checks now" within the
# evaluations' own time + 20 ms.
per_interval=$(python3 -c "import sys; print(round(float(sys.argv[1]) * 60))" "$rules_per_s")
capacity_ok=$(python3 -c "import sys; print(int(int(sys.argv[1]) >= 100000))" "$per_interval")
check_ok=$(python3 -c "import sys; print(int(float(sys.argv[1]) <= float(sys.argv[2]) + 20))" "$b_http" "$b_db")
bench_figure "rules: 4 defaults on $BIG_N vs $SMALL events (database time)" "$b_db ms" "$a_db ms" "$ratio_db" "<= 1.5" \
    "$(bench_met "$history_ok")"
bench_figure "rules: run checks now, HTTP round trip" "$b_http ms" "evaluation $b_db ms" "+$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$b_http" "$b_db") ms" \
    "<= evaluation + 20 ms" "$(bench_met "$check_ok")"
bench_figure "rules: $RULES rules, 2 workers, full round" "$c_elapsed_s s ($rules_per_s rules/s)" "-" "-" "-" "-"
bench_figure "rules: capacity of one 60 s interval (rate × 60)" "$per_interval rules" "100000 rules" \
    "$(bench_ratio "$per_interval" 100000)" ">= 100,000" "$(bench_met "$capacity_ok")"
bench_figure "rules: slowest kind's median evaluation, first round" "$c_slowest_kind" "-" "-" "<= 10 ms" "$(bench_met "$c_kinds_ok")"
bench_figure "rules: $RULES rules, steady-state round" "$d_elapsed_s s ($d_rules_per_s rules/s)" "-" "-" "-" "-"
bench_figure "rules: slowest kind's median evaluation, steady state" "$d_slowest_kind" "-" "-" "<= 10 ms" "$(bench_met "$d_kinds_ok")"
bench_figure "rules: slowest kind's median evaluation, one at a time" "$e_slowest_kind" "-" "-" "<= 10 ms" "$(bench_met "$e_kinds_ok")"
