#!/usr/bin/env python3
"""HTTP clients for the benchmarks (Python standard library only).

  client.py ingest --url BASE --key KEY --bodies FILE [--connections 4]
      Reads every request body (one JSON array per line) into memory, then
      POSTs them to BASE/api/metrics over CONNECTIONS keep-alive connections
      and prints one JSON object: seconds, requests, events, failures,
      per-request latency percentiles. Every answer must be 202 with
      {"accepted": n} for the body's n events. Each request carries its own
      Idempotency-Key, as production clients should send.

  client.py time --url URL --key KEY [--count 20] [--warmup 2] [--method GET]
      Requests URL WARMUP times, then COUNT timed times, one keep-alive
      connection, one at a time; prints JSON: the times in ms, median, p95,
      and the last answer's status and (for a JSON body) top-level keys.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600), u


def percentile(values, q):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, int(-(-q * len(ordered) // 1)))  # ceil(q * n)
    return ordered[min(rank, len(ordered)) - 1]


def cmd_ingest(args):
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    counts = [body.count(b'"occurred_at"') for body in bodies]
    headers = {"Authorization": "Bearer " + args.key, "Content-Type": "application/json"}
    lock = threading.Lock()
    next_index = [0]
    failures = []
    latencies = []
    accepted = [0]
    start_barrier = threading.Barrier(args.connections + 1)
    run_id = f"{time.time_ns():x}"

    def worker():
        conn, u = connect(args.url)
        path = u.path.rstrip("/") + "/api/metrics"
        conn.connect()
        start_barrier.wait()
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(bodies):
                break
            t0 = time.perf_counter()
            try:
                # As clients should: a key per batch, so a retry is stored once.
                conn.request("POST", path, body=bodies[i], headers={**headers, "Idempotency-Key": f"bench-{run_id}-{i}"})
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                conn, _ = connect(args.url)
                with lock:
                    failures.append({"request": i, "error": repr(error)})
                continue
            elapsed = time.perf_counter() - t0
            ok = False
            if status == 202:
                try:
                    ok = json.loads(payload).get("accepted") == counts[i]
                except ValueError:
                    ok = False
            with lock:
                latencies.append(elapsed)
                if ok:
                    accepted[0] += counts[i]
                else:
                    failures.append({"request": i, "status": status, "body": payload[:300].decode("utf-8", "replace")})
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.connections)]
    for t in threads:
        t.start()
    start_barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "seconds": seconds,
        "requests": len(bodies),
        "events": sum(counts),
        "accepted": accepted[0],
        "failures": len(failures),
        "first_failures": failures[:5],
        "latency_ms_p50": 1000 * statistics.median(latencies) if latencies else None,
        "latency_ms_p95": 1000 * percentile(latencies, 0.95) if latencies else None,
        "latency_ms_max": 1000 * max(latencies) if latencies else None,
    }))


def cmd_time(args):
    conn, u = connect(args.url)
    target = u.path + ("?" + u.query if u.query else "")
    # no-cache: the server's short-lived read caches answer nothing here, so
    # the figure is the cost of the reads themselves.
    headers = {"Authorization": "Bearer " + args.key, "Cache-Control": "no-cache"}
    times = []
    status, payload = None, b""
    for i in range(args.warmup + args.count):
        t0 = time.perf_counter()
        conn.request(args.method, target, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - t0
        status = response.status
        if status >= 300:
            print(json.dumps({"error": "HTTP %d" % status, "body": payload[:500].decode("utf-8", "replace")}))
            return 1
        if i >= args.warmup:
            times.append(1000 * elapsed)
    keys = None
    try:
        body = json.loads(payload)
        keys = sorted(body) if isinstance(body, dict) else None
    except ValueError:
        body = None
    print(json.dumps({
        "times_ms": times,
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "min_ms": min(times),
        "max_ms": max(times),
        "status": status,
        "keys": keys,
        "body": body if args.print_body else None,
    }))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ingest = sub.add_parser("ingest")
    ingest.add_argument("--url", required=True)
    ingest.add_argument("--key", required=True)
    ingest.add_argument("--bodies", required=True)
    ingest.add_argument("--connections", type=int, default=4)
    timing = sub.add_parser("time")
    timing.add_argument("--url", required=True)
    timing.add_argument("--key", required=True)
    timing.add_argument("--count", type=int, default=20)
    timing.add_argument("--warmup", type=int, default=2)
    timing.add_argument("--method", default="GET")
    timing.add_argument("--print-body", action="store_true")
    args = parser.parse_args()
    return cmd_ingest(args) if args.command == "ingest" else cmd_time(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
