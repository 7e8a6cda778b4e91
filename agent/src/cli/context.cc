#include <Poco/Logger.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"

namespace popvault {

Status Context::Open(const std::string& config_path, bool for_reading) {
  for_reading_ = for_reading;
  POPVAULT_RETURN_IF_ERROR(LoadConfig(config_path, &config_));
  POPVAULT_RETURN_IF_ERROR(SetUpLogging(config_));
  for (const std::string& w : config_.warnings) Poco::Logger::get("config").warning(w);
  loader_ = std::make_unique<PluginLoader>(config_.plugin_dir.empty() ? DefaultPluginDir()
                                                                      : config_.plugin_dir);
  std::error_code ec;
  std::filesystem::create_directories(SpoolDir(), ec);
  if (ec) return Status::IOError("cannot create " + SpoolDir() + ": " + ec.message());
  return Status::OK();
}

Status Context::GetLedger(Ledger** ledger) {
  if (!ledger_) {
    const std::string dir = config_.state_dir + "/ledger";
    // No ledger yet: nothing runs on it, and an empty one lists nothing.
    const bool exists = std::filesystem::exists(dir + "/CURRENT");
    POPVAULT_RETURN_IF_ERROR(for_reading_ && exists ? Ledger::OpenForReading(dir, &ledger_)
                                                    : Ledger::Open(dir, &ledger_));
  }
  *ledger = ledger_.get();
  return Status::OK();
}

Status Context::GetArchive(const std::string& store_name, Archive** archive) {
  auto it = archives_.find(store_name);
  if (it == archives_.end()) {
    const StoreConfig* store = config_.FindStore(store_name);
    if (store == nullptr) return Status::NotFound("no store named '" + store_name + "'");
    std::unique_ptr<Storage> storage;
    POPVAULT_RETURN_IF_ERROR(loader_->OpenStorage(config_, *store, &storage));
    auto archive =
        std::make_unique<Archive>(store->name, std::move(storage), store->compression_level);
    Status s = archive->EnableDictionaries(store->dictionary_train_after);
    if (!s.ok()) {
      Poco::Logger::get("popvault.archive")
          .warning("%s; compressing without a dictionary", s.ToString());
    }
    it = archives_.emplace(store_name, std::move(archive)).first;
  }
  *archive = it->second.get();
  return Status::OK();
}

Status Context::SelectAccounts(const std::string& name,
                               std::vector<const AccountConfig*>* out) const {
  for (const AccountConfig& a : config_.accounts) {
    if (name.empty() || a.name == name) out->push_back(&a);
  }
  if (out->empty()) return Status::NotFound("no account named '" + name + "' in " + config_.path);
  return Status::OK();
}

bool SelectCommandAccounts(const Context& ctx, const Args& args,
                           std::vector<const AccountConfig*>* out) {
  const Status s = ctx.SelectAccounts(args.account, out);
  if (!s.ok()) std::cerr << "popvault: " << s.ToString() << "\n";
  return s.ok();
}

}  // namespace popvault
