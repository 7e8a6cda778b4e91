// read_stores CONFIG PLUGIN_DIR OUT_DIR: reads every message object of every
// store a popvault config names back through the store's plugin and the
// archive's codec (zstd, dictionaries), and writes what it decodes to
// OUT_DIR/<store>/<sha256 of the object's key>. The ledger is not read: the
// tests compare these bytes with what the server served, so "nothing lost"
// does not rest on popvault's own bookkeeping.
//
// An object that fails (missing dictionary, undecodable, SHA-256 mismatch)
// is still written with whatever was decoded, so the comparison shows it;
// each failure is printed and the exit status is 1. For tests only: a RocksDB
// store is one process's, so run this only while popvault is not running.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "config/config.h"
#include "plugin_loader/plugin_loader.h"

namespace popvault {
namespace {

// Writes what it is given to a file.
class FileSink : public ByteSink {
 public:
  explicit FileSink(const std::string& path) : out_(path, std::ios::binary | std::ios::trunc) {}
  Status Append(const char* data, size_t n) override {
    out_.write(data, static_cast<std::streamsize>(n));
    return out_ ? Status::OK() : Status::IOError("write failed");
  }

 private:
  std::ofstream out_;
};

// messages/<aa>/<sha256>.zst -> <sha256>; "" for any other key.
std::string ShaOfKey(const std::string& key) {
  const std::string prefix = "messages/", suffix = ".zst";
  if (key.rfind(prefix, 0) != 0 || key.size() < prefix.size() + 3 + 64 + suffix.size()) return "";
  std::string sha = key.substr(key.size() - suffix.size() - 64, 64);
  return Archive::MessageKey(sha) == key ? sha : "";
}

// Reads every message of one store into `out_dir`; counts failures.
int ReadStore(PluginLoader& loader, const Config& config, const StoreConfig& store,
              const std::string& out_dir) {
  std::unique_ptr<Storage> storage;
  Status s = loader.OpenStorage(config, store, &storage);
  std::vector<std::string> shas;
  if (s.ok()) {
    s = storage->List("messages/", [&](const std::string& key) {
      shas.push_back(ShaOfKey(key));
      return true;
    });
  }
  if (!s.ok()) {
    std::fprintf(stderr, "read_stores: store '%s': %s\n", store.name.c_str(), s.ToString().c_str());
    return 1;
  }
  Archive archive(store.name, std::move(storage), store.compression_level);
  std::filesystem::create_directories(out_dir);
  int failures = 0;
  for (const std::string& sha : shas) {
    if (sha.empty()) {
      std::fprintf(stderr, "read_stores: store '%s': a key under messages/ is not a message\n",
                   store.name.c_str());
      ++failures;
      continue;
    }
    FileSink sink(out_dir + "/" + sha);
    s = archive.ReadMessage(sha, sink);
    if (!s.ok()) {
      std::fprintf(stderr, "read_stores: store '%s', message %s: %s\n", store.name.c_str(),
                   sha.c_str(), s.ToString().c_str());
      ++failures;
    }
  }
  std::printf("%s\t%zu\n", store.name.c_str(), shas.size());
  return failures;
}

}  // namespace
}  // namespace popvault

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: read_stores CONFIG PLUGIN_DIR OUT_DIR\n");
    return 2;
  }
  popvault::Config config;
  popvault::Status s = popvault::LoadConfig(argv[1], &config);
  if (!s.ok()) {
    std::fprintf(stderr, "read_stores: %s\n", s.ToString().c_str());
    return 1;
  }
  popvault::PluginLoader loader(argv[2]);
  int failures = 0;
  for (const popvault::StoreConfig& store : config.stores) {
    failures += popvault::ReadStore(loader, config, store, std::string(argv[3]) + "/" + store.name);
  }
  return failures == 0 ? 0 : 1;
}
