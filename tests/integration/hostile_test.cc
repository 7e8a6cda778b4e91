// The real popvault against hostile POP3 servers (tests/tools/hostile_pop3.py):
// what Dovecot will not do. For every misbehaviour: a clear error naming the
// account, the server and what happened; bounded time and memory; no DELE of
// anything that is not archived and verified; and what was archived is
// byte-exact. No fixture: each test starts its own server on 127.0.0.1.
//
// The server logs every command it receives, every reply it completes and
// every message it really deleted at QUIT, so the tests check the server's
// side of the story, not popvault's.
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "archive/record.h"
#include "harness.h"

extern char** environ;

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;

constexpr const char* kUser = "alice";
constexpr const char* kPassword = "s3cret-Hostile-pw";
constexpr long kMemoryLimitKb = 128 * 1024;  // popvault's peak RSS must stay below this

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string TempDir(const std::string& tag) {
  std::string tmpl = "/tmp/popvault-hostile-" + tag + "-XXXXXX";
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

// Polls `condition` every 20 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& condition, double seconds = 20) {
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// A finished child process with its peak memory and wall time.
struct Measured {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  bool timed_out = false;  // killed by our watchdog
  long max_rss_kb = 0;     // the child's peak resident set (wait4)
  double seconds = 0;
  std::string out, err;
};

// Runs argv to completion, SIGKILLing it after `timeout` seconds: a hang is a
// failure with a clear message, never a stuck test.
Measured RunMeasured(const std::vector<std::string>& argv, double timeout) {
  std::string dir = TempDir("run");
  std::string out = dir + "/out", err = dir + "/err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT, 0600);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  pid_t pid = 0;
  auto start = Clock::now();
  int rc = posix_spawn(&pid, c_args[0], &actions, nullptr, c_args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  Measured m;
  int status = 0;
  struct rusage usage {};
  while (wait4(pid, &status, WNOHANG, &usage) == 0) {
    if (!m.timed_out && Clock::now() - start > std::chrono::duration<double>(timeout)) {
      m.timed_out = true;
      kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  m.max_rss_kb = usage.ru_maxrss;
  if (WIFEXITED(status)) m.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) m.signal = WTERMSIG(status);
  m.out = ReadAll(out);
  m.err = ReadAll(err);
  fs::remove_all(dir);
  return m;
}

// One line of the server's log: "<time> <connection> <C|R|E> <text>".
struct LogLine {
  double time = 0;
  int conn = 0;
  char kind = 0;
  std::string text;
};

// tests/tools/hostile_pop3.py with a scenario, on a mailbox of generated
// messages (file name = UIDL). Stopped by the destructor.
class HostileServer {
 public:
  explicit HostileServer(const std::string& scenario, int messages = 5, int seed = 1)
      : dir_(TempDir("server")) {
    std::string port_file = dir_ + "/port";
    child_.emplace(
        Spawn({"/usr/bin/python3", POPVAULT_SOURCE_DIR "/tests/tools/hostile_pop3.py",
               "--port-file", port_file, "--log", log(), "--mailbox", mailbox(), "--user", kUser,
               "--password", kPassword, "--generate", std::to_string(messages), "--seed",
               std::to_string(seed), "--scenario", scenario}));
    REQUIRE(WaitFor([&] { return fs::exists(port_file); }));
    std::istringstream(ReadAll(port_file)) >> port_ >> pid_;
    REQUIRE(pid_ > 0);
    original_ = Mailbox();
    REQUIRE(original_.size() == static_cast<size_t>(messages));
  }

  ~HostileServer() {
    if (pid_ > 0) kill(pid_, SIGTERM);
    if (child_) child_->Wait();
    fs::remove_all(dir_);
  }

  int port() const { return port_; }
  std::string where() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return dir_ + "/log"; }
  std::string mailbox() const { return dir_ + "/mailbox"; }

  // UIDL -> bytes, as the test began.
  const std::map<std::string, std::string>& original() const { return original_; }

  // UIDL -> bytes of what is on the server now.
  std::map<std::string, std::string> Mailbox() const {
    std::map<std::string, std::string> messages;
    for (const auto& e : fs::directory_iterator(mailbox())) {
      messages[e.path().filename()] = ReadAll(e.path());
    }
    return messages;
  }

  std::vector<LogLine> Log() const {
    std::vector<LogLine> lines;
    std::istringstream in(ReadAll(log()));
    for (std::string line; std::getline(in, line);) {
      LogLine l;
      std::istringstream fields(line);
      fields >> l.time >> l.conn >> l.kind;
      fields.get();
      std::getline(fields, l.text);
      lines.push_back(l);
    }
    return lines;
  }

  // Command lines received (kind C), optionally of one connection.
  std::vector<std::string> Commands(int conn = 0) const {
    std::vector<std::string> commands;
    for (const LogLine& l : Log()) {
      if (l.kind == 'C' && (conn == 0 || l.conn == conn)) commands.push_back(l.text);
    }
    return commands;
  }

  int CountCommands(const std::string& prefix) const {
    int n = 0;
    for (const std::string& c : Commands()) n += c.rfind(prefix, 0) == 0;
    return n;
  }

  // UIDLs the server really deleted (at a successful QUIT).
  std::set<std::string> Deleted() const {
    std::set<std::string> uidls;
    for (const LogLine& l : Log()) {
      if (l.kind == 'E' && l.text.rfind("DELETED ", 0) == 0) {
        std::istringstream fields(l.text.substr(8));
        int msgno = 0;
        std::string uidl;
        fields >> msgno >> uidl;
        uidls.insert(uidl);
      }
    }
    return uidls;
  }

  // Bytes the server streamed in its "pushed N bytes" events, summed.
  uint64_t Pushed() const {
    uint64_t total = 0;
    for (const LogLine& l : Log()) {
      if (l.kind == 'E' && l.text.rfind("pushed ", 0) == 0) total += std::stoull(l.text.substr(7));
    }
    return total;
  }

  bool LogHas(const std::string& needle) const {
    return ReadAll(log()).find(needle) != std::string::npos;
  }

 private:
  std::string dir_;
  std::optional<Child> child_;
  int port_ = 0;
  int pid_ = 0;
  std::map<std::string, std::string> original_;
};

struct Archived {
  std::string uidl;
  std::string sha256;
  uint64_t size = 0;
};

// A popvault config with one account, "hostile", on a hostile server.
class Vault {
 public:
  struct Account {
    int port = 0;
    std::string retention = "keep";
    std::string tls = "none";
    std::string extra;  // more "key = value" lines for the account
  };

  explicit Vault(const Account& account) : dir_(TempDir("vault")) { Rewrite(account); }
  ~Vault() { fs::remove_all(dir_); }

  void Rewrite(const Account& account) {
    std::ofstream(config()) << "[agent]\nstate_dir = state\nlog_level = warning\n\n"
                            << "[store.local]\nplugin = rocksdb\npath = archive\n\n"
                            << "[account.hostile]\nhost = 127.0.0.1\nport = " << account.port
                            << "\ntls = " << account.tls << "\nallow_plaintext_auth = true\n"
                            << "user = " << kUser << "\npassword = " << kPassword
                            << "\nstores = local\nretention = " << account.retention << "\n"
                            << account.extra;
  }

  std::string config() const { return dir_ + "/popvault.ini"; }
  const std::string& dir() const { return dir_; }

  std::vector<std::string> Argv(const std::string& command,
                                const std::vector<std::string>& args = {}) const {
    std::vector<std::string> argv = {POPVAULT_BINARY, command, "--config", config()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Measured Popvault(const std::string& command, const std::vector<std::string>& args = {},
                    double timeout = 30) const {
    return RunMeasured(Argv(command, args), timeout);
  }

  Measured Sync(double timeout = 30) const { return Popvault("sync", {}, timeout); }

  std::vector<Archived> List() const {
    Measured o = Popvault("list", {"--json"});
    INFO(o.err);
    REQUIRE(o.exit_code == 0);
    Poco::JSON::Parser parser;
    auto rows = parser.parse(o.out).extract<Poco::JSON::Array::Ptr>();
    std::vector<Archived> archived;
    for (size_t i = 0; i < rows->size(); ++i) {
      auto row = rows->getObject(static_cast<unsigned>(i));
      Archived a;
      REQUIRE(DecodeUidl(row->getValue<std::string>("uidl"), &a.uidl).ok());
      a.sha256 = row->getValue<std::string>("sha256");
      a.size = row->getValue<uint64_t>("size");
      archived.push_back(a);
    }
    return archived;
  }

 private:
  std::string dir_;
};

// Everything archived is byte-exact: what `popvault export` (which checks
// each SHA-256) writes for it is the server's message with that UIDL.
// Returns the archived UIDLs.
std::set<std::string> CheckArchiveExact(const Vault& vault, const HostileServer& server) {
  std::string out = vault.dir() + "/export";  // removed with the vault
  fs::remove_all(out);
  Measured exported = vault.Popvault("export", {"--output", out});
  INFO(exported.err);
  CHECK(exported.exit_code == 0);
  std::set<std::string> uidls;
  for (const Archived& a : vault.List()) {
    INFO("archived uidl " << a.uidl);
    auto it = server.original().find(a.uidl);
    REQUIRE(it != server.original().end());
    CHECK(a.sha256 == Sha256Hex(it->second));
    CHECK(a.size == it->second.size());
    CHECK(ReadAll(out + "/hostile/" + a.sha256 + ".eml") == it->second);
    CHECK(uidls.insert(a.uidl).second);
  }
  return uidls;
}

// No mail lost: whatever left the server was archived (byte-exact), and
// what the server still has is unchanged. Returns the archived UIDLs.
std::set<std::string> CheckNothingLost(const Vault& vault, const HostileServer& server) {
  std::set<std::string> archived = CheckArchiveExact(vault, server);
  std::map<std::string, std::string> now = server.Mailbox();
  for (const auto& [uidl, bytes] : server.original()) {
    INFO("message " << uidl);
    auto it = now.find(uidl);
    if (it != now.end()) {
      CHECK(it->second == bytes);
    } else {
      CHECK(archived.count(uidl) == 1);
      CHECK(server.Deleted().count(uidl) == 1);
    }
  }
  return archived;
}

// Nothing was deleted: no DELE reached the server at all, and it deleted nothing.
void CheckNoDele(const HostileServer& server) {
  CHECK(server.CountCommands("DELE") == 0);
  CHECK(server.Deleted().empty());
  CHECK(server.Mailbox() == server.original());
}

// The secret appears neither in popvault's output nor in the server's log
// (PASS and AUTH arguments are masked there, so a leak would be elsewhere).
void CheckNoSecret(const Measured& run, const HostileServer& server) {
  CHECK_THAT(run.out + run.err, !Contains(kPassword));
  CHECK_THAT(ReadAll(server.log()), !Contains(kPassword));
}

// The error line of a failed account: names the account and the server.
void CheckAccountError(const Measured& run, const HostileServer& server, const std::string& what) {
  INFO("stdout: " << run.out << "\nstderr: " << run.err);
  CHECK_FALSE(run.timed_out);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Contains("account 'hostile'"));
  CHECK_THAT(run.err, Contains(server.where()));
  CHECK_THAT(run.err, Contains(what));
}

bool Pipelined(const std::vector<LogLine>& log, const std::string& command) {
  // A command received while the reply to an earlier one was still incomplete.
  for (int conn : {1, 2, 3}) {
    std::vector<std::string> outstanding;
    for (const LogLine& l : log) {
      if (l.conn != conn) continue;
      if (l.kind == 'C') {
        if (!outstanding.empty() && l.text.rfind(command, 0) == 0) return true;
        outstanding.push_back(l.text);
      } else if (l.kind == 'R' && !outstanding.empty()) {
        outstanding.erase(outstanding.begin());
      }
    }
  }
  return false;
}

// --- login -------------------------------------------------------------

TEST_CASE("login refusals name the account, the server and the response code") {
  auto [reply, meaning] = GENERATE(table<std::string, std::string>({
      {"-ERR [IN-USE] mailbox locked by another session", "mailbox in use"},
      {"-ERR [LOGIN-DELAY] wait 900 seconds", "login delay"},
      {"-ERR [SYS/TEMP] backend unavailable, try later", "temporary server error"},
      {"-ERR [SYS/PERM] account disabled", "permanent server error"},
      {"-ERR [AUTH] invalid credentials", "authentication failed"},
  }));
  HostileServer server(R"({"login_reply": ")" + reply + R"("})");
  Vault vault({.port = server.port()});
  Measured run = vault.Sync(20);
  CheckAccountError(run, server, meaning);
  CHECK_THAT(run.err, Contains(reply));  // the server's own words, e.g. "[IN-USE]"
  if (meaning != "authentication failed") CHECK_THAT(run.err, !Contains("authentication"));
  CHECK_THAT(run.out, Contains("hostile: 0 on server, 0 fetched"));
  CHECK(server.Commands() ==
        std::vector<std::string>{"CAPA", std::string("USER ") + kUser, "PASS ****"});
  CheckNoSecret(run, server);
  CheckNoDele(server);
}

TEST_CASE("STLS stripped by a man in the middle: no credentials are sent") {
  std::string scenario = GENERATE(std::string("{}"), std::string(R"({"capa_add": ["STLS"]})"));
  HostileServer server(scenario);
  Vault vault({.port = server.port(), .tls = "starttls"});
  Measured run = vault.Sync(20);
  INFO("scenario " << scenario);
  // Without STLS in CAPA: not supported; with STLS offered but refused: a TLS error.
  CheckAccountError(run, server, scenario == "{}" ? "does not offer STLS" : "STLS");
  for (const std::string& c : server.Commands()) {
    INFO("command " << c);
    for (const char* login : {"USER", "PASS", "APOP", "AUTH"}) CHECK(c.rfind(login, 0) != 0);
  }
  CheckNoSecret(run, server);
  CheckNoDele(server);
}

TEST_CASE("SASL announced: the secret stays masked and out of every log") {
  HostileServer server(R"({"capa_add": ["SASL PLAIN"]})");
  Vault vault({.port = server.port()});
  Measured run = vault.Sync(20);
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CheckNoSecret(run, server);
  // Not even encoded: AUTH PLAIN's response is base64("\0user\0secret").
  std::ostringstream encoded;
  Poco::Base64Encoder b64(encoded);
  b64 << '\0' << kUser << '\0' << kPassword;
  b64.close();
  CHECK_THAT(ReadAll(server.log()), !Contains(encoded.str()));
  CHECK(CheckArchiveExact(vault, server).size() == server.original().size());
}

// --- replies that never end, garbage ---------------------------------------

TEST_CASE("a reply line that never ends is a protocol error, in bounded memory") {
  // The server streams a line without LF until popvault hangs up.
  auto [on, prefix] = GENERATE(table<std::string, std::string>({
      {"greeting", "+OK "},
      {"USER", "+OK "},
      {"UIDL", "+OK "},
      {"UIDL", "+OK listing follows\\r\\n1 "},  // a listing line, not the status line
      {"RETR", "+OK "},
  }));
  HostileServer server(R"({"actions": [{"on": ")" + on + R"(", "endless_line": 0, "prefix": ")" +
                       prefix + R"("}]})");
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  INFO("endless line after " << on << " (" << prefix << ")");
  CheckAccountError(run, server, "protocol error");
  CHECK_THAT(run.err, Contains("longer than"));
  CHECK(run.max_rss_kb < kMemoryLimitKb);
  CHECK(WaitFor([&] { return server.LogHas("pushed"); }));
  CheckNoDele(server);
  CheckArchiveExact(vault, server);
}

TEST_CASE("a status line of many megabytes that does end is refused, in bounded memory") {
  // 64 MiB, then CRLF and a well-behaved server: no line buffer may grow with it.
  HostileServer server(R"({"actions": [{"on": "UIDL", "endless_line": 67108864, "then": "end"}]})");
  Vault vault({.port = server.port()});
  Measured run = vault.Sync(20);
  CheckAccountError(run, server, "protocol error");
  CHECK(run.max_rss_kb < kMemoryLimitKb);
  CheckNoDele(server);
}

TEST_CASE("garbage bytes instead of a reply are a protocol error and nothing is deleted") {
  std::string on = GENERATE(std::string("greeting"), std::string("CAPA"), std::string("UIDL"),
                            std::string("RETR"), std::string("DELE"));
  HostileServer server(R"({"actions": [{"on": ")" + on + R"(", "garbage": 1048576}]})");
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  INFO("garbage instead of the reply to " << on);
  CheckAccountError(run, server, "protocol error");
  CHECK(run.max_rss_kb < kMemoryLimitKb);
  CHECK(server.Deleted().empty());
  CHECK(server.Mailbox() == server.original());
  CheckArchiveExact(vault, server);
}

// --- disconnects -----------------------------------------------------------

TEST_CASE("a disconnect in the middle of a RETR loses nothing and the next pass completes") {
  // The first session is cut 3000 octets into message 3; later ones behave.
  HostileServer server(
      R"({"connections": 1, "actions": [{"on": "RETR", "msg": 3, "cut_after": 3000}]})", 6, 3);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  CheckAccountError(run, server, "RETR 3");
  CHECK_THAT(run.err, Contains("network error"));
  CheckNoDele(server);
  // Messages 1 and 2 were committed before the error: not fetched again.
  std::set<std::string> archived = CheckArchiveExact(vault, server);
  CHECK(archived.size() == 2);

  Measured again = vault.Sync(20);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("6 on server, 4 fetched"));
  CHECK_THAT(again.out, Contains("6 deleted from server"));
  CHECK(server.Mailbox().empty());
  CHECK(CheckNothingLost(vault, server).size() == 6);
}

TEST_CASE("QUIT unanswered or refused: the next pass deletes what is still there") {
  // The server drops the connection instead of answering QUIT, or refuses
  // it: popvault cannot know whether, or knows that nothing, was committed,
  // so it must not record deletions; this server did not commit, so all
  // mail is still there.
  std::string scenario = GENERATE(
      std::string(R"({"connections": 1, "actions": [{"on": "QUIT", "close": true}]})"),
      std::string(R"({"connections": 1, "quit_reply": "-ERR [SYS/TEMP] could not commit"})"));
  HostileServer server(scenario, 4);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  INFO("scenario " << scenario);
  CheckAccountError(run, server, "QUIT");
  CHECK_THAT(run.out, Contains("0 deleted from server"));
  CHECK(ReadAll(vault.dir() + "/state/audit.log").empty());  // no deletion recorded
  CHECK(server.Mailbox() == server.original());
  CheckArchiveExact(vault, server);

  Measured again = vault.Sync(20);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("4 deleted from server"));
  std::string audit = ReadAll(vault.dir() + "/state/audit.log");
  CHECK(std::count(audit.begin(), audit.end(), '\n') == 4);
  CHECK(CheckNothingLost(vault, server).size() == 4);
}

// --- UIDL listings that cannot be trusted ------------------------------------

TEST_CASE("a UIDL listing with a duplicate or a gap: every message archived, no DELE that pass") {
  const std::string scenario = GENERATE(std::string(R"({"uidl": {"3": "msg0001-1"}})"),
                                        std::string(R"({"uidl_omit": [2]})"));
  HostileServer server(scenario, 4);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  INFO("scenario " << scenario << "\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.err, Contains("duplicates or gaps"));
  CHECK_THAT(run.err, Contains("hostile"));
  if (scenario.find("msg0001-1") != std::string::npos) {
    CHECK_THAT(run.err, Contains("'msg0001-1': messages 1, 3"));
  }
  CheckNoDele(server);
  // All four, byte-exact: those the listing cannot name are known by content.
  const std::string out = vault.dir() + "/export";
  Measured exported = vault.Popvault("export", {"--output", out});
  INFO(exported.err);
  CHECK(exported.exit_code == 0);
  std::set<std::string> archived;
  for (const Archived& a : vault.List()) archived.insert(a.sha256);
  CHECK(archived.size() == 4);
  for (const auto& [uidl, bytes] : server.original()) {
    INFO("message " << uidl);
    const std::string sha = Sha256Hex(bytes);
    CHECK(archived.count(sha) == 1);
    CHECK(ReadAll(out + "/hostile/" + sha + ".eml") == bytes);
  }
}

// --- size limit, timeouts, pipelining, servers without UIDL, EXPIRE ----------

TEST_CASE("a RETR that streams far past max_message_size ends the session, in bounded memory") {
  // LIST says message 2 is small; its RETR goes on for 3 GiB (generated on
  // the fly). popvault must stop at its limit (200M), store nothing for it
  // and delete nothing.
  HostileServer server(
      R"({"actions": [{"on": "RETR", "msg": 2, "endless_retr": 3221225472, "then": "close"}]})", 3);
  Vault vault({.port = server.port(),
               .retention = "delete_after_archive",
               .extra = "max_message_size = 200M\n"});
  Measured run = vault.Sync(60);
  CheckAccountError(run, server, "RETR 2");
  CHECK_THAT(run.err, Contains("max_message_size"));
  CHECK(run.max_rss_kb < kMemoryLimitKb);
  REQUIRE(WaitFor([&] { return server.LogHas("pushed"); }, 5));
  CHECK(server.Pushed() >= 200ull << 20);  // far more than the memory popvault used
  CheckNoDele(server);
  std::set<std::string> archived = CheckArchiveExact(vault, server);
  CHECK(archived.count("msg0002-1") == 0);

  // The next pass remembers it: message 2 is not RETR'd again (nor
  // deleted), the others are archived and deleted.
  Measured again = vault.Sync(60);
  INFO(again.out << again.err);
  CHECK_FALSE(again.timed_out);
  CHECK_THAT(again.err, Contains("msg0002-1"));
  CHECK(server.CountCommands("RETR 2") == 1);
  CHECK(server.CountCommands("DELE 2") == 0);
  CHECK(server.Mailbox().count("msg0002-1") == 1);
  CHECK(server.Deleted() == std::set<std::string>{"msg0001-1", "msg0003-1"});
  CHECK(CheckNothingLost(vault, server) == std::set<std::string>{"msg0001-1", "msg0003-1"});
}

TEST_CASE("a message LIST says is larger than max_message_size is skipped, never RETR'd") {
  // 5 GB claimed by LIST (and STAT) for message 2.
  HostileServer server(R"({"list_size": {"2": 5000000000}})", 4);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  // An error naming the account, the server, the message, its size and the
  // limit; the others are archived (and deleted), but the pass fails.
  CheckAccountError(run, server, "msg0002-1");
  CHECK_THAT(run.err, Contains("5000000000"));
  CHECK_THAT(run.err, Contains("max_message_size"));
  CHECK(server.CountCommands("RETR 2") == 0);
  CHECK(server.CountCommands("DELE 2") == 0);
  CHECK(server.Mailbox().count("msg0002-1") == 1);
  std::set<std::string> archived = CheckNothingLost(vault, server);
  CHECK(archived == std::set<std::string>{"msg0001-1", "msg0003-1", "msg0004-1"});
}

TEST_CASE("a server that stalls ends in a timeout error within bounded time") {
  auto [scenario, expect] = GENERATE(table<std::string, std::string>({
      // Accepts, never greets.
      {R"({"actions": [{"on": "greeting", "stall": true}]})", "greeting"},
      // Silent after UIDL.
      {R"({"actions": [{"on": "UIDL", "stall": true}]})", "UIDL"},
      // Message 2 stops after 3000 octets and the connection stays open.
      {R"({"actions": [{"on": "RETR", "msg": 2, "cut_after": 3000, "then": "stall"}]})", "RETR 2"},
  }));
  HostileServer server(scenario, 3);
  Vault vault({.port = server.port(),
               .retention = "delete_after_archive",
               .extra = "reply_timeout = 1\nidle_timeout = 2s\nconnect_timeout = 1\n"});
  Measured run = vault.Sync(30);
  INFO("scenario " << scenario);
  CheckAccountError(run, server, "timeout");
  CHECK_THAT(run.err, Contains(expect));
  CHECK(run.seconds < 10);
  CheckNoDele(server);
  CheckArchiveExact(vault, server);
}

TEST_CASE("a server that never accepts the connection ends in a connect timeout") {
  HostileServer server(R"({"unaccepting": true})", 1);
  Vault vault({.port = server.port(), .extra = "connect_timeout = 1\n"});
  Measured run = vault.Sync(30);
  CheckAccountError(run, server, "timeout");
  CHECK(run.seconds < 10);
}

TEST_CASE("pipelining: RETR and DELE are sent ahead when CAPA has PIPELINING, not otherwise") {
  auto [announced, configured] = GENERATE(table<bool, bool>({
      {true, true},
      {true, false},  // pipelining = false
      {false, true},  // the server does not announce it
  }));
  HostileServer server(std::string(R"({"pipelining": )") + (announced ? "true" : "false") + "}", 12,
                       5);
  Vault vault({.port = server.port(),
               .retention = "delete_after_archive",
               .extra = std::string("pipelining = ") + (configured ? "true" : "false") + "\n"});
  Measured run = vault.Sync(30);
  INFO("PIPELINING announced: " << announced << ", pipelining = " << configured << "\n" << run.err);
  CHECK(run.exit_code == 0);
  std::vector<LogLine> log = server.Log();
  CHECK(Pipelined(log, "RETR") == (announced && configured));
  CHECK(Pipelined(log, "DELE") == (announced && configured));
  CHECK(server.Mailbox().empty());
  CHECK(CheckNothingLost(vault, server).size() == 12);
}

// The messages whose RETR reply the server sent in full ("RETR n +OK" in its
// log), by number.
std::set<int> AnsweredRetrs(const HostileServer& server) {
  std::set<int> numbers;
  for (const LogLine& l : server.Log()) {
    int n = 0;
    char ok[4] = {};
    if (l.kind == 'R' && std::sscanf(l.text.c_str(), "RETR %d %3s", &n, ok) == 2 &&
        std::string(ok) == "+OK") {
      numbers.insert(n);
    }
  }
  return numbers;
}

TEST_CASE("a disconnect in the middle of a pipeline loses nothing") {
  // Whether every RETR reply the server sent reaches popvault: not when the
  // close is a RST, which may destroy replies in the client's receive buffer.
  auto [scenario, all_answered_arrive] = GENERATE(table<std::string, bool>({
      // Replies to RETR 1-9 sent, then FIN: RETR 10 and the ones sent ahead
      // are never answered.
      {R"({"pipelining": true, "connections": 1,
           "actions": [{"on": "RETR", "count": 10, "close": "graceful"}]})",
       true},
      // The same, but closed with commands unread: a RST, which may destroy
      // replies the client had not read yet.
      {R"({"pipelining": true, "connections": 1,
           "actions": [{"on": "RETR", "count": 10, "close": true}]})",
       false},
      // All fetched; DELE 1-4 marked, then the connection drops: no QUIT, so
      // the server deletes nothing.
      {R"({"pipelining": true, "connections": 1,
           "actions": [{"on": "DELE", "count": 5, "close": true}]})",
       true},
      // The 12th command received (a few RETRs in) ends the connection before
      // anything more is answered.
      {R"({"pipelining": true, "connections": 1, "drop_after_received": 12})", false},
  }));
  HostileServer server(scenario, 40, 7);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(30);
  INFO("scenario " << scenario << "\n" << run.err);
  CheckAccountError(run, server, "network error");
  CHECK(server.Deleted().empty());
  CHECK(server.Mailbox() == server.original());
  std::set<std::string> archived = CheckArchiveExact(vault, server);
  // What popvault kept is the first k messages, each one the server answered
  // in full: replies are read in order, so a lost one ends what is kept.
  const std::set<int> answered = AnsweredRetrs(server);
  std::set<std::string> prefix;
  for (const auto& [uidl, bytes] : server.original()) {
    if (prefix.size() == archived.size()) break;
    INFO("message " << prefix.size() + 1 << " (" << uidl << ") archived");
    CHECK(answered.count(static_cast<int>(prefix.size()) + 1) == 1);
    prefix.insert(uidl);
  }
  CHECK(archived == prefix);
  if (all_answered_arrive) {
    CHECK(archived.size() == answered.size());
  } else {
    CHECK(archived.size() <= answered.size());
  }

  Measured again = vault.Sync(30);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("40 deleted from server"));
  CHECK(server.Mailbox().empty());
  CHECK(CheckNothingLost(vault, server).size() == 40);
}

TEST_CASE("a server without UIDL: everything archived once by SHA-256, never a DELE") {
  std::string scenario =
      GENERATE(std::string(R"({"actions": [{"on": "UIDL", "reply": "-ERR unknown command"}]})"),
               std::string(R"({"capa_remove": ["UIDL"],
                                "actions": [{"on": "UIDL", "reply": "-ERR unknown command"}]})"));
  HostileServer server(scenario, 5);
  Vault vault({.port = server.port(), .retention = "delete_after_archive"});
  Measured run = vault.Sync(20);
  INFO("scenario " << scenario << "\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.err, Contains("UIDL"));
  CHECK_THAT(run.err, Contains("hostile"));
  std::set<std::string> expected, archived;
  for (const auto& [uidl, bytes] : server.original()) expected.insert(Sha256Hex(bytes));
  std::string out = vault.dir() + "/export";
  CHECK(vault.Popvault("export", {"--output", out}).exit_code == 0);
  std::vector<Archived> first = vault.List();
  for (const Archived& a : first) {
    archived.insert(a.sha256);
    CHECK(Sha256Hex(ReadAll(out + "/hostile/" + a.sha256 + ".eml")) == a.sha256);
  }
  CHECK(archived == expected);

  Measured again = vault.Sync(20);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(vault.List().size() == first.size());  // nothing new stored
  CheckNoDele(server);
}

TEST_CASE("CAPA EXPIRE shorter than the retention keeps mail is warned about") {
  auto [capa, retention, warned] = GENERATE(table<std::string, std::string, bool>({
      {"EXPIRE 30", "keep", true},
      {"EXPIRE 0", "delete_after_days:10", true},
      {"EXPIRE NEVER", "keep", false},
  }));
  HostileServer server(R"({"capa_add": [")" + capa + R"("]})", 2);
  Vault vault({.port = server.port(), .retention = retention});
  Measured run = vault.Sync(20);
  INFO(capa << " with retention " << retention << "\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK((run.err.find("EXPIRE") != std::string::npos) == warned);
  CheckArchiveExact(vault, server);
}

// --- the daemon: which refusals stop polling ----------------------------------

// A running `popvault run` on `vault`'s config; SIGTERM and Wait in Stop().
struct Daemon {
  std::optional<Child> child;
  std::string pidfile;
  int pid = 0;

  explicit Daemon(const Vault& vault) : pidfile(vault.dir() + "/popvault.pid") {
    child.emplace(Spawn(vault.Argv("run", {"--pidfile=" + pidfile})));
    REQUIRE(WaitFor([&] { return (pid = std::atoi(ReadAll(pidfile).c_str())) > 0; }));
  }
  Outcome Stop() {
    REQUIRE(kill(pid, SIGTERM) == 0);
    return child->Wait();
  }
};

// An [account.NAME] section for a hostile server.
std::string AccountSection(const std::string& name, int port) {
  return "\n[account." + name + "]\nhost = 127.0.0.1\nport = " + std::to_string(port) +
         "\ntls = none\nallow_plaintext_auth = true\nuser = " + kUser +
         "\npassword = " + kPassword + "\nstores = local\npoll_interval = 1s\n";
}

// The time of the first log line of connection `conn` whose text starts with `prefix`.
std::optional<double> When(const HostileServer& server, int conn, char kind,
                           const std::string& prefix) {
  for (const LogLine& l : server.Log()) {
    if (l.conn == conn && l.kind == kind && l.text.rfind(prefix, 0) == 0) return l.time;
  }
  return std::nullopt;
}

TEST_CASE("run: [SYS/PERM] and [AUTH] stop polling, [IN-USE] is retried and then archives") {
  HostileServer perm(R"({"login_reply": "-ERR [SYS/PERM] account disabled"})", 1);
  HostileServer auth(R"({"login_reply": "-ERR [AUTH] password expired"})", 1);
  HostileServer busy(R"({"connections": 1, "login_reply": "-ERR [IN-USE] locked"})", 3);
  Vault vault({.port = busy.port(),
               .extra = "poll_interval = 1s\n" + AccountSection("perm", perm.port()) +
                        AccountSection("auth", auth.port())});
  Daemon daemon(vault);
  // The busy account: refused once, retried after a backoff, archived, and
  // polled once more (a third connection). By then the stopped accounts
  // would have been polled again too, were they not stopped.
  CHECK(WaitFor([&] { return When(busy, 2, 'R', "QUIT +OK").has_value(); }, 20));
  CHECK(WaitFor([&] { return When(busy, 3, 'E', "connect").has_value(); }, 20));
  Outcome o = daemon.Stop();
  INFO(o.err);
  CHECK(o.exit_code == 0);
  CHECK(perm.CountCommands("PASS") == 1);
  CHECK(auth.CountCommands("PASS") == 1);
  CHECK_THAT(o.err, Contains("account 'perm' is not polled again"));
  CHECK_THAT(o.err, Contains("[SYS/PERM] account disabled"));
  CHECK_THAT(o.err, Contains("account 'auth' is not polled again"));
  CHECK_THAT(o.err, Contains("[IN-USE] locked"));
  CHECK(CheckArchiveExact(vault, busy).size() == 3);
  CheckNoDele(busy);
}

TEST_CASE("run: a [LOGIN-DELAY] refusal waits the LOGIN-DELAY the server announced") {
  // RFC 2449 §6.8: CAPA before login may announce the delay; the refusal
  // comes on the first connection, so the daemon has never seen a
  // post-login CAPA. Its own backoff (2 s for a 1 s interval) is too short.
  HostileServer server(R"({"connections": 1, "capa_add": ["LOGIN-DELAY 4"],
                           "login_reply": "-ERR [LOGIN-DELAY] wait 4 seconds"})",
                       2);
  Vault vault({.port = server.port(), .extra = "poll_interval = 1s\n"});
  Daemon daemon(vault);
  CHECK(WaitFor([&] { return When(server, 2, 'R', "PASS").has_value(); }, 20));
  Outcome o = daemon.Stop();
  INFO(o.err);
  CHECK(o.exit_code == 0);
  std::optional<double> refused = When(server, 1, 'R', "PASS");
  std::optional<double> retried = When(server, 2, 'E', "connect");
  REQUIRE(refused);
  REQUIRE(retried);
  CHECK(*retried - *refused >= 4.0);
}

}  // namespace
}  // namespace popvault::testing
