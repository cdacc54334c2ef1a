#!/usr/bin/env python3
"""The state of a local Patroni cluster, read from the members' REST APIs
(GET /cluster on the first one that answers), for scripts/ha-cluster.sh and
scripts/failover.sh. Standard library only.

    patroni_state.py show URL...
        one line per member: NAME ROLE STATE TIMELINE LAG (leader first)
    patroni_state.py leader URL...
        the leader's name (exit 1 when there is none)
    patroni_state.py sync URL...
        the synchronous standbys' names, one a line
    patroni_state.py wait URL... [--timeout S] [--members N] [--not-leader NAME]
                                 [--sync] [--member NAME]
        waits until a leader runs (other than NAME with --not-leader), at
        least N members run (streaming replicas count), with --sync a
        synchronous standby runs, and with --member NAME that member runs as
        a replica on the leader's timeline; prints the leader's name, exits 1 on time-out (printing
        the last state seen on stderr)
    patroni_state.py config URL...
        the dynamic configuration (GET /config) as NAME=VALUE lines:
        ttl, loop_wait, retry_timeout, synchronous_mode, …
"""
import argparse
import json
import sys
import time
import urllib.request

RUNNING = ("running", "streaming")


def get(urls, path, timeout=1.0):
    last = None
    for url in urls:
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as resp:
                return json.loads(resp.read())
        except Exception as e:  # the next member may answer
            last = e
    raise RuntimeError(f"no Patroni REST API answered {path}: {last}")


def members(urls):
    return get(urls, "/cluster").get("members", [])


def leader(ms):
    for m in ms:
        if m.get("role") in ("leader", "standby_leader") and m.get("state") in RUNNING:
            return m["name"]
    return None


def show(ms):
    order = {"leader": 0, "standby_leader": 0, "sync_standby": 1, "replica": 2}
    for m in sorted(ms, key=lambda m: (order.get(m.get("role"), 3), m["name"])):
        print(f"{m['name']} {m.get('role', '?')} {m.get('state', '?')} {m.get('timeline', '?')} {m.get('lag', '-')}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("show", "leader", "sync", "wait", "config"))
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--not-leader")
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--member")
    args = parser.parse_args()

    if args.command == "config":
        config = get(args.urls, "/config")
        for key in ("ttl", "loop_wait", "retry_timeout", "synchronous_mode", "synchronous_node_count",
                    "maximum_lag_on_failover"):
            print(f"{key}={config.get(key, '')}")
        pg = config.get("postgresql", {})
        print(f"use_pg_rewind={pg.get('use_pg_rewind', '')}")
        print(f"use_slots={pg.get('use_slots', '')}")
        return 0
    if args.command != "wait":
        try:
            ms = members(args.urls)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        if args.command == "show":
            show(ms)
        elif args.command == "leader":
            name = leader(ms)
            if not name:
                return 1
            print(name)
        else:
            for m in ms:
                if m.get("role") == "sync_standby":
                    print(m["name"])
        return 0

    deadline = time.time() + args.timeout
    last = "nothing yet"
    while True:
        try:
            ms = members(args.urls)
            name = leader(ms)
            running = [m for m in ms if m.get("state") in RUNNING]
            sync_ok = any(m.get("role") == "sync_standby" and m.get("state") in RUNNING for m in ms)
            timeline = next((m.get("timeline") for m in ms if m["name"] == name), None)
            member_ok = args.member is None or any(
                m["name"] == args.member and m.get("role") in ("replica", "sync_standby") and m.get("state") in RUNNING
                and m.get("timeline") == timeline for m in ms)
            if (name and name != args.not_leader and len(running) >= args.members
                    and (sync_ok or not args.sync) and member_ok):
                print(name)
                return 0
            last = "; ".join(f"{m['name']} {m.get('role')} {m.get('state')}" for m in ms) or "no members"
        except RuntimeError as e:
            last = str(e)
        if time.time() > deadline:
            print(f"patroni_state: not reached within {args.timeout:.0f}s; last state: {last}", file=sys.stderr)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
