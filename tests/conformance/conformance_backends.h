// The backends the conformance suite runs against, each opened through the
// PluginLoader from the build's plugin directory with its own scratch space.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "plugin_loader/plugin_loader.h"

namespace popvault {

class ConformanceBackend {
 public:
  explicit ConformanceBackend(const std::string& plugin) : loader_(POPVAULT_PLUGIN_DIR) {
    char tmpl[] = "/tmp/popvault-conformance-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_.path = dir_ + "/popvault.ini";
    store_.name = "conformance";
    store_.plugin = plugin;
    for (const auto& [key, value] : OptionsFor(plugin)) store_.options.push_back({key, value, 1});
  }
  ~ConformanceBackend() {
    storage_.reset();  // plugin code, before the loader unloads it
    std::filesystem::remove_all(dir_);
  }

  Storage& Open() {
    REQUIRE(!storage_);
    storage_ = Take();
    return *storage_;
  }

  // Where a local backend keeps its files.
  std::string StorePath() const { return dir_ + "/store"; }

  std::unique_ptr<Storage> Take() {
    std::unique_ptr<Storage> storage;
    Status s = loader_.OpenStorage(config_, store_, &storage);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return storage;
  }

 private:
  std::map<std::string, std::string> OptionsFor([[maybe_unused]] const std::string& plugin) {
#ifdef POPVAULT_CONFORMANCE_S3
    if (plugin == "s3") return S3Options();
#endif
    return {{"path", dir_ + "/store"}};
  }

  // A fresh bucket on the Ceph RGW that the CTest fixture "rgw" started.
  // Defined in conformance_s3.cc, linked only into the s3 suite.
  std::map<std::string, std::string> S3Options();

  std::string dir_;
  PluginLoader loader_;
  Config config_;
  StoreConfig store_;
  std::unique_ptr<Storage> storage_;
};

}  // namespace popvault
