#!/usr/bin/env python3
"""Deterministic benchmark mailboxes (stdlib only), written as a Maildir Dovecot can serve.

usage: gen_mailbox.py OUT_MAILDIR --profile archive|poll|huge --seed S
                      [--count N] [--total-bytes B] [--size B]

archive  --count messages (default 5000) adding up to about --total-bytes as sent
         (default 210,000,000 octets on the wire: LF sent as CRLF). 4.3 % of them (215 of
         5000) are large, log-uniform between 100 KB and 2 MB (attachments: base64 of
         incompressible bytes, or compressible CSV); the rest are log-normal around a
         ~9 KB median (headers with a Received chain, plain text, text+HTML alternatives,
         small attachments), capped below 100 KB. Issue #6's mailbox.
poll     --count small messages (default 50,000, ~1.3 KB each): the no-new-mail poll.
huge     one message of --size octets (default 200,000,000), a base64 attachment.

Same arguments -> same bytes, same file names, same order. Names are
`<stamp>.M<seq>P0.bench,S=<size>,W=<wire size>` (Dovecot orders new/ by the stamp and
takes LIST sizes from W= without reading the files). Prints one JSON line of statistics.
"""

import argparse
import base64
import json
import math
import os
import random
import statistics
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

BASE_TIME = 1_700_000_000
KB = 1000

WORDS = ("the quarterly report shows revenue growth in all regions and the team will review "
         "budget forecast numbers before friday meeting please confirm attendance project "
         "timeline customer feedback invoice delivery schedule contract renewal draft update "
         "agenda items migration server backup schedule approval pending next steps shipment "
         "warehouse pricing discount offer attached signed copy legal review compliance audit "
         "quarter region sales target pipeline forecast hiring onboarding laptop access badge").split()
FIRST = ["Anna", "Ben", "Carla", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kate", "Lars", "Maria", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tanja"]
LAST = ["Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
        "Keller", "Lopez", "Meyer", "Novak", "Olsen", "Peters", "Rossi", "Schmidt", "Weber"]
ORGS = ["acme-logistics.example", "northwind.example", "contoso.example", "globex.example",
        "initech.example", "umbrella-supplies.example", "fabrikam.example", "tailspin.example"]
SUBJECTS = ["Q{n} budget review", "Invoice {n}", "Contract renewal {n}", "Meeting notes {n}",
            "Shipment {n} delayed", "Server maintenance window {n}", "Offer for project {n}",
            "Travel expenses {n}", "Customer escalation #{n}", "Weekly status report {n}"]
ATTACH = [("report.pdf", "application/pdf"), ("photo.jpg", "image/jpeg"),
          ("slides.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
          ("archive.zip", "application/zip")]


def wire_size(data: bytes) -> int:
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


class Maker:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        rng = self.rng
        # A pool of paragraphs: text is assembled from it (fast), so zstd sees text-like data.
        self.paras = []
        for _ in range(3000):
            words = [rng.choice(WORDS) for _ in range(rng.randint(25, 110))]
            text, line, lines = " ".join(words).capitalize() + ".", "", []
            for w in text.split():
                if len(line) + len(w) + 1 > 72:
                    lines.append(line)
                    line = w
                else:
                    line = f"{line} {w}" if line else w
            lines.append(line)
            self.paras.append("\n".join(lines))

    def person(self):
        r = self.rng
        first, last = r.choice(FIRST), r.choice(LAST)
        return first, f"{first} {last} <{first.lower()}.{last.lower()}@{r.choice(ORGS)}>"

    def headers(self, seq):
        r = self.rng
        first, sender = self.person()
        _, rcpt = self.person()
        when = datetime(2024, 1, 2, 8, tzinfo=timezone.utc) + timedelta(minutes=7 * seq + r.randint(0, 6))
        dom = sender.split("@")[1][:-1]
        hops = []
        for h in range(r.randint(2, 5)):  # a Received chain, like real mail
            hops.append(f"Received: from relay{h}.{dom} (relay{h}.{dom} [192.0.2.{r.randint(1, 254)}])\n"
                        f"\tby mx{h}.archive.example (Postfix) with ESMTPS id {r.getrandbits(48):012X}\n"
                        f"\tfor <archive@archive.example>; {format_datetime(when)}")
        hdr = [f"Return-Path: <{sender.split('<')[1]}"] + hops + [
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={dom}; s=s1;\n"
            f"\tbh={base64.b64encode(r.randbytes(32)).decode()};\n"
            f"\tb={base64.b64encode(r.randbytes(128)).decode()}",
            f"From: {sender}", f"To: {rcpt}", f"Date: {format_datetime(when)}",
            f"Message-ID: <{seq:06d}.{r.getrandbits(40):010x}@{dom}>",
            f"Subject: {r.choice(SUBJECTS).format(n=r.randint(1000, 99999))}", "MIME-Version: 1.0"]
        return first, "\n".join(hdr) + "\n"

    def text(self, approx):
        parts, n = [], 0
        while n < approx:
            p = self.rng.choice(self.paras)
            parts.append(p)
            n += len(p) + 2
        return "\n\n".join(parts)

    def b64_attachment(self, bnd, raw_len, compressible):
        r = self.rng
        if compressible:
            rows, n = ["date,region,account,amount"], 0
            while n < raw_len:
                row = (f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d},{r.choice(['north', 'south', 'east', 'west'])},"
                       f"{r.randint(10000, 99999)},{r.randint(10, 99999)}.{r.randint(0, 99):02d}")
                rows.append(row)
                n += len(row) + 1
            data, name, ctype = ("\n".join(rows) + "\n").encode(), "figures.csv", "text/csv"
        else:
            data = r.randbytes(raw_len)
            name, ctype = r.choice(ATTACH)
        enc = base64.encodebytes(data).decode()  # 76-char lines
        return (f"--{bnd}\nContent-Type: {ctype}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n"
                f"Content-Disposition: attachment; filename=\"{name}\"\n\n{enc}")

    def message(self, seq, target):
        """A message of about `target` octets on the wire."""
        r = self.rng
        first, hdr = self.headers(seq)
        room = max(200, target - wire_size(hdr.encode()) - 250)
        kind = r.random()
        if target >= 100 * KB or (target > 12 * KB and kind < 0.35):
            bnd = f"=_mixed_{seq}_{r.getrandbits(32):08x}"
            body = f"Hello,\n\n{self.text(min(room // 4, 1500))}\n\nRegards,\n{first}\n"
            head = (f"{hdr}Content-Type: multipart/mixed; boundary=\"{bnd}\"\n\n--{bnd}\n"
                    f"Content-Type: text/plain; charset=utf-8\n\n{body}\n")
            left = max(100, target - wire_size(head.encode()) - 300)
            raw = left * 57 // 78  # base64: 57 raw octets per 76-char line (+CRLF on the wire)
            att = self.b64_attachment(bnd, raw, compressible=r.random() < 0.25)
            msg = f"{head}{att}--{bnd}--\n"
        elif kind < 0.6:
            msg = (f"{hdr}Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n"
                   f"Hello,\n\n{self.text(room)}\n\nBest regards,\n{first}\n")
        else:
            bnd = f"=_alt_{seq}_{r.getrandbits(32):08x}"
            body = self.text(room * 46 // 100)
            html = "<html><body>" + "".join(f"<p>{p}</p>\n" for p in body.split("\n\n")) + "</body></html>"
            msg = (f"{hdr}Content-Type: multipart/alternative; boundary=\"{bnd}\"\n\n--{bnd}\n"
                   f"Content-Type: text/plain; charset=utf-8\n\n{body}\n--{bnd}\n"
                   f"Content-Type: text/html; charset=utf-8\n\n{html}\n--{bnd}--\n")
        return msg.encode()


def archive_sizes(rng, count, total):
    n_large = round(count * 215 / 5000)
    large_idx = set(rng.sample(range(count), n_large))
    small_median = 8.6 * KB
    sizes = []
    for i in range(count):
        if i in large_idx:
            sizes.append(math.exp(rng.uniform(math.log(100 * KB), math.log(2000 * KB))))
        else:
            sizes.append(min(95 * KB, max(1.2 * KB, rng.lognormvariate(math.log(small_median), 0.85))))
    # Scale the large ones so that the mailbox adds up to `total` (kept within 100 KB..2 MB).
    small_sum = sum(s for i, s in enumerate(sizes) if i not in large_idx)
    large_sum = sum(s for i, s in enumerate(sizes) if i in large_idx)
    if large_sum > 0:
        f = max(0.2, (total - small_sum) / large_sum)
        for i in large_idx:
            sizes[i] = min(2000 * KB, max(101 * KB, sizes[i] * f))
    return [int(s) for s in sizes]


def write_message(maildir, seq, data):
    stamp = BASE_TIME + seq
    name = f"{stamp}.M{seq}P0.bench,S={len(data)},W={wire_size(data)}"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.utime(tmp, (stamp, stamp))
    os.rename(tmp, os.path.join(maildir, "new", name))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_maildir")
    ap.add_argument("--profile", choices=["archive", "poll", "huge"], required=True)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--count", type=int)
    ap.add_argument("--total-bytes", type=int, default=210_000_000)
    ap.add_argument("--size", type=int, default=200_000_000)
    a = ap.parse_args()
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(a.out_maildir, sub), exist_ok=True)
    if os.listdir(os.path.join(a.out_maildir, "new")) or os.listdir(os.path.join(a.out_maildir, "cur")):
        sys.exit(f"gen_mailbox.py: {a.out_maildir} is not empty")
    mk = Maker(a.seed)
    wires = []
    if a.profile == "archive":
        count = a.count or 5000
        targets = archive_sizes(random.Random(a.seed * 7919 + 1), count, a.total_bytes)
        for seq, t in enumerate(targets):
            data = mk.message(seq, t)
            write_message(a.out_maildir, seq, data)
            wires.append(wire_size(data))
    elif a.profile == "poll":
        count = a.count if a.count is not None else 50_000
        for seq in range(count):
            _, hdr = mk.headers(seq)
            data = (hdr + "Content-Type: text/plain; charset=utf-8\n\n" + mk.rng.choice(mk.paras) + "\n").encode()
            write_message(a.out_maildir, seq, data)
            wires.append(wire_size(data))
    else:
        _, hdr = mk.headers(0)
        bnd = "=_huge_0"
        head = (f"{hdr}Content-Type: multipart/mixed; boundary=\"{bnd}\"\n\n--{bnd}\n"
                f"Content-Type: text/plain; charset=utf-8\n\nThe file you asked for.\n\n")
        raw = max(1000, a.size - len(head) - 300) * 57 // 78
        data = f"{head}{mk.b64_attachment(bnd, raw, compressible=False)}--{bnd}--\n".encode()
        write_message(a.out_maildir, 0, data)
        wires.append(wire_size(data))
    print(json.dumps({
        "profile": a.profile, "seed": a.seed, "messages": len(wires), "wire_bytes": sum(wires),
        "median_wire": int(statistics.median(wires)) if wires else 0,
        "between_100k_2m": sum(1 for w in wires if 100 * KB <= w <= 2000 * KB),
        "largest": max(wires) if wires else 0}))


if __name__ == "__main__":
    main()
