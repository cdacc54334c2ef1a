#!/usr/bin/env python3
"""Self-test of scripts/check_contract.py against the real docs/openapi.yaml.

    scripts/check_contract_selftest.py

Feeds it good records and bad ones (wrong type, missing required key, extra
key, undocumented status, undocumented path, undocumented content type, a
bad header, a non-RFC 3339 timestamp, a malformed log line) and checks its
exit codes and messages. Prints "N passed, N failed" and exits 1 on any
failure.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKER = HERE / "check_contract.py"

JSON = "application/json; charset=utf-8"

ALERT = {
    "id": 1, "rule": "high_error_rate", "severity": "error", "status": "firing", "group_key": "tiktok",
    "platform": "tiktok", "value": 0.2, "threshold": 0.05, "comparison": ">", "samples": 10, "description": "d",
    "runbook_url": None, "started_at": "2026-11-29T06:55:23.123456Z", "fired_at": "2026-11-29T06:55:23.123456Z",
    "last_evaluated_at": None, "acknowledged_at": None, "acknowledged_by": None, "acknowledge_note": None,
    "resolved_at": None, "resolved_by": None, "resolution": None, "resolve_note": None, "labels": {"team": "x"},
    "inhibited_by": None, "group_labels": {"platform": "tiktok"}, "source": "rule", "external": None,
}


def record(method, path, status, body=None, content_type=JSON, headers=None):
    r = {"method": method, "path": path, "status": status, "content_type": content_type,
         "headers": {"x-request-id": "abc123"} if headers is None else headers}
    if body is not None:
        r["body"] = body if isinstance(body, str) else json.dumps(body)
    return r


def alerts_page(**changes):
    alert = dict(ALERT)
    for key, value in changes.items():
        if value is KeyError:
            alert.pop(key)
        else:
            alert[key] = value
    return {"alerts": [alert], "next_cursor": None}


GOOD = [
    record("GET", "/healthz", 200, {"status": "ok"}),
    record("GET", "/api/monitoring/alerts?status=firing,pending&limit=10", 200, alerts_page()),
    record("GET", "/api/monitoring/alerts?format=csv", 200, "id,rule\r\n", "text/csv; charset=utf-8",
           {"x-next-cursor": "1.1796143334588919.8", "content-disposition": 'attachment; filename="alerts.csv"'}),
    record("GET", "/api/rules?include_disabled=true", 200, {"rules": []}),
    record("GET", "/api/rules/nope", 404, {"error": {"code": "not_found", "message": "no rule named nope"}}),
    record("POST", "/api/metrics", 400, {"error": {"code": "invalid_events", "message": "1 problem found; nothing was stored",
                                                   "details": [{"index": 1, "field": "name", "reason": "is required"}]}}),
    record("POST", "/api/metrics", 202, {"accepted": 2}, headers={"idempotent-replayed": "true"}),
    record("GET", "/api/whoami", 401, {"error": {"code": "unauthorized", "message": "missing API key"}},
           headers={"www-authenticate": "Bearer"}),
    record("GET", "/api/monitoring/events", 503, {"error": {"code": "database_unavailable", "message": "retry"}},
           headers={"retry-after": "5"}),
    record("GET", "/api/monitoring/stream", 200, None, "text/event-stream; charset=utf-8"),
    record("GET", "/monitoring", 304, "", ""),
    record("GET", "/api/rules/", 200, {"rules": []}),
    # Unrouted answers the spec documents in x-unrouted-responses.
    record("GET", "/no/such/route", 404, {"error": {"code": "not_found", "message": "no such route"}}),
    record("DELETE", "/api/rules/some_rule", 405, {"error": {"code": "method_not_allowed", "message": "use GET"}},
           headers={"allow": "GET"}),
    record("POST", "/api/whoami", 413, {"error": {"code": "payload_too_large", "message": "too large"}}),
]

# (name, records, strings the output must contain)
BAD = [
    ("wrong type", [record("GET", "/api/monitoring/alerts", 200, alerts_page(samples="ten"))],
     ["FAIL GET /api/monitoring/alerts 200 /alerts/0/samples:", "'ten' is not of type 'integer'"]),
    ("missing required key", [record("GET", "/api/monitoring/alerts", 200, alerts_page(fired_at=KeyError))],
     ["/alerts/0:", "'fired_at' is a required property"]),
    ("extra key", [record("GET", "/api/monitoring/alerts", 200, alerts_page(colour="red"))],
     ["/alerts/0:", "Additional properties are not allowed ('colour' was unexpected)"]),
    ("undocumented status", [record("GET", "/api/rules", 418, {"error": {"code": "x", "message": "teapot"}})],
     ["FAIL GET /api/rules 418", "status 418 is not documented for GET /api/rules"]),
    ("undocumented path", [record("GET", "/api/secret", 200, {"secret": True})],
     ["FAIL GET /api/secret 200", "undocumented route: no path of the spec matches"]),
    ("undocumented method", [record("PUT", "/api/rules", 200, {"rules": []})],
     ["FAIL PUT /api/rules 200", "undocumented route: /api/rules has no PUT operation"]),
    ("undocumented content type", [record("GET", "/api/rules", 200, "<rules/>", "application/xml")],
     ["content type application/xml is not documented"]),
    ("bad timestamp", [record("GET", "/api/monitoring/alerts", 200, alerts_page(started_at="10000-01-01T00:00:00.000000Z"))],
     ["/alerts/0/started_at:", "is not a 'date-time'"]),
    ("wrong error code", [record("GET", "/api/whoami", 401, {"error": {"code": "forbidden", "message": "x"}})],
     ["/error/code:", "'unauthorized' was expected"]),
    ("bad header", [record("POST", "/api/metrics", 202, {"accepted": 1}, headers={"idempotent-replayed": "yes"})],
     ["header Idempotent-Replayed:", "'true' was expected"]),
    ("wrong Allow", [record("GET", "/api/rules/backtest", 405, {"error": {"code": "method_not_allowed", "message": "x"}},
                            headers={"allow": "GET, POST"})],
     ["header Allow: 'GET, POST' is not the methods of /api/rules/backtest (POST)"]),
    ("not JSON", [record("GET", "/healthz", 200, "ok")], ["the body is not JSON"]),
    ("malformed line", ["{not json"], ["FAIL line 2: not a JSON record"]),
]


def run(records, *extra):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as log:
        for r in records:
            log.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    try:
        done = subprocess.run([sys.executable, str(CHECKER), *extra, log.name], capture_output=True, text=True)
    finally:
        os.unlink(log.name)
    return done.returncode, done.stdout + done.stderr


def main():
    passed = failed = 0

    def expect(name, condition, output):
        nonlocal passed, failed
        if condition:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}\n" + "".join(f"     | {line}\n" for line in output.splitlines()))

    code, output = run(GOOD)
    expect("good records pass", code == 0 and " 0 problems" in output, output)
    expect("the summary counts records and unrouted answers",
           f"{len(GOOD)} records" in output and "3 answers to unrouted requests" in output, output)
    expect("the summary lists operations never exercised",
           "never exercised (not a failure):" in output and "POST /api/rules/backtest" in output, output)

    for name, records, needles in BAD:
        code, output = run(GOOD[:1] + records)
        missing = [n for n in needles if n not in output]
        expect(f"{name}: exit 1 and the message", code == 1 and not missing,
               output + (f"\n(missing: {missing})" if missing else ""))

    code, output = run([record("GET", "/api/whoami", 200, {"name": "a", "scopes": ["read"]}, headers={})],
                       "--require-headers")
    expect("--require-headers: a missing required header fails",
           code == 1 and "the documented header X-Request-Id is missing" in output, output)

    code, output = run(GOOD, "--spec", "/nonexistent/openapi.yaml")
    expect("an unreadable spec exits 2", code == 2, output)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
