// The embedded default storage backend: objects in a RocksDB database.
//
// Large objects are split into chunks so that Put and Get stream with bounded
// memory; a manifest written after the last chunk makes the object visible,
// so a crash mid-Put leaves the old object (or none), never a partial one.
// Such a crash can leave unreachable chunks behind; the next Put of the same
// key removes them (unless the key was removed in between). Puts skip the
// write-ahead log; Sync() makes them durable by flushing the memtables.
// Keys breaking the Storage key rules (or containing "//") are rejected with
// InvalidArgument.
#pragma once

#include <memory>
#include <string>

#include "popvault/storage.h"

namespace popvault {

// Opens (creating if needed) the database in directory `path`. One process
// at a time: RocksDB locks the directory. (RocksDB 7.8's secondary mode, which
// reads beside a writer, crashes at random reading blob files: tried.)
Status OpenRocksDbStorage(const std::string& path, std::unique_ptr<Storage>* storage);

}  // namespace popvault
