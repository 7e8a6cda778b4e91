// Config: the agent's INI configuration, loaded and validated in one place.
//
//   [agent]        state_dir, log_level, plugin_dir
//   [store.NAME]   plugin, compression_level, and the plugin's own keys
//   [account.NAME] host, port, tls, ca_file, user, password | password_file,
//                  allow_plaintext_auth, auth, stores, retention, poll_interval
//
// Every problem is reported as InvalidArgument with a message that names the
// file, the section and the key ("popvault.ini: [account.office] port: ...").
// Secrets are never part of an error message.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/ini_file.h"
#include "pop3/pop3_session.h"
#include "popvault/status.h"
#include "retention/retention.h"

namespace popvault {

struct StoreConfig {
  std::string name;
  std::string plugin;         // loads popvault_store_<plugin>.so
  int compression_level = 3;  // zstd level, 1..19
  int line = 0;               // of the [store.NAME] header
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
};

struct Config {
  std::string path;  // the file it was loaded from
  std::string state_dir;
  std::string log_level = "information";
  std::string plugin_dir;  // empty: DefaultPluginDir()
  std::string log_format = "text";  // text | json
  std::string log_file;             // empty: console (stderr); else a rotating file
  bool log_syslog = false;          // also log to syslog
  std::string audit_log;            // committed deletions; default <state_dir>/audit.log
  std::string metrics_listen;       // "127.0.0.1:9393"; empty: no HTTP endpoint
  int max_concurrent_accounts = 4;  // daemon: accounts synced at once
  std::vector<StoreConfig> stores;
  std::vector<AccountConfig> accounts;

  const StoreConfig* FindStore(const std::string& name) const;
  const AccountConfig* FindAccount(const std::string& name) const;
};

Status LoadConfig(const std::string& path, Config* config);

// `path` made absolute relative to the directory of `config_file`.
std::string ResolveRelativeTo(const std::string& config_file, const std::string& path);

// InvalidArgument "FILE:LINE: [SECTION] KEY: what".
Status ConfigKeyError(const std::string& config_file, const std::string& section,
                      const IniEntry& entry, const std::string& what);

}  // namespace popvault
