#include "config/config.h"

#include <Poco/JSON/Parser.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
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

  std::string Write(const std::string& text, const std::string& name = "popvault.ini") {
    std::string path = (dir_ / name).string();
    fs::create_directories(fs::path(path).parent_path());
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
       ":3: [agent] log_level: expected fatal, critical, error, warning, notice, information, "
       "debug or trace, got 'loud'"},
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
       ":17: [account.office] retention: "},  // then RetentionPolicy::Parse's words
      {Edit("poll_interval = 15m", "poll_interval = soon"),
       "[account.office] poll_interval: expected a positive duration"},
      {Edit("poll_interval = 15m", "poll_interval = 0"), "poll_interval: expected a positive"},
      {Edit("password_file = pw", "password_file = missing.txt"),
       "password_file: cannot read 'missing.txt'"},
      {Edit("password_file = pw", "password_file = pw\npassword = x"),
       "give only one of password, password_file, password_command, oauth_token_command (password "
       "is set too)"},
      {Edit("password_file = pw\n", ""), "[account.office] password: missing"},
      {Edit("ca_file = ca.pem", "ca_file = nope.pem"), "ca_file: cannot read 'nope.pem'"},
      {Edit("host = pop.example.com", "host = pop.example.com\nallow_plaintext_auth = sure"),
       "allow_plaintext_auth: expected true or false, got 'sure'"},
      {Edit("host = pop.example.com", "host = pop.example.com\nauth = kerberos"),
       "auth: expected auto, user, apop, plain, login, cram-md5, scram-sha-1, scram-sha-256, "
       "xoauth2 or oauthbearer"},
      {Edit("host = pop.example.com", "host = pop.example.com\nhost = other"),
       ":13: [account.office] host: repeats line 12"},
      {Edit("[account.office]", "[store.local]"), "section [store.local] repeats line 6"},
      {Edit("[account.office]", "[account.office"), "section header lacks ']'"},
      {Edit("log_level = warning", "max_concurrent_accounts = 0"),
       ":3: [agent] max_concurrent_accounts: expected an integer from 1 to 64, got '0'"},
      {Edit("log_level = warning", "log_format = xml"),
       ":3: [agent] log_format: expected text or json, got 'xml'"},
      {Edit("log_level = warning", "log_syslog = maybe"),
       ":3: [agent] log_syslog: expected true or false, got 'maybe'"},
      {Edit("log_level = warning", "metrics_listen = 9393"),
       ":3: [agent] metrics_listen: expected host:port like 127.0.0.1:9393"},
      {Edit("log_level = warning", "include_dir = no-such-dir"),
       ":3: [agent] include_dir: cannot read directory 'no-such-dir'"},
      {Edit("poll_interval = 15m", "archive_retention_days = 36501"),
       ":18: [account.office] archive_retention_days: expected an integer from 0 to 36500"},
      {Edit("poll_interval = 15m", "legal_hold = perhaps"),
       ":18: [account.office] legal_hold: expected true or false, got 'perhaps'"},
      {Edit("user = office@example.com", "user = ${POPVAULT_TEST_UNSET_VAR}"),
       ":13: [account.office] user: environment variable 'POPVAULT_TEST_UNSET_VAR' is not set"},
      {Edit("user = office@example.com", "user = ${HOME"),
       ":13: [account.office] user: unclosed ${"},
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

TEST_CASE("the new [agent] and [account] keys are read") {
  ConfigDir dir;
  std::string text = Edit("log_level = warning",
                          "log_format = json\nlog_file = log/popvault.log\nlog_syslog = yes\n"
                          "audit_log = /var/log/audit.log\nmetrics_listen = 127.0.0.1:9393\n"
                          "max_concurrent_accounts = 64");
  text += "archive_retention_days = 3650\nlegal_hold = true\n";
  Config config;
  REQUIRE(LoadConfig(dir.Write(text), &config).ok());
  CHECK(config.log_format == "json");
  CHECK(config.log_file == (dir.dir() / "log/popvault.log").string());
  CHECK(config.log_syslog);
  CHECK(config.audit_log == "/var/log/audit.log");
  CHECK(config.metrics_listen == "127.0.0.1:9393");
  CHECK(config.max_concurrent_accounts == 64);
  CHECK(config.accounts[0].archive_retention_days == 3650);
  CHECK(config.accounts[0].legal_hold);
}

// The default the compiled-in schema declares for KEY of `kind`.
std::string SchemaDefault(const std::string& kind, const std::string& key) {
  Poco::JSON::Parser parser;
  auto root = parser.parse(ConfigSchema::EmbeddedText()).extract<Poco::JSON::Object::Ptr>();
  auto property =
      root->getObject("definitions")->getObject(kind)->getObject("properties")->getObject(key);
  REQUIRE_FALSE(property.isNull());
  return property->get("default").convert<std::string>();
}

TEST_CASE("absent keys take the defaults the schema declares") {
  ConfigDir dir;
  Config config;
  REQUIRE(LoadConfig(dir.Write(Edit("retention = delete_after_archive\n", "")), &config).ok());
  CHECK(config.log_format == SchemaDefault("agent", "log_format"));
  CHECK(std::to_string(config.max_concurrent_accounts) ==
        SchemaDefault("agent", "max_concurrent_accounts"));
  CHECK(config.log_file == SchemaDefault("agent", "log_file"));
  CHECK((config.log_syslog ? "true" : "false") == SchemaDefault("agent", "log_syslog"));
  CHECK(config.metrics_listen == SchemaDefault("agent", "metrics_listen"));
  const AccountConfig& a = config.accounts[0];
  CHECK(std::to_string(a.archive_retention_days) ==
        SchemaDefault("account", "archive_retention_days"));
  CHECK((a.legal_hold ? "true" : "false") == SchemaDefault("account", "legal_hold"));
  RetentionPolicy declared;
  REQUIRE(RetentionPolicy::Parse(SchemaDefault("account", "retention"), &declared).ok());
  CHECK(a.retention.ToString() == declared.ToString());
  CHECK(config.audit_log == config.state_dir + "/audit.log");  // derived, not declared
}

TEST_CASE("defaults follow the schema, not constants in the code") {
  std::string text = ConfigSchema::EmbeddedText();
  const std::string from = "\"maximum\": 64,\n          \"default\": 4";
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), "\"maximum\": 64,\n          \"default\": 7");
  std::unique_ptr<ConfigSchema> schema;
  REQUIRE(ConfigSchema::Parse(text, &schema).ok());
  ConfigDir dir;
  Config config;
  REQUIRE(LoadConfig(dir.Write(kValid), *schema, &config).ok());
  CHECK(config.max_concurrent_accounts == 7);
}

TEST_CASE("${NAME} takes the environment variable, $$ is a literal $") {
  setenv("POPVAULT_TEST_PW", "from-env$1", 1);
  ConfigDir dir;
  Config config;
  REQUIRE(LoadConfig(dir.Write(Edit("password_file = pw", "password = x${POPVAULT_TEST_PW}y$$z$w")),
                     &config)
              .ok());
  CHECK(config.accounts[0].pop3.password == "xfrom-env$1y$z$w");
  unsetenv("POPVAULT_TEST_PW");
}

TEST_CASE("errors quote a value as written, never what ${NAME} expanded to") {
  setenv("POPVAULT_TEST_PORT", "topsecret", 1);
  ConfigDir dir;
  Config config;
  Status s = LoadConfig(
      dir.Write(Edit("host = pop.example.com", "host = h\nport = ${POPVAULT_TEST_PORT}")), &config);
  unsetenv("POPVAULT_TEST_PORT");
  CHECK_THAT(s.message(), Catch::Matchers::Contains("port: expected an integer from 1 to 65535, "
                                                    "got '${POPVAULT_TEST_PORT}'"));
  CHECK_THAT(s.message(), !Catch::Matchers::Contains("topsecret"));
}

TEST_CASE("include_dir reads every *.conf in name order, and errors name the included file") {
  ConfigDir dir;
  std::string account = kValid;
  account = account.substr(account.find("[account.office]"));
  std::string main = Edit(account, "");
  main.insert(main.find("log_level"), "include_dir = conf.d\n");
  dir.Write("[account.b]\nhost = b\nuser = u\npassword = p\nstores = local\n", "conf.d/2-b.conf");
  dir.Write("[account.a]\nhost = a\nuser = u\npassword = p\nstores = local\n", "conf.d/1-a.conf");
  dir.Write("[account.ignored]\n", "conf.d/notes.txt");
  std::string path = dir.Write(main);
  Config config;
  REQUIRE(LoadConfig(path, &config).ok());
  REQUIRE(config.accounts.size() == 2);
  CHECK(config.accounts[0].name == "a");
  CHECK(config.accounts[1].name == "b");

  const std::string bad = (dir.dir() / "conf.d/2-b.conf").string();
  dir.Write("[account.b]\nhost = b\nuser = u\npassword = p\nstores = local\nport = 0\n",
            "conf.d/2-b.conf");
  Status s = LoadConfig(path, &config);
  CHECK(s.message() == bad + ":6: [account.b] port: expected an integer from 1 to 65535, got '0'");

  dir.Write("[store.local]\nplugin = rocksdb\n", "conf.d/2-b.conf");
  s = LoadConfig(path, &config);
  CHECK(s.message() == bad + ":1: section [store.local] repeats " + path + ":7");

  dir.Write("[account.b]\nhost = b\nuser = ${POPVAULT_TEST_UNSET_VAR}\n", "conf.d/2-b.conf");
  s = LoadConfig(path, &config);
  CHECK(s.message() == bad +
                           ":3: [account.b] user: environment variable "
                           "'POPVAULT_TEST_UNSET_VAR' is not set");
}

TEST_CASE("the effective config has every default and masks secrets") {
  ConfigDir dir;
  std::string text = Edit("password_file = pw", "password = hunter2");
  text.insert(text.find("compression_level"), "token = tok3n\n");
  Config config;
  REQUIRE(LoadConfig(dir.Write(text), &config).ok());
  std::map<std::string, std::vector<PluginOption>> plugins;
  plugins["local"] = {{.name = "path", .is_path = true}, {.name = "token", .secret = true}};
  std::string out = RenderEffectiveConfig(config, plugins);
  CHECK_THAT(out, !Catch::Matchers::Contains("hunter2"));
  CHECK_THAT(out, !Catch::Matchers::Contains("tok3n"));
  CHECK_THAT(out, Catch::Matchers::Contains("password = ********\n"));
  CHECK_THAT(out, Catch::Matchers::Contains("token = ********\n"));
  CHECK_THAT(out, Catch::Matchers::Contains("path = " + (dir.dir() / "archive").string() + "\n"));
  CHECK_THAT(out, Catch::Matchers::Contains("max_concurrent_accounts = 4  ; default\n"));
  CHECK_THAT(out, Catch::Matchers::Contains("port = 995  ; default\n"));
  CHECK_THAT(out, Catch::Matchers::Contains("audit_log = " + (dir.dir() / "state").string() +
                                            "/audit.log  ; default\n"));
}

TEST_CASE("a password file others can read is a warning") {
  ConfigDir dir;
  Config config;
  chmod((dir.dir() / "pw").c_str(), 0644);
  REQUIRE(LoadConfig(dir.Write(kValid), &config).ok());
  REQUIRE(config.warnings.size() == 1);
  CHECK_THAT(config.warnings[0],
             Catch::Matchers::Contains(":14: [account.office] password_file: 'pw' is readable"));
  chmod((dir.dir() / "pw").c_str(), 0600);
  REQUIRE(LoadConfig(dir.Write(kValid), &config).ok());
  CHECK(config.warnings.empty());
}

}  // namespace
}  // namespace popvault
