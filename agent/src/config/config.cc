#include "config/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace popvault {
namespace {

namespace fs = std::filesystem;
using Poco::JSON::Object;

Status SectionError(const IniSection& s, const std::string& what) {
  return Status::InvalidArgument(s.file + ":" + std::to_string(s.line) + ": [" + s.name + "] " +
                                 what);
}

Status KeyError(const IniSection& s, const IniEntry& e, const std::string& what) {
  return ConfigKeyError(s.file, s.name, e, what);
}

IniSection* FindSection(std::vector<IniSection>& sections, const std::string& name) {
  for (IniSection& s : sections) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// "agent", "store" or "account" for [agent], [store.NAME], [account.NAME];
// empty for anything else.
std::string KindOf(const IniSection& s) {
  size_t dot = s.name.find('.');
  std::string kind = s.name.substr(0, dot);
  if (kind == "agent") return dot == std::string::npos ? kind : "";
  return (kind == "store" || kind == "account") && dot != std::string::npos ? kind : "";
}

std::string NameOf(const IniSection& s) { return s.name.substr(s.name.find('.') + 1); }

bool ParseInt(const std::string& text, int64_t* value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// Reads include_dir/*.conf (from the main file's [agent]) in name order and
// appends their sections; a section defined twice is an error naming both.
Status ReadIncludes(const std::string& main_path, std::vector<IniSection>* sections) {
  IniSection* agent = FindSection(*sections, "agent");
  const IniEntry* include = agent == nullptr ? nullptr : agent->Find("include_dir");
  if (include == nullptr || include->value.empty()) return Status::OK();
  const fs::path dir = ResolveRelativeTo(main_path, include->value);
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".conf" && it->is_regular_file()) files.push_back(it->path());
  }
  if (ec) return KeyError(*agent, *include, "cannot read directory '" + include->text + "'");
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::vector<IniSection> more;
    POPVAULT_RETURN_IF_ERROR(ParseIniFile(file.string(), &more));
    POPVAULT_RETURN_IF_ERROR(ExpandEnvironment(&more));
    for (IniSection& s : more) {
      if (const IniSection* prior = FindSection(*sections, s.name)) {
        return Status::InvalidArgument(s.file + ":" + std::to_string(s.line) + ": section [" +
                                       s.name + "] repeats " + prior->file + ":" +
                                       std::to_string(prior->line));
      }
      sections->push_back(std::move(s));
    }
  }
  return Status::OK();
}

Status CheckSectionNames(const ConfigSchema& schema, const std::vector<IniSection>& sections) {
  const std::regex name_pattern(SchemaString(schema.Name(), "pattern"));
  for (const IniSection& s : sections) {
    std::string kind = KindOf(s);
    if (kind.empty()) {
      return SectionError(s, "unknown section (expected [agent], [store.NAME] or [account.NAME])");
    }
    if (kind != "agent" && !std::regex_search(NameOf(s), name_pattern)) {
      return SectionError(s, SchemaString(schema.Name(), "x-error"));
    }
  }
  return Status::OK();
}

// An INI value as the JSON type its key's schema declares; left a string when
// it does not convert, so the schema reports it.
Poco::Dynamic::Var Typed(const Object::Ptr& key, const std::string& value) {
  const std::string type = SchemaString(key, "type");
  int64_t n = 0;
  if (type == "integer" && ParseInt(value, &n)) return n;
  if (type == "boolean" && (value == "true" || value == "yes")) return true;
  if (type == "boolean" && (value == "false" || value == "no")) return false;
  return value;
}

Object::Ptr ToJson(const ConfigSchema& schema, const std::vector<IniSection>& sections) {
  Object::Ptr root = new Object;
  for (const IniSection& s : sections) {
    const std::string kind = KindOf(s);
    Object::Ptr target = new Object;
    if (kind == "agent") {
      root->set(kind, target);
    } else {
      if (!root->has(kind)) root->set(kind, Object::Ptr(new Object));
      root->getObject(kind)->set(NameOf(s), target);
    }
    for (const IniEntry& e : s.entries) target->set(e.key, Typed(schema.Key(kind, e.key), e.value));
  }
  return root;
}

std::string JoinOr(const Poco::JSON::Array::Ptr& values) {
  std::string out;
  for (size_t i = 0; i < values->size(); ++i) {
    if (i > 0) out += i + 1 == values->size() ? " or " : ", ";
    out += values->getElement<std::string>(i);
  }
  return out;
}

// What is wrong with a value its key's schema rejected, in words from the
// schema. Quotes the value as written, unless the key is a secret.
std::string KeyProblem(const Object::Ptr& key, const IniEntry& e, const std::string& fallback) {
  if (e.value.empty()) return "empty value";
  const std::string got = SchemaFlag(key, "writeOnly") ? "" : ", got '" + e.text + "'";
  const std::string custom = SchemaString(key, "x-error");
  if (!custom.empty()) return custom + got;
  if (!key.isNull() && key->has("enum")) return "expected " + JoinOr(key->getArray("enum")) + got;
  const std::string type = SchemaString(key, "type");
  if (type == "integer") {
    return "expected an integer from " + SchemaString(key, "minimum") + " to " +
           SchemaString(key, "maximum") + got;
  }
  if (type == "boolean") return "expected true or false" + got;
  return fallback + got;
}

// A schema violation of a whole section: an undeclared or a missing key. OK
// when neither: the section only passes on a violation of one of its keys.
Status SectionProblem(const ConfigSchema& schema, const IniSection& s) {
  const std::string kind = KindOf(s);
  for (const IniEntry& e : s.entries) {
    if (schema.Closed(kind) && schema.Key(kind, e.key).isNull()) {
      return KeyError(s, e, "unknown key");
    }
  }
  for (const std::string& key : schema.Required(kind)) {
    if (s.Find(key) == nullptr) return SectionError(s, key + ": missing required key");
  }
  return Status::OK();
}

// The first violation in file order, as "FILE:LINE: [SECTION] KEY: what".
Status Explain(const ConfigSchema& schema, const std::string& main_path,
               std::vector<IniSection>& sections, const std::vector<SchemaViolation>& violations) {
  std::pair<size_t, int> first{SIZE_MAX, INT_MAX};
  Status result;
  for (const SchemaViolation& v : violations) {
    const bool agent = !v.path.empty() && v.path[0] == "agent";
    const size_t key_at = agent ? 1 : 2;
    IniSection* s = nullptr;
    if (agent || v.path.size() >= 2) {
      s = FindSection(sections, agent ? "agent" : v.path[0] + "." + v.path[1]);
    }
    if (s == nullptr) {  // the document as a whole: a missing section
      if (first.first == SIZE_MAX && result.ok()) {
        result = Status::InvalidArgument(main_path + (FindSection(sections, "agent") == nullptr
                                                          ? ": missing [agent] section"
                                                          : ": no [account.NAME] section"));
      }
      continue;
    }
    const IniEntry* e = v.path.size() > key_at ? s->Find(v.path[key_at]) : nullptr;
    Status problem =
        e ? KeyError(*s, *e, KeyProblem(schema.Key(KindOf(*s), e->key), *e, v.description))
          : SectionProblem(schema, *s);
    std::pair<size_t, int> at{static_cast<size_t>(s - sections.data()), e ? e->line : s->line};
    if (problem.ok() || at >= first) continue;
    first = at;
    result = problem;
  }
  if (result.ok()) {  // a violation this mapping does not know: say it as valijson does
    result = Status::InvalidArgument(main_path + ": " + violations.front().description);
  }
  return result;
}

// Adds the schema's default for every absent key (line 0) and makes path
// values absolute.
void ApplyDefaults(const ConfigSchema& schema, const std::string& main_path, IniSection* s) {
  const std::string kind = KindOf(*s);
  for (const std::string& key : schema.Keys(kind)) {
    Object::Ptr key_schema = schema.Key(kind, key);
    auto e = std::find_if(s->entries.begin(), s->entries.end(),
                          [&](const IniEntry& x) { return x.key == key; });
    if (e == s->entries.end() && key_schema->has("default")) {
      std::string value = SchemaString(key_schema, "default");
      s->entries.push_back(IniEntry{key, value, 0, value});
    } else if (e != s->entries.end() && SchemaFlag(key_schema, "x-path") && !e->value.empty()) {
      e->value = ResolveRelativeTo(main_path, e->value);
    }
  }
}

// A value the schema has validated (and defaulted); empty when absent.
std::string Get(const IniSection& s, const std::string& key) {
  const IniEntry* e = s.Find(key);
  return e == nullptr ? "" : e->value;
}
int64_t GetInt(const IniSection& s, const std::string& key) {
  int64_t n = 0;
  ParseInt(Get(s, key), &n);
  return n;
}
bool GetBool(const IniSection& s, const std::string& key) {
  return Get(s, key) == "true" || Get(s, key) == "yes";
}

// A value the agent computes when the key is absent, recorded as effective.
std::string Derived(IniSection* s, const std::string& key, const std::string& value) {
  if (s->Find(key) == nullptr) s->entries.push_back(IniEntry{key, value, 0, value});
  return Get(*s, key);
}

void ReadAgent(IniSection* s, Config* config) {
  config->state_dir = Get(*s, "state_dir");
  config->log_level = Get(*s, "log_level");
  config->log_format = Get(*s, "log_format");
  config->log_file = Get(*s, "log_file");
  config->log_syslog = GetBool(*s, "log_syslog");
  config->audit_log = Derived(s, "audit_log", config->state_dir + "/audit.log");
  config->metrics_listen = Get(*s, "metrics_listen");
  config->max_concurrent_accounts = static_cast<int>(GetInt(*s, "max_concurrent_accounts"));
  config->plugin_dir = Get(*s, "plugin_dir");
}

void ReadStore(const ConfigSchema& schema, const IniSection& s, StoreConfig* store) {
  store->name = NameOf(s);
  store->file = s.file;
  store->line = s.line;
  store->plugin = Get(s, "plugin");
  store->compression_level = static_cast<int>(GetInt(s, "compression_level"));
  if (Get(s, "dictionary") == "auto") {
    store->dictionary_train_after = static_cast<size_t>(GetInt(s, "dictionary_train_after"));
  }
  for (const IniEntry& e : s.entries) {
    if (schema.Key("store", e.key).isNull()) store->options.push_back(e);
  }
}

Status ReadPasswordFile(const IniSection& s, const IniEntry& file_pw, Pop3Options* pop3,
                        std::vector<std::string>* warnings) {
  std::ifstream in(file_pw.value, std::ios::binary);
  if (!in) return KeyError(s, file_pw, "cannot read '" + file_pw.text + "'");
  std::getline(in, pop3->password);
  if (!pop3->password.empty() && pop3->password.back() == '\r') pop3->password.pop_back();
  if (pop3->password.empty()) return KeyError(s, file_pw, "'" + file_pw.text + "' is empty");
  struct stat st {};
  if (stat(file_pw.value.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    warnings->push_back(
        KeyError(s, file_pw, "'" + file_pw.text + "' is readable by group or others (chmod 600 it)")
            .message());
  }
  return Status::OK();
}

// Exactly one of the four ways to give the secret. password_file is read
// now; the two commands run at each login (Pop3Options::secret_command).
Status ReadSecret(const IniSection& s, Pop3Options* pop3, std::vector<std::string>* warnings) {
  const IniEntry* given = nullptr;
  for (const char* key : {"password", "password_file", "password_command", "oauth_token_command"}) {
    const IniEntry* e = s.Find(key);
    if (e == nullptr) continue;
    if (given != nullptr) {
      return KeyError(s, *e,
                      "give only one of password, password_file, password_command, "
                      "oauth_token_command (" +
                          given->key + " is set too)");
    }
    given = e;
  }
  if (given == nullptr) {
    return SectionError(s,
                        "password: missing (give password, password_file, password_command "
                        "or oauth_token_command)");
  }
  if (given->key == "password") {
    pop3->password = given->value;
  } else if (given->key == "password_file") {
    POPVAULT_RETURN_IF_ERROR(ReadPasswordFile(s, *given, pop3, warnings));
  } else {
    pop3->secret_command = given->value;
    pop3->oauth2 = given->key == "oauth_token_command";
  }
  return Status::OK();
}

// The method must fit the secret: a token only logs in by XOAUTH2 or
// OAUTHBEARER, a password never by them.
Status ReadAuth(const IniSection& s, Pop3Options* pop3) {
  static const std::map<std::string, AuthMethod> kMethods = {
      {"auto", AuthMethod::kAuto},
      {"user", AuthMethod::kUser},
      {"apop", AuthMethod::kApop},
      {"plain", AuthMethod::kPlain},
      {"login", AuthMethod::kLogin},
      {"cram-md5", AuthMethod::kCramMd5},
      {"scram-sha-1", AuthMethod::kScramSha1},
      {"scram-sha-256", AuthMethod::kScramSha256},
      {"xoauth2", AuthMethod::kXoauth2},
      {"oauthbearer", AuthMethod::kOauthBearer}};
  const std::string name = Get(s, "auth");
  pop3->auth = kMethods.at(name);
  const bool token_method =
      pop3->auth == AuthMethod::kXoauth2 || pop3->auth == AuthMethod::kOauthBearer;
  if (pop3->auth == AuthMethod::kAuto || token_method == pop3->oauth2) return Status::OK();
  const IniEntry* e = s.Find("auth");
  return KeyError(s, *e,
                  token_method
                      ? "'" + name + "' logs in with an OAuth2 token: set oauth_token_command"
                      : "'" + name +
                            "' needs a password, but oauth_token_command gives a token "
                            "(use xoauth2, oauthbearer or auto)");
}

Status ReadTls(IniSection* s, Pop3Options* pop3) {
  const std::string tls = Get(*s, "tls");
  pop3->tls = tls == "starttls" ? TlsMode::kStartTls
              : tls == "none"   ? TlsMode::kNone
                                : TlsMode::kImplicit;
  pop3->port = static_cast<uint16_t>(
      std::stoi(Derived(s, "port", pop3->tls == TlsMode::kImplicit ? "995" : "110")));
  if (const IniEntry* ca = s->Find("ca_file")) {
    pop3->ca_file = ca->value;
    std::ifstream probe(pop3->ca_file);
    if (!probe) return KeyError(*s, *ca, "cannot read '" + ca->text + "'");
  }
  if (const IniEntry* pin = s->Find("tls_fingerprint")) {
    if (pop3->tls == TlsMode::kNone) return KeyError(*s, *pin, "needs tls = implicit or starttls");
    // The schema checked the form; keep one spelling: lower case, no colons.
    std::string hex = pin->value.substr(pin->value.find(':') + 1);
    std::erase(hex, ':');
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    pop3->tls_fingerprint = "sha256:" + hex;
  }
  return Status::OK();
}

Status ReadStoreList(const IniSection& s, const Config& config, AccountConfig* account) {
  const IniEntry* e = s.Find("stores");
  std::stringstream in(e->value);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (config.FindStore(name) == nullptr)
      return KeyError(s, *e, "no [store." + name + "] section");
    if (std::count(account->stores.begin(), account->stores.end(), name)) {
      return KeyError(s, *e, "store '" + name + "' listed twice");
    }
    account->stores.push_back(name);
  }
  return Status::OK();
}

// "90", "90s", "15m", "2h", "1d" (the schema checked the form): positive and
// at most 366 days.
Status ReadDuration(const ConfigSchema& schema, const IniSection& s, const std::string& key,
                    std::chrono::seconds* out) {
  std::string digits = Get(s, key);
  const std::string units = "smhd";
  const int64_t seconds[] = {1, 60, 3600, 86400};
  int64_t unit = 1;
  if (size_t u = units.find(digits.back()); u != std::string::npos) {
    unit = seconds[u];
    digits.pop_back();
  }
  int64_t n = 0;
  if (!ParseInt(digits, &n) || n <= 0 || n > 366 * 86400 / unit) {
    const IniEntry* e = s.Find(key);
    return KeyError(s, *e, KeyProblem(schema.Key("account", key), *e, ""));
  }
  *out = std::chrono::seconds(n * unit);
  return Status::OK();
}

// "52428800", "50M", "1g" (the schema checked the form): positive, at most 1 TiB.
Status ReadSize(const ConfigSchema& schema, const IniSection& s, const std::string& key,
                uint64_t* out) {
  std::string digits = Get(s, key);
  const std::string units = "KMG";
  int shift = 0;
  if (size_t u = units.find(static_cast<char>(std::toupper(digits.back())));
      u != std::string::npos) {
    shift = 10 * static_cast<int>(u + 1);
    digits.pop_back();
  }
  int64_t n = 0;
  if (!ParseInt(digits, &n) || n <= 0 || n > (int64_t{1} << (40 - shift))) {
    const IniEntry* e = s.Find(key);
    return KeyError(s, *e, KeyProblem(schema.Key("account", key), *e, ""));
  }
  *out = static_cast<uint64_t>(n) << shift;
  return Status::OK();
}

Status ReadAccount(const ConfigSchema& schema, IniSection* s, Config* config,
                   AccountConfig* account) {
  account->name = NameOf(*s);
  Pop3Options& pop3 = account->pop3;
  pop3.host = Get(*s, "host");
  pop3.user = Get(*s, "user");
  POPVAULT_RETURN_IF_ERROR(ReadTls(s, &pop3));
  pop3.allow_plaintext_auth = GetBool(*s, "allow_plaintext_auth");
  pop3.pipelining = GetBool(*s, "pipelining");
  POPVAULT_RETURN_IF_ERROR(ReadSecret(*s, &pop3, &config->warnings));
  POPVAULT_RETURN_IF_ERROR(ReadAuth(*s, &pop3));
  POPVAULT_RETURN_IF_ERROR(ReadDuration(schema, *s, "connect_timeout", &pop3.connect_timeout));
  POPVAULT_RETURN_IF_ERROR(ReadDuration(schema, *s, "reply_timeout", &pop3.reply_timeout));
  POPVAULT_RETURN_IF_ERROR(ReadDuration(schema, *s, "idle_timeout", &pop3.idle_timeout));
  POPVAULT_RETURN_IF_ERROR(ReadSize(schema, *s, "max_message_size", &pop3.max_message_size));
  POPVAULT_RETURN_IF_ERROR(ReadStoreList(*s, *config, account));
  const IniEntry* retention = s->Find("retention");
  Status parsed = RetentionPolicy::Parse(retention->value, &account->retention);
  if (!parsed.ok()) return KeyError(*s, *retention, parsed.message());
  account->archive_retention_days = static_cast<int>(GetInt(*s, "archive_retention_days"));
  account->legal_hold = GetBool(*s, "legal_hold");
  return ReadDuration(schema, *s, "poll_interval", &account->poll_interval);
}

// Fills `config` from validated sections, adding defaults to them.
Status Fill(const ConfigSchema& schema, std::vector<IniSection>& sections, Config* config) {
  for (IniSection& s : sections) ApplyDefaults(schema, config->path, &s);
  ReadAgent(FindSection(sections, "agent"), config);
  // Stores first, so accounts can refer to stores defined after them.
  for (const IniSection& s : sections) {
    if (KindOf(s) == "store") ReadStore(schema, s, &config->stores.emplace_back());
  }
  for (IniSection& s : sections) {
    if (KindOf(s) != "account") continue;
    AccountConfig account;
    POPVAULT_RETURN_IF_ERROR(ReadAccount(schema, &s, config, &account));
    config->accounts.push_back(std::move(account));
  }
  return Status::OK();
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
  return LoadConfig(path, ConfigSchema::Embedded(), config);
}

Status LoadConfig(const std::string& path, const ConfigSchema& schema, Config* config) {
  *config = Config();
  config->path = path;
  std::vector<IniSection> sections;
  POPVAULT_RETURN_IF_ERROR(ParseIniFile(path, &sections));
  POPVAULT_RETURN_IF_ERROR(ExpandEnvironment(&sections));
  POPVAULT_RETURN_IF_ERROR(ReadIncludes(path, &sections));
  POPVAULT_RETURN_IF_ERROR(CheckSectionNames(schema, sections));
  std::vector<SchemaViolation> violations = schema.Validate(ToJson(schema, sections));
  if (!violations.empty()) return Explain(schema, path, sections, violations);
  POPVAULT_RETURN_IF_ERROR(Fill(schema, sections, config));
  config->effective = std::move(sections);
  return Status::OK();
}

std::string RenderEffectiveConfig(
    const Config& config, const std::map<std::string, std::vector<PluginOption>>& plugin_options) {
  const ConfigSchema& schema = ConfigSchema::Embedded();
  std::ostringstream out;
  out << "; effective configuration of " << config.path << "\n";
  for (const IniSection& s : config.effective) {
    const std::string kind = KindOf(s);
    std::map<std::string, PluginOption> declared;
    if (auto it = plugin_options.find(NameOf(s)); kind == "store" && it != plugin_options.end()) {
      for (const PluginOption& o : it->second) declared[o.name] = o;
    }
    out << "\n; " << s.file << ":" << s.line << "\n[" << s.name << "]\n";
    for (const IniEntry& e : s.entries) {
      const PluginOption* option = declared.count(e.key) ? &declared.at(e.key) : nullptr;
      std::string value = e.value;
      if (option != nullptr && option->is_path) value = ResolveRelativeTo(config.path, value);
      if ((option != nullptr && option->secret) ||
          SchemaFlag(schema.Key(kind, e.key), "writeOnly")) {
        value = "********";
      }
      out << e.key << " = " << value << (e.line == 0 ? "  ; default" : "") << "\n";
    }
  }
  return out.str();
}

}  // namespace popvault
