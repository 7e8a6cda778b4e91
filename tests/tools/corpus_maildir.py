#!/usr/bin/env python3
"""Builds the `corpus` test Maildir from the shared corpus, reading files in place.

usage: corpus_maildir.py MANIFEST_DIR OUT_MAILDIR [--min 1000]

MANIFEST_DIR is the corpus folder holding MANIFEST.tsv; files are read by the paths in the
manifest and written to OUT_MAILDIR byte for byte (never copied into the repository).
Only `format=message` rows are used: mbox and bsmtp containers are skipped, because
splitting them would mean inventing a transformation (From_-quoting, SMTP unstuffing)
that no POP3 server applies.

Deterministic choice:
  1. every message with a quirk that matters on the wire or to parsers (lone-dot/dot
     lines, CR-only or mixed EOL, NUL, line>998, no final EOL, broken header blocks,
     8-bit headers) and the 10 largest messages;
  2. then more messages in order of sha256(path) until --min is reached.
Maildir order is by path, so UIDs follow the manifest's sort order.
Prints the number of messages written.
"""

import argparse
import csv
import hashlib
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import maildir_util  # noqa: E402

MUST_MALFORMED = {"NUL-byte", "bare-CR-or-mixed-EOL", "line>998", "no-header/body-separator",
                  "no-leading-header", "invalid-header-line", "8bit-in-headers"}
MUST_TRAITS = {"lone-dot-line", "dot-line", "no-final-eol", "dup-bytes"}
LARGEST = 10


def read_manifest(manifest_dir):
    path = os.path.join(manifest_dir, "MANIFEST.tsv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if r["format"] == "message"]


def choose(rows, minimum):
    def tags(field):
        return set() if field in ("", "-") else set(field.split(","))

    chosen = {r["file"] for r in rows
              if tags(r["malformed"]) & MUST_MALFORMED or tags(r["traits"]) & MUST_TRAITS}
    by_size = sorted(rows, key=lambda r: (-int(r["bytes"]), r["file"]))
    chosen |= {r["file"] for r in by_size[:LARGEST]}
    rest = sorted((r["file"] for r in rows if r["file"] not in chosen),
                  key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    chosen |= set(rest[:max(0, minimum - len(chosen))])
    return sorted(chosen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest_dir")
    ap.add_argument("out_maildir")
    ap.add_argument("--min", type=int, default=1000, dest="minimum")
    args = ap.parse_args()

    files = choose(read_manifest(args.manifest_dir), args.minimum)
    maildir_util.make_maildir(args.out_maildir)
    for seq, rel in enumerate(files):
        with open(os.path.join(args.manifest_dir, rel), "rb") as f:
            data = f.read()
        maildir_util.write_message(args.out_maildir, maildir_util.BASE_TIME + seq, seq, data)
    print(len(files))


if __name__ == "__main__":
    main()
