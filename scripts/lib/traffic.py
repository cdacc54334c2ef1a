#!/usr/bin/env python3
"""Fault-test traffic for scripts/chaos.sh and scripts/failover.sh, on the
cluster's nginx (127.0.0.1): ingestion with an Idempotency-Key, retried
with the same key until acknowledged, plus dashboard reads.

    traffic.py URL KEY DURATION TAIL OUT [--attempts FILE] [--prefix NAME]

Three senders post batches for DURATION seconds; a batch not yet
acknowledged by then is retried for at most TAIL more seconds (then it
counts as unresolved). Each batch follows a 24 s cycle of failure bursts on
both platforms (upload failures, token refresh failures, OAuth failures),
so that the short-window rules of scripts/lib/fault-rules.yaml fire (some go
pending and resolve without firing) and resolve. A reader asks for the
metrics summary every 0.5 s.

OUT receives the totals (JSON): batches and events acknowledged, attempts,
retries, statuses, connection errors… With --attempts, every ingest attempt
is also written to FILE as CSV: sent,done,outcome,sender,events (epoch
seconds; outcome is the HTTP status or the exception's name), from which
scripts/lib/checks.py computes outages.
Retried: connection errors, timeouts, 408, 429 and 5xx. Any other 4xx is
counted as rejected and not retried. Standard library only.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("key")
parser.add_argument("duration", type=float)
parser.add_argument("tail", type=float)
parser.add_argument("out")
parser.add_argument("--attempts")
parser.add_argument("--prefix", default="chaos")
args = parser.parse_args()

url, key, duration, tail, out = args.url, args.key, args.duration, args.tail, args.out
parsed = urllib.parse.urlparse(url)
start = time.time()
stop_at = start + duration
give_up_at = stop_at + tail
lock = threading.Lock()
stats = {"batches_acked": 0, "events_acked": 0, "events_sent": 0, "attempts": 0, "retries": 0, "replayed": 0,
         "status": {}, "errors": {}, "rejected": 0, "unresolved_batches": 0, "unresolved_events": 0,
         "accepted_mismatch": 0, "reads_ok": 0, "reads_failed": 0, "started": start}
attempts = []  # (sent, done, outcome, sender, events)
CYCLE = 24.0


def phase_events(now, rng):
    """The batch for this moment of the 24 s cycle: normal traffic on both
    platforms, with failure bursts that make the fault-test rules fire."""
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


def record(sent, outcome, index, n):
    if args.attempts:
        with lock:
            attempts.append((sent, time.time(), outcome, index, n))


def sender(index):
    rng = random.Random(index * 7919 + int(start))
    conn = None
    seq = 0
    while time.time() < stop_at:
        seq += 1
        events = phase_events(time.time(), rng)
        body = json.dumps(events).encode()
        idem = f"{args.prefix}-{int(start)}-{index}-{seq}"
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
            sent = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=15)
                conn.request("POST", "/api/metrics", body=body, headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": idem})
                resp = conn.getresponse()
                payload = resp.read()
                count("status", str(resp.status))
                record(sent, str(resp.status), index, len(events))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # connection reset, refused, timeout: retry
                count("errors", type(e).__name__)
                record(sent, type(e).__name__, index, len(events))
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
stats["stopped"] = time.time()
with open(out, "w") as f:
    json.dump(stats, f)
if args.attempts:
    with open(args.attempts, "w") as f:
        f.write("sent,done,outcome,sender,events\n")
        for a in sorted(attempts):
            f.write(f"{a[0]:.3f},{a[1]:.3f},{a[2]},{a[3]},{a[4]}\n")
