// The CLI's shared state and its commands. Each command returns the process
// exit status: 0 success, 1 failure (reported on stderr), 2 usage error.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "config/config.h"
#include "ledger/ledger.h"
#include "logging/logging.h"
#include "plugin_loader/plugin_loader.h"

namespace popvault {

struct Args {
  std::string command;
  std::string config_path;
  std::string account;
  std::string id;
  std::string output;
  bool json = false;
  bool dry_run = false;
};

// What every command but check-config needs: the config, the ledger and the
// stores (opened on first use).
class Context {
 public:
  // Loads the config and sets up logging (logs the config's warnings) and
  // the plugin loader. With for_reading (list, cat, export) the ledger is
  // opened only to read (Ledger::OpenForReading), as of the command's start,
  // so `popvault list` also works while `popvault run` holds the ledger. The
  // stores are opened as usual: the embedded RocksDB store stays the running
  // process's alone.
  Status Open(const std::string& config_path, bool for_reading = false);

  const Config& config() const { return config_; }
  std::string SpoolDir() const { return config_.state_dir + "/spool"; }

  // The ledger, opened on first use. Owned by the context.
  Status GetLedger(Ledger** ledger);

  // The store named `store_name`, opened on first use. Owned by the context.
  Status GetArchive(const std::string& store_name, Archive** archive);

  // The accounts a command applies to: all, or the one --account names.
  Status SelectAccounts(const std::string& name, std::vector<const AccountConfig*>* out) const;

 private:
  Config config_;
  bool for_reading_ = false;
  std::unique_ptr<Ledger> ledger_;
  // Declared before archives_, so the stores (plugin code) go first.
  std::unique_ptr<PluginLoader> loader_;
  std::map<std::string, std::unique_ptr<Archive>> archives_;
};

// The accounts a command applies to (Context::SelectAccounts with --account), in *out. On none
// (an unknown --account), says so on stderr and returns false: the command exits 2 (usage).
bool SelectCommandAccounts(const Context& ctx, const Args& args,
                           std::vector<const AccountConfig*>* out);

int Sync(Context& ctx, const Args& args);
int List(Context& ctx, const Args& args);
int Cat(Context& ctx, const Args& args);
int CheckConfig(const Args& args);
// `popvault run`: the daemon (run_command.cc). Takes the raw arguments, since
// Poco's ServerApplication parses some of them; prints `usage` on misuse.
int Run(int argc, char** argv, const char* usage);
// retention_command.cc: what sync would delete from the servers (--dry-run
// only; without it, a usage error).
int Retention(Context& ctx, const Args& args);
// export_command.cc: every message of the accounts' stores to
// args.output/ACCOUNT/SHA256.eml; 1 if any could not be exported (each named).
int Export(Context& ctx, const Args& args);
// purge_command.cc: removes archived mail past its account's
// archive_retention_days from the stores (--dry-run: only lists it).
int Purge(Context& ctx, const Args& args);
// doctor_command.cc: checks each account's ledger entries against its stores
// and rebuilds them from the stores' records (--dry-run: only shows what it
// would write); 1 if an account is not consistent after it (data loss).
int Doctor(Context& ctx, const Args& args);

}  // namespace popvault
