#include "daemon/platform.h"

#include <Poco/Platform.h>

#if defined(POCO_OS_FAMILY_UNIX)
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#endif

namespace popvault {

#if defined(POCO_OS_FAMILY_UNIX)

void BlockDaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a peer closing a socket is an error, not death
}

void NotifySystemd(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  close(fd);
}

ReloadSignal::ReloadSignal(std::function<void()> on_reload)
    : thread_([this, on_reload = std::move(on_reload)] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGHUP);
        // A timeout, so the destructor's flag is seen without signalling us.
        const timespec tick{0, 200 * 1000 * 1000};
        while (!done_) {
          if (sigtimedwait(&set, nullptr, &tick) == SIGHUP) on_reload();
        }
      }) {}

#else  // Windows: see platform.h

void BlockDaemonSignals() {}
void NotifySystemd(const std::string&) {}
ReloadSignal::ReloadSignal(std::function<void()>) {}

#endif

ReloadSignal::~ReloadSignal() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace popvault
