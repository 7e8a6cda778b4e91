#!/usr/bin/env python3
"""Independent POP3 reference reader (stdlib only, shares no code with popvault).

usage: pop3_dump.py --host H --port P --user U --password PW
                    [--tls none|implicit|starttls] [--cafile F] [--count-only] [--delete-all]
                    [--save-dir DIR]

Prints one line per message, in message-number order:
  <hex of the UIDL bytes>\t<sha256 of the RETR data>\t<length of the RETR data>
The RETR data is exactly what is on the wire between the +OK line and the final ".CRLF",
with the byte-stuffing dot removed from lines that start with "." (RFC 1939 §3); it
therefore always ends in CRLF (Dovecot adds one if the stored message lacks it).
--count-only prints just the message count (and still logs in, which pre-warms Dovecot's
index); --delete-all marks every message deleted and QUITs. --save-dir also writes each
message's RETR data to DIR/<message number>, so a test can compare archived bytes with it.

poplib is not used on purpose: it drops bare CR/LF information when it strips line endings
and refuses lines longer than 2048 octets, so it cannot be byte exact.
"""

import argparse
import hashlib
import socket
import ssl
import sys


class Pop3Error(Exception):
    pass


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise Pop3Error("connection closed by server")
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def line(self):
        """One CRLF-terminated line without its CRLF (bare CR/LF stay inside the line)."""
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            self._fill()

    def status(self):
        resp = self.line()
        if not resp.startswith(b"+OK"):
            raise Pop3Error(resp.decode("latin-1"))
        return resp

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.status()

    def multiline(self):
        """Data of a multi-line response, unstuffed; each wire line ends in CRLF."""
        out = bytearray()
        while True:
            ln = self.line()
            if ln == b".":
                return bytes(out)
            if ln.startswith(b"."):
                ln = ln[1:]
            out += ln
            out += b"\r\n"


def connect(args):
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(cafile=args.cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls == "implicit":
        raw = ctx.wrap_socket(raw, server_hostname=args.host)
    c = Client(raw)
    c.status()  # greeting
    if args.tls == "starttls":
        c.cmd("STLS")
        if c.pos != len(c.buf):
            raise Pop3Error("data after STLS response (injection?)")
        c = Client(ctx.wrap_socket(raw, server_hostname=args.host))
    c.cmd("USER " + args.user)
    c.cmd("PASS " + args.password)
    return c


def main():
    ap = argparse.ArgumentParser(description="independent POP3 mailbox dump")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tls", choices=["none", "implicit", "starttls"], default="none")
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--count-only", action="store_true")
    ap.add_argument("--delete-all", action="store_true")
    ap.add_argument("--save-dir")
    args = ap.parse_args()

    c = connect(args)
    c.cmd("UIDL")
    uidls = []
    for ln in c.multiline().split(b"\r\n")[:-1]:
        num, uidl = ln.split(b" ", 1)
        uidls.append((int(num), uidl))
    c.cmd("LIST")  # makes Dovecot cache sizes too (pre-warm)
    c.multiline()
    if args.count_only:
        print(len(uidls))
    elif args.delete_all:
        for num, _ in uidls:
            c.cmd(f"DELE {num}")
        print(len(uidls))
    else:
        out = sys.stdout
        for num, uidl in uidls:
            c.cmd(f"RETR {num}")
            data = c.multiline()
            if args.save_dir:
                with open(f"{args.save_dir}/{num}", "wb") as f:
                    f.write(data)
            out.write(f"{uidl.hex()}\t{hashlib.sha256(data).hexdigest()}\t{len(data)}\n")
    c.cmd("QUIT")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Pop3Error, OSError) as e:
        print(f"pop3_dump: {e}", file=sys.stderr)
        sys.exit(1)
