#!/usr/bin/env python3
"""Deterministic test mailboxes (stdlib only).

usage: gen_mailbox.py OUT_MAILDIR --count N --seed S [--profile quirks|demo]

quirks: first the fixed quirk messages below (in this order; --count smaller than their
        number keeps only the first N), then plain filler messages. The quirks are the
        classes the shared corpus shows, made by us: dot lines, CR-only and mixed EOL, NUL,
        long lines, 8-bit headers, a multi-MB message, empty ones, no final newline...
demo:   realistic business mail: threads with quoted replies, multipart/alternative,
        base64 attachments, 1 KB .. ~1 MB.
Same arguments -> same bytes and same file names. Prints the number of messages.
"""

import argparse
import base64
import os
import random
import sys
import textwrap
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import maildir_util  # noqa: E402

WORDS = ("the quarterly report shows revenue growth in all regions and the team will review "
         "budget forecast numbers before friday meeting please confirm attendance project "
         "timeline customer feedback invoice delivery schedule contract renewal draft update "
         "agenda items migration server backup schedule approval pending next steps").split()


def sentence(rng, n=None):
    words = [rng.choice(WORDS) for _ in range(n or rng.randint(6, 16))]
    return " ".join(words).capitalize() + "."


def paragraph(rng, sentences=None):
    text = " ".join(sentence(rng) for _ in range(sentences or rng.randint(2, 6)))
    return "\n".join(textwrap.wrap(text, 72))


def b64_lines(data):
    enc = base64.b64encode(data).decode()
    return "\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def headers(seq, subject="Test message", extra=""):
    date = format_datetime(datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=seq))
    return (f"From: Quirk Sender <quirks@example.test>\nTo: archive@example.test\n"
            f"Subject: {subject}\nDate: {date}\nMessage-ID: <quirk-{seq}@example.test>\n"
            f"MIME-Version: 1.0\n{extra}")


def quirk_messages(rng):
    """(label, bytes) pairs; labels document the intent of each message."""
    h = headers
    big = rng.randbytes(3 * 1024 * 1024)
    binary = rng.randbytes(64 * 1024)
    dup = (h(90, "Byte-identical duplicate") + "\nSame bytes as the next message.\n").encode()
    return [
        ("lone-dot-lf", h(1, "Lone dot lines") + "\nbefore\n.\nafter\n.\n\n.\nend\n"),
        ("dot-starts", h(2, "Lines starting with dots") +
         "\n.hidden\n..double\n...\n. space\n.\t\n..\n .not-at-start\nend\n"),
        ("lone-dot-crlf", (h(3, "CRLF with lone dot") + "\nbefore\n.\n..\nafter\n").replace("\n", "\r\n")),
        ("lone-dot-last-no-eol", h(4, "Ends in a lone dot without newline") + "\ntext\n."),
        ("dot-dot-last-line", h(5, "Last line is two dots") + "\ntext\n..\n"),
        ("cr-only", (h(6, "Classic Mac CR-only endings") + "\nline one\n.\nline three\n").replace("\n", "\r")),
        ("mixed-eol", h(7, "Mixed line endings") +
         "\nlf line\ncrlf line\r\ncr line\rcr-cr-lf\r\r\nlf-cr\n\r.\r\n.\rend\n"),
        ("nul-bytes", (h(8, "NUL bytes") + "X-Nul: a\0b\n\nbody\0with\0nuls\n\0\n.\0\n").encode()),
        ("line-1500", h(9, "A 1500-octet line") + "\n" + "x" * 1500 + "\nend\n"),
        ("line-10k", h(10, "A 10000-char line") + "\n" + ("0123456789" * 1000) + "\nend\n"),
        ("line-100k", h(11, "A 100000-char line starting with a dot") + "\n." + "y" * 100000 + "\n"),
        ("header-utf8-raw", (h(12, "Grüße aus Köln – 8-bit header") + "\nraw UTF-8 in Subject\n").encode()),
        ("header-invalid-utf8", h(13, "placeholder").encode().replace(b"placeholder", b"Bad \xff\xfe\xc3( bytes")
         + b"X-Latin1: Andr\xe9\n\nlatin-1 body: caf\xe9\n"),
        ("header-encoded-word", h(14, "=?UTF-8?B?8J+TpyBFbmNvZGVkIHN1YmplY3Q=?=") + "\nencoded word\n"),
        ("multi-mb-attachment", h(15, "3 MB attachment", 'Content-Type: multipart/mixed; boundary="b15"\n') +
         "\n--b15\nContent-Type: text/plain\n\nSee attachment.\n\n--b15\n"
         "Content-Type: application/octet-stream; name=\"big.bin\"\nContent-Transfer-Encoding: base64\n"
         "Content-Disposition: attachment; filename=\"big.bin\"\n\n" + b64_lines(big) + "\n--b15--\n"),
        ("empty-body", h(16, "Empty body") + "\n"),
        ("headers-only-no-separator", h(17, "No blank line, no body")),
        ("no-final-newline", h(18, "No final newline") + "\nlast line has no terminator"),
        ("folded-headers", h(19, "A folded subject line that goes on\n and on across\n\tseveral lines",
                             "References: <a@example.test>\n <b@example.test>\n\t<c@example.test>\n"
                             "X-Long: " + " ".join(["word"] * 300) + "\n") + "\nfolded\n"),
        ("missing-id-and-subject", "From: nobody@example.test\nTo: archive@example.test\n"
                                   "Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nno Message-ID, no Subject\n"),
        ("zero-bytes", b""),
        # Not "a message starting with '.'": Dovecot 2.3.19 does not dot-stuff the very first
        # line of a message, so the bare "." would end the RETR early and desync the session.
        ("empty-header-block", "\nbody without any header field\n"),
        ("from-lines", h(22, "mbox-looking lines") + "\nFrom here on\n>From quoted\nFrom \n"),
        ("binary-body", h(23, "Raw 8-bit binary body").encode() + b"\n" + binary),
        ("dup-a", dup),
        ("dup-b", dup),
        ("same-message-id-different-body", h(90, "Byte-identical duplicate") + "\nDifferent body, same Message-ID.\n"),
        ("crlf-dot-crlf-body", (h(27, "Body contains the terminator sequence") +
                                "\nfirst\r\n.\r\nsecond\r\n..\r\n").encode()),
    ]


def filler(rng, seq):
    body = "\n\n".join(paragraph(rng) for _ in range(rng.randint(1, 5)))
    return (headers(seq, f"Filler message {seq}") + "Content-Type: text/plain; charset=us-ascii\n\n"
            + body + "\n").encode()


FIRST = ["Anna", "Ben", "Carla", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kate", "Lars", "Maria", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tanja"]
LAST = ["Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
        "Keller", "Lopez", "Meyer", "Novak", "Olsen", "Peters", "Rossi", "Schmidt", "Weber"]
ORGS = ["acme-logistics.example", "northwind.example", "contoso.example", "globex.example",
        "initech.example", "umbrella-supplies.example"]
TOPICS = ["Q{q} budget review", "Invoice {n} for {month}", "Contract renewal: {org}",
          "Meeting notes {month} {d}", "Shipment {n} delayed", "Server maintenance window",
          "New hire onboarding: {first}", "Offer for project {n}", "Travel expenses {month}",
          "Customer escalation #{n}", "Weekly status report", "Price list {year}"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
ATTACH = [("report.pdf", "application/pdf"), ("photo.jpg", "image/jpeg"),
          ("figures.csv", "text/csv"), ("slides.pptx",
          "application/vnd.openxmlformats-officedocument.presentationml.presentation")]


def person(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return first, f"{first} {last} <{first.lower()}.{last.lower()}@{rng.choice(ORGS)}>"


def attachment(rng, large_ok):
    name, ctype = rng.choice(ATTACH)
    # Mostly small; a few large ones (base64 -> up to ~1 MB) give the top of the size range.
    size = rng.randint(400_000, 720_000) if large_ok and rng.random() < 0.15 \
        else rng.choice([2_000, 8_000, 30_000, 90_000])
    if ctype == "text/csv":  # compressible, like real spreadsheets
        rows = ["date,region,amount"] + [f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                                         f"{rng.choice(['north', 'south', 'east', 'west'])},"
                                         f"{rng.randint(10, 99999)}.{rng.randint(0, 99):02d}"
                                         for _ in range(size // 28)]
        data = ("\n".join(rows) + "\n").encode()
    else:  # already-compressed formats look random
        data = rng.randbytes(size)
    return name, ctype, data


def demo_message(rng, seq, threads):
    first, sender = person(rng)
    _, rcpt = person(rng)
    when = datetime(2024, 1, 2, 8, tzinfo=timezone.utc) + timedelta(minutes=97 * seq + rng.randint(0, 90))
    msgid = f"<{seq:05d}.{rng.getrandbits(40):010x}@{sender.split('@')[1][:-1]}>"
    hdr = [f"Return-Path: <{sender.split('<')[1]}",
           f"Received: from mail.{sender.split('@')[1][:-1]} (mail [192.0.2.{rng.randint(1, 254)}])\n"
           f"\tby mx.archive.example with ESMTPS id {rng.getrandbits(48):012X};\n"
           f"\t{format_datetime(when)}",
           f"From: {sender}", f"To: {rcpt}", f"Date: {format_datetime(when)}", f"Message-ID: {msgid}"]
    body = f"Hello,\n\n{paragraph(rng)}\n\n{paragraph(rng)}\n\nBest regards,\n{first}\n"
    if threads and rng.random() < 0.3:  # reply with quoted text
        parent_id, subject, parent_body = rng.choice(threads)
        subject = subject if subject.startswith("Re: ") else "Re: " + subject
        hdr += [f"In-Reply-To: {parent_id}", f"References: {parent_id}"]
        quoted = "\n".join("> " + ln if ln else ">" for ln in parent_body.splitlines())
        body = f"{paragraph(rng, 2)}\n\n{first}\n\nOn {format_datetime(when - timedelta(hours=3))}, " \
               f"someone wrote:\n{quoted}\n"
    else:
        subject = rng.choice(TOPICS).format(q=rng.randint(1, 4), n=rng.randint(1000, 9999),
                                            month=rng.choice(MONTHS), org=rng.choice(ORGS),
                                            d=rng.randint(1, 28), first=rng.choice(FIRST),
                                            year=rng.choice([2024, 2025]))
    threads.append((msgid, subject, body))
    hdr += [f"Subject: {subject}", "MIME-Version: 1.0"]
    kind = rng.random()
    if kind < 0.45:
        return ("\n".join(hdr) + "\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: 7bit\n\n" + body).encode()
    bnd = f"=_part_{seq}_{rng.getrandbits(32):08x}"
    html = "<html><body>" + "".join(f"<p>{p}</p>" for p in body.split("\n\n")) + "</body></html>"
    alt = (f"Content-Type: multipart/alternative; boundary=\"{bnd}a\"\n\n--{bnd}a\n"
           f"Content-Type: text/plain; charset=utf-8\n\n{body}\n--{bnd}a\n"
           f"Content-Type: text/html; charset=utf-8\n\n{html}\n--{bnd}a--\n")
    if kind < 0.7:
        return ("\n".join(hdr) + "\n" + alt).encode()
    parts = [f"--{bnd}\n{alt}"]
    n = rng.choice([1, 1, 1, 2, 3])
    for _ in range(n):
        name, ctype, data = attachment(rng, n == 1)
        parts.append(f"--{bnd}\nContent-Type: {ctype}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n"
                     f"Content-Disposition: attachment; filename=\"{name}\"\n\n{b64_lines(data)}\n")
    return ("\n".join(hdr) + f"\nContent-Type: multipart/mixed; boundary=\"{bnd}\"\n\n"
            + "".join(parts) + f"--{bnd}--\n").encode()


def generate(profile, count, seed):
    rng = random.Random(seed)
    if profile == "demo":
        threads = []
        return [demo_message(rng, i, threads) for i in range(count)]
    quirks = [d if isinstance(d, bytes) else d.encode() for _, d in quirk_messages(rng)]
    return quirks[:count] + [filler(rng, i) for i in range(len(quirks), count)]


def main():
    ap = argparse.ArgumentParser(description="deterministic test Maildir generator")
    ap.add_argument("out_maildir")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--profile", choices=["quirks", "demo"], default="quirks")
    ap.add_argument("--list-quirks", action="store_true", help="print the quirk labels and exit")
    args = ap.parse_args()
    if args.list_quirks:
        for i, (label, _) in enumerate(quirk_messages(random.Random(args.seed)), 1):
            print(i, label)
        return
    maildir_util.make_maildir(args.out_maildir)
    msgs = generate(args.profile, args.count, args.seed)
    for seq, data in enumerate(msgs):
        maildir_util.write_message(args.out_maildir, maildir_util.BASE_TIME + seq, seq, data)
    print(len(msgs))


if __name__ == "__main__":
    main()
