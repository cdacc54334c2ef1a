#!/usr/bin/env python3
"""A local HTTP receiver for Tocsin's notification tests, benchmarks and chaos
runs: it records every request and answers as told.

    http_receiver.py [--port N] [--log FILE]

Prints "listening PORT" on stdout once ready. Only binds 127.0.0.1.

Control (JSON over HTTP, on the same port):
    POST /_control  {"mode": "ok" | "fail" | "rate_limit" | "hang",
                     "status": 500,            # for mode fail (default 500)
                     "retry_after": "2",       # for mode rate_limit
                     "script": [500, 200],     # statuses for the next requests, then mode applies
                     "fail_ratio": 0.3,        # in mode ok: this share of requests get 500
                     "rate_limit_ratio": 0.05} # in mode ok: this share get 429 with retry_after
    GET  /_requests  every request recorded: [{"at", "method", "path", "headers", "body", "status"}]
    DELETE /_requests  forget them
    GET  /_health
Every other request is recorded (and appended to --log as a JSON line) and
answered per the mode.
"""
import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
requests = []
state = {"mode": "ok", "status": 500, "retry_after": "1", "script": [], "fail_ratio": 0.0, "rate_limit_ratio": 0.0}
log_file = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status, payload=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _control(self, method):
        if self.path == "/_health":
            self._reply(200, b"ok")
        elif self.path == "/_requests" and method == "GET":
            with lock:
                payload = json.dumps(requests).encode()
            self._reply(200, payload, {"Content-Type": "application/json"})
        elif self.path == "/_requests" and method == "DELETE":
            with lock:
                requests.clear()
            self._reply(204)
        elif self.path == "/_control" and method == "POST":
            update = json.loads(self._body() or b"{}")
            with lock:
                state.update(update)
            self._reply(204)
        else:
            self._reply(404)

    def _handle(self, method):
        if self.path.startswith("/_"):
            return self._control(method)
        body = self._body()
        with lock:
            if state["script"]:
                decision = state["script"].pop(0)
            else:
                mode = state["mode"]
                roll = random.random()
                if mode == "ok" and roll < state["fail_ratio"]:
                    decision = 500
                elif mode == "ok" and roll < state["fail_ratio"] + state["rate_limit_ratio"]:
                    decision = 429
                elif mode == "ok":
                    decision = 200
                elif mode == "fail":
                    decision = state["status"]
                elif mode == "rate_limit":
                    decision = 429
                else:
                    decision = "hang"
            record = {
                "at": time.time(),
                "method": method,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "status": decision if decision != "hang" else 0,
            }
            requests.append(record)
            if log_file:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            retry_after = str(state["retry_after"])
        if decision == "hang":
            time.sleep(120)
            self.close_connection = True
            return
        headers = {"Content-Type": "text/plain"}
        if decision == 429:
            headers["Retry-After"] = retry_after
        self._reply(int(decision), b"ok" if decision == 200 else b"error", headers)

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


def main():
    global log_file
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    args = parser.parse_args()
    if args.log:
        log_file = open(args.log, "a", buffering=1)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
