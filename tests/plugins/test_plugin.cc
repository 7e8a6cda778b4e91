// Plugins for the plugin loader's tests. Built twice: as "fake" (the current
// API version) and as "oldapi" (POPVAULT_TEST_API_VERSION overrides the
// version it reports).
#include "popvault/storage_plugin.h"

#ifdef POPVAULT_TEST_API_VERSION
#undef POPVAULT_STORAGE_API_VERSION
#define POPVAULT_STORAGE_API_VERSION POPVAULT_TEST_API_VERSION
#endif

namespace {

// Opens nothing; rejects any `mode` but "ok" the way a real plugin reports a
// bad option value.
class FakePlugin : public popvault::StoragePlugin {
 public:
  std::vector<popvault::PluginOption> Options() const override {
    return {{.name = "mode", .required = true, .description = "what Open does"},
            {.name = "dir", .is_path = true, .description = "a path option"}};
  }
  popvault::Status Open(const std::map<std::string, std::string>& options,
                        std::unique_ptr<popvault::Storage>*) override {
    if (options.at("mode") != "ok") {
      return popvault::Status::InvalidArgument("mode: must be 'ok', got '" + options.at("mode") +
                                               "'");
    }
    return popvault::Status::NotSupported("dir=" + (options.count("dir") ? options.at("dir") : ""));
  }
};

}  // namespace

POPVAULT_STORAGE_PLUGIN(FakePlugin)
