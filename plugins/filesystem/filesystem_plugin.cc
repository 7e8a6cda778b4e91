// The filesystem plugin: [store.NAME] plugin = filesystem, path = DIR.
#include "filesystem_storage.h"
#include "popvault/storage_plugin.h"

namespace popvault {
namespace {

class FilesystemPlugin : public StoragePlugin {
 public:
  std::vector<PluginOption> Options() const override {
    return {{.name = "path",
             .required = true,
             .is_path = true,
             .description = "root directory of the tree of objects (created if missing)"}};
  }

  Status Open(const std::map<std::string, std::string>& options,
              std::unique_ptr<Storage>* storage) override {
    const Status s = OpenFilesystemStorage(options.at("path"), storage);
    // Open's only InvalidArgument is about the path; the agent wants "<key>: ".
    if (s.code() == Status::Code::kInvalidArgument) return s.WithContext("path");
    return s;
  }
};

}  // namespace
}  // namespace popvault

POPVAULT_STORAGE_PLUGIN(popvault::FilesystemPlugin)
