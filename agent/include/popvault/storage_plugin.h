// The storage plugin API (version 1). A storage backend is a shared library
// in the plugin directory, named popvault_store_<plugin>.so (.dll on
// Windows), exporting:
//
//   - popvault_storage_api_version(), which must return the version the
//     agent was built with (checked before anything else is touched), and
//   - a Poco ClassLoader manifest with one StoragePlugin class named
//     "StoragePlugin".
//
// POPVAULT_STORAGE_PLUGIN(MyPlugin) in one source file of the plugin does both.
//
// The agent wraps compression, hashing and (later) encryption around the
// Storage a plugin opens; a plugin only stores opaque bytes under keys.
// Plugins are built with the same compiler and standard library as the agent
// (the interface passes std::string and std::unique_ptr).
#pragma once

#include <Poco/ClassLibrary.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "popvault/status.h"
#include "popvault/storage.h"

#define POPVAULT_STORAGE_API_VERSION 1

namespace popvault {

// One key a backend accepts in its [store.NAME] section (besides `plugin` and
// `compression_level`, which belong to the agent).
struct PluginOption {
  std::string name;
  bool required = false;
  bool is_path = false;  // the agent resolves it relative to the config file
  bool secret = false;   // never printed (check-config masks it)
  std::string description;
};

// Instantiated once per loaded library; Open may be called for several
// stores, from one thread at a time.
class StoragePlugin {
 public:
  virtual ~StoragePlugin() = default;

  // The keys Open understands. The agent rejects any other key, and a missing
  // required one, before calling Open.
  virtual std::vector<PluginOption> Options() const = 0;

  // Opens (creating if needed) a store. `options` holds only keys from
  // Options(), values as written (paths already resolved). An error about
  // one option is InvalidArgument whose message starts with "<key>: " so the
  // agent can point at the config line. The returned Storage must honour the
  // contract in popvault/storage.h.
  virtual Status Open(const std::map<std::string, std::string>& options,
                      std::unique_ptr<Storage>* storage) = 0;
};

}  // namespace popvault

#define POPVAULT_STORAGE_PLUGIN(PluginClass)                       \
  extern "C" POCO_LIBRARY_API int popvault_storage_api_version() { \
    return POPVAULT_STORAGE_API_VERSION;                           \
  }                                                                \
  POCO_BEGIN_MANIFEST(popvault::StoragePlugin)                     \
  POCO_EXPORT_INTERFACE(PluginClass, "StoragePlugin")              \
  POCO_END_MANIFEST
