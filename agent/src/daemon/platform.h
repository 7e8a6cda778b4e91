// Platform-specific parts of the daemon, isolated here. On Unix: signal
// masks, SIGHUP (reload) and systemd's notify protocol. On Windows (not built
// in CI): Poco::Util::ServerApplication turns service stop and Ctrl-C into
// waitForTerminationRequest; there is no SIGHUP (restart the service to
// reload) and no notify socket, so these functions do nothing there.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace popvault {

// Blocks SIGTERM, SIGINT, SIGQUIT and SIGHUP in the calling thread and
// ignores SIGPIPE. Call it before starting any thread: threads inherit the
// mask, so those signals reach only ServerApplication's sigwait (TERM, INT,
// QUIT) and ReloadSignal (HUP), never a worker's default action.
void BlockDaemonSignals();

// sd_notify(3) without libsystemd: sends `state` ("READY=1", "STOPPING=1",
// "RELOADING=1") to $NOTIFY_SOCKET if set. Best effort; thread-safe.
void NotifySystemd(const std::string& state);

// Calls `on_reload` on its own thread for each SIGHUP, until destroyed.
// SIGHUP must be blocked (BlockDaemonSignals) in every thread.
class ReloadSignal {
 public:
  explicit ReloadSignal(std::function<void()> on_reload);
  ~ReloadSignal();  // returns within about half a second
  ReloadSignal(const ReloadSignal&) = delete;
  ReloadSignal& operator=(const ReloadSignal&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace popvault
