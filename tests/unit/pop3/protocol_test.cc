#include "pop3/protocol.h"

#include <catch2/catch.hpp>
#include <string>

using popvault::ListEntry;
using popvault::Status;
using popvault::UidlEntry;
using namespace popvault::pop3;
using namespace std::string_literals;

TEST_CASE("ParseResponse accepts +OK and -ERR in any case", "[protocol]") {
  Response r;
  REQUIRE(ParseResponse("+OK", &r).ok());
  CHECK(r.ok);
  CHECK(r.text.empty());
  CHECK(r.code.empty());

  REQUIRE(ParseResponse("+ok POP3 ready <1.2@host>", &r).ok());
  CHECK(r.ok);
  CHECK(r.text == "POP3 ready <1.2@host>");

  REQUIRE(ParseResponse("-ERR no such message", &r).ok());
  CHECK_FALSE(r.ok);
  CHECK(r.text == "no such message");
  CHECK(r.code.empty());

  REQUIRE(ParseResponse("-eRr", &r).ok());
  CHECK_FALSE(r.ok);
}

TEST_CASE("ParseResponse extracts RFC 2449 response codes", "[protocol]") {
  Response r;
  REQUIRE(ParseResponse("-ERR [IN-USE] maildrop locked", &r).ok());
  CHECK(r.code == "IN-USE");
  CHECK(r.text == "[IN-USE] maildrop locked");

  REQUIRE(ParseResponse("-ERR [sys/temp] try later", &r).ok());
  CHECK(r.code == "SYS/TEMP");

  REQUIRE(ParseResponse("-ERR [AUTH unterminated", &r).ok());
  CHECK(r.code.empty());

  // A bracket later in the text is not a response code.
  REQUIRE(ParseResponse("-ERR oops [AUTH]", &r).ok());
  CHECK(r.code.empty());
}

TEST_CASE("ParseResponse rejects anything else as kProtocol", "[protocol]") {
  Response r;
  for (const char* line : {"", "OK", "+OKAY", "-ERROR x", "* OK imap", " +OK", "+", "+O"}) {
    INFO(line);
    CHECK(ParseResponse(line, &r).code() == Status::Code::kProtocol);
  }
}

TEST_CASE("ErrorStatus maps response codes, never free text", "[protocol]") {
  using Code = Status::Code;
  auto map = [](const std::string& line, bool login) {
    Response r;
    REQUIRE(ParseResponse(line, &r).ok());
    return ErrorStatus(r, login, "mail.example:995: PASS ****");
  };
  CHECK(map("-ERR [IN-USE] locked", false).code() == Code::kInUse);
  CHECK(map("-ERR [LOGIN-DELAY] wait", true).code() == Code::kLoginDelay);
  CHECK(map("-ERR [SYS/TEMP] busy", false).code() == Code::kSysTemp);
  CHECK(map("-ERR [SYS/PERM] gone", true).code() == Code::kSysPerm);
  CHECK(map("-ERR [AUTH] bad password", true).code() == Code::kAuthFailed);
  CHECK(map("-ERR [AUTH] bad password", false).code() == Code::kAuthFailed);
  // No code: the command decides, not words like "locked" or "temporary".
  CHECK(map("-ERR mailbox locked, temporary failure", true).code() == Code::kAuthFailed);
  CHECK(map("-ERR mailbox locked, temporary failure", false).code() == Code::kServerError);
  // Unknown codes fall back to the default.
  CHECK(map("-ERR [SYS/OTHER] x", false).code() == Code::kServerError);
  CHECK(map("-ERR [UTF8] x", true).code() == Code::kAuthFailed);

  Status s = map("-ERR [IN-USE] locked\x1b[31m", false);
  CHECK(s.message() == "mail.example:995: PASS ****: server replied \"-ERR [IN-USE] locked?[31m\"");
}

TEST_CASE("StripLineEnding removes one CRLF or LF", "[protocol]") {
  CHECK(StripLineEnding("a\r\n") == "a");
  CHECK(StripLineEnding("a\n") == "a");
  CHECK(StripLineEnding("a\r\r\n") == "a\r");
  CHECK(StripLineEnding("a\r") == "a");
  CHECK(StripLineEnding("") == "");
}

TEST_CASE("ParseUidlLine keeps the uid bytes exactly", "[protocol][uidl]") {
  UidlEntry e;
  REQUIRE(ParseUidlLine("1 whqtswO00WBw418f9t5JxYwZ", &e).ok());
  CHECK(e.msgno == 1);
  CHECK(e.uidl == "whqtswO00WBw418f9t5JxYwZ");

  const std::string long_uid(300, 'x');
  REQUIRE(ParseUidlLine("4294967295 " + long_uid, &e).ok());
  CHECK(e.msgno == 4294967295u);
  CHECK(e.uidl == long_uid);

  // The first run of spaces separates; everything after it is the uid.
  REQUIRE(ParseUidlLine("7   uid with  spaces ", &e).ok());
  CHECK(e.uidl == "uid with  spaces ");

  const std::string odd = "\x01\xff\x7f"s + '\0' + "\t<>@"s;
  REQUIRE(ParseUidlLine("2 " + odd, &e).ok());
  CHECK(e.uidl == odd);
}

TEST_CASE("ParseUidlLine rejects malformed lines", "[protocol][uidl]") {
  UidlEntry e;
  for (const std::string line : {"", "1", "1 ", "1   ", "0 abc", "x abc", "-1 abc", "+1 abc",
                                 "1abc", " 1 abc", "4294967296 abc", "1\tabc"}) {
    INFO(line);
    CHECK(ParseUidlLine(line, &e).code() == Status::Code::kProtocol);
  }
}

TEST_CASE("ParseListLine reads msgno and octets, ignores extra info", "[protocol]") {
  ListEntry e;
  REQUIRE(ParseListLine("1 120", &e).ok());
  CHECK(e.msgno == 1);
  CHECK(e.octets == 120);
  REQUIRE(ParseListLine("3  18446744073709551615 extra info", &e).ok());
  CHECK(e.msgno == 3);
  CHECK(e.octets == 18446744073709551615ull);
  for (const std::string line :
       {"", "1", "1 ", "1 x", "1 12x", "0 5", "1 -5", "1 18446744073709551616", "a 1"}) {
    INFO(line);
    CHECK(ParseListLine(line, &e).code() == Status::Code::kProtocol);
  }
}

TEST_CASE("CapabilityName upper-cases the first word", "[protocol]") {
  CHECK(CapabilityName("sasl PLAIN LOGIN") == "SASL");
  CHECK(CapabilityName("STLS") == "STLS");
  CHECK(CapabilityName("") == "");
}

TEST_CASE("APOP timestamp and digest (RFC 1939 §7 example)", "[protocol][apop]") {
  const std::string greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
  const std::string stamp = ApopTimestamp(greeting);
  CHECK(stamp == "<1896.697170952@dbc.mtview.ca.us>");
  CHECK(ApopDigest(stamp, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb");

  CHECK(ApopTimestamp("POP3 ready").empty());
  CHECK(ApopTimestamp("ready <no-at-sign>").empty());
  CHECK(ApopTimestamp("ready <unterminated@x").empty());
}
