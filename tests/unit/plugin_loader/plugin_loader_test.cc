#include "plugin_loader/plugin_loader.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace popvault {
namespace {

namespace fs = std::filesystem;

// A config whose single store uses `plugin` with `options`.
class Fixture {
 public:
  Fixture() {
    char tmpl[] = "/tmp/popvault-loader-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_.path = dir_ + "/popvault.ini";
  }
  ~Fixture() { fs::remove_all(dir_); }

  StoreConfig& AddStore(const std::string& plugin, std::vector<IniEntry> options) {
    StoreConfig store;
    store.name = "s";
    store.plugin = plugin;
    store.line = 10;
    store.options = std::move(options);
    config_.stores.push_back(store);
    return config_.stores.back();
  }

  Status Open(PluginLoader& loader, std::unique_ptr<Storage>* storage) {
    return loader.OpenStorage(config_, config_.stores.back(), storage);
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  Config config_;
};

TEST_CASE("the rocksdb plugin loads from the plugin directory and opens a store") {
  Fixture f;
  f.AddStore("rocksdb", {{"path", "archive", 11}});
  PluginLoader loader(POPVAULT_PLUGIN_DIR);
  std::unique_ptr<Storage> storage;
  REQUIRE(f.Open(loader, &storage).ok());
  bool exists = true;
  REQUIRE(storage->Exists("messages/ab/x.zst", &exists).ok());
  CHECK_FALSE(exists);
  storage.reset();                                // plugin code: before the loader goes
  CHECK(fs::is_directory(f.dir() + "/archive"));  // relative to the config file
}

TEST_CASE("a missing plugin is an error naming the store and the file") {
  Fixture f;
  f.AddStore("nosuch", {});
  PluginLoader loader(POPVAULT_PLUGIN_DIR);
  std::unique_ptr<Storage> storage;
  Status s = f.Open(loader, &storage);
  CHECK(s.code() == Status::Code::kNotFound);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("store 's'"));
  CHECK_THAT(s.message(), Catch::Matchers::Contains("popvault_store_nosuch.so does not exist"));
}

TEST_CASE("a plugin built for another API version is refused") {
  Fixture f;
  f.AddStore("oldapi", {{"mode", "ok", 11}});
  PluginLoader loader(POPVAULT_TEST_PLUGIN_DIR);
  std::unique_ptr<Storage> storage;
  Status s = f.Open(loader, &storage);
  CHECK(s.code() == Status::Code::kNotSupported);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("store 's'"));
  CHECK_THAT(s.message(), Catch::Matchers::Contains("popvault_store_oldapi.so"));
  CHECK_THAT(s.message(), Catch::Matchers::Contains("API version 999"));
}

TEST_CASE("a file that is not a loadable library is an error naming it") {
  Fixture f;
  std::ofstream(f.dir() + "/popvault_store_broken.so") << "not an ELF file\n";
  f.AddStore("broken", {});
  PluginLoader loader(f.dir());
  std::unique_ptr<Storage> storage;
  Status s = f.Open(loader, &storage);
  CHECK(s.code() == Status::Code::kIOError);
  CHECK_THAT(s.message(),
             Catch::Matchers::Contains("cannot load " + f.dir() + "/popvault_store_broken.so"));
}

TEST_CASE("plugin keys are checked against the plugin's declared options") {
  PluginLoader loader(POPVAULT_TEST_PLUGIN_DIR);
  std::unique_ptr<Storage> storage;
  {
    Fixture f;
    f.AddStore("fake", {{"mode", "ok", 11}, {"colour", "blue", 12}});
    Status s = f.Open(loader, &storage);
    CHECK_THAT(s.message(),
               Catch::Matchers::EndsWith(":12: [store.s] colour: unknown key for plugin 'fake'"));
  }
  {
    Fixture f;
    f.AddStore("fake", {});
    Status s = f.Open(loader, &storage);
    CHECK_THAT(s.message(), Catch::Matchers::Contains(":10: [store.s] mode: missing required key"));
  }
  {
    Fixture f;
    f.AddStore("fake", {{"mode", "bad", 13}});
    Status s = f.Open(loader, &storage);  // the plugin's own error, pointed at line 13
    CHECK_THAT(s.message(), Catch::Matchers::Contains(":13: [store.s] mode: must be 'ok'"));
  }
  {
    Fixture f;
    f.AddStore("fake", {{"mode", "ok", 11}, {"dir", "sub/dir", 12}});
    Status s = f.Open(loader, &storage);  // path options arrive resolved
    CHECK_THAT(s.message(), Catch::Matchers::Contains("dir=" + f.dir() + "/sub/dir"));
  }
}

TEST_CASE("the default plugin directory is lib/popvault beside the binary's bin/") {
  std::string dir = DefaultPluginDir();
  CHECK_THAT(dir, Catch::Matchers::EndsWith("/lib/popvault"));
  CHECK(PluginPath("/p", "s3") == "/p/popvault_store_s3.so");
}

}  // namespace
}  // namespace popvault
