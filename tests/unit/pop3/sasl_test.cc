// pop3/sasl: method choice, secret commands, and the RFC 5034 AUTH dialogue,
// against scripted replies and against a GNU SASL *server* session in-process
// (so SCRAM and CRAM-MD5 are checked by an independent implementation of the
// server side, not by our own expectations).
#include "pop3/sasl.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <gsasl.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "pop3/protocol.h"

using popvault::AuthMethod;
using popvault::Pop3Options;
using popvault::Status;
using Code = popvault::Status::Code;
using namespace popvault::pop3;
using namespace std::string_literals;

namespace {

std::string B64(const std::string& data) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << data;
  encoder.close();
  return out.str();
}

std::string Unb64(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in);
  return std::string(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
}

// Replays server lines; records what the client sent and how it was shown.
class ScriptedChannel : public AuthChannel {
 public:
  explicit ScriptedChannel(std::deque<std::string> replies) : replies_(std::move(replies)) {}

  Status Send(const std::string& line, const std::string& shown) override {
    sent.push_back(line);
    shown_lines.push_back(shown);
    return Status::OK();
  }
  Status SendLast(const std::string& line, const std::string& shown) override {
    last_at.push_back(sent.size());
    return Send(line, shown);
  }
  Status ReadLine(std::string* line) override {
    if (replies_.empty()) return Status::Network("connection closed (script ended)");
    *line = replies_.front();
    replies_.pop_front();
    return Status::OK();
  }

  std::vector<std::string> sent;
  std::vector<std::string> shown_lines;
  std::vector<size_t> last_at;  // indexes in `sent` of the lines sent with SendLast

 private:
  std::deque<std::string> replies_;
};

// A POP3 server's AUTH side on a GNU SASL server session (RFC 5034): "+ b64"
// challenges, additional data with success sent as a last challenge, "*"
// cancels, -ERR [AUTH] on failure.
class GsaslServerChannel : public AuthChannel {
 public:
  GsaslServerChannel(std::string user, std::string password)
      : user_(std::move(user)), password_(std::move(password)) {
    REQUIRE(gsasl_init(&ctx_) == GSASL_OK);
    gsasl_callback_hook_set(ctx_, this);
    gsasl_callback_set(ctx_, &GsaslServerChannel::Callback);
  }
  ~GsaslServerChannel() override {
    if (session_ != nullptr) gsasl_finish(session_);
    gsasl_done(ctx_);
  }

  // Alters the last challenge (SCRAM's server-final "v=..."), as a server
  // that does not know the password would.
  bool tamper_final = false;
  std::vector<std::string> sent;
  std::vector<std::string> shown_lines;
  std::string mechanism;
  bool authenticated = false;
  std::vector<size_t> last_at;  // indexes in `sent` of the lines sent with SendLast

  Status SendLast(const std::string& line, const std::string& shown) override {
    last_at.push_back(sent.size());
    return Send(line, shown);
  }

  Status Send(const std::string& line, const std::string& shown) override {
    sent.push_back(line);
    shown_lines.push_back(shown);
    if (state_ == State::kIdle) {
      REQUIRE(line.rfind("AUTH ", 0) == 0);
      std::string rest = line.substr(5);
      const size_t space = rest.find(' ');
      mechanism = rest.substr(0, space);
      REQUIRE(gsasl_server_start(ctx_, mechanism.c_str(), &session_) == GSASL_OK);
      gsasl_property_set(session_, GSASL_SERVICE, "pop");
      gsasl_property_set(session_, GSASL_HOSTNAME, "pop.example");
      state_ = State::kRunning;
      if (space == std::string::npos) {
        Step("");
      } else {
        const std::string ir = rest.substr(space + 1);
        Step(ir == "=" ? "" : Unb64(ir));
      }
      return Status::OK();
    }
    if (line == "*") {
      replies_.push_back("-ERR authentication cancelled");
      state_ = State::kDone;
      return Status::OK();
    }
    if (state_ == State::kAwaitEmpty) {
      if (line.empty()) {
        authenticated = true;
        replies_.push_back("+OK logged in");
      } else {
        replies_.push_back("-ERR [AUTH] expected an empty response");
      }
      state_ = State::kDone;
      return Status::OK();
    }
    REQUIRE(state_ == State::kRunning);
    Step(Unb64(line));
    return Status::OK();
  }

  Status ReadLine(std::string* line) override {
    if (replies_.empty()) return Status::Network("connection closed");
    *line = replies_.front();
    replies_.pop_front();
    return Status::OK();
  }

 private:
  enum class State { kIdle, kRunning, kAwaitEmpty, kDone };

  void Step(const std::string& input) {
    char* out = nullptr;
    size_t out_len = 0;
    const int rc = gsasl_step(session_, input.data(), input.size(), &out, &out_len);
    std::string output = out == nullptr ? "" : std::string(out, out_len);
    gsasl_free(out);
    if (rc == GSASL_NEEDS_MORE) {
      replies_.push_back(output.empty() ? "+ " : "+ " + B64(output));
    } else if (rc == GSASL_OK && output.empty()) {
      authenticated = true;
      replies_.push_back("+OK logged in");
      state_ = State::kDone;
    } else if (rc == GSASL_OK) {
      // RFC 5034 has no data with +OK: SCRAM's server-final is a challenge.
      if (tamper_final) output.back() = output.back() == 'A' ? 'B' : 'A';
      replies_.push_back("+ " + B64(output));
      state_ = State::kAwaitEmpty;
    } else {
      replies_.push_back("-ERR [AUTH] authentication failed");
      state_ = State::kDone;
    }
  }

  static int Callback(Gsasl* ctx, Gsasl_session* session, Gsasl_property prop) {
    auto* self = static_cast<GsaslServerChannel*>(gsasl_callback_hook_get(ctx));
    if (prop == GSASL_PASSWORD) {
      const char* authid = gsasl_property_fast(session, GSASL_AUTHID);
      if (authid == nullptr || self->user_ != authid) return GSASL_AUTHENTICATION_ERROR;
      gsasl_property_set(session, GSASL_PASSWORD, self->password_.c_str());
      return GSASL_OK;
    }
    return GSASL_NO_CALLBACK;
  }

  std::string user_;
  std::string password_;
  Gsasl* ctx_ = nullptr;
  Gsasl_session* session_ = nullptr;
  State state_ = State::kIdle;
  std::deque<std::string> replies_;
};

const std::string kWhere = "pop.example:995";
const std::string kPassword = "pässwörd-S3cret!";  // non-ASCII: SASLprep in SCRAM

// The secret must appear in no message, neither as such nor in base64.
void CheckNoSecret(const Status& status, const std::string& secret) {
  INFO(status.ToString());
  CHECK(status.message().find(secret) == std::string::npos);
  CHECK(status.message().find(B64(secret)) == std::string::npos);
}

void CheckNoSecretShown(const std::vector<std::string>& shown, const std::string& secret) {
  for (const std::string& s : shown) {
    INFO(s);
    CHECK(s.find(secret) == std::string::npos);
    CHECK(s.find(B64(secret).substr(0, 8)) == std::string::npos);
  }
}

}  // namespace

TEST_CASE("sasl: AuthMethodName gives the wire names", "[sasl]") {
  CHECK(AuthMethodName(AuthMethod::kAuto) == "auto");
  CHECK(AuthMethodName(AuthMethod::kUser) == "USER");
  CHECK(AuthMethodName(AuthMethod::kApop) == "APOP");
  CHECK(AuthMethodName(AuthMethod::kPlain) == "PLAIN");
  CHECK(AuthMethodName(AuthMethod::kLogin) == "LOGIN");
  CHECK(AuthMethodName(AuthMethod::kCramMd5) == "CRAM-MD5");
  CHECK(AuthMethodName(AuthMethod::kScramSha1) == "SCRAM-SHA-1");
  CHECK(AuthMethodName(AuthMethod::kScramSha256) == "SCRAM-SHA-256");
  CHECK(AuthMethodName(AuthMethod::kXoauth2) == "XOAUTH2");
  CHECK(AuthMethodName(AuthMethod::kOauthBearer) == "OAUTHBEARER");
}

TEST_CASE("sasl: AuthCommandLine keeps the AUTH line within 255 octets", "[sasl]") {
  CHECK(AuthCommandLine("PLAIN", "") == "AUTH PLAIN =");
  CHECK(AuthCommandLine("PLAIN", "\0u\0p"s) == "AUTH PLAIN " + B64("\0u\0p"s));
  // "AUTH XOAUTH2 " is 13 octets, CRLF 2: 240 octets of base64 (180 raw) fit
  // exactly, one more quantum does not.
  const std::string fits(180, 'x');
  CHECK(AuthCommandLine("XOAUTH2", fits).size() + 2 == 255);
  CHECK(AuthCommandLine("XOAUTH2", fits) == "AUTH XOAUTH2 " + B64(fits));
  CHECK(AuthCommandLine("XOAUTH2", fits + "x") == "AUTH XOAUTH2");
  // One octet over: 256 with the CRLF.
  CHECK(AuthCommandLine("XOAUTH2X", fits) == "AUTH XOAUTH2X");
}

TEST_CASE("sasl: ChooseAuthMethod", "[sasl]") {
  Pop3Options password;
  password.password = "pw";
  Pop3Options token = password;
  token.oauth2 = true;
  const std::set<std::string> all = {"PLAIN",         "LOGIN",   "CRAM-MD5",   "SCRAM-SHA-1",
                                     "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER"};
  AuthMethod m = AuthMethod::kAuto;

  SECTION("auto picks the strongest password method offered") {
    REQUIRE(ChooseAuthMethod(password, all, true, true, &m).ok());
    CHECK(m == AuthMethod::kScramSha256);
    REQUIRE(ChooseAuthMethod(password, {"PLAIN", "SCRAM-SHA-1", "LOGIN"}, true, false, &m).ok());
    CHECK(m == AuthMethod::kScramSha1);
    REQUIRE(ChooseAuthMethod(password, {"PLAIN", "CRAM-MD5", "LOGIN"}, true, false, &m).ok());
    CHECK(m == AuthMethod::kCramMd5);
    REQUIRE(ChooseAuthMethod(password, {"LOGIN", "PLAIN"}, true, false, &m).ok());
    CHECK(m == AuthMethod::kPlain);
    REQUIRE(ChooseAuthMethod(password, {"LOGIN", "XOAUTH2", "GSSAPI"}, true, false, &m).ok());
    CHECK(m == AuthMethod::kLogin);
  }
  SECTION("auto falls back to USER without SASL, never to APOP") {
    REQUIRE(ChooseAuthMethod(password, {}, true, true, &m).ok());
    CHECK(m == AuthMethod::kUser);
    REQUIRE(ChooseAuthMethod(password, {"XOAUTH2", "GSSAPI"}, true, true, &m).ok());
    CHECK(m == AuthMethod::kUser);
    m = AuthMethod::kAuto;
    Status s = ChooseAuthMethod(password, {}, false, true, &m);
    CHECK(s.code() == Code::kNotSupported);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("APOP"));  // names what is offered
    CHECK(m == AuthMethod::kAuto);
  }
  SECTION("auto with a token: OAUTHBEARER, then XOAUTH2, never a password method") {
    REQUIRE(ChooseAuthMethod(token, all, true, false, &m).ok());
    CHECK(m == AuthMethod::kOauthBearer);
    REQUIRE(ChooseAuthMethod(token, {"PLAIN", "XOAUTH2"}, true, false, &m).ok());
    CHECK(m == AuthMethod::kXoauth2);
    Status s = ChooseAuthMethod(token, {"PLAIN", "SCRAM-SHA-256"}, true, false, &m);
    CHECK(s.code() == Code::kNotSupported);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("SASL PLAIN SCRAM-SHA-256, USER"));
  }
  SECTION("an explicit method is used when offered") {
    for (AuthMethod want : {AuthMethod::kPlain, AuthMethod::kLogin, AuthMethod::kCramMd5,
                            AuthMethod::kScramSha1, AuthMethod::kScramSha256}) {
      password.auth = want;
      REQUIRE(ChooseAuthMethod(password, all, true, false, &m).ok());
      CHECK(m == want);
    }
    password.auth = AuthMethod::kUser;
    REQUIRE(ChooseAuthMethod(password, all, true, false, &m).ok());
    CHECK(m == AuthMethod::kUser);
    password.auth = AuthMethod::kApop;
    REQUIRE(ChooseAuthMethod(password, {}, false, true, &m).ok());
    CHECK(m == AuthMethod::kApop);
    token.auth = AuthMethod::kXoauth2;
    REQUIRE(ChooseAuthMethod(token, all, false, false, &m).ok());
    CHECK(m == AuthMethod::kXoauth2);
  }
  SECTION("an explicit method the server lacks is kNotSupported naming what it offers") {
    password.auth = AuthMethod::kScramSha256;
    m = AuthMethod::kAuto;
    Status s = ChooseAuthMethod(password, {"LOGIN", "PLAIN"}, true, false, &m);
    CHECK(s.code() == Code::kNotSupported);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("scram-sha-256"));
    CHECK_THAT(s.message(), Catch::Matchers::Contains("SASL LOGIN PLAIN, USER"));
    CHECK(m == AuthMethod::kAuto);
    password.auth = AuthMethod::kUser;
    CHECK(ChooseAuthMethod(password, {"PLAIN"}, false, false, &m).code() == Code::kNotSupported);
    password.auth = AuthMethod::kApop;
    CHECK(ChooseAuthMethod(password, all, true, false, &m).code() == Code::kNotSupported);
    s = ChooseAuthMethod(password, {}, false, false, &m);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("no login method"));
  }
  SECTION("the method must fit the secret") {
    password.auth = AuthMethod::kXoauth2;
    CHECK(ChooseAuthMethod(password, all, true, false, &m).code() == Code::kNotSupported);
    token.auth = AuthMethod::kPlain;
    CHECK(ChooseAuthMethod(token, all, true, false, &m).code() == Code::kNotSupported);
    token.auth = AuthMethod::kUser;
    CHECK(ChooseAuthMethod(token, all, true, false, &m).code() == Code::kNotSupported);
  }
}

TEST_CASE("sasl: FetchSecret", "[sasl]") {
  Pop3Options options;
  options.password = "configured";
  std::string secret;

  SECTION("without a command it is the password") {
    REQUIRE(FetchSecret(options, &secret).ok());
    CHECK(secret == "configured");
  }
  SECTION("the first line of the output, trimmed") {
    options.secret_command = "printf '  \\t tok en-1 \\r\\nsecond line\\n'";
    REQUIRE(FetchSecret(options, &secret).ok());
    CHECK(secret == "tok en-1");
    options.secret_command = "printf 'no-newline'";
    REQUIRE(FetchSecret(options, &secret).ok());
    CHECK(secret == "no-newline");
  }
  SECTION("a failing command names its exit status, never its output") {
    options.secret_command = "echo leaked-secret-42; echo also-stderr >&2; exit 3";
    secret = "untouched";
    Status s = FetchSecret(options, &secret);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("password_command"));
    CHECK_THAT(s.message(), Catch::Matchers::Contains("exit status 3"));
    CHECK(s.message().find("leaked-secret-42") == std::string::npos);
    CHECK(s.message().find("echo") == std::string::npos);  // nor the command line
    CHECK(secret == "untouched");
    options.oauth2 = true;
    CHECK_THAT(FetchSecret(options, &secret).message(),
               Catch::Matchers::Contains("oauth_token_command"));
  }
  SECTION("no output, blank output or an empty first line is an error") {
    for (const char* cmd : {"true", "printf '   \\n'", "printf '\\nsecond-line-secret\\n'"}) {
      options.secret_command = cmd;
      Status s = FetchSecret(options, &secret);
      INFO(cmd << ": " << s.ToString());
      CHECK(s.code() == Code::kInvalidArgument);
      CHECK_THAT(s.message(), Catch::Matchers::Contains("printed nothing"));
      CHECK(s.message().find("second-line-secret") == std::string::npos);
    }
  }
  SECTION("control characters in the output are refused without showing them") {
    options.secret_command = "printf 'abc\\001def\\n'";
    Status s = FetchSecret(options, &secret);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("abc") == std::string::npos);
  }
  SECTION("a signal is reported as such") {
    options.secret_command = "echo x-secret; kill -9 $$";
    Status s = FetchSecret(options, &secret);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("signal 9"));
    CHECK(s.message().find("x-secret") == std::string::npos);
  }
  SECTION("stdin is empty: a command reading it sees end of file at once") {
    options.secret_command = "read line || echo got-eof";
    REQUIRE(FetchSecret(options, &secret).ok());
    CHECK(secret == "got-eof");
  }
  SECTION("no descriptor of ours reaches the command beyond 0-2") {
    options.secret_command = "ls /proc/self/fd | wc -l";  // ls's 0,1,2 + its dir fd
    REQUIRE(FetchSecret(options, &secret).ok());
    CHECK(secret == "4");
  }
}

TEST_CASE("sasl: RunSecretCommand kills a command that outlives the limit", "[sasl]") {
  std::string secret = "untouched";
  const auto start = std::chrono::steady_clock::now();
  // The background sleep holds the pipe open too: the whole group must go.
  Status s = RunSecretCommand("echo early-secret; sleep 30 & sleep 30", "password_command",
                              std::chrono::milliseconds(300), &secret);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("did not finish within 300 ms"));
  CHECK(s.message().find("early-secret") == std::string::npos);
  CHECK(secret == "untouched");
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("sasl: every gsasl mechanism logs in against a GNU SASL server", "[sasl]") {
  const AuthMethod method = GENERATE(AuthMethod::kPlain, AuthMethod::kLogin, AuthMethod::kCramMd5,
                                     AuthMethod::kScramSha1, AuthMethod::kScramSha256);
  GsaslServerChannel server("alice", kPassword);
  Status s = SaslAuthenticate(server, method, "alice", kPassword, kWhere);
  INFO(AuthMethodName(method) << ": " << s.ToString());
  REQUIRE(s.ok());
  CHECK(server.authenticated);
  CHECK(server.mechanism == AuthMethodName(method));
  CheckNoSecretShown(server.shown_lines, kPassword);
  // Only the line the server can answer with nothing but +OK/-ERR may carry
  // pipelined commands.
  CHECK(server.last_at == std::vector<size_t>{server.sent.size() - 1});
  if (method == AuthMethod::kLogin || method == AuthMethod::kCramMd5) {
    CHECK(server.sent.front() == "AUTH " + AuthMethodName(method));  // server speaks first
  } else {
    CHECK(server.sent.front().size() > ("AUTH " + AuthMethodName(method)).size());
  }
  if (method == AuthMethod::kScramSha256 || method == AuthMethod::kScramSha1) {
    // client-first, client-final, then the empty answer to server-final.
    REQUIRE(server.sent.size() == 3);
    CHECK(server.sent.back().empty());
    CHECK(Unb64(server.sent.front().substr(server.sent.front().rfind(' ') + 1))
              .rfind("n,,n=alice,r=", 0) == 0);
  }
}

TEST_CASE("sasl: a wrong password fails as kAuthFailed without showing it", "[sasl]") {
  const AuthMethod method = GENERATE(AuthMethod::kPlain, AuthMethod::kLogin, AuthMethod::kCramMd5,
                                     AuthMethod::kScramSha1, AuthMethod::kScramSha256);
  GsaslServerChannel server("alice", kPassword);
  const std::string wrong = "wrong-Secret-999";
  Status s = SaslAuthenticate(server, method, "alice", wrong, kWhere);
  INFO(AuthMethodName(method) << ": " << s.ToString());
  CHECK(s.code() == Code::kAuthFailed);
  CHECK_FALSE(server.authenticated);
  CHECK_THAT(s.message(), Catch::Matchers::StartsWith(kWhere + ": AUTH " + AuthMethodName(method)));
  CheckNoSecret(s, wrong);
  CheckNoSecret(s, kPassword);
  CheckNoSecretShown(server.shown_lines, wrong);
}

TEST_CASE("sasl: SCRAM refuses a server whose signature does not verify", "[sasl]") {
  const AuthMethod method = GENERATE(AuthMethod::kScramSha1, AuthMethod::kScramSha256);
  GsaslServerChannel server("alice", kPassword);
  server.tamper_final = true;
  Status s = SaslAuthenticate(server, method, "alice", kPassword, kWhere);
  INFO(s.ToString());
  CHECK(s.code() == Code::kAuthFailed);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("signature"));
  CHECK(server.sent.back() == "*");  // cancelled, not answered
  CHECK(server.last_at.empty());     // nothing pipelined to an unproven server
  CHECK_FALSE(server.authenticated);
}

TEST_CASE("sasl: SCRAM refuses a +OK before the server proved itself", "[sasl]") {
  ScriptedChannel channel({"+OK welcome"});
  Status s = SaslAuthenticate(channel, AuthMethod::kScramSha256, "alice", kPassword, kWhere);
  CHECK(s.code() == Code::kProtocol);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("never proved"));
}

TEST_CASE("sasl: XOAUTH2 and OAUTHBEARER messages", "[sasl]") {
  SECTION("XOAUTH2 on the AUTH line") {
    ScriptedChannel channel({"+OK"});
    REQUIRE(SaslAuthenticate(channel, AuthMethod::kXoauth2, "u@x.test", "tok", kWhere).ok());
    REQUIRE(channel.sent.size() == 1);
    CHECK(channel.last_at.empty());  // a failure would come as a challenge
    CHECK(channel.sent[0] == "AUTH XOAUTH2 " + B64("user=u@x.test\x01"
                                                   "auth=Bearer tok\x01\x01"));
    CHECK(channel.shown_lines[0] == "AUTH XOAUTH2 ****");
  }
  SECTION("OAUTHBEARER with the gs2 header, host and port (RFC 7628)") {
    ScriptedChannel channel({"+OK"});
    REQUIRE(SaslAuthenticate(channel, AuthMethod::kOauthBearer, "a,b=c", "tok", "::1:995").ok());
    REQUIRE(channel.sent.size() == 1);
    CHECK(channel.sent[0] == "AUTH OAUTHBEARER " + B64("n,a=a=2Cb=3Dc,\x01host=::1\x01port=995\x01"
                                                       "auth=Bearer tok\x01\x01"));
  }
  SECTION("a token with a control character is refused before anything is sent") {
    ScriptedChannel channel({"+OK"});
    Status s = SaslAuthenticate(channel, AuthMethod::kXoauth2, "u", "to\x01ken", kWhere);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(channel.sent.empty());
    CheckNoSecret(s, "to\x01ken");
  }
}

TEST_CASE("sasl: an initial response over 255 octets answers the first challenge", "[sasl]") {
  const std::string token(1200, 'T');  // Microsoft 365 tokens are ~1-2 KB
  ScriptedChannel channel({"+ ", "+OK logged in"});
  REQUIRE(SaslAuthenticate(channel, AuthMethod::kXoauth2, "u@x.test", token, kWhere).ok());
  REQUIRE(channel.sent.size() == 2);
  CHECK(channel.sent[0] == "AUTH XOAUTH2");
  CHECK(channel.sent[1] == B64("user=u@x.test\x01"
                               "auth=Bearer " +
                               token + "\x01\x01"));
  CheckNoSecretShown(channel.shown_lines, token);
  for (const std::string& line : channel.sent) {
    if (line.rfind("AUTH", 0) == 0) CHECK(line.size() + 2 <= 255);
  }
}

TEST_CASE("sasl: a PLAIN response too long for the AUTH line is the last line", "[sasl]") {
  const std::string long_password(300, 'p');
  ScriptedChannel channel({"+ ", "+OK logged in"});
  REQUIRE(SaslAuthenticate(channel, AuthMethod::kPlain, "alice", long_password, kWhere).ok());
  REQUIRE(channel.sent.size() == 2);
  CHECK(channel.sent[0] == "AUTH PLAIN");
  CHECK(channel.last_at == std::vector<size_t>{1});
}

TEST_CASE("sasl: an OAuth2 error challenge is answered, then reported", "[sasl]") {
  const std::string error = R"({"status":"invalid_token","schemes":"bearer"})";
  SECTION("XOAUTH2 answers with an empty line") {
    ScriptedChannel channel({"+ " + B64(error), "-ERR [AUTH] Authentication failed"});
    Status s = SaslAuthenticate(channel, AuthMethod::kXoauth2, "u", "bad-token-1", kWhere);
    CHECK(s.code() == Code::kAuthFailed);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("invalid_token"));
    REQUIRE(channel.sent.size() == 2);
    CHECK(channel.sent[1].empty());
    CheckNoSecret(s, "bad-token-1");
  }
  SECTION("OAUTHBEARER answers with %x01") {
    ScriptedChannel channel({"+ " + B64(error), "-ERR Authentication failed"});
    Status s = SaslAuthenticate(channel, AuthMethod::kOauthBearer, "u", "bad-token-1", kWhere);
    CHECK(s.code() == Code::kAuthFailed);
    REQUIRE(channel.sent.size() == 2);
    CHECK(channel.sent[1] == B64("\x01"));
  }
  SECTION("a second error challenge is cancelled") {
    ScriptedChannel channel({"+ " + B64(error), "+ " + B64(error), "-ERR cancelled"});
    Status s = SaslAuthenticate(channel, AuthMethod::kXoauth2, "u", "bad-token-1", kWhere);
    CHECK(s.code() == Code::kProtocol);
    CHECK(channel.sent.back() == "*");
  }
}

TEST_CASE("sasl: unexpected or malformed challenges are cancelled with *", "[sasl]") {
  SECTION("a challenge after PLAIN's only message") {
    ScriptedChannel channel({"+ " + B64("more?"), "-ERR cancelled"});
    Status s = SaslAuthenticate(channel, AuthMethod::kPlain, "alice", kPassword, kWhere);
    CHECK(s.code() == Code::kProtocol);
    CHECK_THAT(s.message(), Catch::Matchers::Contains("cancelled"));
    REQUIRE(channel.sent.size() == 2);
    CHECK(channel.sent[1] == "*");
    CheckNoSecret(s, kPassword);
  }
  SECTION("a challenge that is not base64") {
    ScriptedChannel channel({"+ not*base64!", "-ERR cancelled"});
    Status s = SaslAuthenticate(channel, AuthMethod::kLogin, "alice", kPassword, kWhere);
    CHECK(s.code() == Code::kProtocol);
    CHECK(channel.sent.back() == "*");
  }
  SECTION("a challenge longer than the line limit") {
    ScriptedChannel channel({"+ " + B64(std::string(kMaxLineOctets, 'c')), "-ERR cancelled"});
    Status s = SaslAuthenticate(channel, AuthMethod::kCramMd5, "alice", kPassword, kWhere);
    CHECK(s.code() == Code::kProtocol);
    CHECK(channel.sent.back() == "*");
  }
  SECTION("a malformed SCRAM server-first") {
    ScriptedChannel channel({"+ " + B64("garbage"), "-ERR cancelled"});
    Status s = SaslAuthenticate(channel, AuthMethod::kScramSha256, "alice", kPassword, kWhere);
    CHECK(s.code() == Code::kProtocol);
    CHECK(channel.sent.back() == "*");
  }
}

TEST_CASE("sasl: -ERR response codes keep their meaning", "[sasl]") {
  struct Case {
    std::string reply;
    Code code;
  };
  const Case c = GENERATE(Case{"-ERR [IN-USE] mailbox locked", Code::kInUse},
                          Case{"-ERR [LOGIN-DELAY] wait", Code::kLoginDelay},
                          Case{"-ERR [SYS/TEMP] try later", Code::kSysTemp},
                          Case{"-ERR [SYS/PERM] gone", Code::kSysPerm},
                          Case{"-ERR [AUTH] bad credentials", Code::kAuthFailed},
                          Case{"-ERR no", Code::kAuthFailed});
  const AuthMethod method = GENERATE(AuthMethod::kPlain, AuthMethod::kXoauth2);
  ScriptedChannel channel({c.reply});
  Status s = SaslAuthenticate(channel, method, "alice", kPassword, kWhere);
  INFO(c.reply << " -> " << s.ToString());
  CHECK(s.code() == c.code);
  CHECK_THAT(s.message(), Catch::Matchers::Contains(c.reply.substr(5)));
  CheckNoSecret(s, kPassword);
}

TEST_CASE("sasl: a broken connection is reported with context", "[sasl]") {
  ScriptedChannel channel({});
  Status s = SaslAuthenticate(channel, AuthMethod::kPlain, "alice", kPassword, kWhere);
  CHECK(s.code() == Code::kNetwork);
  CHECK_THAT(s.message(), Catch::Matchers::StartsWith(kWhere + ": AUTH PLAIN"));
}

TEST_CASE("sasl: USER, APOP and auto are not SASL mechanisms", "[sasl]") {
  for (AuthMethod m : {AuthMethod::kUser, AuthMethod::kApop, AuthMethod::kAuto}) {
    ScriptedChannel channel({"+OK"});
    CHECK(SaslAuthenticate(channel, m, "alice", kPassword, kWhere).code() ==
          Code::kInvalidArgument);
    CHECK(channel.sent.empty());
  }
}
