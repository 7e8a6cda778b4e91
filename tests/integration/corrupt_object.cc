// corrupt_object STORE_DIR SHA256: replaces a message object in a RocksDB
// store with a valid zstd frame of other bytes, as silent disk corruption
// or a buggy backend might. For tests only.
#include <zstd.h>

#include <cstdio>
#include <string>

#include "archive/archive.h"
#include "rocksdb_storage.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: corrupt_object STORE_DIR SHA256\n");
    return 2;
  }
  std::unique_ptr<popvault::Storage> storage;
  popvault::Status s = popvault::OpenRocksDbStorage(argv[1], &storage);
  std::string key = popvault::Archive::MessageKey(argv[2]);
  bool exists = false;
  if (s.ok()) s = storage->Exists(key, &exists);
  if (s.ok() && !exists) s = popvault::Status::NotFound(key);
  const std::string other = "Subject: not the archived message\r\n\r\n";
  std::string frame(ZSTD_compressBound(other.size()), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), other.data(), other.size(), 3));
  popvault::StringSource src(frame);
  if (s.ok()) s = storage->Put(key, src);
  if (s.ok()) s = storage->Sync();
  if (!s.ok()) {
    std::fprintf(stderr, "corrupt_object: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
