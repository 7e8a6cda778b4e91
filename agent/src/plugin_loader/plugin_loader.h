// Opens the Storage backend a [store.NAME] section names.
//
// Today the rocksdb backend is linked in; loading backends as shared
// libraries from a plugin directory replaces the body of OpenStorage without
// changing this interface.
#pragma once

#include <memory>

#include "config/config.h"
#include "popvault/storage.h"

namespace popvault {

// InvalidArgument for an unknown plugin name; the backend's own error
// (prefixed with the store name) if it cannot open `store.path`.
Status OpenStorage(const StoreConfig& store, std::unique_ptr<Storage>* storage);

}  // namespace popvault
