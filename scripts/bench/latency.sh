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
# apart or more; one warm-up trial is not counted. Then a storm: 500
# platforms cross the threshold in one POST; the figures are the first
# message's latency and how many messages the storm makes.
#
# The whole run is done twice: with today's default (one message per alert
# transition), then with grouped routes (NOTIFY_CONFIG): the trials on a route
# grouped by rule and platform, so each is a new group whose first message is
# what group_wait 0s promises, and the storm on one grouped by rule.
#
# Then the Alertmanager API path: TRIALS alerts posted to POST /api/v2/alerts
# (each a new alertname, as Prometheus would post them; 1.5 s apart, for
# Slack's rate limit) → the Slack receiver, p50/p95 (target p50 < 50 ms); and
# beside it, in the same run, the same path through Debian's Alertmanager 0.25
# (prometheus-alertmanager on 127.0.0.1, slack_configs api_url at the same
# receiver, group_by [alertname]) with group_wait 30s (its default) and 0s.
#
#   scripts/bench/latency.sh [TRIALS]     default 20
#
# Targets: p50 <= 20 ms, p95 <= 40 ms. For comparison, Prometheus +
# Alertmanager at default settings: 82 s median; tuned: 0.9 s.
# TOCSIN_BIN=/path/to/tocsin skips the release build (.build-deploy).
# Exits non-zero only when the set-up fails or a message never arrives.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"
source "$ROOT/scripts/bench/figures.sh"

TRIALS=${1:-20}
case "$TRIALS" in ''|*[!0-9]*) echo "usage: $0 [TRIALS]" >&2; exit 2 ;; esac

ensure_packages postgresql curl python3 prometheus-alertmanager
TOCSIN_BIN=$(cluster_tocsin_binary)

W=$(mktemp -d /tmp/tocsin-bench-latency.XXXXXX)
chmod 755 "$W"
RUN_PID=""
RECEIVER_PID=""
AM_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$RUN_PID" ] && cluster_stop_pid "$RUN_PID" 15
    [ -n "$AM_PID" ] && cluster_stop_pid "$AM_PID" 15
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
# The storm opens 500 groups of high_error_rate, more than a rule's default
# max_groups (100): the copy of the default rules `tocsin run` applies here
# allows 1,000 for that rule, and is otherwise the shipped file.
python3 - "$W/rules/default.yaml" <<'PYTHON'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
start = lines.index("  - name: high_error_rate")
at = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("group_by:"))
lines.insert(at + 1, "    max_groups: 1000")
open(path, "w").write("\n".join(lines))
PYTHON
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

# start_run [ENV=VALUE …] — tocsin run with the default configuration
# (except where Slack is and the log level) and the given extra settings.
start_run() {
    port=$(free_port)
    env HOST=127.0.0.1 PORT="$port" LOG_LEVEL="${LOG_LEVEL:-warning}" LOG_FORMAT=text \
        SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack" "$@" \
        "$TOCSIN" run >>"$W/run.log" 2>&1 &
    RUN_PID=$!
    cluster_wait_http "http://127.0.0.1:$port/readyz" 60 "$RUN_PID" \
        || { tail -n 20 "$W/run.log" >&2; cluster_die "tocsin run did not become ready"; }
    for _ in $(seq 1 100); do
        n=$("$(pg_bindir)/psql" -X -tA "$DATABASE_URL" -c "SELECT count(*) FROM workers WHERE stopped_at IS NULL")
        [ "$n" -ge 1 ] && break
        sleep 0.1
    done
}
binary_kind=release
case "$TOCSIN_BIN" in *debug*) binary_kind="debug (TOCSIN_BIN)" ;; esac

cat >"$W/latency.py" <<'PYTHON'
import json, os, subprocess, sys, time, urllib.request

url, key, receiver, trials, binary, load, mode, psql, db = sys.argv[1:10]
trials = int(trials)
grouped = mode == "grouped"
prefix, storm_prefix = ("g", "sb") if grouped else ("p", "sa")

def post_events(platforms, per=10):
    body = json.dumps([{"name": "upload.failure", "platform": p} for p in platforms for _ in range(per)]).encode()
    req = urllib.request.Request(f"{url}/api/metrics", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 202:
            raise SystemExit(f"POST /api/metrics answered {r.status}")

def messages():
    with urllib.request.urlopen(f"{receiver}/_requests", timeout=5) as r:
        out = []
        for record in json.loads(r.read()):
            try:
                out.append((record["at"], json.loads(record["body"]).get("text", "")))
            except ValueError:
                pass
        return out

def sql(query):
    return subprocess.run([psql, "-X", "-tA", db, "-c", query], check=True, capture_output=True, text=True).stdout.strip()

def title(platform):
    # On the grouped run the trials go to a route grouped by rule and
    # platform: each trial is a new group, and its first message is timed.
    if grouped:
        return f"[FIRING:1] platform={platform}, rule=high_error_rate"
    return f"[FIRING] high_error_rate · {platform}"

def arrival(match, deadline):
    while time.time() < deadline:
        found = [at for at, text in messages() if match(text)]
        if found:
            return min(found)
        time.sleep(0.005)
    return None

def trial(platform):
    t0 = time.time()
    post_events([platform])
    want = title(platform)
    at = arrival(lambda text: text == want, t0 + 120)
    if at is None:
        raise SystemExit(f"no Slack message for {platform} within 120 s")
    return (at - t0) * 1000

trial(prefix + "0")
time.sleep(1.5)
latencies = []
for i in range(1, trials + 1):
    ms = trial(f"{prefix}{i}")
    latencies.append(ms)
    sys.stderr.write(f"  {mode} trial {i:2}: {ms:7.1f} ms\n")
    time.sleep(1.5)

# The storm: 500 platforms cross high_error_rate in one POST (5,000 events).
storm = [f"{storm_prefix}{i:03d}" for i in range(500)]
if grouped:
    is_storm = lambda text: "rule=high_error_rate" in text and "platform=" not in text
else:
    is_storm = lambda text: f"· {storm_prefix}" in text
t0 = time.time()
post_events(storm)
first = arrival(is_storm, t0 + 120)
if first is None:
    raise SystemExit("no message for the storm within 120 s")
deadline = time.time() + 60
while time.time() < deadline:
    if sql(f"SELECT count(*) FROM alerts WHERE platform LIKE '{storm_prefix}%' AND fired_at IS NOT NULL") == "500":
        break
    time.sleep(0.2)
time.sleep(15)
fired = sql(f"SELECT count(*) FROM alerts WHERE platform LIKE '{storm_prefix}%' AND fired_at IS NOT NULL")
if grouped:
    queued = sql("SELECT count(*) FROM notifications WHERE route = 'storm'")
else:
    queued = sql("SELECT count(*) FROM notifications n JOIN alerts a ON a.id = n.alert_id "
                 f"WHERE a.platform LIKE '{storm_prefix}%'")
arrived = [text for at, text in messages() if is_storm(text)]

def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]

p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
print()
if grouped:
    print(f"Grouped route, group_wait 0s (trials: group_by [rule, platform], each a new group; storm: group_by [rule], "
          f"group_interval 10s); tocsin run ({binary}); load before: {load}")
else:
    print(f"Alert latency, events sent → Slack message received: {trials} trials, each a fresh alert "
          f"(high_error_rate, platforms p1…p{trials}); tocsin run ({binary}), default rules and "
          f"ALERT_CHECK_INTERVAL 60, one message per transition (today's default); load before: {load}")
print(f"  first message of a new {'group' if grouped else 'alert'}: min {min(latencies):.0f} ms, max {max(latencies):.0f} ms")
print(f"  p50 {p50:7.0f} ms   target <= 20 ms   {'met' if p50 <= 20 else 'missed'}")
print(f"  p95 {p95:7.0f} ms   target <= 40 ms   {'met' if p95 <= 40 else 'missed'}")
figures = os.environ.get("TOCSIN_BENCH_FIGURES")
if figures:
    what = "grouped route, first message of a new group" if grouped else "events → Slack, fresh alert"
    with open(figures, "a") as f:
        f.write(f"{what}, p50 of {trials}\t{p50:.0f} ms\t-\t-\t<= 20 ms\t{'met' if p50 <= 20 else 'missed'}\n")
        f.write(f"{what}, p95 of {trials}\t{p95:.0f} ms\t-\t-\t<= 40 ms\t{'met' if p95 <= 40 else 'missed'}\n")
print(f"  500-alert storm ({fired} fired): first message after {(first - t0) * 1000:.0f} ms; "
      f"{queued} message(s) queued, {len(arrived)} received within 15 s (Slack's rate limit: 1 a second, burst 5)")
if not grouped:
    print("  reference: Prometheus + Alertmanager: 82 s median at default settings, 0.9 s tuned")
PYTHON

cat >"$W/grouped.yaml" <<'YAML'
channels:
  - name: slack
    kind: slack
    url_env: SLACK_WEBHOOK_URL
routes:
  - name: trials
    channels: [slack]
    labels: {platform: {regex: "g[0-9]+"}}
    group_by: [rule, platform]
  - name: storm
    channels: [slack]
    labels: {platform: {regex: "sb[0-9]+"}}
    group_by: [rule]
    group_interval: 10s
YAML

# Today's behaviour first: the default configuration, one message per transition.
start_run
python3 "$W/latency.py" "http://127.0.0.1:$port" "$KEY" "http://127.0.0.1:$RECEIVER_PORT" "$TRIALS" "$binary_kind" \
    "$load" today "$(pg_bindir)/psql" "$DATABASE_URL"
cluster_stop_pid "$RUN_PID" 15
RUN_PID=""

# The same with grouped routes, on a database of its own: the first run's
# 500 open alerts (and Slack's spent rate limit) are not part of it.
"$(pg_bindir)/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres tocsin_grouped
export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/tocsin_grouped"
"$TOCSIN" migrate >>"$W/migrate.log" 2>&1 || { cat "$W/migrate.log" >&2; cluster_die "tocsin migrate failed"; }
KEY=$("$TOCSIN" keys create --scope ingest,read --name latency-bench 2>>"$W/migrate.log" | tail -n 1)
curl -fsS -o /dev/null --max-time 5 -X DELETE "http://127.0.0.1:$RECEIVER_PORT/_requests"
start_run NOTIFY_CONFIG="$W/grouped.yaml"
python3 "$W/latency.py" "http://127.0.0.1:$port" "$KEY" "http://127.0.0.1:$RECEIVER_PORT" "$TRIALS" "$binary_kind" \
    "$(cut -d' ' -f1 /proc/loadavg)" grouped "$(pg_bindir)/psql" "$DATABASE_URL"
cluster_stop_pid "$RUN_PID" 15
RUN_PID=""

# The Alertmanager API: alerts posted to /api/v2/alerts, through Tocsin and
# through Alertmanager 0.25, in the same run and against the same receiver.
cat >"$W/am_latency.py" <<'PYTHON'
import json, sys, time, urllib.request

target, url, key, receiver, trials, label, load = sys.argv[1:8]
trials = int(trials)

def post(alertname):
    body = json.dumps([{"labels": {"alertname": alertname, "severity": "critical", "job": "bench"},
                        "annotations": {"summary": "latency bench"}}]).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"{url}/api/v2/alerts", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise SystemExit(f"POST /api/v2/alerts answered {r.status}")

def arrivals():
    with urllib.request.urlopen(f"{receiver}/_requests", timeout=5) as r:
        return [(record["at"], record["body"]) for record in json.loads(r.read())]

def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank
    return ordered[int(rank) - 1]

run = f"{target}{int(time.time())}"
# Alerts are posted 1.5 s apart without waiting for their message (a group
# waiting 30 s does not hold the next trial back); each is a new alertname:
# a new alert for Tocsin, a new group for Alertmanager.
sent = {}
for i in range(trials + 1):
    name = f"{run}_t{i}"
    sent[name] = time.time()
    post(name)
    time.sleep(1.5)
deadline = time.time() + 120
latencies = {}
while time.time() < deadline and len(latencies) < len(sent):
    for at, body in arrivals():
        for name, t0 in sent.items():
            if name not in latencies and f'{name}"' in body or (name not in latencies and f"{name} " in body):
                latencies[name] = (at - t0) * 1000
    time.sleep(0.05)
missing = [name for name in sent if name not in latencies]
if missing:
    raise SystemExit(f"{label}: no Slack message for {missing[:3]} within 120 s")
values = [latencies[f"{run}_t{i}"] for i in range(1, trials + 1)]  # the first is a warm-up
for i, ms in enumerate(values, 1):
    sys.stderr.write(f"  {target} trial {i:2}: {ms:8.1f} ms\n")
p50, p95 = percentile(values, 50), percentile(values, 95)
line = f"  {label:44} p50 {p50:8.0f} ms   p95 {p95:8.0f} ms   (min {min(values):.0f}, max {max(values):.0f})"
if target == "tocsin":
    line += f"   target p50 < 50 ms: {'met' if p50 < 50 else 'missed'}"
print(line, flush=True)
with open(f"{sys.argv[0]}.{target}.result", "w") as f:
    f.write(f"{p50:.0f} {p95:.0f}\n")
PYTHON

"$(pg_bindir)/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres tocsin_am
export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/tocsin_am"
"$TOCSIN" migrate >>"$W/migrate.log" 2>&1 || { cat "$W/migrate.log" >&2; cluster_die "tocsin migrate failed"; }
KEY=$("$TOCSIN" keys create --scope alerts --name latency-bench 2>>"$W/migrate.log" | tail -n 1)
curl -fsS -o /dev/null --max-time 5 -X DELETE "http://127.0.0.1:$RECEIVER_PORT/_requests"
load=$(cut -d' ' -f1 /proc/loadavg)
start_run
echo
echo "POST /api/v2/alerts → Slack receiver: $TRIALS alerts, each a new alertname, 1.5 s apart; load before: $load"
python3 "$W/am_latency.py" tocsin "http://127.0.0.1:$port" "$KEY" "http://127.0.0.1:$RECEIVER_PORT" "$TRIALS" \
    "Tocsin ($binary_kind tocsin run)" "$load"
cluster_stop_pid "$RUN_PID" 15
RUN_PID=""

for wait in 30s 0s; do
    am_port=$(free_port)
    mkdir -p "$W/am-$wait"
    cat >"$W/am-$wait/alertmanager.yml" <<YAML
route:
  receiver: slack
  group_by: [alertname]
  group_wait: $wait
receivers:
  - name: slack
    slack_configs:
      - api_url: http://127.0.0.1:$RECEIVER_PORT/am-$wait
        channel: "#bench"
        send_resolved: false
YAML
    prometheus-alertmanager --config.file="$W/am-$wait/alertmanager.yml" --storage.path="$W/am-$wait/data" \
        --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$W/am-$wait/alertmanager.log" 2>&1 &
    AM_PID=$!
    cluster_wait_http "http://127.0.0.1:$am_port/-/ready" 30 "$AM_PID" \
        || { tail -n 20 "$W/am-$wait/alertmanager.log" >&2; cluster_die "Alertmanager did not become ready"; }
    python3 "$W/am_latency.py" "am$wait" "http://127.0.0.1:$am_port" "" "http://127.0.0.1:$RECEIVER_PORT" "$TRIALS" \
        "Alertmanager 0.25, group_wait $wait" "$load"
    cluster_stop_pid "$AM_PID" 15
    AM_PID=""
done
echo "  load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# For scripts/bench/all.sh: Tocsin's figures against Alertmanager's, measured above.
read -r t50 t95 <"$W/am_latency.py.tocsin.result"
read -r a50 a95 <"$W/am_latency.py.am30s.result"
read -r z50 z95 <"$W/am_latency.py.am0s.result"
bench_figure "POST /api/v2/alerts → Slack, p50 of $TRIALS" "$t50 ms" "Alertmanager 0.25 group_wait 30s: $a50 ms; 0s: $z50 ms" \
    "-" "< 50 ms" "$(bench_met "$([ "$t50" -lt 50 ] && echo 1 || echo 0)")"
bench_figure "POST /api/v2/alerts → Slack, p95 of $TRIALS" "$t95 ms" "Alertmanager 0.25 group_wait 30s: $a95 ms; 0s: $z95 ms" \
    "-" "-" "-"
