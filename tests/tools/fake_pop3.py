#!/usr/bin/env python3
"""A scriptable fake POP3 server for daemon tests: plain TCP on 127.0.0.1
only, one user, an empty mailbox.

  fake_pop3.py --port-file FILE --log FILE --user U --password P [--login-delay N]

--login-delay N: CAPA announces "LOGIN-DELAY N" (RFC 2449), and a login less
than N seconds after the previous successful one is refused with
"-ERR [LOGIN-DELAY] ...". Every login attempt is appended to --log as
"<unix time> ok|refused|bad". "<port> <pid>" is written to --port-file
(atomically, last: its presence means the server answers). Runs until
SIGTERM.
"""
import argparse
import os
import socketserver
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--login-delay", type=int, default=0)
    args = p.parse_args()
    lock = threading.Lock()
    last_login = [None]

    def record(result):
        with open(args.log, "a") as f:
            f.write("%.3f %s\n" % (time.time(), result))

    class Handler(socketserver.StreamRequestHandler):
        def send(self, line):
            self.wfile.write(line.encode() + b"\r\n")

        def capa(self):
            self.send("+OK")
            for c in ["USER", "UIDL"] + (["LOGIN-DELAY %d" % args.login_delay]
                                         if args.login_delay else []):
                self.send(c)
            self.send(".")

        def login(self, user, password):
            if user != args.user or password != args.password:
                record("bad")
                return self.send("-ERR [AUTH] invalid credentials")
            with lock:
                now = time.monotonic()
                if (args.login_delay and last_login[0] is not None
                        and now - last_login[0] < args.login_delay):
                    record("refused")
                    return self.send("-ERR [LOGIN-DELAY] wait %d seconds" % args.login_delay)
                last_login[0] = now
            record("ok")
            self.send("+OK logged in")

        def handle(self):
            self.send("+OK fake POP3 ready")
            user = None
            for raw in self.rfile:
                words = raw.decode("ascii", "replace").strip().split(" ", 1)
                cmd, arg = words[0].upper(), (words[1] if len(words) > 1 else "")
                if cmd == "CAPA":
                    self.capa()
                elif cmd == "USER":
                    user = arg
                    self.send("+OK")
                elif cmd == "PASS":
                    self.login(user, arg)
                elif cmd in ("UIDL", "LIST"):
                    self.send("+OK 0 messages")
                    self.send(".")
                elif cmd == "STAT":
                    self.send("+OK 0 0")
                elif cmd in ("NOOP", "RSET"):
                    self.send("+OK")
                elif cmd == "QUIT":
                    return self.send("+OK bye")
                else:
                    self.send("-ERR unknown command")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d" % (server.server_address[1], os.getpid()))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
