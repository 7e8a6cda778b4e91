// `popvault run` against the private Dovecot (and a fake POP3 server for
// LOGIN-DELAY): new mail is archived on schedule, SIGHUP adds an account and
// survives a bad config, SIGTERM mid-sync loses nothing and exits 0, and
// /metrics tells the truth. Progress is observed through /metrics (the
// ledger is locked while the daemon runs) and every wait polls a condition
// with a generous deadline.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;

// Polls `condition` every 100 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& condition, int seconds = 90) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

int FreePort() {
  Outcome o = Run({"/usr/bin/python3", "-c",
                   "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
                   "print(s.getsockname()[1])"});
  REQUIRE(o.exit_code == 0);
  return std::stoi(o.out);
}

// GET http://127.0.0.1:port/path; "" if nothing answers or not 200.
std::string HttpGet(int port, const std::string& path) {
  Outcome o = Run({"/usr/bin/python3", "-c",
                   "import sys, urllib.request; "
                   "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read()"
                   ".decode())",
                   "http://127.0.0.1:" + std::to_string(port) + path});
  return o.exit_code == 0 ? o.out : "";
}

// The value of `metric{account="account"...}` in a Prometheus text page; -1 if absent.
double Metric(const std::string& page, const std::string& metric, const std::string& account) {
  std::regex line("^" + metric + R"re(\{account="([^"]*)"[^}]*\} (\S+)$)re");
  std::istringstream lines(page);
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line) && m[1] == account) return std::stod(m[2]);
  }
  return -1;
}

// The running daemon: its pid comes from --pidfile.
struct Daemon {
  Child child;
  std::string pidfile;
  int Pid() {
    int pid = 0;
    REQUIRE(WaitFor([&] { return (pid = std::atoi(ReadFile(pidfile).c_str())) > 0; }));
    return pid;
  }
};

Daemon StartDaemon(const Workspace& ws, const std::vector<std::string>& env = {}) {
  std::string pidfile = ws.dir() + "/popvault.pid";
  Child child = Spawn(ws.PopvaultArgv("run", {"--pidfile=" + pidfile}), env);
  return Daemon{child, pidfile};
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(toupper(c));
  return s;
}

// An [account.USER] section for a fixture user, as the harness writes one.
std::string AccountSection(const Workspace& ws, const std::string& user, const std::string& extra) {
  const FixtureEnv& env = FixtureEnv::Get();
  std::ofstream(ws.dir() + "/password-" + user) << env[Upper(user) + "_PASSWORD"] << "\n";
  return "\n[account." + user + "]\nhost = " + env["POP3_HOST"] + "\nport = " + env["POP3S_PORT"] +
         "\ntls = implicit\nca_file = " + env["CA_FILE"] + "\nuser = " + user +
         "\npassword_file = password-" + user + "\nstores = local\n" + extra;
}

void AddAgentKey(const Workspace& ws, const std::string& line) {
  std::string config = ReadFile(ws.config());
  config.replace(config.find("[agent]\n"), 8, "[agent]\n" + line + "\n");
  std::ofstream(ws.config()) << config;
}

TEST_CASE("run: archives new mail on schedule, reloads on SIGHUP, stops on SIGTERM") {
  Workspace ws({.user = "daemon1", .extra = "poll_interval = 1s\n"});
  int port = FreePort();
  AddAgentKey(ws, "metrics_listen = 127.0.0.1:" + std::to_string(port));
  Daemon d = StartDaemon(ws);
  int pid = d.Pid();
  REQUIRE(WaitFor([&] { return HttpGet(port, "/healthz") == "ok\n"; }));
  auto archived = [&](const std::string& account) {
    return Metric(HttpGet(port, "/metrics"), "popvault_messages_archived_total", account);
  };

  // Mail that arrives while the daemon runs is archived by a later poll.
  FillMailbox("daemon1", 5, 71);
  CHECK(WaitFor([&] { return archived("daemon1") == 5; }));
  // `popvault list` reads the ledger the daemon holds open.
  CHECK(ws.Archived().size() == 5);
  FillMailbox("daemon1", 3, 72);
  CHECK(WaitFor([&] { return archived("daemon1") == 8; }));

  // SIGHUP: a new account is polled without a restart.
  FillMailbox("daemon2", 4, 73);
  std::ofstream(ws.config(), std::ios::app)
      << AccountSection(ws, "daemon2", "poll_interval = 1s\n");
  REQUIRE(kill(pid, SIGHUP) == 0);
  CHECK(WaitFor([&] { return archived("daemon2") == 4; }));

  // A broken config is rejected; the running one goes on polling.
  std::string good = ReadFile(ws.config());
  std::ofstream(ws.config()) << good << "\n[account.broken]\nport = not-a-number\n";
  REQUIRE(kill(pid, SIGHUP) == 0);
  FillMailbox("daemon2", 2, 74);
  CHECK(WaitFor([&] { return archived("daemon2") == 6; }));
  CHECK(HttpGet(port, "/healthz") == "ok\n");

  // The metrics page: every family typed, per-account values consistent.
  std::string page = HttpGet(port, "/metrics");
  CHECK(page.find("# TYPE popvault_messages_archived_total counter") != std::string::npos);
  CHECK(Metric(page, "popvault_last_success_timestamp_seconds", "daemon1") > 1.6e9);
  CHECK(Metric(page, "popvault_bytes_archived_total", "daemon1") > 0);
  CHECK(Metric(page, "popvault_messages_on_server", "daemon1") == 8);
  // The generated mailboxes hold some byte-identical messages: each extra
  // copy is a dedup hit.
  std::multiset<std::string> daemon1 = Shas(DumpMailbox("daemon1"));
  std::set<std::string> distinct(daemon1.begin(), daemon1.end());
  CHECK(Metric(page, "popvault_dedup_hits_total", "daemon1") ==
        static_cast<double>(daemon1.size() - distinct.size()));
  CHECK(Metric(page, "popvault_pending_deletes", "daemon1") == 0);
  CHECK(Metric(page, "popvault_polls_total", "daemon1") >= 2);
  CHECK(Metric(page, "popvault_account_stopped", "daemon2") == 0);
  CHECK(page.find("popvault_last_error_info") != std::string::npos);  // HELP only
  CHECK(Metric(page, "popvault_last_error_info", "daemon1") == -1);

  REQUIRE(kill(pid, SIGTERM) == 0);
  Outcome o = d.child.Wait();
  INFO(o.err);
  CHECK(o.exit_code == 0);
  CHECK_FALSE(fs::exists(d.pidfile));
  std::ofstream(ws.config()) << good;
  std::vector<ServerMessage> all = DumpMailbox("daemon1", /*with_bytes=*/true),
                             more = DumpMailbox("daemon2", /*with_bytes=*/true);
  all.insert(all.end(), more.begin(), more.end());
  CHECK(Shas(ws.Archived()) == Shas(all));
  ws.CheckStoresHold(all);
}

TEST_CASE("run: SIGTERM in the middle of a pass loses nothing and exits 0 promptly") {
  FillMailbox("daemon3", 20, 75);
  const std::vector<ServerMessage> original = DumpMailbox("daemon3", /*with_bytes=*/true);
  REQUIRE(original.size() == 20);
  Workspace ws(
      {.user = "daemon3", .retention = "delete_after_archive", .extra = "poll_interval = 1s\n"});
  std::string pause = ws.dir() + "/paused";
  Daemon d = StartDaemon(ws, {"POPVAULT_PAUSE_AT=stored:5:" + pause});
  int pid = d.Pid();
  REQUIRE(WaitFor([&] { return fs::exists(pause); }));  // the 5th message is stored, not committed
  REQUIRE(kill(pid, SIGTERM) == 0);
  auto asked = std::chrono::steady_clock::now();
  fs::remove(pause);
  Outcome o = d.child.Wait();
  INFO(o.err);
  CHECK(o.exit_code == 0);
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(30));

  // The pass committed what it had stored and deleted nothing unverified.
  std::vector<ServerMessage> archived = ws.Archived();
  CHECK(archived.size() >= 5);
  CHECK(archived.size() < original.size());  // it did stop early
  std::set<std::string> uidls;
  std::multiset<std::string> have;
  for (const ServerMessage& m : archived) {
    CHECK(uidls.insert(m.uidl_hex).second);
    have.insert(m.sha256);
  }
  for (const ServerMessage& m : DumpMailbox("daemon3")) {
    if (!uidls.count(m.uidl_hex)) have.insert(m.sha256);
  }
  CHECK(have == Shas(original));

  // The next run finishes the job.
  Outcome sync = ws.Popvault("sync");
  INFO(sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK(DumpMailbox("daemon3").empty());
  CHECK(Shas(ws.Archived()) == Shas(original));
  ws.CheckStoresHold(original);  // the server's copies are gone
}

TEST_CASE("run: honours the server's LOGIN-DELAY") {
  std::string dir = fs::temp_directory_path() / ("popvault-it-fake-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string log = dir + "/logins", port_file = dir + "/port";
  Child server =
      Spawn({"/usr/bin/python3", POPVAULT_SOURCE_DIR "/tests/tools/fake_pop3.py", "--port-file",
             port_file, "--log", log, "--user", "u", "--password", "p", "--login-delay", "3"});
  REQUIRE(WaitFor([&] { return fs::exists(port_file); }));
  int fake_port = 0, fake_pid = 0;
  std::istringstream(ReadFile(port_file)) >> fake_port >> fake_pid;
  REQUIRE(fake_pid > 0);
  std::ofstream(dir + "/popvault.ini")
      << "[agent]\nstate_dir = state\nlog_level = warning\n\n"
      << "[store.local]\nplugin = rocksdb\npath = archive\n\n"
      << "[account.fake]\nhost = 127.0.0.1\nport = " << fake_port
      << "\ntls = none\nallow_plaintext_auth = true\nuser = u\npassword = p\n"
      << "stores = local\npoll_interval = 1s\n";
  std::string pidfile = dir + "/popvault.pid";
  Child popvault =
      Spawn({POPVAULT_BINARY, "run", "--config", dir + "/popvault.ini", "--pidfile=" + pidfile});
  Daemon d{popvault, pidfile};
  int pid = d.Pid();

  // Three logins: a 1 s interval would allow them within ~3 s; the announced
  // delay spaces them by at least 3 s, and none is refused.
  auto lines = [&] {
    std::vector<std::pair<double, std::string>> out;
    std::istringstream in(ReadFile(log));
    double t;
    std::string result;
    while (in >> t >> result) out.emplace_back(t, result);
    return out;
  };
  CHECK(WaitFor([&] { return lines().size() >= 3; }, 60));
  REQUIRE(kill(pid, SIGTERM) == 0);
  Outcome o = d.child.Wait();
  INFO(o.err);
  CHECK(o.exit_code == 0);
  kill(fake_pid, SIGTERM);
  server.Wait();
  auto logins = lines();
  REQUIRE(logins.size() >= 3);
  for (size_t i = 0; i < logins.size(); ++i) {
    INFO("login " << i << " at " << logins[i].first);
    CHECK(logins[i].second == "ok");
    if (i > 0) CHECK(logins[i].first - logins[i - 1].first >= 3.0);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace popvault::testing
