#!/usr/bin/env python3
"""The end-of-run checks of scripts/chaos.sh and scripts/failover.sh, on the
cluster's database and the files of the run's work directory W: one line
each, "ok"/"FAIL" for a must, and exit 1 when a must fails.

    checks.py --title NAME --work W --psql PSQL --db URL --drained 0|1
              [--exits FILE]... [--attempts FILE] [--duplicates must|report]
              [--setting TEXT]...

Reads W/traffic.json (scripts/lib/traffic.py's totals), W/slack.jsonl
(scripts/receivers/http_receiver.py's log), W/faults.log and, with
--attempts, traffic.py's CSV of ingest attempts. W/faults.log has one line
per event, epoch seconds first:

    T kill NAME PID                   a Tocsin or nginx process SIGKILLed
    T db-begin LABEL [KEY=VALUE]...   a database fault starts: PostgreSQL
                                      restarted, the primary killed, a switchover
                                      (*_pid=N values: processes this fault killed)
    T db-end LABEL [KEY=VALUE]...     the database is back: restarted, or a new
                                      leader accepts writes
    T rejoined LABEL node=NAME        the failed primary runs again as a standby
    T listen LABEL sessions=N expected=M last=S
                                      LISTEN sessions found on the primary after
                                      the fault (the last one S s after it)
    T failed LABEL TEXT...            the fault did not go as planned (a must)

The checks (the must ones fail the run):
  events acknowledged with 2xx = events stored                          must
  open alerts duplicated per rule and group = 0                         must
  fired / resolved-after-fired transitions without a sent or dead
    notification = 0                                                    must
  notifications marked sent that Slack never acknowledged = 0           must
  deliveries received twice: each listed with what explains it (a
    worker killed, or a database fault, between the two deliveries);
    with --duplicates must, an unexplained one fails                   must/report
  scheduled evaluations per rule, group and interval <= 1               must
  per database fault (with --attempts): time from the fault to the
    first 2xx ingest, the longest ingest outage, the 503s answered; no
    2xx ingest after a fault at all fails                               must
"""
import argparse
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict

parser = argparse.ArgumentParser()
parser.add_argument("--title", required=True)
parser.add_argument("--work", required=True)
parser.add_argument("--psql", required=True)
parser.add_argument("--db", required=True)
parser.add_argument("--drained", choices=("0", "1"), required=True)
parser.add_argument("--exits", action="append", default=[])
parser.add_argument("--attempts")
parser.add_argument("--duplicates", choices=("must", "report"), default="must")
parser.add_argument("--setting", action="append", default=[])
args = parser.parse_args()
w, psql, dburl, drained = args.work, args.psql, args.db, args.drained == "1"


def sql(query):
    out = subprocess.run([psql, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", dburl, "-c", query],
                         capture_output=True, text=True, check=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def copy(query, path):
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", dburl, "-c", f"\\copy ({query}) TO '{path}' CSV"],
                   check=True)


failures = []


def line(label, value, ok=None, note=""):
    mark = "" if ok is None else ("ok  " if ok else "FAIL")
    print(f"  {mark:4} {label:<62} {value}{('  ' + note) if note else ''}")
    if ok is False:
        failures.append(label)


traffic = json.load(open(f"{w}/traffic.json"))
t0 = traffic.get("started", 0)


def rel(t):
    return f"+{t - t0:.1f}s"


# ---- The run's faults --------------------------------------------------------------
faults = [l.split() for l in open(f"{w}/faults.log") if l.strip()]
kills = [(float(f[0]), f[2]) for f in faults if f[1] == "kill"]
killed_pids = {f[3] for f in faults if f[1] == "kill"}
db_faults = []  # {"label", "begin", "end", "attrs", "events"}
by_label = {}
for f in faults:
    if f[1] in ("db-begin", "db-end", "rejoined", "listen", "failed"):
        label = f[2]
        attrs = dict(a.split("=", 1) for a in f[3:] if "=" in a)
        if f[1] == "db-begin":
            entry = {"label": label, "begin": float(f[0]), "end": None, "attrs": attrs, "events": {}}
            db_faults.append(entry)
            by_label[label] = entry
            killed_pids.update(v for k, v in attrs.items() if k.endswith("_pid"))
        elif label in by_label:
            entry = by_label[label]
            if f[1] == "db-end":
                entry["end"] = float(f[0])
            entry["events"][f[1]] = (float(f[0]), attrs, " ".join(a for a in f[3:] if "=" not in a))
db_windows = [(d["begin"], d["end"] if d["end"] is not None else d["begin"] + 60) for d in db_faults]

exits = []
for path in args.exits:
    if os.path.exists(path):
        exits += [l.split() for l in open(path) if l.strip() and not l.rstrip().endswith(" restarted")]
unexpected = [e for e in exits if e[2] not in killed_pids]


def during_db(t):
    return any(b - 1 <= t <= e + 5 for b, e in db_windows)


def describe(d):
    a = d["attrs"]
    if "from" in a and "to" in a:
        return f"{d['label']} ({a['from']} → {a['to']})"
    if "node" in a:
        return f"{d['label']} ({a['node']})"
    return d["label"]


print()
print(f"{args.title} results")
for s in args.setting:
    print(f"  {s}")
summary = f"  faults: {len(kills)} processes SIGKILLed ({', '.join(k[1] for k in kills) or 'none'})"
if db_faults:
    summary += f"; database faults: {', '.join(describe(d) for d in db_faults)}"
print(summary)
print(f"  traffic: {traffic['batches_acked']} batches acknowledged, {traffic['attempts']} attempts, "
      f"{traffic['retries']} retries ({traffic['replayed']} answered from the idempotency record), "
      f"statuses {traffic['status']}, connection errors {traffic['errors'] or 'none'}; "
      f"reads {traffic['reads_ok']} ok / {traffic['reads_failed']} failed")
if unexpected:
    print(f"  note: {len(unexpected)} process exit(s) not caused by a SIGKILL of this run (restarted): "
          + ", ".join(f"{e[1]} status {e[3]} at {rel(float(e[0]))}"
                      + (" during a database fault" if during_db(float(e[0])) else "")
                      for e in unexpected))
print()

# ---- Events ---------------------------------------------------------------------
stored = int(sql("SELECT count(*) FROM metric_events")[0][0])
acked = traffic["events_acked"]
note = ""
if traffic["unresolved_batches"]:
    note = f"({traffic['unresolved_batches']} batches never acknowledged: {traffic['unresolved_events']} events in doubt)"
if traffic["rejected"]:
    note += f" ({traffic['rejected']} batches rejected with 4xx)"
line("events acknowledged with 2xx vs events stored", f"{acked} vs {stored}",
     acked == stored and traffic["unresolved_batches"] == 0 and traffic["rejected"] == 0, note.strip())

# ---- Alerts ---------------------------------------------------------------------
dup_open = int(sql("""SELECT count(*) FROM (SELECT rule_id, group_key FROM alerts WHERE status <> 'resolved'
                      GROUP BY 1, 2 HAVING count(*) > 1) d""")[0][0])
overlap = int(sql("""SELECT count(*) FROM alerts a JOIN alerts b ON a.rule_id = b.rule_id AND a.group_key = b.group_key
                     AND a.id < b.id AND b.started_at < coalesce(a.resolved_at, 'infinity')""")[0][0])
alerts = sql("SELECT count(*), count(*) FILTER (WHERE fired_at IS NOT NULL), count(*) FILTER (WHERE status <> 'resolved') FROM alerts")[0]
line("open alerts duplicated per rule and group", dup_open, dup_open == 0,
     f"(alerts {alerts[0]}, fired {alerts[1]}, still open {alerts[2]}; overlapping alerts {overlap})")
if overlap:
    failures.append("overlapping alerts")

# ---- Notifications ---------------------------------------------------------------
copy("SELECT id, alert_id, transition, status, attempts, extract(epoch FROM created_at), extract(epoch FROM sent_at) "
     "FROM notifications ORDER BY id", f"{w}/notifications.csv")
copy("SELECT alert_id, transition, extract(epoch FROM at) FROM alert_events ORDER BY id", f"{w}/alert_events.csv")
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


def explain(first, last):
    """What lies between two deliveries of one message: the at-least-once window."""
    reasons = [f"{name} killed at {rel(t)}" for t, name in kills
               if first - 0.5 <= t <= last and name.startswith("worker")]
    for d, (b, e) in zip(db_faults, db_windows):
        if first <= e + 1 and last >= b - 1:
            reasons.append(f"{describe(d)} {rel(b)}…{rel(e)}")
    return reasons


duplicates = {k: v for k, v in acknowledged.items() if len(v) > 1}
unexplained = []
details = []
for k, times in sorted(duplicates.items(), key=lambda kv: min(kv[1])):
    first, last = min(times), max(times)
    reasons = explain(first, last)
    if not reasons:
        unexplained.append(k)
    details.append(f"alert {k[0]} {k[1]}: {len(times)} deliveries at {', '.join(rel(t) for t in sorted(times))}: "
                   + ("; ".join(reasons) if reasons else "UNEXPLAINED"))
line("deliveries received twice (at-least-once window)", len(duplicates),
     len(unexplained) == 0 if args.duplicates == "must" else None,
     f"({len(duplicates) - len(unexplained)} explained by a worker killed or a database fault between them"
     + (f"; unexplained: {len(unexplained)}" if unexplained else "") + ")")
for d in details[:30]:
    print(f"         {d}")

# ---- Evaluations --------------------------------------------------------------------
rows = sql("""SELECT e.rule_name, coalesce(e.group_key, ''), floor(extract(epoch FROM e.started_at) / r.interval_seconds)::bigint,
                     count(*)
              FROM rule_evaluations e JOIN alert_rules r ON r.id = e.rule_id
              WHERE e.trigger = 'schedule'
              GROUP BY 1, 2, 3""")
over = [r for r in rows if int(r[3]) > 1]
by_trigger = dict((r[0], r[1]) for r in sql("SELECT trigger, count(*) FROM rule_evaluations GROUP BY 1"))
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

# ---- Per database fault: the ingest outage -----------------------------------------------
if args.attempts and db_faults:
    attempts = []
    with open(args.attempts) as f:
        for row in csv.DictReader(f):
            attempts.append((float(row["sent"]), float(row["done"]), row["outcome"]))
    ok_done = sorted(d for s, d, o in attempts if o.startswith("2"))
    stopped = traffic.get("stopped", max((a[1] for a in attempts), default=0))
    print()
    print("  per database fault (times from the fault; ingest = POST /api/metrics through nginx):")
    for i, d in enumerate(db_faults):
        b = d["begin"]
        # This fault's window: until the next fault, the end of traffic, or 60 s.
        until = min(db_faults[i + 1]["begin"] if i + 1 < len(db_faults) else stopped, b + 60)
        window = [a for a in attempts if b <= a[1] < until]
        failed = [a for a in window if not a[2].startswith("2")]
        first_failure = min((a[1] for a in failed), default=None)
        after = first_failure if first_failure is not None else b
        first_ok = min((a[1] for a in window if a[2].startswith("2") and a[0] >= after), default=None)
        # The longest stretch without a 2xx ingest completing, from the last
        # one before the fault to the end of this fault's window.
        marks = [max([t for t in ok_done if t < b], default=b)] + [t for t in ok_done if b <= t < until] + [until]
        gap, gap_at = 0.0, b
        for x, y in zip(marks, marks[1:]):
            if y - x > gap:
                gap, gap_at = y - x, x
        n503 = sum(1 for a in window if a[2] == "503")
        others = defaultdict(int)
        for a in failed:
            if a[2] != "503":
                others[a[2]] += 1
        parts = []
        if d["end"] is not None:
            leader = d["events"].get("db-end", (0, {}, ""))[1].get("leader")
            parts.append(f"database back after {d['end'] - b:.1f} s" + (f" (leader {leader})" if leader else ""))
        if "rejoined" in d["events"]:
            parts.append(f"{d['events']['rejoined'][1].get('node', 'the old primary')} rejoined as a standby after "
                         f"{d['events']['rejoined'][0] - b:.1f} s")
        if "listen" in d["events"]:
            la = d["events"]["listen"][1]
            parts.append(f"LISTEN sessions on the primary {la.get('sessions')}/{la.get('expected')}"
                         + (f", the last {la['last']} s after the fault" if la.get("last") else ""))
        print(f"    {describe(d)} at {rel(b)}: " + "; ".join(parts))
        label = f"  {d['label']}: first 2xx ingest after the fault"
        if first_ok is None:
            line(label, "none", False, f"(no ingest acknowledged within {until - b:.0f} s; {len(failed)} failed attempts)")
        else:
            line(label, f"{first_ok - b:.1f} s", True,
                 f"(longest ingest outage {gap:.1f} s from {gap_at - b:+.1f} s; 503s answered {n503}"
                 + (f"; other failures {dict(others)}" if others else "") + ")")
        if "failed" in d["events"]:
            line(f"  {d['label']}: the fault went as planned", d["events"]["failed"][2] or "no", False)
print()
if failures:
    print(f"{args.title}: FAILED ({len(failures)}): " + "; ".join(failures))
    sys.exit(1)
print(f"{args.title}: passed")
