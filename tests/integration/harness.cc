#include "harness.h"

#include <Poco/DigestStream.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/SHA2Engine.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "archive/record.h"

extern char** environ;

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;

// The fixture whose env the tests read: Dovecot's, or another server's in a binary
// built for that one (popa3d_tests).
#ifdef POPVAULT_FIXTURE_ENV_OVERRIDE
constexpr const char* kFixtureEnv = POPVAULT_FIXTURE_ENV_OVERRIDE;
#else
constexpr const char* kFixtureEnv = POPVAULT_FIXTURE_ENV;
#endif

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = "/tmp/popvault-it-" + tag + "-XXXXXX";
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

const FixtureEnv& FixtureEnv::Get() {
  static const FixtureEnv env = [] {
    FixtureEnv e;
    std::ifstream in(kFixtureEnv);
    for (std::string line; std::getline(in, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) e.vars_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return e;
  }();
  return env;
}

std::string FixtureEnv::operator[](const std::string& key) const {
  auto it = vars_.find(key);
  INFO("fixture env " << kFixtureEnv << " lacks " << key << " (is its CTest fixture running?)");
  REQUIRE(it != vars_.end());
  return it->second;
}

Child Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::string dir = MakeTempDir("run");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT, 0600);
  std::vector<std::string> args = argv, envs;
  for (char** e = environ; *e != nullptr; ++e) envs.push_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> c_args = CStrings(args), c_env = CStrings(envs);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  INFO("spawning " << argv[0]);
  REQUIRE(rc == 0);
  return Child(pid, dir);
}

Outcome Child::Wait() {
  int status = 0;
  for (int waited = 0; waitpid(pid_, &status, WNOHANG) == 0; ++waited) {
    if (waited == 6000) kill(pid_, SIGKILL);  // 10 minutes: a hang, not a slow test
    usleep(100 * 1000);
  }
  Outcome o;
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  o.out = ReadFile(dir_ + "/out");
  o.err = ReadFile(dir_ + "/err");
  fs::remove_all(dir_);
  return o;
}

Outcome Run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  return Spawn(argv, env).Wait();
}

std::string HexOf(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  return hex;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string Sha256Hex(const std::string& bytes) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(bytes.data(), bytes.size());
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::vector<ServerMessage> DumpMailbox(const std::string& user, bool with_bytes) {
  const FixtureEnv& env = FixtureEnv::Get();
  std::string upper = user;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   POPVAULT_SOURCE_DIR "/tests/tools/pop3_dump.py",
                                   "--host",
                                   env["POP3_HOST"],
                                   "--port",
                                   env["POP3S_PORT"],
                                   "--tls",
                                   "implicit",
                                   "--cafile",
                                   env["CA_FILE"],
                                   "--user",
                                   user,
                                   "--password",
                                   env[upper + "_PASSWORD"]};
  const std::string save_dir = with_bytes ? MakeTempDir("dump") : "";
  if (with_bytes) argv.insert(argv.end(), {"--save-dir", save_dir});
  Outcome o = Run(argv);
  INFO(o.err);
  REQUIRE(o.exit_code == 0);
  std::vector<ServerMessage> messages;
  std::istringstream lines(o.out);
  for (std::string line; std::getline(lines, line);) {
    ServerMessage m;
    std::istringstream fields(line);
    std::getline(fields, m.uidl_hex, '\t');
    std::getline(fields, m.sha256, '\t');
    fields >> m.size;
    // pop3_dump.py numbers the files by message number, 1..n in listing order.
    if (with_bytes) m.bytes = ReadFile(save_dir + "/" + std::to_string(messages.size() + 1));
    messages.push_back(m);
  }
  if (with_bytes) fs::remove_all(save_dir);
  for (const ServerMessage& m : messages) {
    INFO("message " << m.uidl_hex << " as saved by pop3_dump.py");
    if (with_bytes) REQUIRE(Sha256Hex(m.bytes) == m.sha256);
  }
  return messages;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::multiset<std::string> Shas(const std::vector<ServerMessage>& messages) {
  std::multiset<std::string> shas;
  for (const ServerMessage& m : messages) shas.insert(m.sha256);
  return shas;
}

std::set<std::string> ShaSet(const std::vector<ServerMessage>& messages) {
  std::set<std::string> shas;
  for (const ServerMessage& m : messages) shas.insert(m.sha256);
  return shas;
}

std::map<std::string, std::string> ShaByUidl(const std::vector<ServerMessage>& messages) {
  std::map<std::string, std::string> sha_by_uidl;
  for (const ServerMessage& m : messages) sha_by_uidl[m.uidl_hex] = m.sha256;
  return sha_by_uidl;
}

std::set<std::string> RepeatedUidls(const std::vector<ServerMessage>& messages) {
  std::map<std::string, int> times;
  for (const ServerMessage& m : messages) ++times[m.uidl_hex];
  std::set<std::string> repeated;
  for (const auto& [uidl, n] : times) {
    if (n > 1) repeated.insert(uidl);
  }
  return repeated;
}

std::string UidlsNotNamedIn(const std::string& text, const std::set<std::string>& uidls) {
  std::string unnamed;
  for (const std::string& uidl : uidls) {
    if (text.find(Unhex(uidl)) == std::string::npos) unnamed.append(1, ' ').append(Unhex(uidl));
  }
  return unnamed;
}

std::set<std::string> MessagesInTree(const std::string& root) {
  std::set<std::string> shas;
  if (!fs::exists(root + "/messages")) return shas;
  for (const auto& e : fs::recursive_directory_iterator(root + "/messages")) {
    if (e.is_regular_file() && e.path().extension() == ".zst") shas.insert(e.path().stem());
  }
  return shas;
}

bool CorpusMissing() {
  if (FixtureEnv::Get()["CORPUS_PRESENT"] == "1") return false;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    FAIL(
        "the shared corpus is not beside this clone (CI=true: a skip would count as a pass; see "
        "the fixture's start output, POPVAULT_CORPUS_DIR overrides the path)");
  }
  std::cout << "SKIPPED: the shared corpus is not beside this clone\n";
  return true;
}

std::vector<ServerMessage> TrustedMailbox(const std::string& user, size_t at_least) {
  std::string upper = user;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  std::vector<ServerMessage> messages = DumpMailbox(user, /*with_bytes=*/true);
  REQUIRE(messages.size() == std::stoul(FixtureEnv::Get()[upper + "_MESSAGES"]));
  REQUIRE(messages.size() >= at_least);
  REQUIRE(RepeatedUidls(messages).empty());  // the precondition: a trustworthy listing
  return messages;
}

void CheckSyncArchivesThenDeletes(const Workspace& ws, const std::string& user,
                                  const std::vector<ServerMessage>& before) {
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out,
             Catch::Matchers::Contains(std::to_string(before.size()) + " deleted from server"));
  CHECK(DumpMailbox(user).empty());
  CHECK(ShaByUidl(ws.Archived()) == ShaByUidl(before));
  ws.CheckStoresHold(before);  // the server's copies are gone
}

Outcome CheckSyncKeepsUntrustedListing(const Workspace& ws, const std::string& user,
                                       const std::vector<ServerMessage>& before,
                                       const std::set<std::string>& repeated) {
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err.substr(0, 4000));
  CHECK(DumpMailbox(user).size() == before.size());  // no DELE committed
  CHECK_THAT(sync.out, Catch::Matchers::Contains(", 0 deleted from server"));
  const std::string unnamed = UidlsNotNamedIn(sync.err, repeated);
  INFO("repeated UIDLs not named in the warnings:" << unnamed);
  CHECK(unnamed.empty());
  ws.CheckStoresHold(before);
  // The ledger knows each content (identical messages share one entry when known by content,
  // so compare sets).
  CHECK(ShaSet(ws.Archived()) == ShaSet(before));
  return sync;
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string SettledDovecotLog() {
  static int barriers = 0;
  const FixtureEnv& env = FixtureEnv::Get();
  const std::string user =
      "log-barrier-" + std::to_string(getpid()) + "-" + std::to_string(++barriers);
  // Refused (no such user), as intended: only the log line matters.
  Run({"/usr/bin/python3", POPVAULT_SOURCE_DIR "/tests/tools/pop3_dump.py", "--host",
       env["POP3_HOST"], "--port", env["POP3S_PORT"], "--tls", "implicit", "--cafile",
       env["CA_FILE"], "--user", user, "--password", "no-such-user", "--count-only"});
  const std::string needle = "user=<" + user + ">";
  std::string log;
  for (int i = 0; i < 600; ++i) {
    log = ReadFile(env["DOVECOT_LOG"]);
    if (log.find(needle) != std::string::npos) return log;
    usleep(100 * 1000);
  }
  FAIL("Dovecot did not log the barrier login " << needle << " within 60 s");
  return log;
}

void FillMailbox(const std::string& user, int count, int seed) {
  std::string src = MakeTempDir("fill");
  Outcome gen = Run({"/usr/bin/python3", POPVAULT_SOURCE_DIR "/tests/tools/gen_mailbox.py",
                     src + "/Maildir", "--profile", "quirks", "--count", std::to_string(count),
                     "--seed", std::to_string(seed)});
  INFO(gen.err);
  REQUIRE(gen.exit_code == 0);
  Outcome fill = Run({POPVAULT_SOURCE_DIR "/tests/fixtures/dovecot.sh", "fill",
                      FixtureEnv::Get()["DOVECOT_DIR"], user, src + "/Maildir/new"});
  fs::remove_all(src);
  INFO(fill.err);
  REQUIRE(fill.exit_code == 0);
}

Workspace::Workspace(const Account& account) : dir_(MakeTempDir("ws")) {
  config_ = dir_ + "/popvault.ini";
  Rewrite(account);
}

Workspace::~Workspace() { fs::remove_all(dir_); }

void Workspace::Rewrite(const Account& account) {
  const FixtureEnv& env = FixtureEnv::Get();
  std::string upper = account.user;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  bool implicit = account.tls == "implicit";
  std::ofstream(dir_ + "/password") << env[upper + "_PASSWORD"] << "\n";
  std::ofstream(config_) << "[agent]\n"
                         << "state_dir = state\n"
                         << "log_level = warning\n\n"
                         << "[store.local]\n"
                         << "plugin = rocksdb\n"
                         << "path = archive\n\n"
                         << account.store_sections << "\n"
                         << "[account." << account.user << "]\n"
                         << "host = " << (account.host.empty() ? env["POP3_HOST"] : account.host)
                         << "\n"
                         << "port = " << env[implicit ? "POP3S_PORT" : "POP3_PORT"] << "\n"
                         << "tls = " << account.tls << "\n"
                         << "ca_file = "
                         << (account.ca_file.empty() ? env["CA_FILE"] : account.ca_file) << "\n"
                         << "user = " << account.user << "\n"
                         << "password_file = password\n"
                         << "stores = " << account.stores << "\n"
                         << "retention = " << account.retention << "\n"
                         << account.extra;
}

std::vector<std::string> Workspace::PopvaultArgv(const std::string& command,
                                                 const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {POPVAULT_BINARY, command, "--config", config_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Outcome Workspace::Popvault(const std::string& command, const std::vector<std::string>& args,
                            const std::vector<std::string>& env) const {
  return Run(PopvaultArgv(command, args), env);
}

std::vector<ServerMessage> Workspace::Archived() const {
  Outcome o = Popvault("list", {"--json"});
  INFO(o.err);
  REQUIRE(o.exit_code == 0);
  Poco::JSON::Parser parser;
  auto rows = parser.parse(o.out).extract<Poco::JSON::Array::Ptr>();
  std::vector<ServerMessage> archived;
  for (size_t i = 0; i < rows->size(); ++i) {
    auto row = rows->getObject(static_cast<unsigned>(i));
    std::string uidl;
    REQUIRE(DecodeUidl(row->getValue<std::string>("uidl"), &uidl).ok());
    archived.push_back(ServerMessage{HexOf(uidl), row->getValue<std::string>("sha256"),
                                     row->getValue<uint64_t>("size"), ""});
  }
  return archived;
}

void Workspace::CheckStoresHold(const std::vector<ServerMessage>& expected, bool exactly) const {
  std::map<std::string, const ServerMessage*> by_sha;
  for (const ServerMessage& m : expected) {
    INFO("message " << m.uidl_hex << ": the check needs its bytes (DumpMailbox with_bytes)");
    REQUIRE(m.bytes.size() == m.size);
    by_sha.emplace(m.sha256, &m);
  }
  const std::string out = MakeTempDir("stores");
  Outcome read = Run({POPVAULT_READ_STORES_TOOL, config_, POPVAULT_PLUGIN_DIR, out});
  INFO("read_stores: " << read.out << read.err);
  CHECK(read.exit_code == 0);
  std::istringstream stores(read.out);
  int store_count = 0;
  for (std::string store, objects;
       std::getline(stores, store, '\t') && std::getline(stores, objects); ++store_count) {
    INFO("store '" << store << "'");
    std::set<std::string> held;
    if (fs::is_directory(out + "/" + store)) {
      for (const auto& e : fs::directory_iterator(out + "/" + store)) {
        held.insert(e.path().filename());
      }
    }
    for (const auto& [sha, m] : by_sha) {
      INFO("message " << m->uidl_hex << " (sha256 " << sha << ", " << m->size << " bytes)");
      CHECK(held.count(sha) == 1);
      if (held.count(sha) == 0) continue;
      const std::string bytes = ReadFile(out + "/" + store + "/" + sha);
      CHECK(bytes.size() == m->size);
      CHECK((bytes == m->bytes));  // not printed: may be megabytes
    }
    for (const std::string& sha : held) {
      INFO("store holds " << sha << ", which is not one of the expected messages");
      CHECK((!exactly || by_sha.count(sha) == 1));
    }
  }
  fs::remove_all(out);
  CHECK(store_count > 0);
}

}  // namespace popvault::testing
