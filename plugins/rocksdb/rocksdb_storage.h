// The embedded default storage backend: objects in a RocksDB database.
//
// Large objects are split into chunks so that Put and Get stream with bounded
// memory; a manifest written after the last chunk makes the object visible,
// so a crash mid-Put leaves the old object (or none), never a partial one.
#pragma once

#include <memory>
#include <string>

#include "popvault/storage.h"

namespace popvault {

// Opens (creating if needed) the database in directory `path`.
Status OpenRocksDbStorage(const std::string& path, std::unique_ptr<Storage>* storage);

}  // namespace popvault
