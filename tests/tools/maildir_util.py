#!/usr/bin/env python3
"""Shared Maildir writer for the test mailboxes (stdlib only).

Dovecot assigns UIDs to new/ files sorted by the time prefix of their names,
so `<base+seq>.M<seq>P0.popvault` gives a deterministic message order.
`,S=` is the file size and `,W=` the size Dovecot reports in LIST: every LF not
preceded by CR becomes CRLF on the wire (bare CR and NUL pass through), so
W = S + number of bare LFs. Both let Dovecot answer LIST without reading files.

Run as a script to copy files into a Maildir (used by `dovecot.sh fill`):
  maildir_util.py fill MAILDIR SRC_DIR_OR_FILE...
"""

import os
import re
import sys
import time

BASE_TIME = 1_700_000_000  # fixed epoch for generated mailboxes (2023-11-14)
_NAME_RE = re.compile(rb"^(\d+)\.")


def wire_size(data: bytes) -> int:
    """Size of the message as Dovecot sends it (LF -> CRLF), without the terminator."""
    bare_lf = data.count(b"\n") - data.count(b"\r\n")
    return len(data) + bare_lf


def make_maildir(path: str) -> None:
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def write_message(maildir: str, stamp: int, seq: int, data: bytes) -> str:
    """Writes one message into maildir/new via tmp (atomic rename); returns its name."""
    name = f"{stamp}.M{seq}P0.popvault,S={len(data)},W={wire_size(data)}"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.utime(tmp, (stamp, stamp))  # received date = stamp, reproducible
    os.rename(tmp, os.path.join(maildir, "new", name))
    return name


def next_stamp(maildir: str) -> int:
    """First time stamp after every message already in the Maildir (keeps order on refill)."""
    latest = 0
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if not os.path.isdir(d):
            continue
        for entry in os.listdir(os.fsencode(d)):
            m = _NAME_RE.match(entry)
            if m:
                latest = max(latest, int(m.group(1)))
    return max(latest + 1, int(time.time()))


def fill(maildir: str, sources: list) -> int:
    files = []
    for src in sources:
        if os.path.isdir(src):
            files += sorted(os.path.join(src, n) for n in os.listdir(src)
                            if os.path.isfile(os.path.join(src, n)))
        else:
            files.append(src)
    make_maildir(maildir)
    stamp = next_stamp(maildir)
    for i, path in enumerate(files):
        with open(path, "rb") as f:
            write_message(maildir, stamp + i, i, f.read())
    return len(files)


def main(argv: list) -> int:
    if len(argv) < 3 or argv[0] != "fill":
        print("usage: maildir_util.py fill MAILDIR SRC_DIR_OR_FILE...", file=sys.stderr)
        return 2
    n = fill(argv[1], argv[2:])
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
