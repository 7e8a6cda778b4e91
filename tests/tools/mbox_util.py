#!/usr/bin/env python3
"""Writes an mbox spool (for tests/fixtures/popa3d.sh) from message files (stdlib only).

usage: mbox_util.py OUT_MBOX SRC...

SRC is a file or a directory (its files, sorted by name, dot-files skipped); messages go
into OUT_MBOX in that order, each as

  From popvault@localhost Thu Jan  1 00:00:00 2026
  <the message, with mboxrd quoting: a line matching ^>*From  gets one more '>'>
  <a LF if the message does not end in one>
  <an empty line>

The quoting and the added LFs change bytes: the byte-exact tests compare what popvault
archived with what the server serves (tests/tools/pop3_dump.py), never with these files.
Prints the number of messages written.
"""

import os
import re
import sys

FROM_LINE = b"From popvault@localhost Thu Jan  1 00:00:00 2026\n"
QUOTE_RE = re.compile(rb"^(>*From )", re.MULTILINE)


def sources(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if not name.startswith("."):
                    yield os.path.join(p, name)
        else:
            yield p


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n = 0
    with open(sys.argv[1], "wb") as out:
        for path in sources(sys.argv[2:]):
            with open(path, "rb") as f:
                data = f.read()
            data = QUOTE_RE.sub(rb">\1", data)
            if not data.endswith(b"\n"):
                data += b"\n"
            out.write(FROM_LINE + data + b"\n")
            n += 1
    print(n)


if __name__ == "__main__":
    main()
