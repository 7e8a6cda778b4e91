// Logging in against the private Dovecot with every method popvault offers:
// the real `popvault sync` with each `auth` value over implicit TLS and
// STARTTLS, the mechanism confirmed by Dovecot's own log, mail archived; wrong
// secrets fail clearly and touch nothing; password_command and
// oauth_token_command secrets never show up in any output.
//
// Users: auth1 (the mechanism tests; a ~1.2 KB token, so its XOAUTH2 and
// OAUTHBEARER initial responses go after a "+" challenge) and auth2 (auto,
// the commands, a short token, and every failure). Each TEST_CASE logs in
// with its own (user, mechanism) pair, so counting Dovecot's "Login:" lines
// for that pair is unaffected by tests running in parallel.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "harness.h"

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return s;
}

// How often Dovecot's log holds `needle`, once the log has settled (every
// connection closed before this call is in it).
size_t CountInDovecotLog(const std::string& needle) { return CountOf(SettledDovecotLog(), needle); }

// Dovecot's "Login: user=<USER>, method=METHOD," lines so far.
size_t DovecotLogins(const std::string& user, const std::string& method) {
  return CountInDovecotLog("Login: user=<" + user + ">, method=" + method + ",");
}

// How the account gets its secret.
enum class Secret {
  kPasswordFile,       // password_file = password (holds the fixture password)
  kPasswordCommand,    // password_command = cat <file with the password>
  kTokenCommand,       // oauth_token_command = cat <file with the user's token>
  kWrongPasswordFile,  // password_file with a wrong password
  kWrongTokenCommand,  // oauth_token_command printing a token Dovecot rejects
  kOtherUsersToken,    // oauth_token_command printing auth1's (valid) token
};

struct Login {
  std::string user;
  std::string auth = "auto";
  std::string tls = "implicit";
  Secret secret = Secret::kPasswordFile;
  std::string retention = "keep";
};

const char kWrongPassword[] = "pw-wrong-Secret-77";
const char kWrongToken[] = "tok-wrong-Secret-77";

// A workspace whose config is written here (the harness always writes
// password_file; token logins need oauth_token_command instead). Logs at
// trace level into popvault.log, so a secret logged anywhere is found.
class AuthWorkspace {
 public:
  explicit AuthWorkspace(const Login& login) : ws_({.user = login.user}), login_(login) {
    const FixtureEnv& env = FixtureEnv::Get();
    const std::string u = Upper(login.user);
    password_ = env[u + "_PASSWORD"];
    token_ = env[u + "_TOKEN"];
    std::string secret_line;
    switch (login.secret) {
      case Secret::kPasswordFile:
        WriteSecret(password_);
        secret_line = "password_file = secret";
        break;
      case Secret::kWrongPasswordFile:
        WriteSecret(kWrongPassword);
        secret_line = "password_file = secret";
        break;
      case Secret::kPasswordCommand:
        WriteSecret(password_);
        secret_line = "password_command = cat " + dir() + "/secret";
        break;
      case Secret::kTokenCommand:
        WriteSecret(token_);
        secret_line = "oauth_token_command = cat " + dir() + "/secret";
        break;
      case Secret::kWrongTokenCommand:
        WriteSecret(kWrongToken);
        secret_line = "oauth_token_command = cat " + dir() + "/secret";
        break;
      case Secret::kOtherUsersToken:
        WriteSecret(env["AUTH1_TOKEN"]);
        secret_line = "oauth_token_command = cat " + dir() + "/secret";
        break;
    }
    const bool implicit = login.tls == "implicit";
    std::ofstream(ws_.config()) << "[agent]\n"
                                << "state_dir = state\n"
                                << "log_level = trace\n"
                                << "log_file = popvault.log\n\n"
                                << "[store.local]\n"
                                << "plugin = rocksdb\n"
                                << "path = archive\n\n"
                                << "[account." << login.user << "]\n"
                                << "host = " << env["POP3_HOST"] << "\n"
                                << "port = " << env[implicit ? "POP3S_PORT" : "POP3_PORT"] << "\n"
                                << "tls = " << login.tls << "\n"
                                << "ca_file = " << env["CA_FILE"] << "\n"
                                << "user = " << login.user << "\n"
                                << secret_line << "\n"
                                << "auth = " << login.auth << "\n"
                                << "stores = local\n"
                                << "retention = " << login.retention << "\n";
  }

  const std::string& dir() const { return ws_.dir(); }
  const Workspace& ws() const { return ws_; }
  std::string Log() const { return ReadFile(dir() + "/popvault.log"); }

  // Neither the account's real secrets nor the wrong ones may appear in any
  // output of the run or in the log.
  void CheckNoSecrets(const Outcome& o) const {
    for (const std::string& secret : {password_, token_, std::string(kWrongPassword),
                                      std::string(kWrongToken), FixtureEnv::Get()["AUTH1_TOKEN"]}) {
      INFO("secret " << secret.substr(0, 12) << "...");
      CHECK(o.out.find(secret) == std::string::npos);
      CHECK(o.err.find(secret) == std::string::npos);
      CHECK(Log().find(secret) == std::string::npos);
    }
  }

 private:
  void WriteSecret(const std::string& secret) {
    const std::string path = dir() + "/secret";
    std::ofstream(path) << secret << "\n";
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  }

  Workspace ws_;
  Login login_;
  std::string password_;
  std::string token_;
};

// Syncs with `login` and expects success through `method` (Dovecot's name),
// with every message of the mailbox archived.
void CheckLogsInWith(const Login& login, const std::string& method) {
  const size_t before = DovecotLogins(login.user, method);
  AuthWorkspace aws(login);
  Outcome sync = aws.ws().Popvault("sync");
  INFO("auth = " << login.auth << ", tls = " << login.tls << "\n"
                 << sync.out << sync.err << aws.Log());
  REQUIRE(sync.exit_code == 0);
  const std::string messages = FixtureEnv::Get()[Upper(login.user) + "_MESSAGES"];
  CHECK_THAT(sync.out, Catch::Matchers::Contains(messages + " fetched"));
  CHECK(aws.ws().Archived().size() == std::stoul(messages));
  // Exactly one more login by that mechanism: this one.
  CHECK(DovecotLogins(login.user, method) == before + 1);
  aws.CheckNoSecrets(sync);
}

void CheckMechanism(const std::string& auth, const std::string& method, Secret secret) {
  for (const char* tls : {"implicit", "starttls"}) {
    CheckLogsInWith({.user = "auth1", .auth = auth, .tls = tls, .secret = secret}, method);
  }
}

// Syncs with a `login` that must be refused: exit status 1, an error naming
// the account and `expected`, nothing archived, nothing deleted (the policy
// would delete everything archived), no secret shown.
void CheckRefused(const Login& login, const std::vector<std::string>& expected) {
  Login deleting = login;
  deleting.retention = "delete_after_archive";
  const size_t on_server = DumpMailbox(login.user).size();
  REQUIRE(on_server > 0);
  AuthWorkspace aws(deleting);
  Outcome sync = aws.ws().Popvault("sync");
  INFO(sync.out << sync.err << aws.Log());
  CHECK(sync.exit_code == 1);
  CHECK_THAT(sync.err, Catch::Matchers::Contains("account '" + login.user + "'"));
  for (const std::string& e : expected) CHECK_THAT(sync.err, Catch::Matchers::Contains(e));
  CHECK(aws.ws().Archived().empty());
  CHECK(DumpMailbox(login.user).size() == on_server);
  aws.CheckNoSecrets(sync);
}

}  // namespace

TEST_CASE("auth = plain logs in with AUTH PLAIN (implicit TLS and STARTTLS)") {
  // Dovecot logs USER/PASS as method=PLAIN too; that the wire carries AUTH
  // PLAIN is the unit tests' job (sasl_test.cc), this one proves Dovecot
  // accepts what we send.
  CheckMechanism("plain", "PLAIN", Secret::kPasswordFile);
}

TEST_CASE("auth = login logs in with AUTH LOGIN (implicit TLS and STARTTLS)") {
  CheckMechanism("login", "LOGIN", Secret::kPasswordFile);
}

TEST_CASE("auth = cram-md5 logs in with AUTH CRAM-MD5 (implicit TLS and STARTTLS)") {
  CheckMechanism("cram-md5", "CRAM-MD5", Secret::kPasswordFile);
}

TEST_CASE("auth = scram-sha-1 logs in with AUTH SCRAM-SHA-1 (implicit TLS and STARTTLS)") {
  CheckMechanism("scram-sha-1", "SCRAM-SHA-1", Secret::kPasswordFile);
}

TEST_CASE("auth = scram-sha-256 logs in with AUTH SCRAM-SHA-256 (implicit TLS and STARTTLS)") {
  CheckMechanism("scram-sha-256", "SCRAM-SHA-256", Secret::kPasswordFile);
}

TEST_CASE("auth = xoauth2 sends a long token after the + challenge (implicit TLS and STARTTLS)") {
  REQUIRE(FixtureEnv::Get()["AUTH1_TOKEN"].size() > 255);
  CheckMechanism("xoauth2", "XOAUTH2", Secret::kTokenCommand);
}

TEST_CASE(
    "auth = oauthbearer sends a long token after the + challenge (implicit TLS and "
    "STARTTLS)") {
  CheckMechanism("oauthbearer", "OAUTHBEARER", Secret::kTokenCommand);
}

TEST_CASE("auth = auto picks SCRAM-SHA-256 against Dovecot (implicit TLS and STARTTLS)") {
  for (const char* tls : {"implicit", "starttls"}) {
    CheckLogsInWith({.user = "auth2", .auth = "auto", .tls = tls}, "SCRAM-SHA-256");
  }
}

TEST_CASE(
    "auth = auto with oauth_token_command picks OAUTHBEARER, the token only from the "
    "command") {
  CheckLogsInWith({.user = "auth2", .auth = "auto", .secret = Secret::kTokenCommand},
                  "OAUTHBEARER");
}

TEST_CASE("auth = xoauth2 with a short token sends it on the AUTH line") {
  CheckLogsInWith(
      {.user = "auth2", .auth = "xoauth2", .tls = "starttls", .secret = Secret::kTokenCommand},
      "XOAUTH2");
}

TEST_CASE("password_command gives the password (auth = cram-md5)") {
  CheckLogsInWith({.user = "auth2", .auth = "cram-md5", .secret = Secret::kPasswordCommand},
                  "CRAM-MD5");
}

TEST_CASE("check-config shows neither the password nor the token a command gives") {
  for (Secret secret : {Secret::kPasswordCommand, Secret::kTokenCommand, Secret::kPasswordFile}) {
    AuthWorkspace aws({.user = "auth2", .secret = secret});
    Outcome check = aws.ws().Popvault("check-config");
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
    aws.CheckNoSecrets(check);
  }
}

TEST_CASE("a wrong password fails as an authentication error, nothing archived or deleted") {
  for (const char* auth : {"auto", "plain", "scram-sha-256"}) {
    const std::string method = std::string(auth) == "auto" ? "SCRAM-SHA-256" : Upper(auth);
    INFO("auth = " << auth);
    CheckRefused({.user = "auth2", .auth = auth, .secret = Secret::kWrongPasswordFile},
                 {"AUTH " + method, "authentication failed", "[AUTH]"});
  }
}

TEST_CASE("a wrong token fails as an authentication error naming the server's status") {
  CheckRefused({.user = "auth2", .auth = "xoauth2", .secret = Secret::kWrongTokenCommand},
               {"AUTH XOAUTH2", "authentication failed", "OAuth2 status", "401"});
  CheckRefused({.user = "auth2", .auth = "oauthbearer", .secret = Secret::kWrongTokenCommand},
               {"AUTH OAUTHBEARER", "authentication failed", "invalid_token"});
  // A valid token, but another user's.
  CheckRefused({.user = "auth2", .auth = "auto", .secret = Secret::kOtherUsersToken},
               {"AUTH OAUTHBEARER", "authentication failed"});
}

TEST_CASE("a failing password_command is a clear error and nothing is sent") {
  // LOGIN: no other test uses it with auth2, so any attempt would show.
  AuthWorkspace aws({.user = "auth2", .auth = "login", .secret = Secret::kPasswordCommand});
  // Point the command at a file that does not exist.
  std::string config = ReadFile(aws.ws().config());
  config = std::regex_replace(config, std::regex("password_command = .*"),
                              "password_command = cat " + aws.dir() + "/missing");
  std::ofstream(aws.ws().config()) << config;
  const std::string attempt = "user=<auth2>, method=LOGIN";  // logins and failures
  const size_t before = CountInDovecotLog(attempt);
  Outcome sync = aws.ws().Popvault("sync");
  INFO(sync.out << sync.err);
  CHECK(sync.exit_code == 1);
  CHECK_THAT(sync.err, Catch::Matchers::Contains("password_command"));
  CHECK_THAT(sync.err, Catch::Matchers::Contains("exit status 1"));
  CHECK(aws.ws().Archived().empty());
  CHECK(CountInDovecotLog(attempt) == before);
}

}  // namespace popvault::testing
