#include "common/crash_point.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

namespace popvault {
namespace {

struct Target {
  std::string name;
  long count = 0;  // 0: no crash point armed
};

const Target& ArmedTarget() {
  static const Target target = [] {
    Target t;
    const char* spec = std::getenv("POPVAULT_CRASH_AT");
    if (spec == nullptr) return t;
    const char* colon = std::strrchr(spec, ':');
    if (colon == nullptr) return t;
    t.name.assign(spec, colon);
    t.count = std::strtol(colon + 1, nullptr, 10);
    return t;
  }();
  return target;
}

}  // namespace

void CrashPoint(const char* name) {
  const Target& target = ArmedTarget();
  if (target.count <= 0 || target.name != name) return;
  static std::atomic<long> hits{0};
  if (++hits == target.count) std::raise(SIGKILL);
}

}  // namespace popvault
