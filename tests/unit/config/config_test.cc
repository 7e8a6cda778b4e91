#include "config/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace popvault {
namespace {

namespace fs = std::filesystem;

// A scratch directory holding one config file and its password file.
class ConfigDir {
 public:
  ConfigDir() {
    char tmpl[] = "/tmp/popvault-config-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "pw") << "s3cret\n";
    std::ofstream(dir_ / "ca.pem") << "not checked here\n";
  }
  ~ConfigDir() { fs::remove_all(dir_); }

  std::string Write(const std::string& text) {
    std::string path = (dir_ / "popvault.ini").string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir() const { return dir_; }

 private:
  fs::path dir_;
};

const char* kValid = R"([agent]
state_dir = state
log_level = warning

# the embedded store
[store.local]
plugin = rocksdb
path = archive
compression_level = 5

[account.office]
host = pop.example.com
user = office@example.com
password_file = pw
ca_file = ca.pem
stores = local
retention = delete_after_archive
poll_interval = 15m
)";

TEST_CASE("a valid config loads with defaults and relative paths resolved") {
  ConfigDir dir;
  Config config;
  REQUIRE(LoadConfig(dir.Write(kValid), &config).ok());
  CHECK(config.state_dir == (dir.dir() / "state").string());
  CHECK(config.log_level == "warning");
  REQUIRE(config.stores.size() == 1);
  REQUIRE(config.stores[0].options.size() == 1);  // the plugin's keys, checked by the loader
  CHECK(config.stores[0].options[0].key == "path");
  CHECK(config.stores[0].options[0].value == "archive");
  CHECK(config.stores[0].options[0].line == 8);
  CHECK(ResolveRelativeTo(config.path, "archive") == (dir.dir() / "archive").string());
  CHECK(config.stores[0].compression_level == 5);
  REQUIRE(config.accounts.size() == 1);
  const AccountConfig& a = config.accounts[0];
  CHECK(a.name == "office");
  CHECK(a.pop3.port == 995);  // the default for tls = implicit
  CHECK(a.pop3.tls == TlsMode::kImplicit);
  CHECK(a.pop3.password == "s3cret");  // trailing newline of the file dropped
  CHECK_FALSE(a.pop3.allow_plaintext_auth);
  CHECK(a.pop3.ca_file == (dir.dir() / "ca.pem").string());
  CHECK(a.stores == std::vector<std::string>{"local"});
  CHECK(a.retention.kind() == RetentionPolicy::Kind::kDeleteAfterArchive);
  CHECK(a.poll_interval == std::chrono::seconds(900));
}

TEST_CASE("starttls and none default to port 110") {
  ConfigDir dir;
  std::string text = kValid;
  text += "tls = starttls\n";
  Config config;
  REQUIRE(LoadConfig(dir.Write(text), &config).ok());
  CHECK(config.accounts[0].pop3.port == 110);
  CHECK(config.accounts[0].pop3.tls == TlsMode::kStartTls);
}

// Replaces the first occurrence of `from` in the valid config.
std::string Edit(const std::string& from, const std::string& to) {
  std::string text = kValid;
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

TEST_CASE("bad configs fail with an error naming file, line, section and key") {
  struct Case {
    std::string text;
    std::string expected;  // substring of the error, after the file path
  };
  const Case cases[] = {
      {Edit("log_level = warning", "log_level = loud"),
       ":3: [agent] log_level: expected one of fatal"},
      {Edit("log_level = warning", "colour = blue"), ":3: [agent] colour: unknown key"},
      {Edit("state_dir = state\n", ""), ":1: [agent] state_dir: missing required key"},
      {Edit("[agent]\n", ""), "key outside any [section]"},
      {Edit("plugin = rocksdb", "plugin ="), ":7: [store.local] plugin: empty value"},
      {Edit("plugin = rocksdb", "plugin = ../evil"),
       ":7: [store.local] plugin: expected a plugin name"},
      {Edit("plugin = rocksdb\n", ""), ":6: [store.local] plugin: missing required key"},
      {Edit("compression_level = 5", "compression_level = 42"),
       ":9: [store.local] compression_level: expected an integer from 1 to 19, got '42'"},
      {Edit("compression_level = 5", "compression_level = 5x"),
       "compression_level: expected an integer"},
      {Edit("[store.local]", "[store.my store]"), "[store.my store] name must be"},
      {Edit("[store.local]", "[stores.local]"), "[stores.local] unknown section"},
      {Edit("host = pop.example.com\n", ""), ":11: [account.office] host: missing required key"},
      {Edit("host = pop.example.com", "host = pop.example.com\nport = 99999"),
       "[account.office] port: expected an integer from 1 to 65535, got '99999'"},
      {Edit("host = pop.example.com", "host = pop.example.com\ntls = maybe"),
       "[account.office] tls: expected implicit, starttls or none, got 'maybe'"},
      {Edit("stores = local", "stores = local, offsite"),
       "[account.office] stores: no [store.offsite] section"},
      {Edit("stores = local", "stores = local,local"), "store 'local' listed twice"},
      {Edit("retention = delete_after_archive", "retention = forever"),
       "[account.office] retention: expected keep or delete_after_archive, got 'forever'"},
      {Edit("poll_interval = 15m", "poll_interval = soon"),
       "[account.office] poll_interval: expected a positive duration"},
      {Edit("poll_interval = 15m", "poll_interval = 0"), "poll_interval: expected a positive"},
      {Edit("password_file = pw", "password_file = missing.txt"),
       "password_file: cannot read 'missing.txt'"},
      {Edit("password_file = pw", "password_file = pw\npassword = x"),
       "give either password or password_file"},
      {Edit("password_file = pw\n", ""), "[account.office] password: missing"},
      {Edit("ca_file = ca.pem", "ca_file = nope.pem"), "ca_file: cannot read 'nope.pem'"},
      {Edit("host = pop.example.com", "host = pop.example.com\nallow_plaintext_auth = sure"),
       "allow_plaintext_auth: expected true or false, got 'sure'"},
      {Edit("host = pop.example.com", "host = pop.example.com\nauth = kerberos"),
       "auth: expected auto, user or apop"},
      {Edit("host = pop.example.com", "host = pop.example.com\nhost = other"),
       ":13: [account.office] host: repeats line 12"},
      {Edit("[account.office]", "[store.local]"), "section [store.local] repeats line 6"},
      {Edit("[account.office]", "[account.office"), "section header lacks ']'"},
  };
  ConfigDir dir;
  for (const Case& c : cases) {
    std::string path = dir.Write(c.text);
    Config config;
    Status s = LoadConfig(path, &config);
    INFO("expected: " << c.expected);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == Status::Code::kInvalidArgument);
    CHECK(s.message().rfind(path, 0) == 0);
    CHECK_THAT(s.message(), Catch::Matchers::Contains(c.expected));
  }
}

TEST_CASE("a config without accounts or without [agent] is rejected") {
  ConfigDir dir;
  Config config;
  Status s = LoadConfig(dir.Write("[agent]\nstate_dir = /tmp/x\n"), &config);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("no [account.NAME] section"));
  s = LoadConfig(dir.Write("[store.a]\nplugin = rocksdb\npath = p\n"), &config);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("missing [agent] section"));
  s = LoadConfig((dir.dir() / "absent.ini").string(), &config);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("cannot open config file"));
}

TEST_CASE("errors never contain the password") {
  ConfigDir dir;
  Config config;
  Status s =
      LoadConfig(dir.Write(Edit("password_file = pw", "password = hunter2\nbogus = 1")), &config);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), !Catch::Matchers::Contains("hunter2"));
}

}  // namespace
}  // namespace popvault
