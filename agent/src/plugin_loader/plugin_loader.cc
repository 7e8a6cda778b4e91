#include "plugin_loader/plugin_loader.h"

#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>

#include <filesystem>

#ifdef _WIN32
#include <windows.h>
#endif

namespace popvault {
namespace {

namespace fs = std::filesystem;

// The running executable: the only platform-specific part of plugin lookup.
fs::path ExecutablePath() {
#ifdef _WIN32
  wchar_t buf[MAX_PATH];
  DWORD n = GetModuleFileNameW(nullptr, buf, MAX_PATH);
  return fs::path(std::wstring(buf, n));
#else
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
#endif
}

// Reads popvault_storage_api_version() without handing the library to the
// class loader, so a plugin built for another API is rejected before any of
// its classes are touched.
Status CheckApiVersion(const std::string& path) {
  try {
    Poco::SharedLibrary library(path);
    if (!library.hasSymbol("popvault_storage_api_version")) {
      return Status::NotSupported(path +
                                  " is not a popvault storage plugin "
                                  "(no popvault_storage_api_version)");
    }
    auto version = reinterpret_cast<int (*)()>(library.getSymbol("popvault_storage_api_version"));
    int found = version();
    library.unload();
    if (found != POPVAULT_STORAGE_API_VERSION) {
      return Status::NotSupported(path + " was built for storage plugin API version " +
                                  std::to_string(found) + "; this popvault needs version " +
                                  std::to_string(POPVAULT_STORAGE_API_VERSION));
    }
    return Status::OK();
  } catch (const Poco::Exception& e) {
    return Status::IOError("cannot load " + path + ": " + e.displayText());
  }
}

// The file the [store.NAME] section is in: the main config or an include.
const std::string& FileOf(const Config& config, const StoreConfig& store) {
  return store.file.empty() ? config.path : store.file;
}

// Matches the store's keys against the plugin's options; resolves paths
// (relative to the main config file, as the config loader does).
Status CheckOptions(const Config& config, const StoreConfig& store, const StoragePlugin& plugin,
                    std::map<std::string, std::string>* values) {
  const std::string section = "store." + store.name;
  std::map<std::string, PluginOption> declared;
  for (const PluginOption& o : plugin.Options()) declared[o.name] = o;
  for (const IniEntry& e : store.options) {
    auto it = declared.find(e.key);
    if (it == declared.end()) {
      return ConfigKeyError(FileOf(config, store), section, e,
                            "unknown key for plugin '" + store.plugin + "'");
    }
    (*values)[e.key] = it->second.is_path ? ResolveRelativeTo(config.path, e.value) : e.value;
  }
  for (const auto& [name, option] : declared) {
    if (option.required && !values->count(name)) {
      return Status::InvalidArgument(FileOf(config, store) + ":" + std::to_string(store.line) +
                                     ": [" + section + "] " + name + ": missing required key (" +
                                     option.description + ")");
    }
  }
  return Status::OK();
}

// Points a plugin's "key: what" error at the config line of that key; other
// errors get the store's name.
Status LocateError(const Config& config, const StoreConfig& store, const Status& s) {
  if (s.code() != Status::Code::kInvalidArgument)
    return s.WithContext("store '" + store.name + "'");
  for (const IniEntry& e : store.options) {
    const std::string head = e.key + ": ";
    if (s.message().rfind(head, 0) == 0) {
      return ConfigKeyError(FileOf(config, store), "store." + store.name, e,
                            s.message().substr(head.size()));
    }
  }
  return s.WithContext("store '" + store.name + "'");
}

}  // namespace

std::string DefaultPluginDir() {
  fs::path exe = ExecutablePath();
  return (exe.parent_path().parent_path() / "lib" / "popvault").string();
}

std::string PluginPath(const std::string& plugin_dir, const std::string& plugin) {
  return (fs::path(plugin_dir) / ("popvault_store_" + plugin + Poco::SharedLibrary::suffix()))
      .string();
}

PluginLoader::PluginLoader(std::string plugin_dir) : plugin_dir_(std::move(plugin_dir)) {}

// Instances first: their code lives in the libraries the class loader unloads.
PluginLoader::~PluginLoader() { plugins_.clear(); }

Status PluginLoader::Load(const std::string& plugin, StoragePlugin** plugin_out) {
  auto it = plugins_.find(plugin);
  if (it == plugins_.end()) {
    const std::string path = PluginPath(plugin_dir_, plugin);
    if (!fs::exists(path)) {
      return Status::NotFound("no plugin '" + plugin + "': " + path + " does not exist");
    }
    POPVAULT_RETURN_IF_ERROR(CheckApiVersion(path));
    try {
      loader_.loadLibrary(path);
      // Look in this library's manifest only: every plugin names its class
      // "StoragePlugin", so the loader's global lookup would be ambiguous.
      const auto* manifest = loader_.findManifest(path);
      auto meta = manifest->find("StoragePlugin");
      if (meta == manifest->end()) {
        return Status::NotSupported(path + " exports no StoragePlugin class");
      }
      it = plugins_.emplace(plugin, std::unique_ptr<StoragePlugin>(meta->create())).first;
    } catch (const Poco::Exception& e) {
      return Status::IOError("cannot load " + path + ": " + e.displayText());
    }
  }
  *plugin_out = it->second.get();
  return Status::OK();
}

Status PluginLoader::CheckStore(const Config& config, const StoreConfig& store) {
  StoragePlugin* plugin = nullptr;
  POPVAULT_RETURN_IF_ERROR(Load(store.plugin, &plugin).WithContext("store '" + store.name + "'"));
  std::map<std::string, std::string> values;
  return CheckOptions(config, store, *plugin, &values);
}

Status PluginLoader::OpenStorage(const Config& config, const StoreConfig& store,
                                 std::unique_ptr<Storage>* storage) {
  const std::string context = "store '" + store.name + "'";
  StoragePlugin* plugin = nullptr;
  POPVAULT_RETURN_IF_ERROR(Load(store.plugin, &plugin).WithContext(context));
  std::map<std::string, std::string> values;
  POPVAULT_RETURN_IF_ERROR(CheckOptions(config, store, *plugin, &values));
  return LocateError(config, store, plugin->Open(values, storage));
}

}  // namespace popvault
