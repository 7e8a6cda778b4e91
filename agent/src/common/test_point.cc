#include "common/test_point.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace popvault {
namespace {

struct Target {
  std::string name;
  long count = 0;    // 0: not armed
  std::string file;  // pause: the file to create and wait on
  std::atomic<long> hits{0};

  // Parses "<name>:<n>" or, with a file, "<name>:<n>:<file>".
  void Arm(const char* spec, bool with_file) {
    if (spec == nullptr) return;
    std::string s = spec;
    size_t colon = s.find(':');
    if (colon == std::string::npos) return;
    name = s.substr(0, colon);
    std::string rest = s.substr(colon + 1);
    size_t second = rest.find(':');
    if (with_file) {
      if (second == std::string::npos) return;
      file = rest.substr(second + 1);
    }
    count = std::strtol(rest.substr(0, second).c_str(), nullptr, 10);
  }

  bool Hit(const char* point) { return count > 0 && name == point && ++hits == count; }
};

Target& Crash() {
  static Target* t = [] {
    auto* target = new Target;  // lives until exit: TestPoint may run at any time
    target->Arm(std::getenv("POPVAULT_CRASH_AT"), false);
    return target;
  }();
  return *t;
}

Target& Pause() {
  static Target* t = [] {
    auto* target = new Target;
    target->Arm(std::getenv("POPVAULT_PAUSE_AT"), true);
    return target;
  }();
  return *t;
}

void WaitForRemoval(const std::string& file) {
  std::ofstream(file) << "paused\n";
  for (int i = 0; i < 12000 && std::filesystem::exists(file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

void TestPoint(const char* name) {
  if (Crash().Hit(name)) std::raise(SIGKILL);
  if (Pause().Hit(name)) WaitForRemoval(Pause().file);
}

}  // namespace popvault
