// DaemonApp: `popvault run` as a Poco::Util::ServerApplication. Poco handles
// --daemon, --pidfile=FILE and --umask=MASK on Unix, and service registration
// (/registerService, /unregisterService, /displayName) on Windows; the
// application itself runs in the foreground by default (systemd, containers).
//
// main(): block signals, load the config, open everything (Daemon::Create),
// start polling, tell systemd READY=1, then wait for SIGTERM/SIGINT (or a
// service stop). SIGHUP reloads the config (a bad one is logged and the old
// one keeps running). Stop: STOPPING=1, Daemon::Stop, exit 0.
//
// One instance per process (ServerApplication is a singleton).
#pragma once

#include <Poco/Util/ServerApplication.h>

#include <functional>
#include <string>

#include "config/config.h"
#include "daemon/daemon.h"

namespace popvault {

class DaemonApp : public Poco::Util::ServerApplication {
 public:
  // `set_up_logging` applies a config's log settings (at start and on
  // every successful reload).
  DaemonApp(std::string config_path, DaemonOptions options,
            std::function<Status(const Config&)> set_up_logging);

 protected:
  int main(const std::vector<std::string>& args) override;

 private:
  void Reload(Daemon& daemon);

  std::string config_path_;
  DaemonOptions options_;
  std::function<Status(const Config&)> set_up_logging_;
};

}  // namespace popvault
