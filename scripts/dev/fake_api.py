#!/usr/bin/env python3
"""A fake Tocsin API for developing the dashboard without Swift or PostgreSQL.

Standard library only. Serves the dashboard assets from
Sources/TocsinAPI/Dashboard and answers the dashboard's API with canned,
self-consistent data (events are generated once at start-up; the summary,
series and event pages are computed from them).

    python3 scripts/dev/fake_api.py [PORT]            # default port 8099
    python3 scripts/dev/fake_api.py 8099 --mode empty # start with no data

Then open http://127.0.0.1:8099/monitoring and sign in with "admin-key"
(scopes ["admin"]) or "read-key" (scopes ["read"]).

Options:
    --mode normal|empty|down  start in that mode (default normal)
    --down-after N            answer 503 to every /api request after the first N
    --no-notifications        GET /api/notifications answers 404 (the section hides)
    --seed N                  random seed of the canned data (default 7)

Dev-only conveniences (this server only; the real one has none of them):
    GET /monitoring?autologin=admin-key   signs in (sets the cookie) and redirects,
                                          so a headless browser can take screenshots
    GET /__fake/mode?set=normal|empty|down[&after=N]
                                          switch mode at run time ("down" makes every
                                          /api request and the stream answer 503)
    GET /__fake/alert?rule=NAME&platform=P&severity=S
                                          fire a new alert and push it on the stream
    GET /__fake/stream?set=off|on         take the event stream down (503) while the API works,
                                          to see the "reconnecting" state and the polling fallback
    GET /__fake/reset                     regenerate the data, anchored at now

Every response carries `Content-Security-Policy: default-src 'self'`, the
policy the real server applies, so a CSP violation shows up in development.
"""

from __future__ import annotations

import base64
import binascii
import http.server
import json
import math
import queue
import random
import secrets
import sys
import threading
import time
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
ASSET_DIR = ROOT / "Sources" / "TocsinAPI" / "Dashboard"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
    "index.html": "text/html; charset=utf-8",
}
CSP = "default-src 'self'"
COOKIE = "tocsin_session"
KEYS = {
    "admin-key": {"name": "ops-admin", "scopes": ["admin"]},
    "read-key": {"name": "viewer", "scopes": ["read"]},
}
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}
BUCKETS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
PLATFORMS = ["tiktok", "instagram"]


def iso(ts: float | None) -> str | None:
    """RFC 3339 with microseconds, like the Swift server."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def api_error(status: int, code: str, message: str, details=None):
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return status, body


# --------------------------------------------------------------------------
# State


class State:
    """Everything the fake server knows. Guarded by `lock`."""

    def __init__(self, seed: int):
        self.lock = threading.RLock()
        self.seed = seed
        self.mode = "normal"
        self.down_after: int | None = None
        self.api_requests = 0
        self.notifications_enabled = True
        self.stream_enabled = True
        self.sessions: dict[str, dict] = {}
        self.subscribers: list[queue.Queue] = []
        self.stream_alert_id: int | None = None
        self.reset()

    # -- data ---------------------------------------------------------------

    def reset(self):
        with self.lock:
            self.now0 = time.time()
            self.events = generate_events(self.now0, random.Random(self.seed))
            self.alerts = generate_alerts(self.now0)
            self.next_alert_id = max(a["id"] for a in self.alerts) + 1
            self.stream_alert_id = None
            self.workers = [
                {"id": "tocsin-a-4127-9f3c", "host": "tocsin-a", "pid": 4127, "started_at": iso(self.now0 - 86400 * 2),
                 "heartbeat_age": 8, "last_check_age": 21, "last_check_duration_ms": 14.7,
                 "evaluations": 2870, "alerts_fired": 6, "stale": False},
                {"id": "tocsin-b-988-11ad", "host": "tocsin-b", "pid": 988, "started_at": iso(self.now0 - 86400 * 5),
                 "heartbeat_age": 412, "last_check_age": 430, "last_check_duration_ms": 1830.2,
                 "evaluations": 7130, "alerts_fired": 19, "stale": True},
            ]
            self.notifications = [
                {"id": 3, "alert_id": 12, "rule": "high_error_rate", "channel": "slack", "transition": "fired",
                 "status": "dead", "attempts": 8,
                 "last_error": "HTTP 500 from hooks.slack.com: internal_error",
                 "created_at": iso(self.now0 - 3 * 3600), "next_attempt_at": None, "sent_at": None},
            ]

    def now(self) -> float:
        return time.time()

    def empty(self) -> bool:
        return self.mode == "empty"

    def broadcast(self, event: str, data: dict):
        with self.lock:
            for q in list(self.subscribers):
                q.put((event, data))

    def new_alert(self, rule: str, platform: str | None, severity: str, value: float, threshold: float,
                  description: str) -> dict:
        with self.lock:
            now = self.now()
            alert = alert_record(self.next_alert_id, rule, severity, "firing", platform, value, threshold,
                                 samples=57, started=now - 90, fired=now, description=description)
            self.next_alert_id += 1
            self.alerts.append(alert)
            return alert


def generate_events(now: float, rnd: random.Random) -> list[dict]:
    """A few thousand events over 7 days, densest in the last hour, with an
    upload failure spike on tiktok ~2 h ago and slow instagram webhooks ~40 min ago."""
    events: list[tuple[float, str, str | None, float, dict]] = []

    def add(ts, name, platform, value=1.0, labels=None):
        events.append((ts, name, platform, value, labels or {}))

    def traffic(start, end, step):
        t = start
        while t < end:
            platform = rnd.choice(PLATFORMS)
            roll = rnd.random()
            account = rnd.choice(["acme", "globex", "initech", "umbrella"])
            if roll < 0.34:
                ok = rnd.random() > 0.002
                add(t, "upload.success" if ok else "upload.failure", platform, 1,
                    {"account": account} if ok else {"account": account, "error": rnd.choice(["timeout", "rate_limited", "invalid_media"])})
            elif roll < 0.56:
                add(t, "webhook.received", platform, 1, {"topic": rnd.choice(["video.publish", "comments", "mentions"])})
                add(t + 0.4, "webhook.processed", platform)
                add(t + 0.4, "webhook.latency", platform, round(rnd.uniform(0.4, 2.6), 3))
            elif roll < 0.70:
                ok = rnd.random() > 0.08
                add(t, "oauth.success" if ok else "oauth.failure", platform, 1,
                    {"account": account} if ok else {"account": account, "error": "access_denied"})
            elif roll < 0.78:
                ok = rnd.random() > 0.05
                add(t, "token.refresh.success" if ok else "token.refresh.failure", platform, 1,
                    {} if ok else {"error": "invalid_grant"})
            elif roll < 0.94:
                add(t, "api.call", platform, 1, {"endpoint": rnd.choice(["/v2/video/upload", "/me/media", "/oauth/token"])})
                add(t, "api.latency", platform, round(rnd.uniform(0.08, 0.9), 3))
            else:
                add(t, "worker.run", None, 1, {"job": rnd.choice(["publish", "refresh_tokens"])})
                add(t, "worker.duration", None, round(rnd.uniform(0.2, 4.0), 3))
            t += step * rnd.uniform(0.5, 1.5)

    traffic(now - 7 * 86400, now - 86400, 60)
    traffic(now - 86400, now - 3600, 10)
    traffic(now - 3600, now - 5, 5)
    # The spike: about a quarter of tiktok uploads failing for ~25 minutes, 2 h ago.
    t = now - 2 * 3600
    while t < now - 2 * 3600 + 1500:
        if rnd.random() < 0.25:
            add(t, "upload.failure", "tiktok", 1, {"account": "acme", "error": "http_503"})
        else:
            add(t, "upload.success", "tiktok", 1, {"account": "globex"})
        t += 10
    # Slow instagram webhooks 30-50 minutes ago.
    t = now - 50 * 60
    while t < now - 30 * 60:
        add(t, "webhook.received", "instagram", 1, {"topic": "comments"})
        add(t + 7, "webhook.processed", "instagram")
        add(t + 9, "webhook.latency", "instagram", round(rnd.uniform(7.5, 12.5), 3))
        t += 15
    events.sort(key=lambda e: e[0])
    out = []
    for i, (ts, name, platform, value, labels) in enumerate(events, start=1):
        out.append({"id": i, "ts": ts, "occurred_at": iso(ts), "received_at": iso(ts + rnd.uniform(0.05, 1.5)),
                    "name": name, "platform": platform, "value": float(value), "labels": labels})
    return out


def alert_record(id_, rule, severity, status, platform, value, threshold, samples, started, fired=None,
                 acked=None, acked_by=None, resolved=None, resolved_by=None, resolution=None, note=None,
                 description="", comparison=">"):
    return {
        "id": id_, "rule": rule, "severity": severity, "status": status,
        "group_key": platform or "all", "platform": platform, "value": value, "threshold": threshold,
        "comparison": comparison, "samples": samples, "description": description,
        "runbook_url": "https://runbooks.example.com/tocsin/" + rule if rule == "high_error_rate" else None,
        "started_at": iso(started), "fired_at": iso(fired), "acknowledged_at": iso(acked),
        "acknowledged_by": acked_by, "resolved_at": iso(resolved), "resolved_by": resolved_by,
        "resolution": resolution, "note": note,
    }


def generate_alerts(now: float) -> list[dict]:
    h = 3600
    return [
        alert_record(12, "high_error_rate", "error", "firing", "tiktok", 0.124, 0.05, 40, now - 2 * h - 300,
                     fired=now - 2 * h - 240, description="Upload failure ratio above 5% on tiktok"),
        alert_record(11, "webhook_latency", "warning", "acknowledged", "instagram", 7.41, 5, 31, now - 48 * 60,
                     fired=now - 47 * 60, acked=now - 40 * 60, acked_by="ops-admin", note="Meta status page shows delays",
                     description="Average webhook latency above 5 s on instagram"),
        alert_record(10, "token_refresh_failures", "warning", "resolved", "instagram", 4, 3, 4, now - 20 * h,
                     fired=now - 20 * h + 60, resolved=now - 19 * h, resolved_by=None, resolution="auto",
                     description="More than 3 token refresh failures in 15 minutes"),
        alert_record(9, "high_error_rate", "error", "resolved", "instagram", 0.081, 0.05, 62, now - 30 * h,
                     fired=now - 30 * h + 60, acked=now - 29.8 * h, acked_by="ops-admin", resolved=now - 29 * h,
                     resolved_by="ops-admin", resolution="manual", note="Rolled back uploader 2.14",
                     description="Upload failure ratio above 5% on instagram"),
        alert_record(8, "oauth_failure_spike", "critical", "resolved", "tiktok", 25, 10, 25, now - 3 * 86400,
                     fired=now - 3 * 86400 + 60, resolved=now - 3 * 86400 + 1800, resolution="auto",
                     description="More than 10 OAuth failures in 5 minutes"),
        alert_record(7, "worker_stalled", "critical", "resolved", None, 0, 1, 0, now - 5 * 86400,
                     fired=now - 5 * 86400 + 120, resolved=now - 5 * 86400 + 900, resolution="no_data",
                     description="No worker.run events for 10 minutes", comparison="<"),
    ]


RULES = [
    {"name": "high_error_rate", "description": "Upload failure ratio (upload.failure ÷ all uploads) above 5% per platform",
     "kind": "ratio", "severity": "error", "comparison": ">", "threshold": 0.05, "enabled": True, "interval_s": 60,
     "groups": ["tiktok", "instagram"]},
    {"name": "webhook_latency", "description": "Average webhook latency above 5 s per platform",
     "kind": "avg", "severity": "warning", "comparison": ">", "threshold": 5, "enabled": True, "interval_s": 60,
     "groups": ["tiktok", "instagram"]},
    {"name": "oauth_failure_spike", "description": "More than 10 OAuth failures in 5 minutes",
     "kind": "count", "severity": "critical", "comparison": ">", "threshold": 10, "enabled": True, "interval_s": 60,
     "groups": ["tiktok", "instagram"]},
    {"name": "token_refresh_failures", "description": "More than 3 token refresh failures in 15 minutes",
     "kind": "count", "severity": "warning", "comparison": ">", "threshold": 3, "enabled": True, "interval_s": 60,
     "groups": ["tiktok", "instagram"]},
    {"name": "worker_stalled", "description": "No worker.run events for 10 minutes",
     "kind": "absence", "severity": "critical", "comparison": "<", "threshold": 1, "enabled": False, "interval_s": 120,
     "groups": []},
]

STATE: State


# --------------------------------------------------------------------------
# Computations over the generated events


def window_range(q) -> tuple[float, float]:
    window = q.get("window", "24h")
    if window not in WINDOWS:
        raise ValueError("window")
    until = STATE.now()
    return until - WINDOWS[window], until


def in_range(events, since, until, platform=None):
    for e in events:
        if since <= e["ts"] < until and (platform is None or e["platform"] == platform):
            yield e


def summarize(events) -> dict:
    count: dict[str, int] = {}
    values: dict[str, list[float]] = {}
    for e in events:
        count[e["name"]] = count.get(e["name"], 0) + 1
        values.setdefault(e["name"], []).append(e["value"])

    def avg(name):
        v = values.get(name)
        return round(sum(v) / len(v), 6) if v else None

    def p95(name):
        v = sorted(values.get(name) or [])
        return v[min(len(v) - 1, math.ceil(0.95 * len(v)) - 1)] if v else None

    def rate(s, f):
        a, b = count.get(s, 0), count.get(f, 0)
        return {"success": a, "failure": b, "success_rate": (a / (a + b)) if a + b else None}

    return {
        "oauth": rate("oauth.success", "oauth.failure"),
        "upload": rate("upload.success", "upload.failure"),
        "webhook": {"received": count.get("webhook.received", 0), "processed": count.get("webhook.processed", 0),
                    "avg_latency_s": avg("webhook.latency"), "p95_latency_s": p95("webhook.latency")},
        "token_refresh": {"success": count.get("token.refresh.success", 0), "failure": count.get("token.refresh.failure", 0)},
        "api": {"calls": count.get("api.call", 0), "avg_latency_s": avg("api.latency"), "p95_latency_s": p95("api.latency")},
        "worker": {"runs": count.get("worker.run", 0), "avg_duration_s": avg("worker.duration")},
    }


def name_matches(pattern: str | None, name: str) -> bool:
    if not pattern:
        return True
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        pad = "=" * (-len(cursor) % 4)
        return int(json.loads(base64.urlsafe_b64decode(cursor + pad))["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValueError("cursor")


def paginate(items: list, q, key: str):
    limit = int(q.get("limit", "50"))
    if not 1 <= limit <= 1000:
        raise ValueError("limit")
    offset = decode_cursor(q.get("cursor"))
    page = items[offset:offset + limit]
    nxt = encode_cursor(offset + limit) if offset + limit < len(items) else None
    return {key: page, "next_cursor": nxt}


# --------------------------------------------------------------------------
# Route handlers: each returns (status, body) where body is a dict (JSON) or
# a (content_type, bytes) tuple.


def h_summary(q, session):
    since, until = window_range(q)
    platform = q.get("platform")
    evs = [] if STATE.empty() else list(in_range(STATE.events, since, until, platform))
    names = sorted({e["platform"] for e in evs if e["platform"]})
    platforms = [dict(platform=p, **summarize([e for e in evs if e["platform"] == p])) for p in names]
    return 200, {"since": iso(since), "until": iso(until), "platforms": platforms,
                 "totals": dict(platform=None, **summarize(evs))}


def h_series(q, session):
    since, until = window_range(q)
    bucket = q.get("bucket", "5m")
    if bucket not in BUCKETS:
        return api_error(400, "bad_request", "invalid query", [{"field": "bucket", "reason": "must be one of 1m, 5m, 1h, 1d"}])
    step = BUCKETS[bucket]
    agg = q.get("agg", "count")
    platform = q.get("platform")
    if agg == "ratio":
        num = set(q.get("numerator", "").split(","))
        den = set(q.get("denominator", "").split(","))
        names = num | den
    else:
        names = {q.get("name", "")}
    evs = [] if STATE.empty() else [e for e in in_range(STATE.events, since, until, platform) if e["name"] in names]
    first = math.floor(since / step) * step
    nbuckets = int(math.ceil((until - first) / step))
    platforms = sorted({e["platform"] or "" for e in evs}) or ([platform] if platform else PLATFORMS)
    series = []
    for p in platforms:
        buckets = [[] for _ in range(nbuckets)]
        for e in evs:
            if (e["platform"] or "") == p:
                buckets[int((e["ts"] - first) // step)].append(e)
        points = []
        for i, b in enumerate(buckets):
            value, samples = None, len(b)
            if agg == "ratio":
                d = sum(1 for e in b if e["name"] in den)
                n = sum(1 for e in b if e["name"] in num)
                samples = d
                value = n / d if d else None
            elif b:
                vals = [e["value"] for e in b]
                value = {"avg": sum(vals) / len(vals), "sum": sum(vals), "count": len(vals),
                         "max": max(vals), "min": min(vals)}.get(agg, len(vals))
            elif agg == "count":
                value = 0
            points.append({"t": iso(first + i * step), "value": value, "samples": samples})
        series.append({"platform": p or None, "points": points})
    return 200, {"since": iso(since), "until": iso(until), "bucket": bucket, "agg": agg, "series": series}


def h_events(q, session):
    since, until = window_range(q)
    platform = q.get("platform")
    name = q.get("name")
    evs = [] if STATE.empty() else [e for e in in_range(STATE.events, since, until, platform) if name_matches(name, e["name"])]
    evs.sort(key=lambda e: (e["ts"], e["id"]), reverse=True)
    page = paginate(evs, q, "events")
    page["events"] = [{k: e[k] for k in ("id", "occurred_at", "received_at", "name", "platform", "value", "labels")}
                      for e in page["events"]]
    if q.get("format") == "csv":
        lines = ["id,occurred_at,received_at,name,platform,value,labels"]
        for e in page["events"]:
            labels = json.dumps(e["labels"]).replace('"', '""')
            lines.append(f'{e["id"]},{e["occurred_at"]},{e["received_at"]},{e["name"]},{e["platform"] or ""},{e["value"]},"{labels}"')
        return 200, ("text/csv; charset=utf-8", ("\r\n".join(lines) + "\r\n").encode())
    return 200, page


OPEN = ("pending", "firing", "acknowledged")


def h_alerts(q, session):
    if STATE.empty():
        return 200, {"alerts": [], "next_cursor": None}
    statuses = set(q["status"].split(",")) if q.get("status") else None
    window = q.get("window", "7d")
    horizon = STATE.now() - WINDOWS.get(window, WINDOWS["7d"])
    with STATE.lock:
        alerts = [dict(a) for a in STATE.alerts]
    out = []
    for a in alerts:
        if statuses and a["status"] not in statuses:
            continue
        if q.get("severity") and a["severity"] != q["severity"]:
            continue
        if q.get("rule") and a["rule"] != q["rule"]:
            continue
        if q.get("platform") and a["platform"] != q["platform"]:
            continue
        if a["status"] == "resolved" and datetime.fromisoformat(a["started_at"].replace("Z", "+00:00")).timestamp() < horizon:
            continue
        out.append(a)
    out.sort(key=lambda a: a["started_at"], reverse=True)
    out.sort(key=lambda a: 0 if a["status"] in OPEN else 1)
    return 200, paginate(out, q, "alerts")


def h_alert_action(body, session):
    if "admin" not in session["scopes"]:
        return api_error(403, "forbidden", "this action needs the admin scope")
    if not isinstance(body, dict) or not isinstance(body.get("id"), int) or body.get("action") not in ("acknowledge", "resolve"):
        return api_error(400, "bad_request", "send {\"id\": <alert id>, \"action\": \"acknowledge\"|\"resolve\"}")
    note = body.get("note")
    with STATE.lock:
        alert = next((a for a in STATE.alerts if a["id"] == body["id"]), None)
        if alert is None:
            return api_error(404, "not_found", f"no alert {body['id']}")
        if alert["status"] == "resolved":
            return api_error(409, "conflict", "the alert is already resolved")
        now = iso(STATE.now())
        if body["action"] == "acknowledge":
            if alert["status"] == "acknowledged":
                return api_error(409, "conflict", "the alert is already acknowledged")
            alert.update(status="acknowledged", acknowledged_at=now, acknowledged_by=session["name"])
            kind = "alert.acknowledged"
        else:
            alert.update(status="resolved", resolved_at=now, resolved_by=session["name"], resolution="manual")
            kind = "alert.resolved"
        if note:
            alert["note"] = str(note)[:1000]
        snapshot = dict(alert)
    STATE.broadcast("alert", {"type": kind, "alert": snapshot})
    return 200, {"alert": snapshot}


def h_rules(q, session):
    now = STATE.now()
    rules = []
    for r in RULES:
        r = dict(r)
        r["last_evaluation"] = ({"at": iso(now - 21), "duration_ms": 3.1, "groups": len(r["groups"])}
                                if r["enabled"] else None)
        rules.append(r)
    return 200, {"rules": rules}


def h_workers(q, session):
    now = STATE.now()
    workers = []
    with STATE.lock:
        for w in STATE.workers:
            workers.append({"id": w["id"], "host": w["host"], "pid": w["pid"], "started_at": w["started_at"],
                            "last_heartbeat": iso(now - w["heartbeat_age"]),
                            "last_check_at": iso(now - w["last_check_age"]),
                            "last_check_duration_ms": w["last_check_duration_ms"], "evaluations": w["evaluations"],
                            "alerts_fired": w["alerts_fired"], "stale": w["stale"]})
    return 200, {"interval_s": 60, "workers": workers}


def h_run_checks(q, session):
    if "admin" not in session["scopes"]:
        return api_error(403, "forbidden", "this action needs the admin scope")
    time.sleep(0.4)
    results = [
        {"rule": "high_error_rate", "group_key": "tiktok", "value": 0.118, "samples": 42, "outcome": "firing"},
        {"rule": "high_error_rate", "group_key": "instagram", "value": 0.012, "samples": 51, "outcome": "ok"},
        {"rule": "webhook_latency", "group_key": "instagram", "value": 5.8, "samples": 12, "outcome": "pending"},
        {"rule": "webhook_latency", "group_key": "tiktok", "value": None, "samples": 0, "outcome": "no_data"},
    ]
    with STATE.lock:
        STATE.workers[0]["evaluations"] += len(results)
    return 200, {"evaluated": len(results), "results": results}


def h_notifications(q, session):
    if not STATE.notifications_enabled:
        return api_error(404, "not_found", "no route GET /api/notifications")
    status = q.get("status")
    with STATE.lock:
        items = [dict(n) for n in STATE.notifications if not status or n["status"] == status]
    if STATE.empty():
        items = []
    return 200, paginate(items, q, "notifications")


def h_retry(nid: int, session):
    if not STATE.notifications_enabled:
        return api_error(404, "not_found", "no such route")
    if "admin" not in session["scopes"]:
        return api_error(403, "forbidden", "this action needs the admin scope")
    with STATE.lock:
        n = next((n for n in STATE.notifications if n["id"] == nid), None)
        if n is None:
            return api_error(404, "not_found", f"no notification {nid}")
        if n["status"] != "dead":
            return api_error(409, "conflict", "only dead notifications can be retried")
        n.update(status="pending", attempts=0, next_attempt_at=iso(STATE.now()))
        return 200, {"notification": dict(n)}


# --------------------------------------------------------------------------
# HTTP plumbing


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tocsin-fake/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    # -- helpers -----------------------------------------------------------

    def send(self, status: int, body, headers: dict | None = None):
        if isinstance(body, tuple):
            ctype, data = body
        elif body is None:
            ctype, data = None, b""
        else:
            ctype, data = "application/json; charset=utf-8", json.dumps(body).encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def session(self) -> dict | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie[COOKIE].value if COOKIE in cookie else None
        if token and token in STATE.sessions:
            return STATE.sessions[token]
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer ") and auth[7:].strip() in KEYS:
            key = KEYS[auth[7:].strip()]
            return {"name": key["name"], "scopes": key["scopes"], "csrf_token": None, "bearer": True}
        return None

    def new_session(self, key: str) -> tuple[dict, str]:
        token = secrets.token_urlsafe(24)
        sess = {"name": KEYS[key]["name"], "scopes": KEYS[key]["scopes"], "csrf_token": secrets.token_urlsafe(18)}
        STATE.sessions[token] = sess
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
        return sess, cookie

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return ValueError

    def public(self, sess: dict) -> dict:
        return {"name": sess["name"], "scopes": sess["scopes"], "csrf_token": sess["csrf_token"]}

    # -- dispatch ----------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method: str):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/__fake/"):
                return self.fake_control(path, q)
            if path in ("/", "/monitoring"):
                return self.page(q)
            if path.startswith("/monitoring/assets/"):
                return self.asset(path.rsplit("/", 1)[-1])
            if path == "/monitoring/session":
                return self.session_route(method)
            if path.startswith("/api/"):
                return self.api(method, path, q)
            self.send(*api_error(404, "not_found", f"no route {method} {path}"))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def fake_control(self, path, q):
        if path == "/__fake/mode":
            mode = q.get("set", STATE.mode)
            if mode not in ("normal", "empty", "down"):
                return self.send(*api_error(400, "bad_request", "set=normal|empty|down"))
            with STATE.lock:
                STATE.mode = mode
                STATE.down_after = int(q["after"]) if q.get("after") else None
                STATE.api_requests = 0
            return self.send(200, {"mode": STATE.mode, "down_after": STATE.down_after})
        if path == "/__fake/alert":
            rule = next((r for r in RULES if r["name"] == q.get("rule")), RULES[2])
            threshold = rule["threshold"]
            alert = STATE.new_alert(rule["name"], q.get("platform", "instagram"), q.get("severity", rule["severity"]),
                                    threshold * 2.3, threshold, rule["description"])
            STATE.broadcast("alert", {"type": "alert.fired", "alert": alert})
            return self.send(200, {"alert": alert})
        if path == "/__fake/stream":
            STATE.stream_enabled = q.get("set", "on") != "off"
            return self.send(200, {"stream": "on" if STATE.stream_enabled else "off"})
        if path == "/__fake/reset":
            STATE.reset()
            return self.send(200, {"events": len(STATE.events)})
        self.send(*api_error(404, "not_found", "unknown fake control"))

    def page(self, q):
        if "autologin" in q and q["autologin"] in KEYS:
            _, cookie = self.new_session(q["autologin"])
            rest = {k: v for k, v in q.items() if k != "autologin"}
            location = "/monitoring" + ("?" + urlencode(rest) if rest else "")
            return self.send(302, None, {"Location": location, "Set-Cookie": cookie})
        self.asset("index.html")

    def asset(self, name):
        if name not in ASSETS:
            return self.send(*api_error(404, "not_found", "no such asset"))
        try:
            data = (ASSET_DIR / name).read_bytes()
        except FileNotFoundError:
            return self.send(*api_error(404, "not_found", f"{name} is missing from {ASSET_DIR}"))
        self.send(200, (ASSETS[name], data))

    def session_route(self, method):
        if method == "GET":
            sess = self.session()
            if not sess or sess.get("bearer"):
                return self.send(*api_error(401, "unauthorized", "not signed in"))
            return self.send(200, self.public(sess))
        if method == "POST":
            body = self.read_json()
            key = body.get("key") if isinstance(body, dict) else None
            if not isinstance(key, str) or not key:
                return self.send(*api_error(400, "bad_request", "send {\"key\": \"<API key>\"}"))
            if key == "ingest-key":
                return self.send(*api_error(403, "forbidden", "this key has no read scope; the dashboard needs read or admin"))
            if key not in KEYS:
                return self.send(*api_error(401, "unauthorized", "invalid API key"))
            sess, cookie = self.new_session(key)
            return self.send(200, self.public(sess), {"Set-Cookie": cookie})
        if method == "DELETE":
            sess = self.session()
            if sess and self.headers.get("X-CSRF-Token") != sess["csrf_token"]:
                return self.send(*api_error(403, "csrf", "missing or wrong X-CSRF-Token"))
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            if COOKIE in cookie:
                STATE.sessions.pop(cookie[COOKIE].value, None)
            return self.send(204, None, {"Set-Cookie": f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"})
        self.send(*api_error(405, "method_not_allowed", "GET, POST or DELETE"))

    def api(self, method, path, q):
        with STATE.lock:
            STATE.api_requests += 1
            down = STATE.mode == "down" or (STATE.down_after is not None and STATE.api_requests > STATE.down_after)
        if down:
            return self.send(*api_error(503, "database_unavailable", "the database is not reachable: connection refused"))
        sess = self.session()
        if sess is None:
            return self.send(*api_error(401, "unauthorized", "missing API key: send Authorization: Bearer <key>"),
                             {"WWW-Authenticate": "Bearer"})
        if method != "GET" and not sess.get("bearer") and self.headers.get("X-CSRF-Token") != sess["csrf_token"]:
            return self.send(*api_error(403, "csrf", "missing or wrong X-CSRF-Token"))
        if method == "GET" and path == "/api/monitoring/stream":
            if not STATE.stream_enabled:
                return self.send(*api_error(503, "unavailable", "the event stream is switched off (/__fake/stream)"))
            return self.stream()
        routes = {
            ("GET", "/api/monitoring/metrics"): h_summary,
            ("GET", "/api/monitoring/metrics/series"): h_series,
            ("GET", "/api/monitoring/events"): h_events,
            ("GET", "/api/monitoring/alerts"): h_alerts,
            ("GET", "/api/rules"): h_rules,
            ("GET", "/api/workers/alert-checker"): h_workers,
            ("POST", "/api/workers/alert-checker"): h_run_checks,
            ("GET", "/api/notifications"): h_notifications,
        }
        try:
            if (method, path) in routes:
                status, body = routes[(method, path)](q, sess)
            elif method == "POST" and path == "/api/monitoring/alerts":
                body = self.read_json()
                if body is ValueError:
                    status, body = api_error(400, "malformed_json", "the body is not JSON")
                else:
                    status, body = h_alert_action(body, sess)
            elif method == "POST" and path.startswith("/api/notifications/") and path.endswith("/retry"):
                try:
                    nid = int(path.split("/")[3])
                except ValueError:
                    nid = -1
                status, body = h_retry(nid, sess)
            elif method == "GET" and path == "/api/whoami":
                status, body = 200, {"name": sess["name"], "scopes": sess["scopes"]}
            else:
                status, body = api_error(404, "not_found", f"no route {method} {path}")
        except ValueError as error:
            field = str(error) or "query"
            status, body = api_error(400, "bad_request", "invalid query", [{"field": field, "reason": "is not valid"}])
        self.send(status, body)

    def stream(self):
        """Server-sent events: hello, a ping every 15 s, the fake's own alert
        5 s after connecting, and every acknowledge/resolve made meanwhile."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        self.close_connection = True
        q: queue.Queue = queue.Queue()
        with STATE.lock:
            STATE.subscribers.append(q)
        connected = time.time()
        sent_new_alert = False
        last_ping = time.time()

        def write(event: str, data: dict):
            self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        try:
            self.wfile.write(b"retry: 3000\n\n")
            write("hello", {})
            while True:
                if STATE.mode == "down" or not STATE.stream_enabled:
                    return  # the connection drops; EventSource reconnects and gets 503
                try:
                    event, data = q.get(timeout=0.5)
                    write(event, data)
                except queue.Empty:
                    pass
                now = time.time()
                if not sent_new_alert and now - connected >= 5 and not STATE.empty():
                    sent_new_alert = True
                    with STATE.lock:
                        existing = next((a for a in STATE.alerts if a["id"] == STATE.stream_alert_id), None)
                        if existing is None:
                            existing = STATE.new_alert("oauth_failure_spike", "instagram", "critical", 23, 10,
                                                       "More than 10 OAuth failures in 5 minutes")
                            STATE.stream_alert_id = existing["id"]
                        snapshot = dict(existing)
                    if snapshot["status"] != "resolved":
                        kind = "alert.acknowledged" if snapshot["status"] == "acknowledged" else "alert.fired"
                        write("alert", {"type": kind, "alert": snapshot})
                if now - last_ping >= 15:
                    last_ping = now
                    write("ping", {})
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with STATE.lock:
                if q in STATE.subscribers:
                    STATE.subscribers.remove(q)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str]) -> None:
    global STATE
    port, mode, down_after, notifications, seed = 8099, "normal", None, True, 7
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--mode":
            mode = args.pop(0)
        elif arg == "--down-after":
            down_after = int(args.pop(0))
        elif arg == "--no-notifications":
            notifications = False
        elif arg == "--seed":
            seed = int(args.pop(0))
        elif arg in ("-h", "--help"):
            print(__doc__)
            return
        else:
            port = int(arg)
    if mode not in ("normal", "empty", "down"):
        sys.exit("--mode must be normal, empty or down")
    STATE = State(seed)
    STATE.mode = mode
    STATE.down_after = down_after
    STATE.notifications_enabled = notifications
    server = Server(("127.0.0.1", port), Handler)
    print(f"fake Tocsin API on http://127.0.0.1:{port}/monitoring  (mode {mode}; keys: admin-key, read-key)",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
