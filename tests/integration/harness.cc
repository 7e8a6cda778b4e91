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
#include <filesystem>
#include <fstream>
#include <sstream>

#include "archive/record.h"

extern char** environ;

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

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
    std::ifstream in(POPVAULT_FIXTURE_ENV);
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
  INFO("fixture env " << POPVAULT_FIXTURE_ENV << " lacks " << key
                      << " (is the CTest fixture 'dovecot' running?)");
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

std::string Sha256Hex(const std::string& bytes) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(bytes.data(), bytes.size());
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::vector<ServerMessage> DumpMailbox(const std::string& user) {
  const FixtureEnv& env = FixtureEnv::Get();
  std::string upper = user;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  Outcome o = Run({"/usr/bin/python3", POPVAULT_SOURCE_DIR "/tests/tools/pop3_dump.py", "--host",
                   env["POP3_HOST"], "--port", env["POP3S_PORT"], "--tls", "implicit", "--cafile",
                   env["CA_FILE"], "--user", user, "--password", env[upper + "_PASSWORD"]});
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
    messages.push_back(m);
  }
  return messages;
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
                                     row->getValue<uint64_t>("size")});
  }
  return archived;
}

}  // namespace popvault::testing
