"""Schemathesis hooks for scripts/fuzz_api.sh (loaded with SCHEMATHESIS_HOOKS).

docs/openapi.yaml says everything a schema can say. A few rules span several
fields or depend on the clock, and the spec states them in prose only:

  - time ranges of reads: `window` not with `since`/`until`, `until` only
    with `since`, `since` before `until` (default now), at most 400 days;
  - series: `name` unless `agg=ratio`, `numerator` and `denominator` with
    it, at most 2,000 buckets in the range;
  - backtests: `since` before `until` (default now), at most 31 days, at
    most 50,000 steps, `since` within the retention (30 days: the fuzz
    run's METRICS_RETENTION_DAYS), `recovery_threshold` not beyond
    `threshold`;
  - rules of backtests: each duration within its field's range (`for` 0s
    to 7d, `interval` 1s to 1d, `window` and `lookback` 1s to 31d), which a
    schema cannot say of "15m"-style strings; a composite's `expression`
    names applied rules (the fuzz run's default rules); an SLO's `period`
    is 1d to 31d, each burn rate's `short` window shorter than its `long`
    one (both 1m to 7d) and of a severity of its own, every `good` metric
    among the `total` ones, `where` and `group_by` on `platform` only;
    `group_by` does not list `none` with other keys; `where` patterns
    compile;
  - silences: `ends_at` after `starts_at` and in the future; a recurrence's
    time zone is one of the zone database, its `from:to` ranges go forward
    (and a range of days does not mix signs), its times end after they
    start, and its days of the month fall in its months;
  - events: `occurred_at` within the retention and at most 5 minutes ahead;
  - Alertmanager API: regular expressions (`=~`/`!~` matchers, `filter`
    values, `receiver`) compile and are at most 250 UTF-16 code units, which
    a schema cannot say; a posted silence has a matcher that does not match
    the empty string and ends after it starts and in the future; a posted
    alert does not end before it starts.

A schema-valid ("positive") request that breaks one of them is rightly
refused with 400, which `positive_data_acceptance` would report. So, right
before a positive request is sent, this hook bends it to follow them —
changing as little as it can (keeping odd timestamps, moving the other end
of the range instead) so the odd values still reach the server. Negative
requests are sent as generated.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import schemathesis

DAY = 86_400
RANGED = {"/api/monitoring/metrics", "/api/monitoring/metrics/series", "/api/monitoring/events",
          "/api/monitoring/alerts"}
BUCKETS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86_400}
TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse(text):
    """RFC 3339 → aware datetime (None when it is not one or out of Python's range)."""
    if not isinstance(text, str):
        return None
    m = TIMESTAMP.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction = float(m.group(7) or 0)
    offset = m.group(8)
    try:
        value = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone.utc)
        value += timedelta(seconds=fraction)
        if offset not in ("Z", "z"):
            sign = 1 if offset[0] == "+" else -1
            value -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        return value
    except (ValueError, OverflowError):
        return None


def fmt(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond:06d}Z")


def shifted(value: datetime, seconds: float):
    try:
        result = value + timedelta(seconds=seconds)
    except OverflowError:
        return None
    return result if 1 <= result.astimezone(timezone.utc).year <= 9999 else None


def duration(value, default):
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # 60.0 is an integer to JSON Schema
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)([smhd]?)\s*", value)
        if m:
            return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}[m.group(2)]
    return default


def is_positive(case) -> bool:
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return mode is None or bool(getattr(mode, "is_positive", True))


def fix_range(query: dict, now: datetime, max_seconds: float) -> None:
    """since/until/window of a read: valid, moving `until` rather than `since`."""
    if "window" in query and ("since" in query or "until" in query):
        query.pop("window")
    if "until" in query and "since" not in query:
        query.pop("until")
    if "since" not in query:
        return
    since = parse(query["since"])
    until = parse(query["until"]) if "until" in query else now
    if since is None or until is None:
        query.pop("since", None)
        query.pop("until", None)
        return
    span = (until - since).total_seconds()
    if 0 < span <= max_seconds:
        return
    end = shifted(since, min(3600, max_seconds))
    if end is None:
        query.pop("since", None)
        query.pop("until", None)
    else:
        query["until"] = fmt(end)


def range_seconds(query: dict, now: datetime) -> float:
    if "since" in query:
        since = parse(query["since"])
        until = parse(query["until"]) if "until" in query else now
        if since and until:
            return (until - since).total_seconds()
    return {"15m": 900, "1h": 3600, "24h": DAY, "7d": 7 * DAY}.get(query.get("window", "24h"), DAY)


def fix_series(query: dict, now: datetime) -> None:
    if query.get("agg") == "ratio":
        query.setdefault("numerator", ["upload.failure"])
        query.setdefault("denominator", ["upload.success", "upload.failure"])
    else:
        query.setdefault("name", ["api.latency"])
    seconds = range_seconds(query, now)
    bucket = query.get("bucket", "5m")
    if seconds / BUCKETS.get(bucket, 300) > 2000:
        query["bucket"] = next(b for b in ("1m", "5m", "1h", "1d") if seconds / BUCKETS[b] <= 2000)


DURATION_RANGES = {"for": (0, 7 * DAY), "interval": (1, DAY), "window": (1, 31 * DAY), "lookback": (1, 31 * DAY)}


def fix_rule(rule: dict) -> None:
    for field, (low, high) in DURATION_RANGES.items():
        if field in rule and not low <= duration(rule[field], low) <= high:
            rule[field] = "15m" if field != "for" else "0s"
    group_by = rule.get("group_by")
    if isinstance(group_by, list) and "none" in group_by and len(group_by) > 1:
        rule["group_by"] = [key for key in group_by if key != "none"]
    where = rule.get("where")
    if isinstance(where, list):
        for matcher in where:
            for op in ("matches", "not_matches"):
                if isinstance(matcher, dict) and isinstance(matcher.get(op), str):
                    matcher[op] = safe_regex(matcher[op])
    if rule.get("kind") == "slo":
        if "period" in rule and not DAY <= duration(rule["period"], DAY) <= 31 * DAY:
            rule["period"] = "30d"
        burns = [burn for burn in rule.get("burn_rates") or [] if isinstance(burn, dict)]
        for burn in burns:
            long, short = duration(burn.get("long"), 0), duration(burn.get("short"), 0)
            if not (60 <= short < long <= 7 * DAY):
                burn["long"], burn["short"] = "1h", "5m"
        if burns:
            seen = set()
            rule["burn_rates"] = [b for b in burns if not (b.get("severity") in seen or seen.add(b.get("severity")))]
        good = rule.get("good") if isinstance(rule.get("good"), list) else [rule.get("good")]
        total = rule.get("total") if isinstance(rule.get("total"), list) else [rule.get("total")]
        if "good" in rule and "total" in rule and any(name not in total for name in good):
            rule["total"] = total + [name for name in good if name not in total]
        if isinstance(where, list):
            rule["where"] = [m for m in where if isinstance(m, dict) and m.get("label") == "platform"]
        if isinstance(group_by, list):
            rule["group_by"] = [key for key in rule["group_by"] if key == "platform"]
        elif isinstance(group_by, str) and group_by not in ("platform", "none"):
            rule["group_by"] = "platform"
    if rule.get("kind") == "composite" and not re.fullmatch(
            r"[a-z][a-z0-9_]*( (and|or|unless) [a-z][a-z0-9_]*)*", str(rule.get("expression", ""))) or \
            rule.get("kind") == "composite" and any(
                name not in DEFAULT_RULES and name not in ("and", "or", "unless")
                for name in str(rule.get("expression", "")).split()):
        rule["expression"] = "high_error_rate or oauth_failures"
    if rule.get("kind") == "composite" and rule.get("name") in str(rule.get("expression", "")).split():
        # A composite cannot read itself.
        others = sorted(DEFAULT_RULES - {rule.get("name")})
        rule["expression"] = f"{others[0]} or {others[1]}"


DEFAULT_RULES = {"high_error_rate", "high_webhook_latency", "oauth_failures", "token_refresh_failures"}


def fix_backtest(body: dict, now: datetime) -> None:
    rule = body.get("rule")
    interval = 60
    if isinstance(rule, dict):
        fix_rule(rule)
        interval = max(1, duration(rule.get("interval"), 60))
        threshold, recovery = rule.get("threshold"), rule.get("recovery_threshold")
        if isinstance(threshold, (int, float)) and isinstance(recovery, (int, float)):
            high = rule.get("comparison", ">") in (">", ">=")
            if (high and recovery > threshold) or (not high and recovery < threshold):
                rule["recovery_threshold"] = threshold
    limit = min(31 * DAY, interval * 50_000)
    since = parse(body.get("since"))
    if since is None:
        return
    if since < now - timedelta(days=30) + timedelta(minutes=5):
        # Before the retention: those events are gone, and the server says so.
        body["since"] = fmt(now - timedelta(hours=1))
        body.pop("until", None)
        return
    until = parse(body["until"]) if body.get("until") is not None else now
    if until is not None and 0 < (until - since).total_seconds() <= limit:
        return
    end = shifted(since, min(3600, limit))
    if end is None:
        body["since"] = fmt(now - timedelta(hours=1))
        body.pop("until", None)
    else:
        body["until"] = fmt(end)


def fix_spans(items, signed: bool):
    """`from:to` ranges going forward (and, for days, of one sign)."""
    out = []
    for item in items:
        text = str(item)
        if ":" in text and not text.startswith(":"):
            a, b = text.split(":", 1)
            try:
                x, y = int(a), int(b)
            except ValueError:
                out.append(item)  # names: left as generated unless reversed below
                continue
            if signed and (x < 0) != (y < 0):
                out.append(a)
                continue
            out.append(f"{min(x, y)}:{max(x, y)}")
        else:
            out.append(item)
    return out


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]


def fix_named_spans(items, names):
    out = []
    for item in fix_spans(items, signed=False):
        text = str(item)
        if ":" in text:
            a, b = text.split(":", 1)
            index = lambda v: names.index(v) + 1 if v in names else int(v)  # noqa: E731
            x, y = index(a), index(b)
            out.append(f"{min(x, y)}:{max(x, y)}")
        else:
            out.append(item)
    return out


def fix_recurrence(recurrence: dict) -> None:
    import zoneinfo
    zone = recurrence.get("time_zone")
    if zone is not None and (zone not in zoneinfo.available_timezones() or zone.startswith(("posix/", "right/"))):
        recurrence["time_zone"] = "UTC"
    if isinstance(recurrence.get("weekdays"), list):
        recurrence["weekdays"] = fix_named_spans(recurrence["weekdays"], WEEKDAYS)
    if isinstance(recurrence.get("months"), list):
        recurrence["months"] = fix_named_spans(recurrence["months"], MONTHS)
    for field in ("days_of_month", "years"):
        if isinstance(recurrence.get(field), list):
            recurrence[field] = fix_spans(recurrence[field], signed=field == "days_of_month")
    times = recurrence.get("times")
    if isinstance(times, list):
        for t in times:
            if isinstance(t, dict) and isinstance(t.get("start"), str) and isinstance(t.get("end"), str):
                if t["start"] >= t["end"]:
                    t["start"], t["end"] = "00:00", "24:00"
    # Days of the month that none of its months has (31 with only April…)
    # make a recurrence that never holds, which the server refuses.
    if recurrence.get("months") and recurrence.get("days_of_month"):
        recurrence.pop("days_of_month")


def fix_silence(body: dict, now: datetime) -> None:
    if isinstance(body.get("recurrence"), dict):
        fix_recurrence(body["recurrence"])
    starts = parse(body.get("starts_at")) if body.get("starts_at") is not None else None
    if body.get("starts_at") is not None and starts is None:
        return
    ends = parse(body.get("ends_at"))
    floor = max(now, starts) if starts else now
    if ends is not None and ends > floor + timedelta(seconds=5):
        return
    end = shifted(floor, DAY)
    if end is None:
        body["starts_at"] = None
        end = now + timedelta(days=1)
    body["ends_at"] = fmt(end)


def fix_event(event: dict, now: datetime) -> None:
    if not isinstance(event, dict) or "occurred_at" not in event:
        return
    at = parse(event["occurred_at"])
    if at is not None and now - timedelta(days=29) <= at <= now + timedelta(minutes=4):
        return
    # A time inside the retention, still derived from the generated one.
    offset = (at.timestamp() if at else 0) % DAY
    event["occurred_at"] = fmt(now - timedelta(seconds=offset))


def safe_regex(value) -> str:
    """A regular expression that compiles in any dialect, made from the
    generated one: its letters and digits, then `.*`."""
    kept = "".join(c for c in str(value) if c.isascii() and c.isalnum())[:200]
    return kept + ".*"


FILTER = re.compile(r'^(\s*\{?\s*(?:"(?:[^"\\]|\\.)+"|[^=!~"]+?)\s*)(=~|!~|!=|=)(.*)$', re.S)


def fix_filter(text: str) -> str:
    """A `filter` matcher whose regular expression, if any, compiles."""
    m = FILTER.match(text)
    if not m or m.group(2) not in ("=~", "!~"):
        return text
    braced = m.group(1).lstrip().startswith("{")
    return f'{m.group(1)}{m.group(2)}"{safe_regex(m.group(3))}"' + ("}" if braced else "")


def matches_empty(matcher: dict) -> bool:
    value, regex, equal = matcher.get("value", ""), matcher.get("isRegex"), matcher.get("isEqual", True) is not False
    hit = re.fullmatch(value, "") is not None if regex else value == ""
    return hit == equal


def fix_am_silence(body: dict, now: datetime) -> None:
    matchers = [m for m in body.get("matchers") or [] if isinstance(m, dict)]
    for matcher in matchers:
        if matcher.get("isRegex") is True:
            matcher["value"] = safe_regex(matcher.get("value", ""))
    if matchers and all(matches_empty(m) for m in matchers):
        matchers[0].update(value="x", isRegex=False, isEqual=True)
    starts = parse(body.get("startsAt"))
    ends = parse(body.get("endsAt"))
    floor = max(now, starts) if starts else now
    if starts is not None and ends is not None and ends > floor + timedelta(seconds=5):
        return
    end = shifted(floor, DAY)
    if starts is None or end is None:
        body["startsAt"] = fmt(now)
        end = now + timedelta(days=1)
    body["endsAt"] = fmt(end)


def fix_am_alert(alert: dict) -> None:
    if not isinstance(alert, dict):
        return
    starts, ends = parse(alert.get("startsAt")), parse(alert.get("endsAt"))
    if starts is not None and ends is not None and ends < starts:
        alert["endsAt"] = alert["startsAt"]


@schemathesis.hook
def before_call(context, case, kwargs):
    # Stateful links can put a response's integer id into a header parameter
    # (`X-Request-Id`), which the HTTP client refuses to send: send its text.
    headers = getattr(case, "headers", None)
    if headers:
        for name in list(headers):
            if not isinstance(headers[name], (str, bytes)):
                headers[name] = str(headers[name])
    if not is_positive(case):
        return
    # A stateful link can take a null id (a delivery without a silence) into
    # a path: ask for an id that does not exist instead.
    path_parameters = getattr(case, "path_parameters", None)
    if path_parameters:
        for name, value in list(path_parameters.items()):
            if value is None:
                path_parameters[name] = 999_999_999
    now = datetime.now(timezone.utc)
    path, method = case.operation.path, case.method.upper()
    if method == "GET" and path in RANGED and isinstance(case.query, dict):
        fix_range(case.query, now, 400 * DAY)
        if path == "/api/monitoring/metrics/series":
            fix_series(case.query, now)
    elif method == "POST" and path == "/api/rules/backtest" and isinstance(case.body, dict):
        fix_backtest(case.body, now)
    elif method == "POST" and path == "/api/silences" and isinstance(case.body, dict):
        fix_silence(case.body, now)
    elif method == "POST" and path == "/api/metrics":
        for event in case.body if isinstance(case.body, list) else [case.body]:
            fix_event(event, now)
    elif method == "POST" and path == "/api/v2/silences" and isinstance(case.body, dict):
        fix_am_silence(case.body, now)
    elif method == "POST" and path == "/api/v2/alerts" and isinstance(case.body, list):
        for alert in case.body:
            fix_am_alert(alert)
    if path.startswith("/api/v2/") and isinstance(case.query, dict):
        filters = case.query.get("filter")
        if isinstance(filters, list):
            case.query["filter"] = [fix_filter(f) if isinstance(f, str) else f for f in filters]
        elif isinstance(filters, str):
            case.query["filter"] = fix_filter(filters)
        if isinstance(case.query.get("receiver"), str) and case.query["receiver"]:
            case.query["receiver"] = safe_regex(case.query["receiver"])
