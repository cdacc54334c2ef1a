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
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"

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
cat >"$W/rules.yaml" <<'EOF'
# Short windows so that rules fire and resolve within seconds.
rules:
  - name: chaos_upload_errors
    description: Upload failure rate above 30 % over 10 s
    severity: error
    kind: ratio
    numerator: [upload.failure]
    denominator: [upload.success, upload.failure]
    min_samples: 5
    window: 10s
    comparison: ">"
    threshold: 0.3
    group_by: platform
    no_data: resolve
  - name: chaos_token_refresh
    description: More than 5 token refresh failures in 10 s
    severity: critical
    kind: count
    metric: token.refresh.failure
    window: 10s
    comparison: ">"
    threshold: 5
  - name: chaos_oauth
    description: More than 3 OAuth failures in 5 s on a platform, for 6 s
    severity: warning
    kind: count
    metric: oauth.failure
    window: 5s
    comparison: ">"
    threshold: 3
    group_by: platform
    for: 6s
EOF
# The cluster gets a PostgreSQL of its own (the run restarts it).
env -u DATABASE_URL "$ROOT/scripts/cluster.sh" --background --env-file "$W/cluster.env" --dir "$W/cluster" \
    --env ALERT_RULES_FILE="$W/rules.yaml" \
    --env ALERT_CHECK_INTERVAL="$INTERVAL" \
    --env SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack" \
    --env NOTIFY_RETRY_BASE_SECONDS=0.2 \
    --env NOTIFY_LEASE_SECONDS=5 \
    || cluster_die "the cluster did not start"
cluster_load "$W/cluster.env"
receiver_control '{"mode": "ok", "fail_ratio": 0.3, "rate_limit_ratio": 0.05, "retry_after": "1"}'

# ---- Traffic ------------------------------------------------------------------
cat >"$W/traffic.py" <<'EOF'
"""Chaos traffic: ingestion with Idempotency-Key and retries, plus reads."""
import http.client, json, random, sys, threading, time, urllib.parse

url, key, duration, tail, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
parsed = urllib.parse.urlparse(url)
start = time.time()
stop_at = start + duration
give_up_at = stop_at + tail
lock = threading.Lock()
stats = {"batches_acked": 0, "events_acked": 0, "events_sent": 0, "attempts": 0, "retries": 0, "replayed": 0,
         "status": {}, "errors": {}, "rejected": 0, "unresolved_batches": 0, "unresolved_events": 0,
         "accepted_mismatch": 0, "reads_ok": 0, "reads_failed": 0}
CYCLE = 24.0

def phase_events(now, rng):
    """The batch for this moment of the 24 s cycle: normal traffic on both
    platforms, with failure bursts that make the chaos rules fire."""
    t = (now - start) % CYCLE
    events = []
    for platform in ("tiktok", "instagram"):
        bad_upload = (platform == "tiktok" and t < 7) or (platform == "instagram" and 12 <= t < 19)
        for _ in range(rng.randint(2, 5)):
            fail = rng.random() < (0.6 if bad_upload else 0.05)
            events.append({"name": "upload.failure" if fail else "upload.success", "platform": platform})
        events.append({"name": "api.latency", "platform": platform, "value": round(rng.uniform(0.05, 0.4), 3)})
        if rng.random() < 0.3:
            events.append({"name": "oauth.success", "platform": platform})
    if 6 <= t < 11 and rng.random() < 0.5:
        events.append({"name": "token.refresh.failure"})
    else:
        events.append({"name": "token.refresh.success"})
    # OAuth: sustained on tiktok (fires after `for`), a short burst on
    # instagram (pending, then resolved without firing).
    if 2 <= t < 14 and rng.random() < 0.4:
        events.append({"name": "oauth.failure", "platform": "tiktok"})
    if 16 <= t < 17 and rng.random() < 0.8:
        events.append({"name": "oauth.failure", "platform": "instagram"})
    return events

def count(kind, name):
    with lock:
        stats[kind][name] = stats[kind].get(name, 0) + 1

def sender(index):
    rng = random.Random(index * 7919 + int(start))
    conn = None
    seq = 0
    while time.time() < stop_at:
        seq += 1
        events = phase_events(time.time(), rng)
        body = json.dumps(events).encode()
        idem = f"chaos-{int(start)}-{index}-{seq}"
        with lock:
            stats["events_sent"] += len(events)
        first = True
        while True:
            if not first:
                with lock:
                    stats["retries"] += 1
                if time.time() > give_up_at:
                    with lock:
                        stats["unresolved_batches"] += 1
                        stats["unresolved_events"] += len(events)
                    break
                time.sleep(rng.uniform(0.1, 0.5))
            first = False
            with lock:
                stats["attempts"] += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=15)
                conn.request("POST", "/api/metrics", body=body, headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": idem})
                resp = conn.getresponse()
                payload = resp.read()
                count("status", str(resp.status))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close(); conn = None
            except Exception as e:  # connection reset, refused, timeout: retry
                count("errors", type(e).__name__)
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if 200 <= resp.status < 300:
                accepted = json.loads(payload).get("accepted", -1)
                with lock:
                    stats["batches_acked"] += 1
                    stats["events_acked"] += accepted
                    if accepted != len(events):
                        stats["accepted_mismatch"] += 1
                    if resp.getheader("Idempotent-Replayed") == "true":
                        stats["replayed"] += 1
                break
            if resp.status in (408, 429) or resp.status >= 500:
                continue
            with lock:  # a 4xx: the request itself is wrong; not retried
                stats["rejected"] += 1
            sys.stderr.write(f"rejected {resp.status}: {payload[:300]!r}\n")
            break
        time.sleep(rng.uniform(0.05, 0.15))

def reader():
    conn = None
    while time.time() < stop_at:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=15)
            conn.request("GET", "/api/monitoring/metrics?window=1h", headers={"Authorization": f"Bearer {key}"})
            resp = conn.getresponse()
            resp.read()
            with lock:
                stats["reads_ok" if resp.status == 200 else "reads_failed"] += 1
        except Exception:
            with lock:
                stats["reads_failed"] += 1
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.5)

threads = [threading.Thread(target=sender, args=(i,)) for i in range(3)] + [threading.Thread(target=reader)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    json.dump(stats, f)
EOF
python3 "$W/traffic.py" "$URL" "$KEY" "$DURATION" "$TAIL" "$W/traffic.json" 2>"$W/traffic.err" &
TRAFFIC_PID=$!

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
        echo "$(date +%s.%N) pg-restart-begin" >>"$W/faults.log"
        cluster_log "restarting PostgreSQL"
        as_pg "$(pg_bindir)/pg_ctl" -D "$CLUSTER_PG_DIR/data" -m fast -w -t 60 restart >>"$W/pg-restart.log" 2>&1 \
            || { cat "$W/pg-restart.log" >&2; FAILED=1; cluster_die "pg_ctl restart failed"; }
        echo "$(date +%s.%N) pg-restart-end" >>"$W/faults.log"
    fi
    if ! kill -0 "$TRAFFIC_PID" 2>/dev/null; then
        cat "$W/traffic.err" >&2
        FAILED=1
        cluster_die "the traffic generator stopped early"
    fi
    sleep 0.5
done

cluster_log "faults over; waiting for the traffic generator's last batches (at most ${TAIL}s)"
wait "$TRAFFIC_PID" || { cat "$W/traffic.err" >&2; FAILED=1; cluster_die "the traffic generator failed"; }
TRAFFIC_PID=""
receiver_control '{"mode": "ok", "fail_ratio": 0, "rate_limit_ratio": 0, "script": []}'

# ---- Drain: alerts resolve once traffic stops; the outbox empties ------------------
cluster_log "draining: waiting (at most ${DRAIN}s) for open alerts to resolve and the outbox to empty"
drained=0
for _ in $(seq 1 $((DRAIN * 2))); do
    state=$(cluster_sql "SELECT (SELECT count(*) FROM notifications WHERE status = 'pending') || ' ' ||
                                (SELECT count(*) FROM alerts WHERE status <> 'resolved')" 2>/dev/null || echo "? ?")
    if [ "$state" = "0 0" ]; then drained=1; break; fi
    sleep 0.5
done
if [ "$drained" = 1 ]; then
    cluster_log "drained"
else
    cluster_log "not drained within ${DRAIN}s (pending notifications, open alerts: $state)"
fi
# Let the receiver's log settle (a delivery may be in flight as it is marked).
sleep 1

# ---- Checks -------------------------------------------------------------------------
cluster_psql -c "\copy (SELECT id, alert_id, transition, status, attempts, extract(epoch FROM created_at), extract(epoch FROM sent_at) FROM notifications ORDER BY id) TO '$W/notifications.csv' CSV"
cluster_psql -c "\copy (SELECT alert_id, transition, extract(epoch FROM at) FROM alert_events ORDER BY id) TO '$W/alert_events.csv' CSV"

cat >"$W/check.py" <<'EOF'
import csv, json, subprocess, sys
from collections import defaultdict

w, psql, dburl, drained = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"

def sql(query):
    out = subprocess.run([psql, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", dburl, "-c", query],
                         capture_output=True, text=True, check=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line]

failures = []
def line(label, value, ok=None, note=""):
    mark = "" if ok is None else ("ok  " if ok else "FAIL")
    print(f"  {mark:4} {label:<62} {value}{('  ' + note) if note else ''}")
    if ok is False:
        failures.append(label)

traffic = json.load(open(f"{w}/traffic.json"))
faults = [l.split() for l in open(f"{w}/faults.log") if l.strip()]
kills = [(float(f[0]), f[2]) for f in faults if f[1] == "kill"]
pg_times = [float(f[0]) for f in faults if f[1].startswith("pg-restart")]
exits = [l.split() for l in open(f"{w}/cluster/exits.log") if l.strip()]
killed_pids = {f[3] for f in faults if f[1] == "kill"}
unexpected = [e for e in exits if e[2] not in killed_pids]

print()
print("chaos results")
print(f"  faults: {len(kills)} processes SIGKILLed ({', '.join(k[1] for k in kills)}), "
      f"PostgreSQL restarted {len(pg_times) // 2} time(s)")
print(f"  traffic: {traffic['batches_acked']} batches acknowledged, {traffic['attempts']} attempts, "
      f"{traffic['retries']} retries ({traffic['replayed']} answered from the idempotency record), "
      f"statuses {traffic['status']}, connection errors {traffic['errors'] or 'none'}; "
      f"reads {traffic['reads_ok']} ok / {traffic['reads_failed']} failed")
def during_pg(t):
    return len(pg_times) == 2 and pg_times[0] - 1 <= t <= pg_times[1] + 5
if unexpected:
    print(f"  note: {len(unexpected)} process exit(s) not caused by a SIGKILL of this run (restarted by the cluster): "
          + ", ".join(f"{e[1]} status {e[3]}" + (" while PostgreSQL restarted" if during_pg(float(e[0])) else "")
                      for e in unexpected)
          + f" (logs: {w}/cluster/logs)")
print()

stored = int(sql("SELECT count(*) FROM metric_events")[0][0])
acked = traffic["events_acked"]
note = ""
if traffic["unresolved_batches"]:
    note = f"({traffic['unresolved_batches']} batches never acknowledged: {traffic['unresolved_events']} events in doubt)"
if traffic["rejected"]:
    note += f" ({traffic['rejected']} batches rejected with 4xx)"
line("events acknowledged with 2xx vs events stored", f"{acked} vs {stored}",
     acked == stored and traffic["unresolved_batches"] == 0 and traffic["rejected"] == 0, note.strip())

dup_open = int(sql("""SELECT count(*) FROM (SELECT rule_id, group_key FROM alerts WHERE status <> 'resolved'
                      GROUP BY 1, 2 HAVING count(*) > 1) d""")[0][0])
overlap = int(sql("""SELECT count(*) FROM alerts a JOIN alerts b ON a.rule_id = b.rule_id AND a.group_key = b.group_key
                     AND a.id < b.id AND b.started_at < coalesce(a.resolved_at, 'infinity')""")[0][0])
alerts = sql("SELECT count(*), count(*) FILTER (WHERE fired_at IS NOT NULL), count(*) FILTER (WHERE status <> 'resolved') FROM alerts")[0]
line("open alerts duplicated per rule and group", dup_open, dup_open == 0,
     f"(alerts {alerts[0]}, fired {alerts[1]}, still open {alerts[2]}; overlapping alerts {overlap})")
if overlap:
    failures.append("overlapping alerts")

events = list(csv.reader(open(f"{w}/alert_events.csv")))
notifications = list(csv.reader(open(f"{w}/notifications.csv")))
fired = {e[0] for e in events if e[1] == "fired"}
transitions = [(e[0], e[1]) for e in events if e[1] == "fired" or (e[1] == "resolved" and e[0] in fired)]
done = {(n[1], n[2]) for n in notifications if n[3] in ("sent", "dead")}
status_count = defaultdict(int)
for n in notifications:
    status_count[n[3]] += 1
missing = [t for t in transitions if t not in done]
resolved_unfired = sum(1 for e in events if e[1] == "resolved" and e[0] not in fired)
line("alert transitions (fired, resolved-after-fired) without a sent or dead notification",
     len(missing), len(missing) == 0,
     f"({len(transitions)} transitions; notifications {dict(status_count)}; "
     f"{resolved_unfired} pending alerts resolved without firing, not notified)")
if missing:
    print("         missing:", ", ".join(f"alert {a} {t}" for a, t in missing[:20]))

# The receiver's log: Slack messages identified by alert id (footer) and kind (title).
received = defaultdict(list)   # (alert_id, kind) → [(time, status)]
for raw in open(f"{w}/slack.jsonl"):
    r = json.loads(raw)
    try:
        body = json.loads(r["body"])
        footer = body["attachments"][0]["footer"]
        alert_id = footer.rsplit(" ", 1)[1]
        kind = "resolved" if body["text"].startswith("[RESOLVED]") else "fired"
    except (ValueError, KeyError, IndexError):
        print(f"  note: unrecognised request in the receiver log: {r['body'][:120]}")
        continue
    received[(alert_id, kind)].append((r["at"], r["status"]))
acknowledged = {k: [t for t, s in v if 200 <= s < 300] for k, v in received.items()}
answers = defaultdict(int)
for v in received.values():
    for _, s in v:
        answers[s] += 1
print(f"  Slack receiver: {sum(answers.values())} requests for {len(received)} messages, answered {dict(sorted(answers.items()))}")
sent = {(n[1], n[2]) for n in notifications if n[3] == "sent"}
lost = [k for k in sent if not acknowledged.get(k)]
line("notifications marked sent that Slack never acknowledged", len(lost), len(lost) == 0)

duplicates = {k: v for k, v in acknowledged.items() if len(v) > 1}
unexplained = []
for k, times in duplicates.items():
    first, last = min(times), max(times)
    worker_killed = any(first - 0.5 <= t <= last and name.startswith("worker") for t, name in kills)
    # PostgreSQL restarted while the first delivery was being recorded.
    pg = bool(pg_times) and first <= pg_times[-1] + 1 and last >= pg_times[0] - 1
    if not (worker_killed or pg):
        unexplained.append(k)
line("deliveries received twice (at-least-once window)", len(duplicates), len(unexplained) == 0,
     f"({len(duplicates) - len(unexplained)} explained by a worker killed or PostgreSQL restarted between them"
     + (f"; unexplained: {unexplained}" if unexplained else "") + ")")

rows = sql("""SELECT e.rule_name, coalesce(e.group_key, ''), floor(extract(epoch FROM e.started_at) / r.interval_seconds)::bigint,
                     count(*)
              FROM rule_evaluations e JOIN alert_rules r ON r.id = e.rule_id
              WHERE e.trigger = 'schedule'
              GROUP BY 1, 2, 3""")
per_slot = defaultdict(int)
over = [r for r in rows if int(r[3]) > 1]
by_trigger = dict((r[0], r[1]) for r in sql("SELECT trigger, count(*) FROM rule_evaluations GROUP BY 1"))
slots = defaultdict(set)
for r in rows:
    slots[r[0]].add(int(r[2]))
line("evaluations per rule, group and interval (scheduled): at most one",
     f"max {max((int(r[3]) for r in rows), default=0)}", not over,
     f"({sum(int(r[3]) for r in rows)} scheduled evaluations in {len(rows)} rule-group-intervals; by trigger {by_trigger})")
for r in over[:10]:
    detail = sql(f"""SELECT to_char(started_at, 'HH24:MI:SS.MS'), trigger, worker_id FROM rule_evaluations
                     WHERE rule_name = '{r[0]}' AND coalesce(group_key, '') = '{r[1]}' AND trigger = 'schedule'
                       AND floor(extract(epoch FROM started_at) / (SELECT interval_seconds FROM alert_rules WHERE name = '{r[0]}')) = {r[2]}
                     ORDER BY started_at""")
    print(f"         {r[0]} [{r[1]}] interval {r[2]}: {r[3]} evaluations: " + ", ".join(" ".join(d) for d in detail))
if not drained:
    print("  note: the outbox did not drain in time; pending notifications count as missing above")
print()
if failures:
    print(f"chaos: FAILED ({len(failures)}): " + "; ".join(failures))
    sys.exit(1)
print("chaos: passed")
EOF
if ! python3 "$W/check.py" "$W" "$(pg_bindir)/psql" "$DATABASE_URL" "$drained"; then
    FAILED=1
    exit 1
fi
