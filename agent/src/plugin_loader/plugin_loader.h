// PluginLoader: loads storage plugins (shared libraries, see
// popvault/storage_plugin.h) from the plugin directory and opens the store a
// [store.NAME] section describes.
//
// Errors name the store and the file: a missing plugin, a library that does
// not load, one built for another plugin API version, and unknown, missing or
// bad plugin keys (with the config file line).
//
// Lifetime: a Storage opened through the loader runs code inside the plugin
// library, so it must be destroyed before the loader (which unloads them).
// Not thread-safe.
#pragma once

#include <Poco/ClassLoader.h>

#include <map>
#include <memory>
#include <string>

#include "config/config.h"
#include "popvault/storage_plugin.h"

namespace popvault {

// <directory of the running executable>/../lib/popvault: the install layout
// (bin/, lib/popvault/), which the build tree mirrors.
std::string DefaultPluginDir();

// popvault_store_<plugin>.so (or .dll) inside `plugin_dir`.
std::string PluginPath(const std::string& plugin_dir, const std::string& plugin);

class PluginLoader {
 public:
  explicit PluginLoader(std::string plugin_dir);
  ~PluginLoader();
  PluginLoader(const PluginLoader&) = delete;
  PluginLoader& operator=(const PluginLoader&) = delete;

  // Loads the store's plugin (once), checks store.options against the
  // plugin's declared options and opens the store.
  Status OpenStorage(const Config& config, const StoreConfig& store,
                     std::unique_ptr<Storage>* storage);

  // Loads the store's plugin and checks store.options, without opening it.
  Status CheckStore(const Config& config, const StoreConfig& store);

  // Loads the plugin named `plugin` (once) and sets *plugin_out.
  Status Load(const std::string& plugin, StoragePlugin** plugin_out);

 private:
  std::string plugin_dir_;
  Poco::ClassLoader<StoragePlugin> loader_;
  std::map<std::string, std::unique_ptr<StoragePlugin>> plugins_;  // by plugin name
};

}  // namespace popvault
