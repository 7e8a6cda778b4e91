// fake_clock: an LD_PRELOAD library for tests that need the wall clock
// elsewhere than now (e.g. `popvault purge` days after the mail was
// archived). POPVAULT_FAKE_CLOCK_OFFSET=<seconds> is added to what time(),
// gettimeofday() and clock_gettime(CLOCK_REALTIME*) return; the monotonic
// clocks are left alone, so timeouts behave. For tests only.
#include <dlfcn.h>
#include <sys/time.h>

#include <cstdlib>
#include <ctime>

namespace {

time_t Offset() {
  static const time_t offset = [] {
    const char* value = std::getenv("POPVAULT_FAKE_CLOCK_OFFSET");
    return value == nullptr ? time_t{0} : static_cast<time_t>(std::atoll(value));
  }();
  return offset;
}

using ClockGettime = int (*)(clockid_t, struct timespec*);

ClockGettime RealClockGettime() {
  static const auto real = reinterpret_cast<ClockGettime>(dlsym(RTLD_NEXT, "clock_gettime"));
  return real;
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t clock, struct timespec* ts) noexcept {
  const int rc = RealClockGettime()(clock, ts);
  if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
    ts->tv_sec += Offset();
  }
  return rc;
}

time_t time(time_t* out) noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out != nullptr) *out = ts.tv_sec;
  return ts.tv_sec;
}

int gettimeofday(struct timeval* tv, void*) noexcept {
  struct timespec ts;
  const int rc = clock_gettime(CLOCK_REALTIME, &ts);
  tv->tv_sec = ts.tv_sec;  // glibc declares tv nonnull
  tv->tv_usec = static_cast<suseconds_t>(ts.tv_nsec / 1000);
  return rc;
}

}  // extern "C"
