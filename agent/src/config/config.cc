#include "config/config.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "config/ini_file.h"

namespace popvault {
namespace {

namespace fs = std::filesystem;

// Reads one section's keys, checking each against the section's allowed set
// and producing errors that name file, line, section and key.
class SectionReader {
 public:
  SectionReader(const std::string& path, const IniSection& section)
      : path_(path), section_(section) {}

  Status CheckKeys(const std::set<std::string>& allowed) const {
    for (const IniEntry& e : section_.entries) {
      if (!allowed.count(e.key)) return Error(e, "unknown key");
    }
    return Status::OK();
  }

  const IniEntry* Find(const std::string& key) const { return section_.Find(key); }

  Status Required(const std::string& key, std::string* value) const {
    const IniEntry* e = Find(key);
    if (e == nullptr) return SectionError(key + ": missing required key");
    if (e->value.empty()) return Error(*e, "empty value");
    *value = e->value;
    return Status::OK();
  }

  void Optional(const std::string& key, std::string* value) const {
    if (const IniEntry* e = Find(key)) *value = e->value;
  }

  Status Integer(const std::string& key, int64_t min, int64_t max, int64_t* value) const {
    const IniEntry* e = Find(key);
    if (e == nullptr) return Status::OK();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(e->value.data(), e->value.data() + e->value.size(), v);
    if (ec != std::errc() || end != e->value.data() + e->value.size() || v < min || v > max) {
      return Error(*e, "expected an integer from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", got '" + e->value + "'");
    }
    *value = v;
    return Status::OK();
  }

  Status Boolean(const std::string& key, bool* value) const {
    const IniEntry* e = Find(key);
    if (e == nullptr) return Status::OK();
    if (e->value == "true" || e->value == "yes") {
      *value = true;
    } else if (e->value == "false" || e->value == "no") {
      *value = false;
    } else {
      return Error(*e, "expected true or false, got '" + e->value + "'");
    }
    return Status::OK();
  }

  // "90", "90s", "15m", "2h", "1d".
  Status Duration(const std::string& key, std::chrono::seconds* value) const {
    const IniEntry* e = Find(key);
    if (e == nullptr) return Status::OK();
    static const std::map<char, int64_t> kUnits = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    std::string digits = e->value;
    int64_t unit = 1;
    if (!digits.empty() && kUnits.count(digits.back())) {
      unit = kUnits.at(digits.back());
      digits.pop_back();
    }
    int64_t n = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n <= 0 ||
        n > 366 * 86400 / unit) {
      return Error(
          *e, "expected a positive duration like 300, 90s, 15m, 2h or 1d, got '" + e->value + "'");
    }
    *value = std::chrono::seconds(n * unit);
    return Status::OK();
  }

  std::string ResolvePath(const std::string& value) const {
    return ResolveRelativeTo(path_, value);
  }

  Status Error(const IniEntry& e, const std::string& what) const {
    return ConfigKeyError(path_, section_.name, e, what);
  }

  const IniSection& section() const { return section_; }

  Status SectionError(const std::string& what) const {
    return Status::InvalidArgument(path_ + ":" + std::to_string(section_.line) + ": [" +
                                   section_.name + "] " + what);
  }

 private:
  const std::string& path_;
  const IniSection& section_;
};

// Account and store names become parts of storage keys and log lines.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

Status ReadAgent(const SectionReader& r, Config* config) {
  POPVAULT_RETURN_IF_ERROR(r.CheckKeys({"state_dir", "log_level", "plugin_dir"}));
  if (const IniEntry* e = r.Find("plugin_dir")) config->plugin_dir = r.ResolvePath(e->value);
  std::string state_dir;
  POPVAULT_RETURN_IF_ERROR(r.Required("state_dir", &state_dir));
  config->state_dir = r.ResolvePath(state_dir);
  r.Optional("log_level", &config->log_level);
  static const std::set<std::string> kLevels = {"fatal",  "critical",    "error", "warning",
                                                "notice", "information", "debug", "trace"};
  if (!kLevels.count(config->log_level)) {
    return r.Error(*r.Find("log_level"),
                   "expected one of fatal, critical, error, warning, notice, information, debug, "
                   "trace");
  }
  return Status::OK();
}

// The agent's own store keys; the rest belong to the plugin.
Status ReadStore(const SectionReader& r, StoreConfig* store) {
  POPVAULT_RETURN_IF_ERROR(r.Required("plugin", &store->plugin));
  if (!ValidName(store->plugin)) {
    return r.Error(*r.Find("plugin"), "expected a plugin name like rocksdb, filesystem or s3");
  }
  store->line = r.section().line;
  for (const IniEntry& e : r.section().entries) {
    if (e.key != "plugin" && e.key != "compression_level") store->options.push_back(e);
  }
  int64_t level = store->compression_level;
  POPVAULT_RETURN_IF_ERROR(r.Integer("compression_level", 1, 19, &level));
  store->compression_level = static_cast<int>(level);
  return Status::OK();
}

Status ReadPassword(const SectionReader& r, Pop3Options* pop3) {
  const IniEntry* inline_pw = r.Find("password");
  const IniEntry* file_pw = r.Find("password_file");
  if (inline_pw && file_pw) return r.Error(*file_pw, "give either password or password_file");
  if (inline_pw) {
    pop3->password = inline_pw->value;
    return Status::OK();
  }
  if (!file_pw) return r.SectionError("password: missing (give password or password_file)");
  std::ifstream in(r.ResolvePath(file_pw->value), std::ios::binary);
  if (!in) return r.Error(*file_pw, "cannot read '" + file_pw->value + "'");
  std::getline(in, pop3->password);
  if (!pop3->password.empty() && pop3->password.back() == '\r') pop3->password.pop_back();
  if (pop3->password.empty()) return r.Error(*file_pw, "'" + file_pw->value + "' is empty");
  return Status::OK();
}

Status ReadTls(const SectionReader& r, Pop3Options* pop3) {
  std::string tls = "implicit";
  r.Optional("tls", &tls);
  if (tls == "implicit") {
    pop3->tls = TlsMode::kImplicit;
  } else if (tls == "starttls") {
    pop3->tls = TlsMode::kStartTls;
  } else if (tls == "none") {
    pop3->tls = TlsMode::kNone;
  } else {
    return r.Error(*r.Find("tls"), "expected implicit, starttls or none, got '" + tls + "'");
  }
  if (const IniEntry* ca = r.Find("ca_file")) {
    pop3->ca_file = r.ResolvePath(ca->value);
    std::ifstream probe(pop3->ca_file);
    if (!probe) return r.Error(*ca, "cannot read '" + ca->value + "'");
  }
  return Status::OK();
}

Status ReadAuth(const SectionReader& r, Pop3Options* pop3) {
  std::string auth = "auto";
  r.Optional("auth", &auth);
  if (auth == "auto") {
    pop3->auth = AuthMethod::kAuto;
  } else if (auth == "user") {
    pop3->auth = AuthMethod::kUser;
  } else if (auth == "apop") {
    pop3->auth = AuthMethod::kApop;
  } else {
    return r.Error(*r.Find("auth"), "expected auto, user or apop, got '" + auth + "'");
  }
  POPVAULT_RETURN_IF_ERROR(r.Boolean("allow_plaintext_auth", &pop3->allow_plaintext_auth));
  POPVAULT_RETURN_IF_ERROR(r.Required("user", &pop3->user));
  return ReadPassword(r, pop3);
}

Status ReadStoreList(const SectionReader& r, const Config& config, AccountConfig* account) {
  std::string list;
  POPVAULT_RETURN_IF_ERROR(r.Required("stores", &list));
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (config.FindStore(name) == nullptr) {
      return r.Error(*r.Find("stores"), "no [store." + name + "] section");
    }
    for (const std::string& seen : account->stores) {
      if (seen == name) return r.Error(*r.Find("stores"), "store '" + name + "' listed twice");
    }
    account->stores.push_back(name);
  }
  return Status::OK();
}

Status ReadAccount(const SectionReader& r, const Config& config, AccountConfig* account) {
  POPVAULT_RETURN_IF_ERROR(
      r.CheckKeys({"host", "port", "tls", "ca_file", "user", "password", "password_file", "auth",
                   "allow_plaintext_auth", "stores", "retention", "poll_interval"}));
  Pop3Options& pop3 = account->pop3;
  POPVAULT_RETURN_IF_ERROR(r.Required("host", &pop3.host));
  POPVAULT_RETURN_IF_ERROR(ReadTls(r, &pop3));
  int64_t port = pop3.tls == TlsMode::kImplicit ? 995 : 110;
  POPVAULT_RETURN_IF_ERROR(r.Integer("port", 1, 65535, &port));
  pop3.port = static_cast<uint16_t>(port);
  POPVAULT_RETURN_IF_ERROR(ReadAuth(r, &pop3));
  POPVAULT_RETURN_IF_ERROR(ReadStoreList(r, config, account));
  if (const IniEntry* e = r.Find("retention")) {
    Status s = RetentionPolicy::Parse(e->value, &account->retention);
    if (!s.ok()) return r.Error(*e, s.message());
  }
  return r.Duration("poll_interval", &account->poll_interval);
}

// Splits "store.NAME" into its kind and name; false for an unknown kind.
bool SplitSectionName(const std::string& section, std::string* kind, std::string* name) {
  size_t dot = section.find('.');
  *kind = section.substr(0, dot);
  *name = dot == std::string::npos ? "" : section.substr(dot + 1);
  if (*kind == "agent") return name->empty() && dot == std::string::npos;
  return *kind == "store" || *kind == "account";
}

}  // namespace

std::string ResolveRelativeTo(const std::string& config_file, const std::string& path) {
  fs::path p(path);
  if (p.is_absolute()) return p.string();
  return (fs::absolute(config_file).parent_path() / p).lexically_normal().string();
}

Status ConfigKeyError(const std::string& config_file, const std::string& section,
                      const IniEntry& entry, const std::string& what) {
  return Status::InvalidArgument(config_file + ":" + std::to_string(entry.line) + ": [" + section +
                                 "] " + entry.key + ": " + what);
}

const StoreConfig* Config::FindStore(const std::string& name) const {
  for (const StoreConfig& s : stores) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const AccountConfig* Config::FindAccount(const std::string& name) const {
  for (const AccountConfig& a : accounts) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Status LoadConfig(const std::string& path, Config* config) {
  std::vector<IniSection> sections;
  POPVAULT_RETURN_IF_ERROR(ParseIniFile(path, &sections));
  *config = Config();
  config->path = path;
  const IniSection* agent = nullptr;
  std::vector<const IniSection*> accounts;
  // Stores first, so accounts can refer to stores defined after them.
  for (const IniSection& section : sections) {
    std::string kind, name;
    SectionReader r(path, section);
    if (!SplitSectionName(section.name, &kind, &name)) {
      return r.SectionError("unknown section (expected [agent], [store.NAME] or [account.NAME])");
    }
    if (kind == "agent") {
      agent = &section;
      continue;
    }
    if (!ValidName(name)) {
      return r.SectionError("name must be 1-64 characters of A-Z a-z 0-9 _ -");
    }
    if (kind == "account") {
      accounts.push_back(&section);
      continue;
    }
    StoreConfig store;
    store.name = name;
    POPVAULT_RETURN_IF_ERROR(ReadStore(r, &store));
    config->stores.push_back(store);
  }
  if (agent == nullptr) return Status::InvalidArgument(path + ": missing [agent] section");
  POPVAULT_RETURN_IF_ERROR(ReadAgent(SectionReader(path, *agent), config));
  for (const IniSection* section : accounts) {
    AccountConfig account;
    account.name = section->name.substr(section->name.find('.') + 1);
    POPVAULT_RETURN_IF_ERROR(ReadAccount(SectionReader(path, *section), *config, &account));
    config->accounts.push_back(account);
  }
  if (config->accounts.empty()) {
    return Status::InvalidArgument(path + ": no [account.NAME] section");
  }
  return Status::OK();
}

}  // namespace popvault
