#include "plugin_loader/plugin_loader.h"

#include "rocksdb_storage.h"

namespace popvault {

Status OpenStorage(const StoreConfig& store, std::unique_ptr<Storage>* storage) {
  if (store.plugin != "rocksdb") {
    return Status::InvalidArgument("store '" + store.name + "': unknown plugin '" + store.plugin +
                                   "' (available: rocksdb)");
  }
  return OpenRocksDbStorage(store.path, storage).WithContext("store '" + store.name + "'");
}

}  // namespace popvault
