#!/usr/bin/env python3
"""Writes the seed corpus of pop3_reply_fuzzer into corpus/pop3_reply/.

Hand-written server transcripts, one file each: <mode byte> <chunk byte> then
the bytes a POP3 server sends (pop3_reply_fuzzer.cc has the format). Re-run
after editing; files of seeds no longer listed here are left alone (crash
reproducers and `scripts/fuzz.sh --merge` additions live there too).
"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pop3_reply")

# Session mode bits (FuzzSession): bit 2 STLS, bits 3-4 auth, bit 5 handshake
# fails, bit 6 DELE + RSET, bit 7 QUIT.
AUTO, USER, APOP = 0 << 3, 1 << 3, 2 << 3
STLS, TLS_FAILS, DELE, QUIT = 1 << 2, 1 << 5, 1 << 6, 1 << 7


def session(bits):
    return bytes([1 | bits])


def reader(mask):
    """mask bit i%6: the i-th status line, if +OK, starts a multi-line body."""
    return bytes([2 | (mask << 2)])


def reader_and_parsers(mask):
    return bytes([3 | (mask << 2)])


PARSERS = bytes([0])
WHOLE, BYTEWISE, SMALL, LARGE = b"\x00", b"\x01", b"\x07", b"\xc0"

GREETING = b"+OK POP3 server ready <1896.697170952@pop.example>\r\n"
CAPA = (b"+OK Capability list follows\r\n"
        b"TOP\r\nUSER\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER\r\n"
        b"EXPIRE 30 USER\r\nLOGIN-DELAY 900\r\nIMPLEMENTATION popvault-fuzz-seed\r\n.\r\n")
CAPA_STLS = b"+OK\r\nSTLS\r\nUSER\r\nUIDL\r\n.\r\n"
LOGIN = b"+OK send PASS\r\n+OK maildrop has 3 messages (1740 octets)\r\n"
UIDL = (b"+OK unique-id listing follows\r\n"
        b"1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n"
        b"3 000003e8.5f0c1d2a  spaced uid \r\n.\r\n")
LIST = b"+OK 3 messages (1740 octets)\r\n1 120\r\n2 200 extra info\r\n3 1420\r\n.\r\n"
MSG1 = (b"+OK 120 octets\r\n"
        b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\n"
        b"..a line that starts with a dot\r\n.\r\n")
MSG2 = (b"+OK\r\nSubject: stuffing\r\n\r\n"
        b"...\r\n..\r\n. \r\n.x\r\n.\rnot a terminator\r\n..\r\r\n"
        b"bare CR\rinside\r\nbare LF line\n.\n")
MSG3 = (b"+OK\r\nSubject: tail\r\n\r\n" + b"x" * 300 + b"\r\n" +
        b"line with trailing CR\r\r\n\r\n.\r\n")
# RetrEach's three RETR and one more RETR; DeleEach's three DELE, RSET, QUIT.
RETRS = MSG1 + MSG2 + MSG3 + MSG1
COMMIT = (b"+OK message 1 deleted\r\n+OK message 2 deleted\r\n+OK message 3 deleted\r\n"
          b"+OK maildrop has 3 messages\r\n+OK bye\r\n")

SEEDS = {
    # Whole sessions.
    "session_user_full": session(USER | DELE | QUIT) + WHOLE +
    GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + RETRS + COMMIT,
    "session_auto_bytewise": session(AUTO | QUIT) + BYTEWISE +
    GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + RETRS + b"+OK bye\r\n",
    "session_apop": session(APOP | DELE | QUIT) + SMALL +
    GREETING + CAPA + b"+OK mrose's maildrop has 2 messages\r\n" + CAPA + UIDL + LIST +
    RETRS + COMMIT,
    "session_apop_no_timestamp": session(APOP) + WHOLE + b"+OK ready\r\n" + CAPA,
    "session_stls": session(STLS | USER | QUIT) + SMALL +
    GREETING + CAPA_STLS + b"+OK Begin TLS negotiation\r\n" + CAPA_STLS.replace(b"STLS\r\n", b"") +
    LOGIN + CAPA + UIDL + LIST + RETRS + b"+OK bye\r\n",
    # A man in the middle appends a fake CAPA reply to the STLS reply.
    "session_stls_injected": session(STLS | AUTO) + WHOLE +
    GREETING + CAPA_STLS + b"+OK Begin TLS\r\n+OK\r\nINJECTED\r\n.\r\n" + CAPA_STLS,
    "session_stls_not_offered": session(STLS) + WHOLE + GREETING + b"+OK\r\nUSER\r\n.\r\n",
    "session_stls_handshake_fails": session(STLS | TLS_FAILS) + WHOLE +
    GREETING + CAPA_STLS + b"+OK Begin TLS\r\n",
    "session_rfc1939_no_capa": session(USER | DELE | QUIT) + LARGE +
    b"+OK POP3 server ready\r\n-ERR unknown command\r\n" + LOGIN +
    b"-ERR unknown command\r\n" + UIDL + LIST + RETRS + COMMIT,
    "session_in_use": session(USER) + WHOLE + GREETING + CAPA + b"+OK\r\n" +
    b"-ERR [IN-USE] Do you have another POP session running?\r\n",
    "session_login_delay": session(USER) + WHOLE + GREETING + CAPA + b"+OK\r\n" +
    b"-ERR [LOGIN-DELAY] wait 900 seconds\r\n",
    "session_auth_failed": session(AUTO) + WHOLE + GREETING + CAPA + b"+OK\r\n" +
    b"-ERR [AUTH] Authentication failed.\r\n",
    "session_sys_temp_greeting": session(AUTO) + WHOLE +
    b"-ERR [SYS/TEMP] server busy, try later\r\n",
    "session_sys_perm_uidl": session(USER | QUIT) + WHOLE + GREETING + CAPA + LOGIN + CAPA +
    b"-ERR [SYS/PERM] mailbox damaged\r\n",
    "session_bare_lf": session(USER | DELE | QUIT) + SMALL +
    (GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + RETRS + COMMIT).replace(
        b"\r\n", b"\n"),
    "session_retr_cut": session(USER | QUIT) + SMALL +
    GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + b"+OK\r\nSubject: cut\r\n\r\nhalf a mess",
    "session_retr_err": session(USER | DELE | QUIT) + WHOLE +
    GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + b"-ERR no such message\r\n",
    "session_malformed_uidl": session(USER) + WHOLE + GREETING + CAPA + LOGIN + CAPA +
    b"+OK\r\n1 ok\r\n0 zero\r\n.\r\n",
    "session_malformed_list": session(USER) + WHOLE + GREETING + CAPA + LOGIN + CAPA + UIDL +
    b"+OK\r\n1 -5\r\n.\r\n",
    "session_quit_err": session(USER | QUIT) + WHOLE + GREETING + CAPA + LOGIN + CAPA + UIDL +
    LIST + RETRS + b"-ERR [SYS/TEMP] could not delete\r\n",
    "session_garbage_greeting": session(AUTO) + WHOLE + b"* OK IMAP4rev1 ready\r\n",
    "session_long_capa_line": session(USER) + SMALL + GREETING + b"+OK\r\nSASL " +
    b"X" * 4100 + b"\r\n.\r\n",
    # RETR pipelined (PIPELINING in CAPA): message 2 is empty, so the fuzzer's
    # end() refuses it; the session must read message 3's reply and stay usable.
    "session_pipelined_refused": session(USER | DELE | QUIT) + SMALL +
    GREETING + CAPA + LOGIN + CAPA + UIDL + LIST + MSG1 + b"+OK\r\n.\r\n" + MSG3 + MSG1 +
    COMMIT,
    "session_pipelined_huge_list": session(USER | QUIT) + WHOLE + GREETING + CAPA + LOGIN + CAPA +
    UIDL + b"+OK\r\n1 99999999999\r\n2 0\r\n3 18446744073709551615\r\n.\r\n" + RETRS +
    b"+OK bye\r\n",
    # SASL (RFC 5034) with auth = auto: the strongest mechanism CAPA offers.
    "session_sasl_plain": session(AUTO | QUIT) + WHOLE + GREETING +
    b"+OK\r\nSASL PLAIN\r\nUIDL\r\n.\r\n" + b"+ \r\n+OK logged in\r\n" +
    b"+OK\r\nSASL PLAIN\r\n.\r\n" + UIDL + LIST + RETRS + b"+OK bye\r\n",
    "session_sasl_login": session(AUTO | QUIT) + SMALL + GREETING +
    b"+OK\r\nSASL LOGIN\r\n.\r\n" + b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK\r\n" +
    b"-ERR no CAPA\r\n" + UIDL + LIST + RETRS + b"+OK bye\r\n",
    "session_sasl_cram_md5": session(AUTO) + WHOLE + GREETING +
    b"+OK\r\nSASL CRAM-MD5 PLAIN\r\n.\r\n" +
    b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n+OK\r\n" + CAPA,
    "session_sasl_scram_bad_nonce": session(AUTO) + WHOLE + GREETING +
    b"+OK\r\nSASL SCRAM-SHA-256 SCRAM-SHA-1\r\n.\r\n" +
    b"+ cj1mdXp6bm9uY2Uscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==\r\n-ERR [AUTH] bad proof\r\n",
    "session_sasl_err_auth": session(AUTO) + WHOLE + GREETING +
    b"+OK\r\nSASL PLAIN\r\n.\r\n" + b"-ERR [AUTH] Invalid credentials\r\n",
    # Reply reader against the reference decoder. Greeting single-line, then
    # mask bits 1-5 multi-line, bit 0 (op 6) single-line again.
    "reader_session_crlf": reader(0b111110) + WHOLE +
    GREETING + CAPA + UIDL + LIST + MSG1 + MSG2 + b"+OK deleted\r\n" + MSG3 + CAPA,
    "reader_session_bytewise": reader(0b111110) + BYTEWISE +
    GREETING + CAPA + UIDL + LIST + MSG1 + MSG2 + b"+OK deleted\r\n" + MSG3,
    "reader_session_bare_lf": reader(0b111110) + SMALL +
    (GREETING + CAPA + UIDL + LIST + MSG1 + MSG2 + b"+OK\r\n" + MSG3).replace(b"\r\n", b"\n"),
    "reader_cr_only": reader(0b111110) + BYTEWISE +
    b"+OK\r\n+OK\r\nline\rwith\rCRs only\r.\r\r.\r\n" +
    b"+OK\r\n.\r\r\n..\r\n.\r\n" + b"+OK\r\n.\rX\r\n.\r\n" + b"+OK\r\n\r\r\r\n.\n",
    "reader_empty_bodies": reader(0b111110) + SMALL +
    b"+OK\r\n+OK\r\n.\r\n+OK\n.\n+ok\r\n.\r\n+OK \r\n.\r\n+OK [X] y\r\n.\r\n",
    "reader_terminator_split": reader(0b111110) + b"\x03" +
    b"+OK\r\n" + b"+OK\r\nabc\r\n.\r" + b"\n" + b"+OK\r\n.\r.\r\n.\r\n",
    "reader_unterminated": reader(0b111110) + SMALL + b"+OK\r\n+OK\r\nno terminator\r\n.",
    "reader_unterminated_dotcr": reader(0b111110) + BYTEWISE + b"+OK\r\n+OK\r\nbody\r\n.\r",
    "reader_status_line_4095": reader(0) + LARGE + b"+OK " + b"a" * 4089 + b"\r\n+OK\r\n",
    "reader_status_line_4096": reader(0) + WHOLE + b"+OK " + b"a" * 4090 + b"\r\n+OK\r\n",
    "reader_status_line_4097": reader(0) + WHOLE + b"+OK " + b"a" * 4091 + b"\r\n+OK\r\n",
    "reader_status_line_too_long": reader(0) + LARGE + b"+OK " + b"a" * 5000 + b"\r\n",
    "reader_long_body_line": reader(0b111110) + LARGE + b"+OK\r\n+OK\r\n" + b"b" * 9000 +
    b"\r\n." + b"c" * 70 + b"\r\n.\r\n+OK\r\n",
    "reader_begin_tls": reader(0b111110) + b"\x05" +
    b"+OK\r\n+OK Begin TLS\r\n+OK\r\nINJECTED\r\n.\r\n+OK\r\nreal\r\n.\r\n",
    "reader_sink_fails": reader(0b111110) + SMALL +
    b"+OK\r\n+OK\r\nsome data SINKFAIL more\r\n.\r\n+OK\r\n",
    "reader_err_codes": reader_and_parsers(0b111110) + WHOLE +
    b"+OK\r\n-ERR [IN-USE] locked\r\n-ERR [LOGIN-DELAY] 900\r\n-ERR [SYS/TEMP] x\r\n"
    b"-ERR [SYS/PERM]\r\n-ERR [AUTH] bad\r\n-ERR [auth/unknown] y\r\n-ERR [unclosed\r\n",
    # Line parsers.
    "parsers_status_lines": PARSERS + WHOLE +
    b"+OK\r\n+ok fine\r\n-err nope\r\n+OKAY\r\n-ERR\r\n-ERR[IN-USE]\r\n-ERR [in-use] x\r\n"
    b"+OK []\r\n-ERR [] empty code\r\n-ERR [SYS/TEMP\r\n+\r\n-\r\n\r\n* OK imap\r\n"
    b"+OK \x00\x01\x7f control\r\n",
    "parsers_uidl_lines": PARSERS + WHOLE +
    b"1 abc\r\n42   spaced  uid  \r\n0 zero\r\n-1 neg\r\n+1 plus\r\n4294967295 max\r\n"
    b"4294967296 over\r\n1\r\n1 \r\n 1 x\r\n01 leading-zero\r\n1\tx\r\n"
    b"99999999999999999999999 big\r\n",
    "parsers_list_lines": PARSERS + WHOLE +
    b"1 120\r\n2 200 extra info\r\n3 18446744073709551615\r\n4 18446744073709551616\r\n"
    b"5 -1\r\n6 12x\r\n7\r\n8  9\r\n0 1\r\n9 1 \r\n",
    "parsers_capa_and_apop": PARSERS + WHOLE +
    b"SASL PLAIN LOGIN\r\nlogin-delay 900\r\nEXPIRE NEVER\r\nPIPELINING\r\n\r\n   \r\n"
    b"X    \r\n+OK <1896.697170952@dbc.mtview.ca.us>\r\n+OK <no-at-sign>\r\n"
    b"+OK <a@b\r\n+OK >x@y< <@>\r\n+OK <<a@b>>\r\n",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
