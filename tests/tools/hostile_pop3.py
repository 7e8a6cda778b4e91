#!/usr/bin/env python3
"""A scriptable hostile POP3 server for tests: what Dovecot will not do.

Plain TCP on 127.0.0.1 only, one user, a mailbox of files; python3 stdlib only.

  hostile_pop3.py --port-file FILE --log FILE --mailbox DIR --user U --password P
                  [--generate N [--seed S]] [--scenario JSON | --scenario @FILE]

--mailbox DIR: one message per regular file, in file-name order; the file name is
  its UIDL and the file's bytes are what RETR serves (dot-stuffed on the wire; a
  missing final line ending is sent as CRLF). --generate N first fills an empty DIR
  with N deterministic messages (CRLF lines, some starting with '.', 200 B - 100 KiB).
  Deletions are honoured only at QUIT (RFC 1939 §6): the files of the messages marked
  with DELE are removed then, and each is logged as DELETED. A session that ends
  without QUIT deletes nothing. The mailbox is shared by all connections.

"<port> <pid>" is written to --port-file atomically, once the server accepts.

--log FILE gets one line per event, appended and flushed as it happens:
  <unix time> <connection#> C <command line>   a command, when it was received
                                                (PASS/APOP/AUTH secrets as ****)
  <unix time> <connection#> R <command> <+OK|-ERR|...>
                                                the reply to it was completely sent
  <unix time> <connection#> E <event>          connect, close, pushed N bytes,
                                                DELETED <msgno> <uidl> <sha256>, ...
Commands that arrived while a reply was still being sent are logged before that
reply's R line, so "C RETR 2" before "R RETR 1" shows a pipelining client (the check
is made before the reply's last bytes go out; a lock-step client cannot have sent
its next command by then).

--scenario: a JSON object that changes the behaviour (every key optional):
  "connections": N        the scenario applies to the first N connections only;
                          later ones get a well-behaved server (default: all)
  "greeting": "LINE"      the first line instead of "+OK ..." (e.g. "-ERR [SYS/TEMP]")
  "capa": [LINES]         the whole CAPA listing (default TOP USER UIDL RESP-CODES
                          AUTH-RESP-CODE, plus PIPELINING with "pipelining": true)
  "capa_add": [LINES]     e.g. ["EXPIRE 1", "LOGIN-DELAY 900", "SASL PLAIN", "STLS"]
  "capa_remove": [NAMES]  e.g. ["UIDL"]
  "capa_error": true      -ERR to CAPA (an RFC 1939-only server)
  "login_reply": "LINE"   the reply to PASS/APOP/AUTH instead of +OK
                          (e.g. "-ERR [IN-USE] mailbox locked")
  "uidl": {"N": "UIDL"}   message N listed with this UIDL (duplicates allowed)
  "uidl_omit": [N, ...]   messages left out of the UIDL listing (a gap)
  "list_size": {"N": S}   LIST/STAT claim S octets for message N
  "drop_after_received": K  close the connection as soon as the K-th command of
                          the session has been received (replies to pipelined
                          commands still outstanding are never sent)
  "quit_reply": "LINE"    the reply to QUIT instead of +OK; nothing is deleted
  "unaccepting": true     the port file names a socket that never accepts (its
                          backlog is full): a client's connect hangs
  "actions": [ACTION, ...]  the first matching one replaces the normal reply:
    "on": "greeting" | a command name (CAPA USER PASS UIDL LIST STAT RETR DELE QUIT..)
    "msg": N              only for this message number argument
    "count": K            only the K-th such command of the session
    then one of:
    "reply": "LINE"       a single-line reply
    "close": true         drop the connection without a reply (commands the client
                          sent ahead and we did not read make that a TCP RST, which
                          may destroy replies still unread in the client's buffer)
    "close": "graceful"   half-close (FIN after the replies sent so far) instead of
                          a reply, then read until the client hangs up
    "stall": true         never reply (keeps reading and logging commands)
    "garbage": BYTES      BYTES pseudo-random bytes instead of a reply
    "endless_line": BYTES a line that never ends: "prefix" (default "+OK "; e.g.
                          "+OK\r\n1 " for a listing line), then BYTES octets without
                          LF, 0 = forever (until the client hangs up)
    "endless_retr": BYTES RETR: "+OK" and a body of 78-octet lines that goes on for
                          BYTES octets (0 = forever), generated lazily, never in memory
    "cut_after": BYTES    RETR: "+OK" and the first BYTES octets of the real body
    "then": "close" | "stall" | "end"   after garbage/endless_line/endless_retr/
                          cut_after (default "close"; "end" = finish the reply
                          properly: CRLF or ".CRLF")
  Every action that streams logs "E pushed <n> bytes" when it stops.

Example: --scenario '{"actions": [{"on": "RETR", "msg": 3, "cut_after": 5000}]}'

Runs until SIGTERM/SIGINT.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import socket
import socketserver
import sys
import threading
import time

CRLF = b"\r\n"
CHUNK = 64 * 1024
DEFAULT_CAPA = ["TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE"]


class Hangup(Exception):
    """The client went away or the scenario drops the connection."""


class Shared:
    """State shared by all connections: the mailbox directory and the log."""

    def __init__(self, args, scenario):
        self.args = args
        self.scenario = scenario
        self.lock = threading.Lock()
        self.connections = 0
        self.log_file = open(args.log, "a", buffering=1)

    def log(self, cid, kind, text):
        with self.lock:
            self.log_file.write("%.6f %d %s %s\n" % (time.time(), cid, kind, text))
            self.log_file.flush()

    def next_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def messages(self):
        """(uidl, path) of every message now in the mailbox, in name order."""
        d = self.args.mailbox
        names = sorted(n for n in os.listdir(d)
                       if not n.startswith(".") and os.path.isfile(os.path.join(d, n)))
        return [(n, os.path.join(d, n)) for n in names]


def mask(line):
    words = line.split(" ")
    cmd = words[0].upper()
    if cmd == "PASS":
        return "PASS ****"
    if cmd == "APOP" and len(words) > 2:
        return "APOP %s ****" % words[1]
    if cmd == "AUTH" and len(words) > 2:
        return "AUTH %s ****" % words[1]
    return line


def stuffed_chunks(path):
    """The file's bytes as RETR sends them: dot-stuffed, ending in a line end."""
    at_line_start = True
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            out = chunk.replace(b"\n.", b"\n..")
            if at_line_start and chunk[:1] == b".":
                out = b"." + out
            at_line_start = chunk.endswith(b"\n")
            yield out
    if not at_line_start:
        yield CRLF


def filler():
    """A chunk of about 64 KiB of whole 78-octet lines, sent again and again."""
    line = b"hostile endless retr " + b"x" * 55 + CRLF
    chunk = (line * (CHUNK // len(line) + 1))[:CHUNK - CHUNK % len(line)]
    return chunk


class Connection:
    def __init__(self, sock, shared):
        self.sock = sock
        self.shared = shared
        self.cid = shared.next_connection()
        limit = shared.scenario.get("connections")
        self.sc = shared.scenario if limit is None or self.cid <= limit else {}
        self.buf = b""
        self.pending = []      # complete command lines received, not yet handled
        self.received = 0      # commands received in this session
        self.counts = {}       # command name -> how many handled
        self.drop = False      # drop_after_received fired
        self.sasl = False      # the next line is a SASL response (masked in the log)
        self.authorized = False
        self.user = None
        self.mailbox = []      # (uidl, path) snapshot at login
        self.marked = set()    # message numbers marked with DELE
        self.timestamp = "<%d.%d@hostile>" % (os.getpid(), int(time.time() * 1000))

    def log(self, kind, text):
        self.shared.log(self.cid, kind, text)

    # --- input -------------------------------------------------------------

    def absorb(self, data):
        self.buf += data
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("latin-1")
            shown = "****" if self.sasl else mask(line)
            self.sasl = False
            self.log("C", shown)
            self.pending.append(line)
            self.received += 1
            limit = self.sc.get("drop_after_received")
            if limit and self.received >= limit and not self.drop:
                self.drop = True
                self.log("E", "drop after %d commands received" % self.received)
        if len(self.buf) > 1 << 20:
            self.log("E", "client line longer than 1 MiB")
            raise Hangup()

    def drain(self):
        """Takes in whatever the client has already sent, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(CHUNK)
                if not data:
                    break
                self.absorb(data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass
        finally:
            self.sock.setblocking(True)
        if self.drop:
            raise Hangup()

    def next_command(self):
        if self.drop:
            raise Hangup()
        while not self.pending:
            try:
                data = self.sock.recv(CHUNK)
            except socket.timeout:
                self.log("E", "gave up waiting for the client")
                raise Hangup()
            except OSError:
                data = b""
            if not data:
                self.log("E", "client closed the connection")
                raise Hangup()
            self.absorb(data)
            if self.drop:
                raise Hangup()
        return self.pending.pop(0)

    # --- output ------------------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.log("E", "client closed the connection while we sent")
            raise Hangup()

    def finish(self, last, what):
        """Sends the last bytes of a reply, logging commands that came before."""
        self.drain()
        self.send(last)
        self.log("R", what)

    def reply(self, what, line):
        self.finish(line.encode("latin-1") + CRLF, "%s %s" % (what, line.split(" ", 1)[0]))

    def multi(self, what, first, chunks):
        self.send(first.encode("latin-1") + CRLF)
        for c in chunks:
            self.send(c)
        self.finish(b"." + CRLF, "%s +OK" % what)

    def stall(self):
        self.log("E", "stalling")
        while True:
            self.next_command()

    def stream(self, what, first, source, limit, then, tail=b""):
        """Sends `first`, then chunks from `source` up to `limit` octets (0 = no
        limit), then ends as `then` says. Logs how much went out."""
        pushed = 0
        try:
            if first:
                self.send(first)
            for c in source:
                if limit and pushed + len(c) > limit:
                    c = c[:limit - pushed]
                if c:
                    self.send(c)
                    pushed += len(c)
                if limit and pushed >= limit:
                    break
        finally:
            self.log("E", "pushed %d bytes (%s)" % (pushed, what))
        if then == "stall":
            self.stall()
        if then == "end":
            self.finish(tail, "%s end" % what)
            return
        self.log("E", "closing after %s" % what)
        raise Hangup()

    # --- scenario ----------------------------------------------------------

    def action(self, name, arg):
        for a in self.sc.get("actions", []):
            if a.get("on", "").upper() != name:
                continue
            if "msg" in a and str(a["msg"]) != arg.strip():
                continue
            if "count" in a and a["count"] != self.counts.get(name, 0):
                continue
            return a
        return None

    def perform(self, a, what, msg_path=None):
        """Carries out action `a` in place of the reply to `what`."""
        then = a.get("then", "close")
        if "reply" in a:
            return self.reply(what, a["reply"])
        if a.get("close") == "graceful":
            # FIN after the replies already sent; reading on until the client
            # hangs up, so unread commands do not turn the close into a RST
            # that could destroy those replies in the client's buffer.
            self.log("E", "half-closing instead of replying to %s" % what)
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(10)
            self.stall()
        if a.get("close"):
            self.log("E", "closing instead of replying to %s" % what)
            raise Hangup()
        if a.get("stall"):
            return self.stall()
        if "garbage" in a:
            rnd = random.Random(self.shared.args.seed)

            def garbage():
                while True:
                    yield rnd.randbytes(4096)
            return self.stream(what + " garbage", b"", garbage(), a["garbage"], then, CRLF)
        if "endless_line" in a:
            line = b"x" * CHUNK

            def endless():
                while True:
                    yield line
            prefix = a.get("prefix", "+OK ").encode("latin-1")
            return self.stream(what + " endless line", prefix, endless(), a["endless_line"],
                               then, CRLF)
        if "endless_retr" in a:
            chunk = filler()

            def endless():
                while True:
                    yield chunk
            return self.stream(what + " endless body", b"+OK endless" + CRLF, endless(),
                               a["endless_retr"], then, b"." + CRLF)
        if "cut_after" in a:
            return self.stream(what + " cut", b"+OK message follows" + CRLF,
                               stuffed_chunks(msg_path), a["cut_after"], then, b"." + CRLF)
        raise SystemExit("scenario action without an effect: %r" % (a,))

    # --- protocol ----------------------------------------------------------

    def capa_lines(self):
        lines = list(self.sc.get("capa", DEFAULT_CAPA + (
            ["PIPELINING"] if self.sc.get("pipelining") else [])))
        lines += self.sc.get("capa_add", [])
        drop = {n.upper() for n in self.sc.get("capa_remove", [])}
        return [l for l in lines if l.split(" ")[0].upper() not in drop]

    def msg(self, arg):
        """(msgno, uidl, path) for a message-number argument, or None."""
        try:
            n = int(arg.split(" ")[0])
        except ValueError:
            return None
        if n < 1 or n > len(self.mailbox) or n in self.marked:
            return None
        uidl, path = self.mailbox[n - 1]
        return n, uidl, path

    def size(self, n, path):
        return int(self.sc.get("list_size", {}).get(str(n), os.path.getsize(path)))

    def uidl_of(self, n, uidl):
        return self.sc.get("uidl", {}).get(str(n), uidl)

    def login(self, what, ok):
        custom = self.sc.get("login_reply")
        if custom is not None:
            return self.reply(what, custom)
        if not ok:
            return self.reply(what, "-ERR [AUTH] invalid user name or password")
        self.authorized = True
        self.mailbox = self.shared.messages()
        self.log("E", "logged in, %d messages" % len(self.mailbox))
        self.reply(what, "+OK logged in")

    def handle(self):
        self.log("E", "connect")
        a = self.action("GREETING", "")
        if a is not None:
            self.perform(a, "greeting")
        else:
            self.reply("greeting", self.sc.get("greeting", "+OK hostile POP3 ready " +
                                               self.timestamp))
        args = self.shared.args
        while True:
            line = self.next_command()
            words = line.split(" ", 1)
            cmd, arg = words[0].upper(), (words[1] if len(words) > 1 else "")
            what = mask(line)
            self.counts[cmd] = self.counts.get(cmd, 0) + 1
            m = self.msg(arg) if self.authorized and cmd in ("RETR", "TOP") else None
            a = self.action(cmd, arg)
            if a is not None:
                self.perform(a, what, m[2] if m else None)
                continue
            if cmd == "QUIT":
                return self.quit()
            if cmd == "CAPA":
                if self.sc.get("capa_error"):
                    self.reply(what, "-ERR unknown command")
                else:
                    self.multi(what, "+OK capability list follows",
                               [l.encode() + CRLF for l in self.capa_lines()])
            elif cmd == "NOOP":
                self.reply(what, "+OK")
            elif cmd == "STLS":
                self.reply(what, "-ERR no TLS here" if not self.authorized else
                           "-ERR already authenticated")
            elif not self.authorized:
                if cmd == "USER":
                    self.user = arg
                    self.reply(what, "+OK")
                elif cmd == "PASS":
                    self.login(what, self.user == args.user and arg == args.password)
                elif cmd == "APOP":
                    parts = arg.split(" ")
                    digest = hashlib.md5((self.timestamp + args.password).encode()).hexdigest()
                    self.login(what, len(parts) == 2 and parts[0] == args.user and
                               parts[1].lower() == digest)
                elif cmd == "AUTH":
                    self.auth(what, arg)
                else:
                    self.reply(what, "-ERR not authenticated")
            else:
                self.transaction(cmd, arg, what, m)

    def auth(self, what, arg):
        parts = arg.split(" ")
        if parts[0].upper() != "PLAIN":
            return self.reply(what, "-ERR unsupported mechanism")
        if len(parts) > 1:
            response = parts[1]
        else:
            self.sasl = True
            self.reply(what, "+ ")
            response = self.next_command()
        try:
            _, user, password = base64.b64decode(response).decode().split("\0")
        except (ValueError, UnicodeDecodeError):
            return self.reply(what, "-ERR malformed PLAIN response")
        self.login(what, user == self.shared.args.user and password == self.shared.args.password)

    def transaction(self, cmd, arg, what, m):
        live = [(n, u, p) for n, (u, p) in enumerate(self.mailbox, 1) if n not in self.marked]
        if cmd == "STAT":
            self.reply(what, "+OK %d %d" % (len(live), sum(self.size(n, p) for n, _, p in live)))
        elif cmd in ("LIST", "UIDL"):
            row = (lambda n, u, p: "%d %d" % (n, self.size(n, p))) if cmd == "LIST" else \
                  (lambda n, u, p: "%d %s" % (n, self.uidl_of(n, u)))
            if arg:
                one = self.msg(arg)
                if one is None:
                    return self.reply(what, "-ERR no such message")
                return self.reply(what, "+OK " + row(*one))
            omit = set(self.sc.get("uidl_omit", [])) if cmd == "UIDL" else set()
            self.multi(what, "+OK %d messages" % len(live),
                       [(row(n, u, p) + "\r\n").encode("latin-1")
                        for n, u, p in live if n not in omit])
        elif cmd == "RETR":
            if m is None:
                return self.reply(what, "-ERR no such message")
            self.multi(what, "+OK %d octets" % os.path.getsize(m[2]), stuffed_chunks(m[2]))
        elif cmd == "TOP":
            parts = arg.split(" ")
            if m is None or len(parts) != 2 or not parts[1].isdigit():
                return self.reply(what, "-ERR no such message")
            with open(m[2], "rb") as f:
                data = f.read()
            head, sep, body = data.partition(b"\r\n\r\n")
            lines = body.split(b"\n")[:int(parts[1])] if sep else []
            text = head + sep + b"\n".join(lines)
            if not text.endswith(b"\n"):
                text += CRLF
            text = text.replace(b"\n.", b"\n..")
            self.multi(what, "+OK", [(b"." if text[:1] == b"." else b"") + text])
        elif cmd == "DELE":
            one = self.msg(arg)
            if one is None:
                return self.reply(what, "-ERR no such message")
            self.marked.add(one[0])
            self.reply(what, "+OK marked")
        elif cmd == "RSET":
            self.marked.clear()
            self.reply(what, "+OK")
        else:
            self.reply(what, "-ERR unknown command")

    def quit(self):
        custom = self.sc.get("quit_reply")
        if custom is not None:
            self.log("E", "QUIT refused: nothing deleted")
            return self.reply("QUIT", custom)
        for n in sorted(self.marked):
            uidl, path = self.mailbox[n - 1]
            with open(path, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            os.unlink(path)
            self.log("E", "DELETED %d %s %s" % (n, uidl, sha))
        self.reply("QUIT", "+OK bye, %d deleted" % len(self.marked))


ALPHABET = b"abcdefghij klmnopqrstuvwxyz ABCDEFGHIJ,.:-!?0123456789"
TEXT = bytes(ALPHABET[i % len(ALPHABET)] for i in range(256))  # any byte -> text


def generate(directory, count, seed):
    rnd = random.Random(seed)
    for i in range(1, count + 1):
        lines = [b"From: sender%d@example.org" % i, b"To: u@example.org",
                 b"Subject: hostile test message %d" % i,
                 b"Message-ID: <hostile-%d-%d@example.org>" % (seed, i), b""]
        target = rnd.choice([200, 2000, 20000, 100000])
        size = sum(len(l) + 2 for l in lines)
        while size < target:
            kind = rnd.random()
            if kind < 0.1:
                line = b"." * rnd.randint(1, 3) + b" dotted line"
            elif kind < 0.12:
                line = b"."
            else:
                line = rnd.randbytes(rnd.randint(0, 120)).translate(TEXT)
            lines.append(line)
            size += len(line) + 2
        with open(os.path.join(directory, "msg%04d-%d" % (i, seed)), "wb") as f:
            f.write(CRLF.join(lines) + CRLF)


def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d" % (port, os.getpid()))
    os.rename(tmp, path)


def unaccepting(args):
    """Listens with a backlog of 0 and fills it, so further SYNs are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.2)  # let the handshakes of the fillers complete
    write_port_file(args.port_file, port)
    while True:
        time.sleep(3600)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--mailbox", required=True)
    p.add_argument("--user", default="u")
    p.add_argument("--password", default="p")
    p.add_argument("--generate", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scenario", default="{}")
    args = p.parse_args()
    text = args.scenario
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    scenario = json.loads(text)
    os.makedirs(args.mailbox, exist_ok=True)
    if args.generate and not os.listdir(args.mailbox):
        generate(args.mailbox, args.generate, args.seed)
    shared = Shared(args, scenario)
    if scenario.get("unaccepting"):
        return unaccepting(args)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            # Replies go out in several writes; without this, Nagle and the
            # client's delayed ACK add 40 ms to each.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self.request, shared)
            try:
                conn.handle()
            except Hangup:
                pass
            except OSError as e:
                conn.log("E", "socket error: %s" % e)
            conn.log("E", "close")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    write_port_file(args.port_file, server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
