// Connection security against the private Dovecot: a wrong CA, a wrong host
// name, a wrong pinned fingerprint and a password without TLS each fail
// clearly, before any login; a right pin replaces the CA chain.
#include <Poco/Base64Decoder.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <sstream>

#include "harness.h"

namespace popvault::testing {
namespace {

// Dovecot logs "Login: user=<NAME>" (or "auth failed ... user=<NAME>") for any
// login attempt that reached it; the log is read once it has settled, so an
// attempt just made is in it.
bool DovecotSawLoginAttempt(const std::string& user) {
  return SettledDovecotLog().find("user=<" + user + ">") != std::string::npos;
}

// Dovecot's successful logins of `user` so far ("Login: user=<USER>,").
size_t DovecotLogins(const std::string& user) {
  return CountOf(SettledDovecotLog(), "Login: user=<" + user + ">,");
}

// Syncs `ws` and expects success with exactly one login of its user more in
// Dovecot's log. Each test logging in uses its own user, so a login another
// test made (earlier or in parallel) cannot stand in for this one.
void CheckSyncLogsIn(const Workspace& ws, const std::string& user) {
  const size_t before = DovecotLogins(user);
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  CHECK(sync.exit_code == 0);
  CHECK(DovecotLogins(user) == before + 1);
}

// Runs a sync for `account` that must fail with `expected` in its error and
// without Dovecot ever seeing a login for the account's user.
void CheckRefusedBeforeLogin(const Workspace::Account& account, const std::string& expected) {
  Workspace ws(account);
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  CHECK(sync.exit_code == 1);
  CHECK_THAT(sync.err, Catch::Matchers::Contains("account '" + account.user + "'"));
  CHECK_THAT(sync.err, Catch::Matchers::Contains(expected, Catch::CaseSensitive::No));
  CHECK_FALSE(DovecotSawLoginAttempt(account.user));
}

// spare3 is used by refusal tests only, so any login attempt in the log is a failure.
TEST_CASE("a server certificate from the wrong CA is refused before login") {
  CheckRefusedBeforeLogin({.user = "spare3", .ca_file = FixtureEnv::Get()["WRONG_CA_FILE"]},
                          "certificate");
  CheckRefusedBeforeLogin(
      {.user = "spare3", .tls = "starttls", .ca_file = FixtureEnv::Get()["WRONG_CA_FILE"]},
      "certificate");
}

TEST_CASE("a server certificate for another host name is refused before login") {
  // The fixture also listens on an address its certificate does not name.
  CheckRefusedBeforeLogin({.user = "spare3", .host = FixtureEnv::Get()["POP3_WRONG_NAME_HOST"]},
                          "certificate");
}

// "sha256:" + lower-case hex SHA-256 of the fixture's server certificate
// (DER), computed here from the PEM file, independently of popvault's code.
std::string ServerCertFingerprint() {
  std::ifstream in(FixtureEnv::Get()["SERVER_CERT_FILE"]);
  std::stringstream pem;
  pem << in.rdbuf();
  const std::string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
  const size_t from = pem.str().find(begin), to = pem.str().find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  std::istringstream base64(pem.str().substr(from + begin.size(), to - from - begin.size()));
  Poco::Base64Decoder decoder(base64);
  const std::string der((std::istreambuf_iterator<char>(decoder)),
                        std::istreambuf_iterator<char>());
  REQUIRE(der.size() > 100);
  return "sha256:" + Sha256Hex(der);
}

TEST_CASE("a pinned certificate is trusted instead of the CA chain and the host name") {
  const std::string pin = "tls_fingerprint = " + ServerCertFingerprint() + "\n";
  const std::string wrong_ca = FixtureEnv::Get()["WRONG_CA_FILE"];
  // Implicit TLS, at an address the certificate does not name, with a CA
  // that did not sign it.
  CheckSyncLogsIn(Workspace({.user = "spare4",
                             .host = FixtureEnv::Get()["POP3_WRONG_NAME_HOST"],
                             .ca_file = wrong_ca,
                             .extra = pin}),
                  "spare4");
  CheckSyncLogsIn(
      Workspace({.user = "spare4", .tls = "starttls", .ca_file = wrong_ca, .extra = pin}),
      "spare4");
}

TEST_CASE("a wrong pinned fingerprint is refused before login, naming the one seen") {
  // The right CA and name: the pin alone decides.
  const std::string wrong = "tls_fingerprint = sha256:" + std::string(64, 'a') + "\n";
  const std::string seen = ServerCertFingerprint();
  CheckRefusedBeforeLogin({.user = "spare3", .extra = wrong}, seen);
  CheckRefusedBeforeLogin({.user = "spare3", .tls = "starttls", .extra = wrong}, seen);
  CheckRefusedBeforeLogin({.user = "spare3", .extra = wrong}, "fingerprint mismatch");
}

TEST_CASE("a password is never sent without TLS unless the account allows it") {
  CheckRefusedBeforeLogin({.user = "spare3", .tls = "none"}, "allow_plaintext_auth");
}

// spare8, not spare4: the pin test's logins must not count for this one.
TEST_CASE("the same settings with the right CA and name log in (control for the tests above)") {
  CheckSyncLogsIn(Workspace({.user = "spare8", .tls = "starttls", .host = "localhost"}), "spare8");
  CheckSyncLogsIn(
      Workspace({.user = "spare8", .tls = "none", .extra = "allow_plaintext_auth = true\n"}),
      "spare8");
}

}  // namespace
}  // namespace popvault::testing
