#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "pop3/pop3_session.h"
#include "pop3/pop3_session_internal.h"
#include "pop3/protocol.h"
#include "scripted_transport.h"

using popvault::AuthMethod;
using popvault::ListEntry;
using popvault::Pop3Options;
using popvault::Pop3Session;
using popvault::Status;
using popvault::TlsMode;
using popvault::UidlEntry;
using Code = popvault::Status::Code;
using namespace popvault::pop3;
using namespace popvault::pop3::testing;

namespace {

Pop3Options TestOptions() {
  Pop3Options options;
  options.host = "pop.example";
  options.port = 995;
  options.tls = TlsMode::kImplicit;
  options.user = "alice";
  options.password = "s3cret";
  return options;
}

const char kGreeting[] = "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n";
const char kCapa[] = "+OK\r\nUSER\r\nUIDL\r\n.\r\n";

// One server reply per chunk, in order.
struct Fixture {
  std::shared_ptr<Wire> wire = std::make_shared<Wire>();
  std::unique_ptr<Pop3Session> session;

  Status Open(const Pop3Options& options, std::deque<std::string> replies) {
    wire->chunks = std::move(replies);
    if (options.tls == TlsMode::kImplicit) wire->secure = true;
    return OpenSession(options, std::make_unique<ScriptedTransport>(wire), &session);
  }

  // Opens with USER/PASS over implicit TLS and clears the record of writes.
  void OpenLoggedIn() {
    REQUIRE(Open(TestOptions(), {kGreeting, kCapa, "+OK\r\n", "+OK\r\n", kCapa}).ok());
    wire->written.clear();
  }

  void Reply(std::string bytes) { wire->chunks.push_back(std::move(bytes)); }
};

}  // namespace

TEST_CASE("session: USER/PASS over implicit TLS", "[session]") {
  Fixture f;
  REQUIRE(f.Open(TestOptions(), {kGreeting, kCapa, "+OK\r\n", "+OK logged in\r\n",
                                 "+OK\r\nUSER\r\nPIPELINING\r\nTOP\r\n.\r\n"})
              .ok());
  // kAuto never picks APOP, even when the greeting offers it.
  CHECK(f.wire->written == "CAPA\r\nUSER alice\r\nPASS s3cret\r\nCAPA\r\n");
  CHECK(f.session->capabilities() == std::set<std::string>{"USER", "PIPELINING", "TOP"});
  CHECK_FALSE(f.session->broken());
}

TEST_CASE("session: CAPA -ERR means an RFC 1939 server", "[session]") {
  Fixture f;
  REQUIRE(f.Open(TestOptions(), {kGreeting, "-ERR unknown command\r\n", "+OK\r\n", "+OK\r\n",
                                 "-ERR unknown command\r\n"})
              .ok());
  CHECK(f.session->capabilities().empty());
}

TEST_CASE("session: APOP sends the RFC 1939 digest only when asked", "[session][apop]") {
  Fixture f;
  Pop3Options options = TestOptions();
  options.auth = AuthMethod::kApop;
  options.user = "mrose";
  options.password = "tanstaaf";
  REQUIRE(f.Open(options, {kGreeting, kCapa, "+OK maildrop has 1 message\r\n", kCapa}).ok());
  CHECK(f.wire->written == "CAPA\r\nAPOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nCAPA\r\n");
}

TEST_CASE("session: APOP without a greeting timestamp is kNotSupported", "[session][apop]") {
  Fixture f;
  Pop3Options options = TestOptions();
  options.auth = AuthMethod::kApop;
  Status s = f.Open(options, {"+OK ready\r\n", kCapa});
  CHECK(s.code() == Code::kNotSupported);
  CHECK(f.wire->written == "CAPA\r\n");
  CHECK(f.wire->closed);
}

TEST_CASE("session: no credentials in the clear unless allowed", "[session][security]") {
  Pop3Options options = TestOptions();
  options.tls = TlsMode::kNone;
  options.port = 110;
  for (AuthMethod auth : {AuthMethod::kAuto, AuthMethod::kUser, AuthMethod::kApop}) {
    Fixture f;
    options.auth = auth;
    Status s = f.Open(options, {kGreeting, kCapa, "+OK\r\n", "+OK\r\n", kCapa});
    CHECK(s.code() == Code::kSecurity);
    CHECK(s.message().find("pop.example:110") != std::string::npos);
    CHECK(f.wire->written == "CAPA\r\n");
    CHECK(f.session == nullptr);
    CHECK(f.wire->closed);
  }

  Fixture f;
  options.auth = AuthMethod::kAuto;
  options.allow_plaintext_auth = true;
  REQUIRE(f.Open(options, {kGreeting, kCapa, "+OK\r\n", "+OK\r\n", kCapa}).ok());
  CHECK(f.wire->written == "CAPA\r\nUSER alice\r\nPASS s3cret\r\nCAPA\r\n");
}

TEST_CASE("session: STLS upgrade re-issues CAPA and drops pre-TLS bytes", "[session][tls]") {
  Fixture f;
  Pop3Options options = TestOptions();
  options.tls = TlsMode::kStartTls;
  options.port = 110;
  // The STLS reply arrives with a fake CAPA reply appended, as a man in the
  // middle could inject; it must not be read as the post-TLS CAPA reply.
  REQUIRE(f.Open(options, {kGreeting, "+OK\r\nSTLS\r\nUSER\r\n.\r\n",
                           "+OK begin TLS\r\n+OK\r\nINJECTED\r\n.\r\n", "+OK\r\nUSER\r\n.\r\n",
                           "+OK\r\n", "+OK\r\n", "+OK\r\nUSER\r\nUIDL\r\n.\r\n"})
              .ok());
  CHECK(f.wire->tls_starts == 1);
  CHECK(f.wire->written == "CAPA\r\nSTLS\r\n<TLS>CAPA\r\nUSER alice\r\nPASS s3cret\r\nCAPA\r\n");
  CHECK(f.session->capabilities() == std::set<std::string>{"USER", "UIDL"});
}

TEST_CASE("session: starttls without STLS in CAPA is a hard error", "[session][tls]") {
  Pop3Options options = TestOptions();
  options.tls = TlsMode::kStartTls;
  options.allow_plaintext_auth = true;  // even then: no silent downgrade
  for (std::string capa : {std::string(kCapa), std::string("-ERR what?\r\n")}) {
    Fixture f;
    Status s = f.Open(options, {kGreeting, capa, "+OK\r\n", "+OK\r\n"});
    CHECK(s.code() == Code::kNotSupported);
    CHECK(f.wire->written == "CAPA\r\n");
    CHECK(f.wire->tls_starts == 0);
  }
}

TEST_CASE("session: STLS failures are kTls and send no credentials", "[session][tls]") {
  Pop3Options options = TestOptions();
  options.tls = TlsMode::kStartTls;
  {
    Fixture f;
    Status s = f.Open(options, {kGreeting, "+OK\r\nSTLS\r\n.\r\n", "-ERR not now\r\n"});
    CHECK(s.code() == Code::kTls);
    CHECK(f.wire->written == "CAPA\r\nSTLS\r\n");
  }
  {
    Fixture f;
    f.wire->tls_result = Status::Tls("certificate verify failed");
    Status s = f.Open(options, {kGreeting, "+OK\r\nSTLS\r\n.\r\n", "+OK go\r\n"});
    CHECK(s.code() == Code::kTls);
    CHECK(s.message().find("pop.example:995: STLS") != std::string::npos);
    CHECK(f.wire->written == "CAPA\r\nSTLS\r\n");
  }
}

TEST_CASE("session: login errors map response codes and the password never shows",
          "[session][codes]") {
  struct Case {
    std::string reply;
    Code code;
  };
  for (const Case& c : {Case{"-ERR [IN-USE] locked\r\n", Code::kInUse},
                        Case{"-ERR [LOGIN-DELAY] 900\r\n", Code::kLoginDelay},
                        Case{"-ERR [SYS/TEMP] busy\r\n", Code::kSysTemp},
                        Case{"-ERR [SYS/PERM] closed\r\n", Code::kSysPerm},
                        Case{"-ERR [AUTH] bad\r\n", Code::kAuthFailed},
                        Case{"-ERR s3cret is wrong\r\n", Code::kAuthFailed}}) {
    INFO(c.reply);
    Fixture f;
    Status s = f.Open(TestOptions(), {kGreeting, kCapa, "+OK\r\n", c.reply});
    CHECK(s.code() == c.code);
    CHECK(s.message().rfind("pop.example:995: PASS ****: ", 0) == 0);
    CHECK(f.wire->written == "CAPA\r\nUSER alice\r\nPASS s3cret\r\n");
    CHECK(f.wire->written.find("QUIT") == std::string::npos);
    CHECK(f.wire->closed);
  }
}

TEST_CASE("session: a -ERR greeting fails Open", "[session][codes]") {
  Fixture f;
  Status s = f.Open(TestOptions(), {"-ERR [SYS/TEMP] overloaded\r\n"});
  CHECK(s.code() == Code::kSysTemp);
  CHECK(f.wire->written.empty());
}

TEST_CASE("session: line breaks in credentials are refused before sending", "[session]") {
  Fixture f;
  Pop3Options options = TestOptions();
  options.user = "alice\r\nDELE 1";
  Status s = f.Open(options, {kGreeting, kCapa, "+OK\r\n"});
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(f.wire->written == "CAPA\r\n");
}

TEST_CASE("session: UIDL and LIST are returned as sent, duplicates included", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  const std::string long_uid(200, 'u');
  f.Reply("+OK\r\n1 a\r\n2  spaced uid \r\n3 " + long_uid + "\r\n4 a\r\n5 ..x\r\n.\r\n");
  std::vector<UidlEntry> uidls;
  REQUIRE(f.session->Uidl(&uidls).ok());
  REQUIRE(uidls.size() == 5);
  CHECK(uidls[0].uidl == "a");
  CHECK(uidls[1].uidl == "spaced uid ");
  CHECK(uidls[2].uidl == long_uid);
  CHECK(uidls[3].msgno == 4);
  CHECK(uidls[3].uidl == "a");
  CHECK(uidls[4].uidl == "..x");

  f.Reply("+OK 2 messages\r\n1 120\r\n2 3000\r\n.\r\n");
  std::vector<ListEntry> list;
  REQUIRE(f.session->List(&list).ok());
  REQUIRE(list.size() == 2);
  CHECK(list[1].msgno == 2);
  CHECK(list[1].octets == 3000);
  CHECK(f.wire->written == "UIDL\r\nLIST\r\n");
}

TEST_CASE("session: an over-long UIDL line is kProtocol", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\n1 " + std::string(kMaxLineOctets, 'u') + "\r\n.\r\n");
  std::vector<UidlEntry> uidls{UidlEntry{9, "keep"}};
  CHECK(f.session->Uidl(&uidls).code() == Code::kProtocol);
  CHECK(uidls.size() == 1);  // untouched on error
  CHECK(f.session->broken());
}

TEST_CASE("session: RETR streams the unstuffed message", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK 20 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n");
  f.Reply("+OK\r\n");
  StringSink sink;
  REQUIRE(f.session->Retr(7, sink).ok());
  CHECK(sink.data() == "Subject: x\r\n\r\n.dot\r\n");
  REQUIRE(f.session->Dele(7).ok());
  CHECK(f.wire->written == "RETR 7\r\nDELE 7\r\n");
}

TEST_CASE("session: EOF in the middle of a reply is kNetwork, not a hang", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\nSubject: x\r\n\r\npartial");
  StringSink sink;
  Status s = f.session->Retr(1, sink);
  CHECK(s.code() == Code::kNetwork);
  CHECK(s.message().rfind("pop.example:995: RETR 1: ", 0) == 0);
  CHECK(f.session->broken());
}

TEST_CASE("session: after an error only Abort works, and QUIT is never sent", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\n");                   // DELE 1
  f.Reply("-ERR no such message\r\n");  // RETR 2
  f.Reply("+OK\r\n");                   // would answer anything further
  REQUIRE(f.session->Dele(1).ok());
  StringSink sink;
  Status s = f.session->Retr(2, sink);
  CHECK(s.code() == Code::kServerError);
  CHECK(f.session->broken());

  CHECK(f.session->Quit().code() == Code::kAborted);
  CHECK(f.session->Rset().code() == Code::kAborted);
  CHECK(f.session->Dele(3).code() == Code::kAborted);
  std::vector<UidlEntry> uidls;
  CHECK(f.session->Uidl(&uidls).code() == Code::kAborted);
  CHECK(f.wire->written == "DELE 1\r\nRETR 2\r\n");
  CHECK_FALSE(f.wire->closed);
  f.session->Abort();
  CHECK(f.wire->closed);
  CHECK(f.wire->written == "DELE 1\r\nRETR 2\r\n");
}

TEST_CASE("session: destruction drops the connection without QUIT or RSET", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\n");
  REQUIRE(f.session->Dele(1).ok());
  f.session.reset();
  CHECK(f.wire->closed);
  CHECK(f.wire->written == "DELE 1\r\n");
}

TEST_CASE("session: a sink error breaks the session", "[session]") {
  class FullSink : public popvault::ByteSink {
   public:
    Status Append(const char*, size_t) override { return Status::IOError("disk full"); }
  };
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\nbody\r\n.\r\n");
  FullSink sink;
  Status s = f.session->Retr(1, sink);
  CHECK(s.code() == Code::kIOError);
  CHECK(f.session->broken());
}

TEST_CASE("session: RSET and QUIT are sent only when called", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("+OK\r\n");
  f.Reply("+OK\r\n");
  f.Reply("+OK bye\r\n");
  REQUIRE(f.session->Dele(1).ok());
  REQUIRE(f.session->Rset().ok());
  REQUIRE(f.session->Quit().ok());
  CHECK(f.wire->written == "DELE 1\r\nRSET\r\nQUIT\r\n");
  CHECK(f.wire->closed);
  CHECK_FALSE(f.session->broken());
  CHECK(f.session->Dele(2).code() == Code::kAborted);
}

TEST_CASE("session: QUIT answered with -ERR is an error", "[session][codes]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("-ERR [SYS/TEMP] could not delete\r\n");
  CHECK(f.session->Quit().code() == Code::kSysTemp);
  CHECK(f.session->broken());
  CHECK(f.wire->closed);
}

namespace {

const char kCapaPipelining[] = "+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n";

// Records, at every Read, how many bytes the client had written by then: a
// pipelining client writes several commands before it reads a reply.
class TracingTransport : public ScriptedTransport {
 public:
  TracingTransport(std::shared_ptr<Wire> wire, std::vector<size_t>* written_at_read)
      : ScriptedTransport(wire), wire_(std::move(wire)), written_at_read_(written_at_read) {}
  Status Read(char* buf, size_t cap, size_t* n, ReadWait wait) override {
    written_at_read_->push_back(wire_->written.size());
    return ScriptedTransport::Read(buf, cap, n, wait);
  }
  // Writes fail from the `fail_write_at`-th on (1-based; 0: never), as on a
  // connection the peer has reset.
  Status Write(const char* data, size_t n) override {
    if (fail_write_at != 0 && ++writes_ >= fail_write_at) {
      return Status::Network("connection reset by peer");
    }
    return ScriptedTransport::Write(data, n);
  }
  size_t fail_write_at = 0;

 private:
  std::shared_ptr<Wire> wire_;
  std::vector<size_t>* written_at_read_;
  size_t writes_ = 0;
};

struct PipelineFixture {
  std::shared_ptr<Wire> wire = std::make_shared<Wire>();
  std::vector<size_t> written_at_read;
  TracingTransport* tracing = nullptr;  // owned by the session
  std::unique_ptr<Pop3Session> session;
  std::vector<StringSink> sinks{Pop3Session::kMaxInFlight + 8};

  explicit PipelineFixture(bool pipelining = true, const char* capa = kCapaPipelining) {
    Pop3Options options = TestOptions();
    options.pipelining = pipelining;
    options.prefetch_listing = false;  // tested on its own below
    options.max_message_size = 64;
    wire->secure = true;
    wire->chunks = {kGreeting, capa, "+OK\r\n", "+OK\r\n", capa};
    auto transport = std::make_unique<TracingTransport>(wire, &written_at_read);
    tracing = transport.get();
    REQUIRE(OpenSession(options, std::move(transport), &session).ok());
    wire->written.clear();
    written_at_read.clear();
  }

  Status RetrEach(const std::vector<popvault::ListEntry>& messages, size_t stop_after = SIZE_MAX) {
    return session->RetrEach(
        messages, [&](size_t i) -> popvault::ByteSink& { return sinks.at(i); },
        [&](size_t i) { return i + 1 == stop_after ? Status::Aborted("stop") : Status::OK(); });
  }
};

std::string RetrReply(int i) { return "+OK\r\nmessage " + std::to_string(i) + "\r\n.\r\n"; }

}  // namespace

TEST_CASE("session: with PIPELINING, RETRs go out in one write before any reply is read",
          "[session][pipelining]") {
  PipelineFixture f;
  for (int i = 1; i <= 3; ++i) f.wire->chunks.push_back(RetrReply(i));
  REQUIRE(f.RetrEach({{1, 10}, {2, 10}, {3, 10}}).ok());
  CHECK(f.wire->written == "RETR 1\r\nRETR 2\r\nRETR 3\r\n");
  REQUIRE_FALSE(f.written_at_read.empty());
  CHECK(f.written_at_read.front() == f.wire->written.size());  // all sent before the first read
  CHECK(f.session->max_in_flight() == 3);
  CHECK(f.sinks[2].data() == "message 3\r\n");
}

TEST_CASE("session: without PIPELINING (or with it switched off) RETR is lock-step",
          "[session][pipelining]") {
  for (bool announced : {false, true}) {
    PipelineFixture f(/*pipelining=*/announced ? false : true, announced ? kCapaPipelining : kCapa);
    for (int i = 1; i <= 3; ++i) f.wire->chunks.push_back(RetrReply(i));
    REQUIRE(f.RetrEach({{1, 10}, {2, 10}, {3, 10}}).ok());
    CHECK(f.written_at_read.front() == std::string("RETR 1\r\n").size());
    CHECK(f.session->max_in_flight() == 1);
    CHECK(f.sinks[1].data() == "message 2\r\n");
  }
}

TEST_CASE("session: with PIPELINING, LIST and UIDL go out in one write, else lock-step",
          "[session][pipelining]") {
  for (bool pipelining : {true, false}) {
    PipelineFixture f(pipelining);
    f.wire->chunks.push_back("+OK 2 messages\r\n1 120\r\n2 7\r\n.\r\n");
    f.wire->chunks.push_back("+OK\r\n1 a\r\n2 b\r\n.\r\n");
    std::vector<popvault::ListEntry> sizes;
    std::vector<UidlEntry> uidls;
    REQUIRE(f.session->Listing(&sizes, &uidls).ok());
    CHECK(f.wire->written == "LIST\r\nUIDL\r\n");
    CHECK(f.written_at_read.front() == (pipelining ? f.wire->written.size() : 6u));
    REQUIRE(sizes.size() == 2);
    CHECK(sizes[1].octets == 7);
    REQUIRE(uidls.size() == 2);
    CHECK(uidls[1].uidl == "b");
  }
}

TEST_CASE(
    "session: a server without UIDL answers the pipelined UIDL with -ERR: sizes, and "
    "the session goes on",
    "[session][pipelining]") {
  PipelineFixture f;
  f.wire->chunks.push_back("+OK 1 messages\r\n1 120\r\n.\r\n");
  f.wire->chunks.push_back("-ERR command not implemented\r\n");
  f.wire->chunks.push_back("+OK bye\r\n");
  std::vector<popvault::ListEntry> sizes;
  std::vector<UidlEntry> uidls;
  CHECK(f.session->Listing(&sizes, &uidls).code() == Code::kNotSupported);
  CHECK(sizes.size() == 1);
  CHECK_FALSE(f.session->broken());
  CHECK(f.session->Quit().ok());
}

namespace {

// A session opened with USER/PASS, PIPELINING announced before login, and
// the LIST and UIDL replies Open prefetches.
struct PrefetchFixture {
  std::shared_ptr<Wire> wire = std::make_shared<Wire>();
  std::vector<size_t> written_at_read;
  std::unique_ptr<Pop3Session> session;

  Status Open(const char* pass_reply, const char* list_reply, const char* uidl_reply,
              bool prefetch = true) {
    Pop3Options options = TestOptions();
    options.prefetch_listing = prefetch;
    wire->secure = true;
    wire->chunks = {kGreeting, kCapaPipelining, "+OK\r\n", pass_reply, kCapaPipelining};
    if (list_reply != nullptr) wire->chunks.push_back(list_reply);
    if (uidl_reply != nullptr) wire->chunks.push_back(uidl_reply);
    return OpenSession(options, std::make_unique<TracingTransport>(wire, &written_at_read),
                       &session);
  }
};

const char kLogin[] = "CAPA\r\nUSER alice\r\nPASS s3cret\r\n";
const char kTwoSizes[] = "+OK 2 messages\r\n1 120\r\n2 7\r\n.\r\n";
const char kTwoUidls[] = "+OK\r\n1 a\r\n2 b\r\n.\r\n";

}  // namespace

TEST_CASE(
    "session: with PIPELINING before login, CAPA, LIST and UIDL go out with PASS, and the first "
    "Listing() needs no round trip",
    "[session][pipelining]") {
  PrefetchFixture f;
  REQUIRE(f.Open("+OK\r\n", kTwoSizes, kTwoUidls).ok());
  CHECK(f.wire->written == std::string(kLogin) + "CAPA\r\nLIST\r\nUIDL\r\n");
  // No reply was awaited with PASS written but not what follows it.
  CHECK(std::find(f.written_at_read.begin(), f.written_at_read.end(), std::string(kLogin).size()) ==
        f.written_at_read.end());
  CHECK(f.session->capabilities().count("PIPELINING") == 1);

  f.wire->written.clear();
  std::vector<ListEntry> sizes;
  std::vector<UidlEntry> uidls;
  REQUIRE(f.session->Listing(&sizes, &uidls).ok());
  CHECK(f.wire->written.empty());
  REQUIRE(sizes.size() == 2);
  CHECK(sizes[0].octets == 120);
  REQUIRE(uidls.size() == 2);
  CHECK(uidls[1].uidl == "b");

  // Later listings ask again.
  f.wire->chunks = {"+OK\r\n1 120\r\n.\r\n", "+OK\r\n1 a\r\n.\r\n"};
  REQUIRE(f.session->Listing(&sizes, &uidls).ok());
  CHECK(f.wire->written == "LIST\r\nUIDL\r\n");
  CHECK(uidls.size() == 1);
}

TEST_CASE("session: without prefetch_listing only CAPA goes out with PASS",
          "[session][pipelining]") {
  PrefetchFixture f;
  REQUIRE(f.Open("+OK\r\n", nullptr, nullptr, /*prefetch=*/false).ok());
  CHECK(f.wire->written == std::string(kLogin) + "CAPA\r\n");
  f.wire->chunks = {kTwoSizes, kTwoUidls};
  std::vector<ListEntry> sizes;
  std::vector<UidlEntry> uidls;
  REQUIRE(f.session->Listing(&sizes, &uidls).ok());
  CHECK(uidls.size() == 2);
}

TEST_CASE("session: a failed login with commands behind it fails Open", "[session][pipelining]") {
  PrefetchFixture f;
  Status s = f.Open("-ERR [AUTH] invalid password\r\n", "-ERR not logged in\r\n",
                    "-ERR not logged in\r\n");
  CHECK(s.code() == Code::kAuthFailed);
  CHECK(f.session == nullptr);
  CHECK(f.wire->closed);
}

TEST_CASE("session: a -ERR to the prefetched LIST is Listing()'s error and breaks the session",
          "[session][pipelining]") {
  PrefetchFixture f;
  REQUIRE(f.Open("+OK\r\n", "-ERR [SYS/TEMP] maildrop busy\r\n", kTwoUidls).ok());
  std::vector<ListEntry> sizes{{9, 9}};
  std::vector<UidlEntry> uidls;
  Status s = f.session->Listing(&sizes, &uidls);
  CHECK(s.code() == Code::kSysTemp);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("LIST"));
  CHECK(sizes.size() == 1);  // untouched
  CHECK(f.session->broken());
}

TEST_CASE("session: a bare -ERR to the prefetched UIDL leaves sizes and a usable session",
          "[session][pipelining]") {
  PrefetchFixture f;
  REQUIRE(f.Open("+OK\r\n", kTwoSizes, "-ERR command not implemented\r\n").ok());
  std::vector<ListEntry> sizes;
  std::vector<UidlEntry> uidls;
  CHECK(f.session->Listing(&sizes, &uidls).code() == Code::kNotSupported);
  CHECK(sizes.size() == 2);
  CHECK_FALSE(f.session->broken());
  f.wire->chunks = {"+OK bye\r\n"};
  CHECK(f.session->Quit().ok());
}

TEST_CASE("session: the window is bounded in commands and in LIST octets",
          "[session][pipelining]") {
  PipelineFixture f;
  std::vector<popvault::ListEntry> many;
  for (uint32_t i = 1; i <= Pop3Session::kMaxInFlight + 8; ++i) {
    many.push_back({i, 10});
    f.wire->chunks.push_back(RetrReply(static_cast<int>(i)));
  }
  REQUIRE(f.RetrEach(many).ok());
  CHECK(f.session->max_in_flight() == Pop3Session::kMaxInFlight);

  PipelineFixture big;
  for (int i = 1; i <= 3; ++i) big.wire->chunks.push_back(RetrReply(i));
  const uint64_t half = Pop3Session::kMaxInFlightOctets / 2 + 1;
  REQUIRE(big.RetrEach({{1, half}, {2, half}, {3, half}}).ok());
  CHECK(big.session->max_in_flight() == 1);
}

TEST_CASE("session: stopping early reads the replies already asked for and stays usable",
          "[session][pipelining]") {
  PipelineFixture f;
  for (int i = 1; i <= 3; ++i) f.wire->chunks.push_back(RetrReply(i));
  f.wire->chunks.push_back("+OK bye\r\n");
  Status s = f.RetrEach({{1, 10}, {2, 10}, {3, 10}}, /*stop_after=*/1);
  CHECK(s.code() == Code::kAborted);
  CHECK_FALSE(f.session->broken());
  CHECK(f.sinks[1].data().empty());  // read, but not delivered
  REQUIRE(f.session->Quit().ok());
  CHECK(f.wire->written == "RETR 1\r\nRETR 2\r\nRETR 3\r\nQUIT\r\n");
}

TEST_CASE("session: a disconnect mid-pipeline breaks the session", "[session][pipelining]") {
  PipelineFixture f;
  f.wire->chunks.push_back(RetrReply(1));
  f.wire->chunks.push_back("+OK\r\nhalf of mess");
  Status s = f.RetrEach({{1, 10}, {2, 10}, {3, 10}});
  CHECK(s.code() == Code::kNetwork);
  CHECK(f.session->broken());
  CHECK(f.session->Quit().code() == Code::kAborted);
}

TEST_CASE("session: a body over max_message_size is kTooLarge and breaks the session",
          "[session]") {
  PipelineFixture f;  // max_message_size 64
  f.wire->chunks.push_back("+OK\r\n" + std::string(100, 'x') + "\r\n.\r\n");
  Status s = f.RetrEach({{1, 10}});
  CHECK(s.code() == Code::kTooLarge);
  CHECK(s.message().find("RETR 1") != std::string::npos);
  CHECK(f.sinks[0].data().size() <= 64);
  CHECK(f.session->broken());
}

TEST_CASE("session: DELEs are pipelined and any -ERR breaks the session", "[session][pipelining]") {
  PipelineFixture f;
  f.wire->chunks = {"+OK\r\n", "+OK\r\n", "+OK\r\n"};
  REQUIRE(f.session->DeleEach({1, 2, 3}).ok());
  CHECK(f.written_at_read.front() == std::string("DELE 1\r\nDELE 2\r\nDELE 3\r\n").size());

  PipelineFixture g;
  g.wire->chunks = {"+OK\r\n", "-ERR [SYS/TEMP] busy\r\n", "+OK\r\n"};
  Status s = g.session->DeleEach({1, 2, 3});
  CHECK(s.code() == Code::kSysTemp);
  CHECK(s.message().find("DELE 2") != std::string::npos);
  CHECK(g.session->broken());
  CHECK(g.session->Quit().code() == Code::kAborted);
}

TEST_CASE("session: a server without UIDL is kNotSupported and the session goes on", "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("-ERR command not implemented\r\n");
  f.Reply("+OK 1 messages\r\n1 120\r\n.\r\n");
  std::vector<UidlEntry> uidls;
  CHECK(f.session->Uidl(&uidls).code() == Code::kNotSupported);
  CHECK_FALSE(f.session->broken());
  std::vector<popvault::ListEntry> list;
  REQUIRE(f.session->List(&list).ok());
  CHECK(list.size() == 1);
}

TEST_CASE("session: a write error mid-pipeline still delivers the replies already asked for",
          "[session][pipelining]") {
  PipelineFixture f;
  const size_t window = Pop3Session::kMaxInFlight;
  std::vector<popvault::ListEntry> many;
  for (uint32_t i = 1; i <= window + 8; ++i) many.push_back({i, 10});
  for (size_t i = 1; i <= window; ++i) f.wire->chunks.push_back(RetrReply(static_cast<int>(i)));
  f.tracing->fail_write_at = 2;  // the first batch (a full window) goes out, the refill fails
  size_t delivered = 0;
  Status s = f.session->RetrEach(
      many, [&](size_t i) -> popvault::ByteSink& { return f.sinks.at(i); },
      [&](size_t) {
        ++delivered;
        return Status::OK();
      });
  CHECK(s.code() == Code::kNetwork);
  CHECK(delivered == window);
  CHECK(f.sinks[window - 1].data() == "message " + std::to_string(window) + "\r\n");
  CHECK(f.session->broken());
}

TEST_CASE("session: UIDL refused with a response code is that error, not a server without UIDL",
          "[session]") {
  Fixture f;
  f.OpenLoggedIn();
  f.Reply("-ERR [SYS/TEMP] index busy\r\n");
  std::vector<UidlEntry> uidls;
  CHECK(f.session->Uidl(&uidls).code() == Code::kSysTemp);
  CHECK(f.session->broken());
}
