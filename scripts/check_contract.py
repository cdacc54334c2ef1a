#!/usr/bin/env python3
"""Checks recorded HTTP exchanges against docs/openapi.yaml.

    scripts/check_contract.py [--spec FILE] [--require-headers] [--quiet] LOGFILE

LOGFILE has one JSON object per line, as the Swift test suite writes them:

    {"method": "GET", "path": "/api/rules?include_disabled=true", "status": 200,
     "content_type": "application/json; charset=utf-8",
     "headers": {"x-next-cursor": "..."}, "body": "<the response body as text>"}

`body` may be empty, or absent for binary and streaming bodies; `headers`
and `content_type` may be absent. For each record the operation is found by
path (templates with {params}; a literal segment wins over a parameter, as
in the router) and method, then:

  - no operation: a problem ("undocumented route"), unless the status is one
    of the spec's `x-unrouted-responses` (404 for an unknown path, 405 for a
    known path with another method, 413 for an oversized body) and the
    response matches it;
  - a status the operation does not document (and no `default`): a problem;
  - a content type the response does not document: a problem;
  - a JSON body that does not validate against the response schema
    (JSON Schema 2020-12, $refs resolved into the OpenAPI document,
    `date-time` and `int64` formats checked): one problem per error;
  - a header given in the record that the response documents, whose value
    does not match its schema: a problem (with --require-headers, a required
    documented header missing from the record is one too).

Prints one line per problem (method, path, status, JSON pointer, message),
then a summary: records, operations covered, operations never exercised
(listed; not a failure). Exits 1 when there is any problem, 2 on a usage
error (unreadable spec or log).

Needs Python 3.9+, PyYAML, jsonschema and referencing.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SPEC_URI = "urn:tocsin:openapi"
DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"

# RFC 3339 `date-time` (section 5.6), strictly: a four-digit year, `T`,
# seconds, an offset. Python's datetime then checks the calendar.
DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$"
)


def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = DATE_TIME.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if second == 60:  # a leap second: valid syntax, not representable
        second = 59
    if m.group(9) and (int(m.group(10)) > 23 or int(m.group(11)) > 59):
        return False
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def is_int64(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return float(value).is_integer() and -(2**63) <= value <= 2**63 - 1


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(is_date_time)
FORMATS.checks("int64")(is_int64)


def pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(parts) -> str:
    return "".join("/" + pointer_escape(str(p)) for p in parts)


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_media_type(text: str):
    """'Text/CSV; Charset=UTF-8' -> ('text', 'csv', {'charset': 'utf-8'})."""
    parts = [p.strip() for p in text.split(";")]
    full = parts[0].lower()
    if "/" not in full:
        return None
    main, sub = full.split("/", 1)
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return main, sub, params


def media_type_matches(documented: str, actual: str) -> bool:
    d, a = parse_media_type(documented), parse_media_type(actual)
    if d is None or a is None:
        return False
    if d[0] != "*" and d[0] != a[0]:
        return False
    if d[1] != "*" and d[1] != a[1]:
        return False
    # Parameters the spec names must be there with the same value.
    return all(a[2].get(k) == v for k, v in d[2].items())


def is_json_media_type(text: str) -> bool:
    m = parse_media_type(text)
    return m is not None and (m[1] == "json" or m[1].endswith("+json"))


class Spec:
    def __init__(self, path: Path):
        self.document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(self.document, dict) or "paths" not in self.document:
            raise ValueError(f"{path}: not an OpenAPI document")
        self.registry = referencing.Registry().with_resource(
            SPEC_URI, DRAFT202012.create_resource(self.document)
        )
        base = urlsplit((self.document.get("servers") or [{}])[0].get("url", "")).path.rstrip("/")
        self.base_segments = [s for s in base.split("/") if s]
        self.paths = []  # (template, segments, path item)
        for template, item in (self.document.get("paths") or {}).items():
            segments = [s for s in template.split("/") if s]
            self.paths.append((template, segments, item))
        # In the document's order, for the summary.
        self.operations = [
            (method.upper(), template)
            for template, _, item in self.paths
            for method in METHODS
            if method in item
        ]
        # The router prefers literal segments to parameters, left to right.
        self.paths.sort(key=lambda p: [0 if s.startswith("{") else 1 for s in p[1]], reverse=True)
        self._validators = {}

    def resolve(self, node: dict, where: str):
        """Follows local $refs of response and header objects."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"unsupported $ref {ref!r}")
            seen.add(ref)
            where = ref[1:]
            node = self.document
            for token in ref[2:].split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, where

    def match_path(self, path: str):
        """The path item the router would pick, and the template, or None."""
        segments = [s for s in path.split("/") if s]
        if self.base_segments:
            if segments[: len(self.base_segments)] != self.base_segments:
                return None
            segments = segments[len(self.base_segments):]
        for template, pattern, item in self.paths:
            if len(pattern) == len(segments) and all(
                p.startswith("{") or p == s for p, s in zip(pattern, segments)
            ):
                return template, item
        return None

    def validator(self, location: str):
        if location not in self._validators:
            schema = {"$ref": f"{SPEC_URI}#{location}"}
            self._validators[location] = jsonschema.Draft202012Validator(
                schema, registry=self.registry, format_checker=FORMATS
            )
        return self._validators[location]


class Checker:
    def __init__(self, spec: Spec, require_headers: bool):
        self.spec = spec
        self.require_headers = require_headers
        self.problems = []
        self.covered = set()
        self.records = 0
        self.unrouted = 0

    def problem(self, record: dict, where: str, message: str):
        method = str(record.get("method", "?")).upper()
        self.problems.append(
            f"FAIL {method} {record.get('path', '?')} {record.get('status', '?')} {where or '/'}: {one_line(message)}"
        )

    def check(self, record: dict):
        self.records += 1
        method = str(record.get("method", "")).upper()
        raw_path = record.get("path")
        status = record.get("status")
        if not method or not isinstance(raw_path, str) or not isinstance(status, int):
            self.problem(record, "", "the record needs method, path and an integer status")
            return
        path = urlsplit(raw_path).path or "/"
        found = self.spec.match_path(path)
        operation = None
        if found is not None:
            template, item = found
            operation = item.get(method.lower())
            where = pointer(["paths", template, method.lower()])
        if operation is None:
            self.check_unrouted(record, status, found)
            return
        self.covered.add((method, template))
        responses = operation.get("responses") or {}
        keys = {str(k).upper(): k for k in responses}
        key = next((keys[k] for k in (str(status), f"{str(status)[0]}XX", "DEFAULT") if k in keys), None)
        if key is None:
            documented = ", ".join(sorted(responses))
            self.problem(record, "", f"status {status} is not documented for {method} {template} (documented: {documented})")
            return
        self.check_response(record, responses[key], f"{where}/responses/{pointer_escape(str(key))}")

    def check_unrouted(self, record: dict, status: int, found):
        unrouted = self.spec.document.get("x-unrouted-responses") or {}
        method = str(record.get("method", "")).upper()
        if str(status) not in unrouted:
            if found is None:
                self.problem(record, "", "undocumented route: no path of the spec matches")
            else:
                self.problem(record, "", f"undocumented route: {found[0]} has no {method} operation")
            return
        if status == 405 and found is None:
            self.problem(record, "", "405 for a path the spec does not have (expected 404)")
            return
        if status == 404 and found is not None:
            self.problem(record, "", f"404 for {method} on {found[0]}, a documented path (expected 405)")
            return
        if status == 405:
            allow = {str(k).lower(): v for k, v in (record.get("headers") or {}).items()}.get("allow")
            documented = sorted(m.upper() for m in METHODS if m in found[1])
            if allow is not None:
                listed = sorted(m.strip().upper() for m in str(allow).split(",") if m.strip())
                if listed != documented or method in listed:
                    self.problem(record, "header Allow",
                                 f"{allow!r} is not the methods of {found[0]} ({', '.join(documented)})")
        self.unrouted += 1
        self.check_response(record, unrouted[str(status)], f"/x-unrouted-responses/{status}")

    def check_response(self, record: dict, response: dict, where: str):
        try:
            response, where = self.spec.resolve(response, where)
        except (KeyError, ValueError) as error:
            self.problem(record, "", f"the spec's response object cannot be resolved: {error}")
            return
        self.check_headers(record, response, where)
        content = response.get("content") or {}
        content_type = record.get("content_type") or ""
        body = record.get("body")
        if not content:
            if body:
                self.problem(record, "", f"the spec documents no body for this response, got {content_type or 'one'}")
            return
        if not content_type:
            if body:
                self.problem(record, "", "the response has a body but no content type")
            return
        media_type = next((mt for mt in content if media_type_matches(mt, content_type)), None)
        if media_type is None:
            self.problem(record, "", f"content type {content_type} is not documented (documented: {', '.join(content)})")
            return
        if body is None or not is_json_media_type(media_type):
            return
        schema_where = f"{where}/content/{pointer_escape(media_type)}/schema"
        if "schema" not in content[media_type]:
            return
        try:
            instance = json.loads(body) if isinstance(body, str) else body
        except ValueError as error:
            self.problem(record, "", f"the body is not JSON: {error}")
            return
        validator = self.spec.validator(schema_where)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for error in errors[:20]:
            message = error.message
            if error.context:
                best = jsonschema.exceptions.best_match(error.context)
                message += f" ({pointer(best.absolute_path) or '/'}: {best.message})"
            self.problem(record, pointer(error.absolute_path), message)
        if len(errors) > 20:
            self.problem(record, "", f"… and {len(errors) - 20} more schema errors")

    def check_headers(self, record: dict, response: dict, where: str):
        documented = response.get("headers") or {}
        given = {str(k).lower(): v for k, v in (record.get("headers") or {}).items()}
        for name, header in documented.items():
            try:
                header, header_where = self.spec.resolve(header, f"{where}/headers/{pointer_escape(name)}")
            except (KeyError, ValueError) as error:
                self.problem(record, "", f"header {name}: cannot be resolved: {error}")
                continue
            value = given.get(name.lower())
            if value is None:
                if self.require_headers and header.get("required"):
                    self.problem(record, "", f"the documented header {name} is missing")
                continue
            if "schema" not in header:
                continue
            instance = coerce_header(value, header["schema"])
            for error in self.spec.validator(f"{header_where}/schema").iter_errors(instance):
                self.problem(record, f"header {name}", error.message)

    def summary(self) -> str:
        total = self.spec.operations
        missing = [op for op in total if op not in self.covered]
        lines = [
            f"{self.records} records, {len(self.problems)} problems; "
            f"{len(self.covered)} of {len(total)} operations exercised"
            + (f"; {self.unrouted} answers to unrouted requests (404/405/413)" if self.unrouted else "")
        ]
        if missing:
            lines.append("never exercised (not a failure):")
            lines += [f"  {m} {t}" for m, t in missing]
        return "\n".join(lines)


def coerce_header(value, schema: dict):
    """Header values are text; a schema of type integer or number means a number."""
    if not isinstance(value, str):
        return value
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if "const" in schema and not isinstance(schema["const"], str):
        types.append("number")
    if types and not {"integer", "number"}.isdisjoint(types) and "string" not in types:
        try:
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        except ValueError:
            return value
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logfile", help="one JSON record per line")
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="the OpenAPI document (default docs/openapi.yaml)")
    parser.add_argument("--require-headers", action="store_true",
                        help="also fail when a required documented header is absent from a record")
    parser.add_argument("--quiet", action="store_true", help="print only problems and the first summary line")
    args = parser.parse_args(argv)
    try:
        spec = Spec(Path(args.spec))
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"error: cannot read the spec: {error}", file=sys.stderr)
        return 2
    checker = Checker(spec, args.require_headers)
    try:
        log = open(args.logfile, encoding="utf-8")
    except OSError as error:
        print(f"error: cannot read {args.logfile}: {error}", file=sys.stderr)
        return 2
    with log:
        for number, line in enumerate(log, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError as error:
                checker.records += 1
                checker.problems.append(f"FAIL line {number}: not a JSON record: {one_line(error)}")
                continue
            checker.check(record)
    for problem in checker.problems:
        print(problem)
    summary = checker.summary()
    print(summary.split("\n")[0] if args.quiet else summary)
    return 1 if checker.problems else 0


if __name__ == "__main__":
    sys.exit(main())
