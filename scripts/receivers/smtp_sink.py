#!/usr/bin/env python3
"""A local SMTP server that accepts every message and writes it to a
directory, for Tocsin's e-mail tests.

    smtp_sink.py --dir DIR [--port N] [--user U --password P]
                 [--tls-cert CERT --tls-key KEY]

Prints "listening PORT" once ready; binds 127.0.0.1 only. Each message is
written as DIR/<n>.eml with DIR/<n>.json ({"from", "to", "auth", "tls"}).
With --user/--password, AUTH PLAIN and AUTH LOGIN are offered and checked.
With --tls-cert/--tls-key, STARTTLS is offered, and AUTH is refused (530)
until the session is encrypted, as a careful mail server does.
"""
import argparse
import base64
import json
import os
import socketserver
import ssl
import sys
import threading

counter_lock = threading.Lock()
counter = [0]


class Session(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline()
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        args = self.server.args
        self.send("220 tocsin-sink ESMTP ready")
        sender, recipients, authed, encrypted = None, [], None, False
        try:
            while True:
                line = self.readline()
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    if verb == "EHLO":
                        self.wfile.write(b"250-tocsin-sink\r\n")
                        if self.server.tls and not encrypted:
                            self.wfile.write(b"250-STARTTLS\r\n")
                        if args.user and (encrypted or not self.server.tls):
                            self.wfile.write(b"250-AUTH PLAIN LOGIN\r\n")
                        self.send("250 8BITMIME")
                    else:
                        self.send("250 tocsin-sink")
                elif verb == "STARTTLS" and self.server.tls and not encrypted:
                    self.send("220 go ahead")
                    self.connection = self.server.tls.wrap_socket(self.connection, server_side=True)
                    self.rfile = self.connection.makefile("rb")
                    self.wfile = self.connection.makefile("wb")
                    encrypted, sender, recipients, authed = True, None, [], None
                elif verb == "AUTH" and self.server.tls and not encrypted:
                    self.send("530 must issue a STARTTLS command first")
                elif verb == "AUTH":
                    parts = line.split()
                    mechanism = parts[1].upper() if len(parts) > 1 else ""
                    if mechanism == "PLAIN":
                        token = parts[2] if len(parts) > 2 else None
                        if token is None:
                            self.send("334 ")
                            token = self.readline()
                        fields = base64.b64decode(token).split(b"\0")
                        user, password = fields[1].decode(), fields[2].decode()
                    elif mechanism == "LOGIN":
                        self.send("334 VXNlcm5hbWU6")
                        user = base64.b64decode(self.readline()).decode()
                        self.send("334 UGFzc3dvcmQ6")
                        password = base64.b64decode(self.readline()).decode()
                    else:
                        self.send("504 unsupported mechanism")
                        continue
                    if user == args.user and password == args.password:
                        authed = user
                        self.send("235 authenticated")
                    else:
                        self.send("535 authentication failed")
                elif verb == "MAIL":
                    if args.user and not authed:
                        self.send("530 authentication required")
                        continue
                    sender = line.split(":", 1)[1].strip().strip("<>")
                    recipients = []
                    self.send("250 ok")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                    self.send("250 ok")
                elif verb == "DATA":
                    self.send("354 end with .")
                    lines = []
                    while True:
                        data = self.readline()
                        if data == ".":
                            break
                        lines.append(data[1:] if data.startswith("..") else data)
                    with counter_lock:
                        counter[0] += 1
                        n = counter[0]
                    base = os.path.join(args.dir, f"{n:05d}")
                    with open(base + ".eml.tmp", "w") as f:
                        f.write("\r\n".join(lines) + "\r\n")
                    with open(base + ".json", "w") as f:
                        json.dump({"from": sender, "to": recipients, "auth": authed, "tls": encrypted}, f)
                    os.rename(base + ".eml.tmp", base + ".eml")
                    self.send("250 queued")
                elif verb == "RSET":
                    sender, recipients = None, []
                    self.send("250 ok")
                elif verb == "NOOP":
                    self.send("250 ok")
                elif verb == "QUIT":
                    self.send("221 bye")
                    return
                else:
                    self.send("502 command not implemented")
        except (EOFError, ConnectionError, ssl.SSLError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    server = Server(("127.0.0.1", args.port), Session)
    server.args = args
    server.tls = None
    if args.tls_cert:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
