#!/usr/bin/env python3
"""End-to-end test of the /monitoring dashboard in headless Chromium (Python 3 stdlib only).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python3 scripts/e2e/dashboard_e2e.py [--screenshots]

Creates a throw-away database through DATABASE_URL (an admin connection),
migrates it, creates an admin and a read key, starts `tocsin run` on a free
port, seeds known events through POST /api/metrics, and drives the page:
sign-in through the login form, the rendered alerts / stats / events, an alert
that fires while the page is open (it must arrive over the live stream, without
a reload), a read-only session, an acknowledgement with a note, and full-page
screenshots at 1280 and 390 px. With --screenshots they replace
docs/dashboard.png and docs/dashboard-mobile.png; otherwise they are checked
and thrown away with the run's temporary directory.

Prints one "ok - …" / "not ok - …" line per check and exits 0 only when all
pass. Chromium, tocsin and the database are removed on every exit path.

Environment:
  DATABASE_URL   admin connection (required): URI or libpq key=value string
  TOCSIN_BIN     the tocsin binary (default: .build/debug/tocsin of this checkout)
  CHROMIUM       the browser (default: chromium, chromium-browser or google-chrome on PATH)
  E2E_TIMEOUT    overall limit in seconds (default 110)
  E2E_KEEP_LOGS  set to keep tocsin's log directory (its path is printed)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside cdp.py in the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cdp import Browser, CDPError, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "rules" / "default.yaml"
SHOT_DESKTOP = ROOT / "docs" / "dashboard.png"
SHOT_MOBILE = ROOT / "docs" / "dashboard-mobile.png"
SHOT_MAX_HEIGHT = 2600
UPDATE_SCREENSHOTS = "--screenshots" in sys.argv[1:]

# Tocsin's configuration variables: removed from the environment the test
# inherits so that only what the test sets applies.
TOCSIN_VARIABLES = (
    "DATABASE_URL", "HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT", "DB_POOL_SIZE", "MAX_BODY_SIZE",
    "METRICS_RETENTION_DAYS", "ALERT_RULES_FILE", "ALERT_CHECK_INTERVAL", "WORKER_CONCURRENCY",
    "SLACK_WEBHOOK_URL", "NOTIFY_CONFIG", "PUBLIC_URL", "NOTIFY_MAX_ATTEMPTS", "NOTIFY_RETRY_BASE_SECONDS",
    "NOTIFY_LEASE_SECONDS", "NOTIFY_CONCURRENCY", "SESSION_TTL", "MIGRATIONS_DIR",
    "TOCSIN_TEST_EVALUATION_PAUSE_MS", "TOCSIN_TEST_DISPATCH_PAUSE_MS",
)

# Injected before the page's scripts: records what the live stream delivers
# and which API requests the page makes, so the test can tell a pushed update
# from a polled one.
INSTRUMENTATION = r"""
(() => {
  window.__e2eStream = [];
  window.__e2eFetches = [];
  const NativeEventSource = window.EventSource;
  if (NativeEventSource) {
    window.EventSource = class extends NativeEventSource {
      constructor(...args) {
        super(...args);
        this.addEventListener('alert', (event) => window.__e2eStream.push({ at: Date.now(), data: event.data }));
      }
    };
  }
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    window.__e2eFetches.push({ at: Date.now(), url: String((input && input.url) || input), method: (init && init.method) || 'GET' });
    return nativeFetch.apply(this, arguments);
  };
})();
"""

# Everything the checks read from the page, in one evaluation.
SNAPSHOT = r"""
(() => {
  const q = (s) => document.querySelector(s);
  const all = (s, root = document) => Array.from(root.querySelectorAll(s));
  const stat = (id) => ({ text: q('#' + id).textContent.trim(), value: q('#' + id).dataset.value,
                          detail: (q('#' + id + '-detail') || { textContent: '' }).textContent.trim() });
  const card = (platform) => {
    const node = q(`#platform-metrics .platform-card[data-platform="${platform}"]`);
    if (!node) return null;
    const out = {};
    for (const dd of all('[data-group] dd[data-field]', node)) out[dd.closest('[data-group]').dataset.group + '.' + dd.dataset.field] = dd.textContent.trim();
    return out;
  };
  return {
    view: document.body.dataset.view,
    ready: document.body.dataset.ready === 'true',
    title: document.title,
    session: q('#session-name').textContent.trim(),
    role: q('#session-role').dataset.role,
    stream: q('#stream-status').dataset.state,
    runChecksHidden: q('#run-checks').hidden,
    alertsCount: q('#active-alerts-count').textContent.trim(),
    alerts: all('#active-alerts > li').map((li) => ({
      id: li.dataset.alertId, rule: li.dataset.rule, platform: li.dataset.platform, status: li.dataset.status,
      severity: li.dataset.severity, text: li.textContent.replace(/\s+/g, ' ').trim(),
      value: (li.querySelector('.alert-value') || { textContent: '' }).textContent.replace(/\s+/g, ' ').trim(),
      note: (li.querySelector('.alert-note') || { textContent: '' }).textContent.trim(),
      buttons: all('button[data-action]:not([data-action="deliveries"])', li).map((b) => b.dataset.action),
      deliveries: !!li.querySelector('button[data-action="deliveries"]'),
    })),
    stats: {
      upload: stat('stat-upload-success-rate'), oauth: stat('stat-oauth-failures'),
      webhook: stat('stat-webhook-latency'), token: stat('stat-token-failures'),
    },
    cards: all('#platform-metrics .platform-card[data-platform]').map((c) => c.dataset.platform),
    tiktok: card('tiktok'), instagram: card('instagram'),
    events: all('#events-table tbody tr').map((tr) => ({
      id: tr.dataset.eventId, name: tr.dataset.name, platform: tr.dataset.platform,
      value: tr.cells[3] ? tr.cells[3].textContent.trim() : '', labels: all('.chip', tr).map((c) => c.textContent),
    })),
    eventsPage: q('#events-page').textContent.trim(),
    eventsNextDisabled: q('#events-next').disabled,
    loaded: all('[data-loaded]').filter((n) => !n.hidden).map((n) => (n.id || n.className) + '=' + n.dataset.loaded),
    sectionErrors: all('[data-section-error]').filter((n) => !n.hidden).map((n) => n.dataset.sectionError + ': ' + n.textContent),
    banner: !q('#error-banner').hidden,
  };
})()
"""


class Failure(Exception):
    """A step could not be carried out; the remaining steps are skipped."""


class Interrupted(Exception):
    """SIGTERM or SIGINT: stop, clean up, report."""


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.started = time.monotonic()

    def check(self, name: str, ok: bool, detail: object = None) -> bool:
        if ok:
            self.passed += 1
            print(f"ok - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {name}", flush=True)
            if detail is not None:
                for line in str(detail).splitlines() or [""]:
                    print(f"#   {line}", flush=True)
        return ok

    def note(self, text: str) -> None:
        print(f"# {text}", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# ----------------------------------------------------------------- database

def database_url_for(admin_url: str, name: str) -> str:
    """The admin connection string pointed at database `name` (URI or key=value form)."""
    if re.match(r"^postgres(ql)?://", admin_url):
        parts = urllib.parse.urlsplit(admin_url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    return f"{admin_url} dbname={name}"  # libpq: the last dbname wins


def psql(admin_url: str, sql: str) -> None:
    if not shutil.which("psql"):
        raise Failure("psql not found on PATH (needed to create the test database)")
    result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", sql],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise Failure(f"psql failed ({sql}): {result.stderr.strip()}")


# ------------------------------------------------------------------- tocsin

class Tocsin:
    """The tocsin binary against one database; `start()` runs `tocsin run`."""

    def __init__(self, binary: Path, database_url: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.log_path = workdir / "tocsin.log"
        self.proc: subprocess.Popen | None = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in TOCSIN_VARIABLES}
        env.update(DATABASE_URL=database_url, LOG_LEVEL="warning", ALERT_CHECK_INTERVAL="2", HOST="127.0.0.1",
                   PORT=str(self.port), ALERT_RULES_FILE=str(RULES_FILE))
        self.env = env

    def command(self, *args: str) -> str:
        result = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise Failure(f"tocsin {' '.join(args)} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}")
        return result.stdout

    def create_key(self, scope: str, name: str) -> str:
        lines = [line.strip() for line in self.command("keys", "create", "--scope", scope, "--name", name).splitlines() if line.strip()]
        if not lines:
            raise Failure(f"tocsin keys create --scope {scope} printed no key")
        return lines[-1]

    def start(self, timeout: float = 30.0) -> float:
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(self.binary), "run", "--port", str(self.port)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=str(ROOT))
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise Failure(f"tocsin run exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise Failure(f"GET /readyz did not answer 200 within {timeout:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """Minimal JSON client of Tocsin's API with a bearer key."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", "replace")
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text

    def get(self, path: str) -> object:
        status, body = self.request("GET", path)
        if status != 200:
            raise Failure(f"GET {path} answered {status}: {body}")
        return body

    def ingest(self, events: list[dict]) -> None:
        status, body = self.request("POST", "/api/metrics", events)
        if status != 202 or not isinstance(body, dict) or body.get("accepted") != len(events):
            raise Failure(f"POST /api/metrics answered {status}: {str(body)[:500]}")

    def open_alerts(self) -> list[dict]:
        return self.get("/api/monitoring/alerts?status=pending,firing,acknowledged&limit=100")["alerts"]


# --------------------------------------------------------------------- data

def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def seed_events(run_id: str, now: dt.datetime) -> list[dict]:
    """The seeded events, oldest first, one second apart, ending two seconds before `now`.

    Per platform, in the 15-minute rule windows:
      tiktok     upload 180 ok / 20 failed (10 %: fires high_error_rate), oauth 25 ok / 2 failed
      instagram  upload 196 ok / 4 failed (2 %: below 5 %),              oauth 20 ok / 3 failed
      webhook.latency 0.5, 1, 1.5, 1.5, 2, 2.5 s (average 1.5 s, below 5 s), 6 webhook.received
      token.refresh 8 ok / 2 failed (not more than 3)
    The three newest events are tiktok upload failures with distinctive labels.
    """
    bulk: list[dict] = []
    add = lambda n, name, platform, **extra: bulk.extend({"name": name, "platform": platform, **extra} for _ in range(n))  # noqa: E731
    add(180, "upload.success", "tiktok")
    add(17, "upload.failure", "tiktok")
    add(196, "upload.success", "instagram")
    add(4, "upload.failure", "instagram")
    add(25, "oauth.success", "tiktok")
    add(2, "oauth.failure", "tiktok")
    add(20, "oauth.success", "instagram")
    add(3, "oauth.failure", "instagram")
    for i, latency in enumerate([0.5, 1.0, 1.5, 1.5, 2.0, 2.5]):
        platform = ("tiktok", "instagram")[i % 2]
        add(1, "webhook.latency", platform, value=latency)
        add(1, "webhook.received", platform)
    add(4, "token.refresh.success", "tiktok")
    add(4, "token.refresh.success", "instagram")
    add(1, "token.refresh.failure", "tiktok")
    add(1, "token.refresh.failure", "instagram")
    random.Random(20261129).shuffle(bulk)
    for seq in (1, 2, 3):
        bulk.append({"name": "upload.failure", "platform": "tiktok",
                     "labels": {"e2e_run": run_id, "reason": "quota_exceeded", "seq": str(seq)}})
    count = len(bulk)
    for i, event in enumerate(bulk):
        event["occurred_at"] = rfc3339(now - dt.timedelta(seconds=count - i + 1))
    return bulk


def expected_stats(events: list[dict]) -> dict:
    def count(name: str, platform: str | None = None) -> int:
        return sum(1 for e in events if e["name"] == name and (platform is None or e.get("platform") == platform))
    uploads_ok, uploads_failed = count("upload.success"), count("upload.failure")
    rate = uploads_ok / (uploads_ok + uploads_failed)
    latencies = [e["value"] for e in events if e["name"] == "webhook.latency"]
    latency = sum(latencies) / len(latencies)
    per_platform = {p: count("upload.success", p) / (count("upload.success", p) + count("upload.failure", p))
                    for p in ("tiktok", "instagram")}
    return {
        "upload": {"text": f"{rate * 100:.1f}%", "value": rate,
                   "detail": f"{uploads_ok} of {uploads_ok + uploads_failed} uploads"},
        "oauth": {"text": str(count("oauth.failure")), "value": count("oauth.failure")},
        "webhook": {"text": fmt_seconds(latency), "value": latency},
        "token": {"text": str(count("token.refresh.failure")), "value": count("token.refresh.failure")},
        "platform_rates": {p: f"{r * 100:.1f}%" for p, r in per_platform.items()},
    }


def fmt_seconds(seconds: float) -> str:
    """How the page shows seconds below 10: whole numbers bare ("1 s"), others with two decimals ("1.50 s")."""
    return f"{int(seconds)} s" if seconds == int(seconds) else f"{seconds:.2f} s"


def png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        header = f.read(24)
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return struct.unpack(">II", header[16:24])


def first_difference(got: list, want: list) -> str:
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else "(nothing)"
        w = want[i] if i < len(want) else "(nothing)"
        if g != w:
            return f"row {i + 1}: got {g}, want {w}"
    return "no difference"


def js(value: object) -> str:
    return json.dumps(value)


# --------------------------------------------------------------------- test

class DashboardTest:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.check = report.check
        self.run_id = secrets.token_hex(4)
        self.browser: Browser | None = None
        self.tocsin: Tocsin | None = None

    # -- setup

    def seed(self, api: Api) -> None:
        self.events = seed_events(self.run_id, dt.datetime.now(dt.timezone.utc))
        self.expected = expected_stats(self.events)
        api.ingest(self.events)
        self.check(f"seeded {len(self.events)} events through POST /api/metrics", True)
        # When the server stored them, by its own clock.
        newest = api.get("/api/monitoring/events?window=1h&limit=1")["events"]
        seeded_at = parse_time(newest[0]["received_at"]) if newest else dt.datetime.now(dt.timezone.utc)

        # Every rule evaluated after the seed, and exactly the one alert open.
        deadline = time.monotonic() + 20
        alerts, stale = [], []
        while time.monotonic() < deadline:
            alerts = api.open_alerts()
            rules = api.get("/api/rules")["rules"]
            stale = [r["name"] for r in rules
                     if not r.get("last_evaluated_at") or parse_time(r["last_evaluated_at"]) <= seeded_at]
            if not stale and [(a["rule"], a["platform"], a["status"]) for a in alerts] == [("high_error_rate", "tiktok", "firing")]:
                break
            time.sleep(0.2)
        summary = [(a["rule"], a["platform"], a["status"]) for a in alerts]
        ok = self.check("before the page loads exactly one alert is open: high_error_rate on tiktok, firing",
                        not stale and summary == [("high_error_rate", "tiktok", "firing")],
                        f"open alerts {summary}; rules not evaluated since the seed: {stale}")
        if not ok:
            raise Failure("the seeded data did not produce the expected alert")
        self.first_alert = alerts[0]

    # -- page helpers

    def snapshot(self) -> dict:
        return self.browser.evaluate(SNAPSHOT)

    def sign_in(self, key: str, name: str) -> dict:
        b = self.browser
        b.wait_for("document.body.dataset.view === 'login' && !document.getElementById('login-form').hidden", 15)
        b.type_text("#login-key", key)
        b.click("#login-submit")
        b.wait_for("document.body.dataset.ready === 'true'", 20)
        b.wait_for(f"document.getElementById('session-name').textContent === {js(name)}", 5)
        return self.snapshot()

    def sign_out(self) -> None:
        b = self.browser
        b.click("#logout")
        b.wait_for("document.body.dataset.view === 'login'", 10)

    # -- steps

    def load_page(self, admin_key: str) -> None:
        b = self.browser
        b.add_init_script(INSTRUMENTATION)
        b.navigate(self.tocsin.base + "/monitoring")
        b.wait_for("document.body.dataset.view === 'login'", 15)
        self.check("the page asks for an API key (#login-form)",
                   b.evaluate("!document.getElementById('login-view').hidden && !!document.getElementById('login-key')"))
        snap = self.sign_in(admin_key, "e2e-admin")
        self.check("signing in with the admin key through the login form shows the dashboard (body[data-ready])",
                   snap["view"] == "dashboard" and snap["ready"] and snap["role"] == "admin",
                   f"view={snap['view']} ready={snap['ready']} role={snap['role']}")
        cookies = b.call("Network.getCookies", {"urls": [self.tocsin.base + "/"]}).get("cookies", [])
        session = next((c for c in cookies if c.get("name") == "tocsin_session"), {})
        self.check("the session is an HttpOnly, SameSite=Strict cookie the page's scripts cannot read",
                   session.get("httpOnly") is True and session.get("sameSite") == "Strict"
                   and "tocsin_session" not in b.evaluate("document.cookie"),
                   {k: session.get(k) for k in ("httpOnly", "sameSite", "path")})
        try:
            b.wait_for("document.getElementById('stream-status').dataset.state === 'live'", 10)
        except CDPError:
            pass

    def check_initial_render(self) -> None:
        snap = self.snapshot()
        exp = self.expected
        self.check("no section shows an error and the API banner is hidden",
                   not snap["sectionErrors"] and not snap["banner"] and all(x.endswith("=true") for x in snap["loaded"]),
                   f"errors={snap['sectionErrors']} banner={snap['banner']} loaded={snap['loaded']}")

        alerts = snap["alerts"]
        one = alerts[0] if len(alerts) == 1 else {}
        self.check("#active-alerts lists the firing alert: data-rule=high_error_rate, data-platform=tiktok",
                   len(alerts) == 1 and one["rule"] == "high_error_rate" and one["platform"] == "tiktok"
                   and one["status"] == "firing" and one["severity"] == "error"
                   and one["id"] == str(self.first_alert["id"]),
                   json.dumps(alerts, indent=1))
        self.check("the alert shows its value against the threshold (10.0% > 5.0% · 200 samples), count 1, title (1) Tocsin",
                   one.get("value") == "10.0% > 5.0% · 200 samples" and snap["alertsCount"] == "1" and snap["title"] == "(1) Tocsin",
                   f"value={one.get('value')!r} count={snap['alertsCount']!r} title={snap['title']!r}")
        self.check("an admin sees Acknowledge and Resolve on the alert", one.get("buttons") == ["acknowledge", "resolve"],
                   one.get("buttons"))

        stats = snap["stats"]
        for key, element, what in (("upload", "stat-upload-success-rate", "upload success rate"),
                                   ("oauth", "stat-oauth-failures", "OAuth failures"),
                                   ("webhook", "stat-webhook-latency", "average webhook latency"),
                                   ("token", "stat-token-failures", "token refresh failures")):
            got, want = stats[key], exp[key]
            value_ok = got["value"] != "" and abs(float(got["value"]) - float(want["value"])) < 1e-9
            self.check(f"#{element} shows {want['text']} ({what}), data-value {want['value']:g}",
                       got["text"] == want["text"] and value_ok, f"got text={got['text']!r} data-value={got['value']!r}")
        self.check("the upload stat explains itself: " + exp["upload"]["detail"],
                   stats["upload"]["detail"].startswith(exp["upload"]["detail"]), stats["upload"]["detail"])

        cards_ok = (snap["cards"] == ["instagram", "tiktok"] and snap["tiktok"] and snap["instagram"]
                    and snap["tiktok"]["upload.success_rate"] == exp["platform_rates"]["tiktok"]
                    and snap["instagram"]["upload.success_rate"] == exp["platform_rates"]["instagram"]
                    and snap["tiktok"]["upload.failure"] == "20" and snap["instagram"]["oauth.failure"] == "3")
        self.check(f"metrics by platform: instagram and tiktok cards, upload success "
                   f"{exp['platform_rates']['tiktok']} (tiktok) / {exp['platform_rates']['instagram']} (instagram)",
                   cards_ok, f"cards={snap['cards']} tiktok={snap['tiktok']} instagram={snap['instagram']}")

        newest = list(reversed(self.events))[:50]
        rows = snap["events"]
        self.check("the events table's first page has 50 rows (Page 1 · 50 events, Next enabled)",
                   len(rows) == 50 and snap["eventsPage"] == "Page 1 · 50 events" and not snap["eventsNextDisabled"],
                   f"rows={len(rows)} page={snap['eventsPage']!r} next disabled={snap['eventsNextDisabled']}")
        got = [(r["name"], r["platform"]) for r in rows]
        want = [(e["name"], e["platform"]) for e in newest]
        self.check("the rows are the 50 newest seeded events, newest first", got == want, first_difference(got, want))
        labelled = [sorted(r["labels"]) for r in rows[:3]]
        want_labels = [sorted([f"e2e_run={self.run_id}", "reason=quota_exceeded", f"seq={s}"]) for s in (3, 2, 1)]
        self.check(f"the three newest rows carry the seeded labels (e2e_run={self.run_id}, reason=quota_exceeded, seq=3,2,1)",
                   labelled == want_labels, labelled)
        latency_rows = [r["value"] for r in rows if r["name"] == "webhook.latency"]
        want_latency = [fmt_seconds(e["value"]) for e in newest if e["name"] == "webhook.latency"]
        self.check("webhook latencies in the table read in seconds", latency_rows == want_latency,
                   f"got {latency_rows}, want {want_latency}")

        self.check("#stream-status is live", snap["stream"] == "live", snap["stream"])

    def check_live_alert(self, api: Api) -> None:
        b = self.browser
        # Pause auto-refresh: with the stream live, the page then makes no alert
        # requests at all, so anything new can only come over the stream.
        b.click("#auto-refresh")
        b.wait_for("!document.getElementById('auto-refresh').checked", 3)
        b.evaluate("""(() => {
            window.__e2eMarker = 1;
            window.__e2eStream.length = 0;
            window.__e2eFetches.length = 0;
            window.__e2eAppearedAt = null;
            const list = document.getElementById('active-alerts');
            const seen = () => list.querySelector('li[data-rule="token_refresh_failures"]');
            new MutationObserver((_, observer) => {
                if (seen()) { window.__e2eAppearedAt = Date.now(); observer.disconnect(); }
            }).observe(list, { childList: true, subtree: true, attributes: true });
            return true;
        })()""")
        posted = time.monotonic()
        api.ingest([{"name": "token.refresh.failure", "platform": "tiktok"} for _ in range(5)])
        try:
            b.wait_for("!!document.querySelector('#active-alerts > li[data-rule=\"token_refresh_failures\"]')", 10, 0.05)
            arrived = time.monotonic() - posted
        except CDPError:
            arrived = None
        self.check("a second alert (token_refresh_failures) appears in the open page within 10 s"
                   + (f" ({arrived:.1f} s after the events were posted)" if arrived is not None else ""),
                   arrived is not None, json.dumps(self.snapshot()["alerts"], indent=1))
        state = b.evaluate("""({
            marker: window.__e2eMarker,
            stream: window.__e2eStream.map((m) => JSON.parse(m.data)).map((m) => [m.type, m.alert && m.alert.rule]),
            // requests for alerts made before the new alert showed up (the list, or the history)
            polled: window.__e2eFetches.filter((f) => f.url.startsWith('/api/monitoring/alerts')
                && (window.__e2eAppearedAt === null || f.at <= window.__e2eAppearedAt)).map((f) => f.url),
        })""")
        self.check("it came over the live stream (event: alert, alert.fired), with no reload and no polling",
                   state["marker"] == 1 and ["alert.fired", "token_refresh_failures"] in state["stream"] and not state["polled"],
                   f"marker={state['marker']!r} stream={state['stream']} polled={state['polled']}")
        snap = self.snapshot()
        rules = [(a["rule"], a["status"], a["severity"]) for a in snap["alerts"]]
        self.check("both alerts are listed, the critical one first; count 2, title (2) Tocsin",
                   rules == [("token_refresh_failures", "firing", "critical"), ("high_error_rate", "firing", "error")]
                   and snap["alertsCount"] == "2" and snap["title"] == "(2) Tocsin",
                   f"alerts={rules} count={snap['alertsCount']!r} title={snap['title']!r}")
        open_ids = {str(a["id"]) for a in api.open_alerts()}
        self.check("the page's alert ids match GET /api/monitoring/alerts",
                   {a["id"] for a in snap["alerts"]} == open_ids, f"page {[a['id'] for a in snap['alerts']]} api {sorted(open_ids)}")
        b.click("#auto-refresh")
        b.wait_for("document.getElementById('auto-refresh').checked", 3)

    def check_read_only(self, read_key: str, admin_key: str) -> None:
        b = self.browser
        self.sign_out()
        cleared = b.evaluate("document.querySelectorAll('#active-alerts > li, #events-table tbody tr').length === 0")
        self.check("#logout returns to the login form and clears the page", cleared)
        snap = self.sign_in(read_key, "e2e-read")
        rules = sorted(a["rule"] for a in snap["alerts"])
        self.check("a read-only session sees both alerts", snap["role"] == "read"
                   and rules == ["high_error_rate", "token_refresh_failures"], f"role={snap['role']} alerts={rules}")
        buttons = b.evaluate("document.querySelectorAll('#active-alerts button:not([data-action=\"deliveries\"])').length")
        self.check("…but no Acknowledge / Resolve buttons (and no Run checks)", buttons == 0 and snap["runChecksHidden"],
                   f"buttons={buttons} run-checks hidden={snap['runChecksHidden']}")
        self.check("…and every alert has its Deliveries button (read scope)",
                   all(a.get("deliveries") for a in snap["alerts"]), [a.get("deliveries") for a in snap["alerts"]])
        form_hidden = b.evaluate("document.getElementById('silence-form').hidden")
        self.check("…and no silence form", form_hidden is True, form_hidden)
        self.sign_out()
        self.sign_in(admin_key, "e2e-admin")
        b.wait_for("document.getElementById('stream-status').dataset.state === 'live'", 10)

    def check_acknowledge(self, api: Api) -> None:
        b = self.browser
        item = '#active-alerts > li[data-rule="token_refresh_failures"]'
        note = self.ack_note = f"e2e {self.run_id}: looking into it"
        b.click(f'{item} button[data-action="acknowledge"]')
        b.wait_for(f"!!document.querySelector('{item} form.note-form[data-action=\"acknowledge\"]')", 5)
        b.type_text(f"{item} form.note-form input[name=note]", note)
        b.click(f'{item} form.note-form button[type="submit"]')
        try:
            b.wait_for(f"(document.querySelector('{item}') || {{}}).dataset?.status === 'acknowledged'", 10)
        except CDPError:
            pass
        one = next((a for a in self.snapshot()["alerts"] if a["rule"] == "token_refresh_failures"), {})
        self.check("acknowledging through the button and note form marks the alert acknowledged",
                   one.get("status") == "acknowledged" and "Acknowledged by e2e-admin" in one.get("text", ""),
                   json.dumps(one, indent=1))
        self.check("the page shows the note; Acknowledge is gone, Resolve stays",
                   one.get("note") == f"Note: {note}" and one.get("buttons") == ["resolve"],
                   f"note={one.get('note')!r} buttons={one.get('buttons')}")
        # This run configures no channel: the ledger is empty and says so.
        b.click(f'{item} button[data-action="deliveries"]')
        try:
            b.wait_for(f"!!document.querySelector('{item} .alert-deliveries [data-delivery-outcome]')", 10)
        except CDPError:
            pass
        outcome = b.evaluate(f"(document.querySelector('{item} .alert-deliveries [data-delivery-outcome]') || {{}}).textContent")
        self.check("Deliveries opens the alert's ledger in place (no route here: it says so)",
                   outcome == "no route sends this alert", outcome)
        stored = next((a for a in api.open_alerts() if a["rule"] == "token_refresh_failures"), {})
        self.check("the API agrees: acknowledged by e2e-admin with the note",
                   stored.get("status") == "acknowledged" and stored.get("acknowledged_by") == "e2e-admin"
                   and stored.get("acknowledge_note") == note,
                   {k: stored.get(k) for k in ("status", "acknowledged_by", "acknowledge_note")})

    def refresh_page_data(self) -> dict:
        b = self.browser
        b.evaluate("window.__e2eFetches.length = 0; true")
        b.click("#refresh")
        b.wait_for("window.__e2eFetches.some((f) => f.url.startsWith('/api/monitoring/events')) && !document.body.dataset.loading", 15)
        return self.snapshot()

    def screenshots(self) -> None:
        b = self.browser
        snap = self.refresh_page_data()
        token_total = self.expected["token"]["value"] + 5
        self.check(f"after Refresh the token failure stat counts the new events ({token_total})",
                   snap["stats"]["token"]["text"] == str(token_total), snap["stats"]["token"])
        history = b.evaluate("""Array.from(document.querySelectorAll('#alert-history tbody tr[data-alert-id]'),
            (tr) => ({ id: tr.dataset.alertId, status: tr.dataset.status,
                       cells: Array.from(tr.cells, (td) => td.textContent.replace(/\\s+/g, ' ').trim()) }))""")
        ack = next((a for a in snap["alerts"] if a["rule"] == "token_refresh_failures"), {})
        row = next((h for h in history if h["id"] == ack.get("id")), {})
        self.check("the alert history lists both alerts, the acknowledged one with who and the note",
                   len(history) == 2 and row.get("status") == "acknowledged"
                   and row["cells"][-2:] == ["e2e-admin", self.ack_note],
                   json.dumps(history, indent=1))
        b.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); true")
        b.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 0, "y": 0})  # no hover effect in the pictures
        shots = []
        # The pictures in docs/ are replaced only when asked (--screenshots), so a test run leaves the tree clean.
        targets = (SHOT_DESKTOP, SHOT_MOBILE) if UPDATE_SCREENSHOTS else \
            (self.workdir / SHOT_DESKTOP.name, self.workdir / SHOT_MOBILE.name)
        for path, width, height, mobile in ((targets[0], 1280, 900, False), (targets[1], 390, 844, True)):
            b.set_viewport(width, height, mobile)
            b.wait_for(f"document.documentElement.clientWidth === {width}", 5)
            time.sleep(0.4)  # charts redraw at the new width (ResizeObserver → requestAnimationFrame)
            b.screenshot(str(path), full_page=True, max_height=SHOT_MAX_HEIGHT)
            size = png_size(path)
            kib = path.stat().st_size / 1024
            shots.append(f"{path.name} {size[0]}×{size[1]} {kib:.0f} KiB")
            self.check(f"screenshot {path.name} ({size[0]}×{size[1]}, {kib:.0f} KiB)",
                       size[0] == width and 600 <= size[1] <= SHOT_MAX_HEIGHT and kib < 2048, shots[-1])
        b.set_viewport(1280, 900, False)

    def check_console(self) -> None:
        b = self.browser
        problems = []
        for line in b.logs:
            expected_401 = "status of 401" in line and line.rstrip().endswith("/monitoring/session")
            if expected_401:
                continue  # the page asks for the session before signing in
            if line.startswith(("exception:", "console.error", "console.assert")) or "Content Security Policy" in line \
                    or line.startswith("log.error"):
                problems.append(line)
        self.check("no JavaScript exceptions, console errors or CSP violations in the page", not problems,
                   "\n".join(problems[:10]))

    # -- the whole run

    def run(self, admin_url: str, binary: Path, workdir: Path) -> None:
        report = self.report
        self.workdir = workdir
        db_name = f"tocsin_e2e_{os.getpid()}_{self.run_id}"
        db_created = False
        try:
            psql(admin_url, f'CREATE DATABASE "{db_name}"')
            db_created = True
            self.tocsin = Tocsin(binary, database_url_for(admin_url, db_name), workdir)
            self.tocsin.command("migrate")
            admin_key = self.tocsin.create_key("admin", "e2e-admin")
            read_key = self.tocsin.create_key("read", "e2e-read")
            ready_in = self.tocsin.start()
            report.note(f"tocsin run on port {self.tocsin.port}, database {db_name}, ready in {ready_in:.1f} s")
            api = Api(self.tocsin.base, admin_key)
            self.seed(api)

            self.browser = Browser(1280, 900)
            self.load_page(admin_key)
            self.check_initial_render()
            self.check_live_alert(api)
            self.check_read_only(read_key, admin_key)
            self.check_acknowledge(api)
            self.screenshots()
            self.check_console()
        except Exception as err:
            report.check(f"the test ran to the end ({type(err).__name__})", False, err)
            if self.tocsin is not None:
                report.note("tocsin's log ends with:")
                for line in self.tocsin.log_tail().splitlines():
                    report.note("  " + line)
            if self.browser is not None:
                for line in self.browser.logs[-15:]:
                    report.note("  page: " + line)
        finally:
            # Cleanup is bounded by its own timeouts; neither the alarm nor a second
            # signal may cut it short.
            signal.alarm(0)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if self.browser is not None:
                self.browser.close()
            if self.tocsin is not None:
                self.tocsin.stop()
            if db_created:
                try:
                    psql(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                except Failure as err:
                    report.note(f"could not drop database {db_name}: {err}")


def main() -> int:
    report = Report()
    admin_url = os.environ.get("DATABASE_URL", "").strip()
    if not admin_url:
        print("not ok - DATABASE_URL is not set (an admin connection URL such as postgresql://postgres@127.0.0.1:5432/postgres)")
        return 1
    binary = Path(os.environ.get("TOCSIN_BIN") or ROOT / ".build" / "debug" / "tocsin")
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"not ok - the tocsin binary {binary} does not exist (build it: swift build --product tocsin, or set TOCSIN_BIN)")
        return 1

    try:
        find_chromium()
    except FileNotFoundError as err:
        print(f"not ok - {err}")
        return 1

    limit = int(os.environ.get("E2E_TIMEOUT", "110"))

    def on_alarm(signum, frame):
        raise Failure(f"the test did not finish within {limit} s (E2E_TIMEOUT)")

    def on_signal(signum, frame):
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.alarm(limit)

    workdir = Path(tempfile.mkdtemp(prefix="tocsin-e2e-"))
    keep = bool(os.environ.get("E2E_KEEP_LOGS"))
    try:
        DashboardTest(report).run(admin_url, binary, workdir)
    finally:
        signal.alarm(0)
        if keep:
            report.note(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.note(f"{report.passed} passed, {report.failed} failed in {report.elapsed():.1f} s")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
