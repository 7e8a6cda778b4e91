#include "daemon/daemon_app.h"

#include <Poco/Logger.h>

#include <cstdlib>

#include "daemon/platform.h"

namespace popvault {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("popvault.daemon"); }

}  // namespace

DaemonApp::DaemonApp(std::string config_path, DaemonOptions options,
                     std::function<Status(const Config&)> set_up_logging)
    : config_path_(std::move(config_path)),
      options_(options),
      set_up_logging_(std::move(set_up_logging)) {}

int DaemonApp::main(const std::vector<std::string>&) {
  BlockDaemonSignals();  // before any thread exists
  Config config;
  Status s = LoadConfig(config_path_, &config);
  if (s.ok()) s = set_up_logging_(config);
  std::unique_ptr<Daemon> daemon;
  if (s.ok()) s = Daemon::Create(config, options_, &daemon);
  if (!s.ok()) {
    Log().fatal("popvault run: %s", s.ToString());
    return EXIT_SOFTWARE;
  }
  daemon->Start();
  NotifySystemd("READY=1");
  {
    ReloadSignal reload([&] { Reload(*daemon); });
    waitForTerminationRequest();
    // At once, not after the reload thread is joined: a pass in flight
    // must not start another message meanwhile.
    daemon->RequestStop();
    Log().notice("stop requested: finishing the messages in flight");
    NotifySystemd("STOPPING=1");
  }  // no reload after this point
  if (!daemon->Stop()) {
    // Passes stuck past the deadline: end the process without waiting for
    // them. Their connections drop without QUIT, so the server deletes
    // nothing they marked; the ledger was synced by Stop.
    std::_Exit(EXIT_SOFTWARE);
  }
  Log().notice("stopped");
  return EXIT_OK;
}

void DaemonApp::Reload(Daemon& daemon) {
  NotifySystemd("RELOADING=1");
  Config config;
  Status s = LoadConfig(config_path_, &config);
  if (s.ok()) s = daemon.Reload(config);
  if (s.ok()) s = set_up_logging_(config);
  if (!s.ok()) Log().error("reload rejected, the previous config keeps running: %s", s.ToString());
  NotifySystemd("READY=1");
}

}  // namespace popvault
