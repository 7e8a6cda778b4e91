#!/usr/bin/env python3
"""OAuth2 token introspection endpoint (RFC 7662) for the Dovecot test fixture (stdlib only).

usage: oauth2_introspect.py --tokens FILE --port-file FILE

FILE (--tokens) holds "user<TAB>token" lines: each user has exactly one valid token. The
server binds 127.0.0.1 on a free port, then writes that port to --port-file (atomically,
so its presence means the server accepts connections) and serves until SIGTERM/SIGINT.

POST /introspect with the form body "token=..." (Dovecot's `introspection_mode = post`)
answers {"active": true, "username": USER, "scope": "mail"} for a known token and
{"active": false} for anything else. GET /introspect?token=... answers the same. Tokens
are never logged; each request logs the user it resolved to (or "unknown") on stderr.
"""

import argparse
import http.server
import json
import os
import signal
import sys
import urllib.parse

MAX_BODY = 64 * 1024


def load_tokens(path):
    tokens = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            user, token = line.split("\t", 1)
            tokens[token] = user
    return tokens


class Handler(http.server.BaseHTTPRequestHandler):
    tokens = {}
    protocol_version = "HTTP/1.1"

    def _answer(self, token):
        user = self.tokens.get(token)
        if user is None:
            body = {"active": False}
        else:
            body = {"active": True, "username": user, "scope": "mail"}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        sys.stderr.write("introspect: %s\n" % (user or "unknown"))
        sys.stderr.flush()

    def _fail(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if path != "/introspect" or length < 0 or length > MAX_BODY:
            self._fail(404 if path != "/introspect" else 400)
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"),
                                     keep_blank_values=True)
        self._answer(form.get("token", [""])[0])

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/introspect":
            self._fail(404)
            return
        self._answer(urllib.parse.parse_qs(url.query).get("token", [""])[0])

    def log_message(self, fmt, *args):
        pass  # request lines could carry a token (GET); _answer logs what matters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    Handler.tokens = load_tokens(args.tokens)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
