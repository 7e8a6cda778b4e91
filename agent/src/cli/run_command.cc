// `popvault run`: hands the process over to the daemon (DaemonApp, a Poco
// ServerApplication, which wants to own main()). The CLI checks the
// arguments and the config first, so mistakes get the CLI's messages and exit
// codes; then DaemonApp::run receives the program name plus the options Poco
// itself implements (--daemon, --pidfile, --umask).
#include <Poco/Exception.h>

#include <iostream>

#include "cli/commands.h"
#include "daemon/daemon_app.h"
#include "logging/logging.h"

namespace popvault {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Splits `popvault run ...` into the config path and ServerApplication's
// arguments. Poco's options take their value after '=' only.
Status ParseRunArgs(int argc, char** argv, std::string* config_path,
                    std::vector<std::string>* app_args) {
  app_args->push_back(argv[0]);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config") {
      if (i + 1 >= argc) return Status::InvalidArgument("--config needs a value");
      *config_path = argv[++i];
    } else if (a == "--daemon" || StartsWith(a, "--pidfile=") || StartsWith(a, "--umask=")) {
      app_args->push_back(a);
    } else {
      return Status::InvalidArgument("unexpected argument '" + a + "'");
    }
  }
  if (config_path->empty()) return Status::InvalidArgument("--config FILE is required");
  return Status::OK();
}

}  // namespace

int Run(int argc, char** argv, const char* usage) {
  std::string config_path;
  std::vector<std::string> app_args;
  Status s = ParseRunArgs(argc, argv, &config_path, &app_args);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n" << usage;
    return 2;
  }
  Config config;
  s = LoadConfig(config_path, &config);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n";
    return 1;
  }
  s = SetUpLogging(config);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  DaemonApp app(config_path, DaemonOptions{}, [](const Config& c) { return SetUpLogging(c); });
  std::vector<char*> c_args;
  for (std::string& a : app_args) c_args.push_back(a.data());
  try {
    return app.run(static_cast<int>(c_args.size()), c_args.data());
  } catch (const Poco::Exception& e) {
    std::cerr << "popvault: " << e.displayText() << "\n";
    return 1;
  }
}

}  // namespace popvault
