#!/usr/bin/env python3
"""A one-gauge Prometheus exporter for Tocsin's tests and benchmarks: the
gauge's value is whatever it was last set to.

    gauge_exporter.py [--port N] [--name tocsin_test_gauge]

Prints "listening PORT" on stdout once ready. Only binds 127.0.0.1.

    GET  /metrics     the gauge in Prometheus' text format
    POST /set         the body is the new value (a number)
"""
import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"value": "0", "name": "tocsin_test_gauge"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain; version=0.0.4"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            return self.reply(404, "not found\n")
        with lock:
            name, value = state["name"], state["value"]
        self.reply(200, f"# HELP {name} A test gauge.\n# TYPE {name} gauge\n{name} {value}\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode().strip()
        if self.path != "/set":
            return self.reply(404, "not found\n")
        try:
            float(text)
        except ValueError:
            return self.reply(400, "the body must be a number\n")
        with lock:
            state["value"] = text
        self.reply(200, "ok\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="tocsin_test_gauge")
    args = parser.parse_args()
    state["name"] = args.name
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
