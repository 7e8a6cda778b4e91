// The rocksdb plugin: [store.NAME] plugin = rocksdb, path = DIR.
#include "popvault/storage_plugin.h"
#include "rocksdb_storage.h"

namespace popvault {
namespace {

class RocksDbPlugin : public StoragePlugin {
 public:
  std::vector<PluginOption> Options() const override {
    return {{.name = "path",
             .required = true,
             .is_path = true,
             .description = "directory of the RocksDB database (created if missing)"}};
  }

  Status Open(const std::map<std::string, std::string>& options,
              std::unique_ptr<Storage>* storage) override {
    return OpenRocksDbStorage(options.at("path"), storage);
  }
};

}  // namespace
}  // namespace popvault

POPVAULT_STORAGE_PLUGIN(popvault::RocksDbPlugin)
