// Config: the agent's INI configuration, loaded and validated in one place.
//
// schemas/config.schema.json (compiled in, see config_schema.h) declares
// every key of [agent], [store.NAME] and [account.NAME]: type, range, default.
// Loading: parse the main file, expand ${NAME}, read include_dir/*.conf,
// convert to typed JSON, validate against the schema, apply its defaults and
// resolve paths, then the checks a schema cannot express (files readable,
// store references, retention grammar, exactly one secret, auth fits it).
//
// Every problem is reported as InvalidArgument with a message that names the
// file, line, section and key ("popvault.ini:12: [account.office] port: ...").
// Secrets are never part of an error message.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/config_schema.h"
#include "config/ini_file.h"
#include "pop3/pop3_session.h"
#include "popvault/status.h"
#include "popvault/storage_plugin.h"
#include "retention/retention.h"

namespace popvault {

struct StoreConfig {
  std::string name;
  std::string plugin;         // loads popvault_store_<plugin>.so
  int compression_level = 3;  // zstd level, 1..19
  // dictionary = auto: train once the store holds this many messages
  // (Archive::EnableDictionaries); 0: dictionary = off.
  size_t dictionary_train_after = 0;
  std::string file;  // where [store.NAME] is (the main file or an include)
  int line = 0;      // of the [store.NAME] header
  // The plugin's own keys, as written. The plugin loader checks them against
  // the plugin's declared options.
  std::vector<IniEntry> options;
};

struct AccountConfig {
  std::string name;
  Pop3Options pop3;                 // password resolved from password_file when given
  std::vector<std::string> stores;  // names of [store.*] sections, in order
  RetentionPolicy retention;
  std::chrono::seconds poll_interval{300};
  int archive_retention_days = 0;  // archived copies older than this may be pruned; 0: never
  bool legal_hold = false;         // nothing of this account is pruned
};

struct Config {
  std::string path;  // the file it was loaded from
  std::string state_dir;
  std::string log_level = "information";
  std::string plugin_dir;           // empty: DefaultPluginDir()
  std::string log_format = "text";  // text | json
  std::string log_file;             // empty: console (stderr); else a rotating file
  bool log_syslog = false;          // also log to syslog
  std::string audit_log;            // committed deletions; default <state_dir>/audit.log
  std::string metrics_listen;       // "127.0.0.1:9393"; empty: no HTTP endpoint
  int max_concurrent_accounts = 4;  // daemon: accounts synced at once
  std::vector<StoreConfig> stores;
  std::vector<AccountConfig> accounts;
  // Every section with every key: defaults applied, paths resolved, ${NAME}
  // expanded. Holds secrets: print only through RenderEffectiveConfig.
  std::vector<IniSection> effective;
  // Problems that do not stop loading (a password file others can read).
  std::vector<std::string> warnings;

  const StoreConfig* FindStore(const std::string& name) const;
  const AccountConfig* FindAccount(const std::string& name) const;
};

// Loads `path` (and its include_dir) against the compiled-in schema.
Status LoadConfig(const std::string& path, Config* config);
// The same against another schema (tests).
Status LoadConfig(const std::string& path, const ConfigSchema& schema, Config* config);

// The effective config as INI, one comment per section naming where it was
// defined. Secrets (schema writeOnly keys; plugin options with secret = true,
// from `plugin_options`, by store name) are printed as ********; plugin
// options with is_path are resolved.
std::string RenderEffectiveConfig(
    const Config& config, const std::map<std::string, std::vector<PluginOption>>& plugin_options);

// `path` made absolute relative to the directory of `config_file`.
std::string ResolveRelativeTo(const std::string& config_file, const std::string& path);

// InvalidArgument "FILE:LINE: [SECTION] KEY: what".
Status ConfigKeyError(const std::string& config_file, const std::string& section,
                      const IniEntry& entry, const std::string& what);

}  // namespace popvault
