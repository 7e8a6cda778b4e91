// Shared by the chaos harness's parts: its random numbers and the switchable
// fault classes.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace popvault::chaos {

// SplitMix64: the same numbers on every platform and standard library
// (std::uniform_int_distribution is not), so a seed reproduces anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n is 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  // True with probability percent/100.
  bool Percent(uint64_t percent) { return Below(100) < percent; }

 private:
  uint64_t state_;
};

// A seed for a sub-stream (one pass, one store): independent of how many
// numbers other streams drew, so faults do not shift when one class is off.
inline uint64_t Mix(uint64_t a, uint64_t b) { return Rng(a * 0x100000001b3ull ^ b).Next(); }

// Every fault or mutation class, by the name --faults and --without take.
struct FaultClasses {
  // Mailbox, between passes.
  static constexpr const char* kOtherDelete = "other-delete";    // another client deletes
  static constexpr const char* kUidlReuse = "uidl-reuse";        // new mail under a gone UIDL
  static constexpr const char* kRepeatedUidl = "repeated-uidl";  // two messages, one UIDL
  static constexpr const char* kUidlOmit = "uidl-omit";          // UIDL omits what LIST shows
  static constexpr const char* kListLie = "list-lie";            // LIST sizes that lie
  static constexpr const char* kDuringSession =
      "during-session";  // mail comes and goes mid-session
  // One session.
  static constexpr const char* kErr = "err";                // -ERR, with and without codes
  static constexpr const char* kDisconnect = "disconnect";  // at a random reply byte
  static constexpr const char* kStall = "stall";            // replies pause
  static constexpr const char* kSlow = "slow";  // replies in small pieces, commands read late
  static constexpr const char* kLostQuitOk = "lost-quit-ok";        // QUIT commits, reply lost
  static constexpr const char* kKill = "kill";                      // SIGKILL before QUIT commits
  static constexpr const char* kKillAfterQuit = "kill-after-quit";  // SIGKILL once QUIT commits
  // SIGKILL after a seeded delay, wherever the engine is then (between a
  // QUIT's +OK and the audit line too): the moment depends on timing, so a
  // seed replays only roughly.
  static constexpr const char* kKillTimed = "kill-timed";
  // Storage (each store of the account, in the popvault process).
  static constexpr const char* kEnospc = "enospc";
  static constexpr const char* kEio = "eio";
  static constexpr const char* kTorn = "torn";             // a new object's prefix only
  static constexpr const char* kWrongRead = "wrong-read";  // a Get delivers a flipped byte
  static constexpr const char* kLatency = "latency";

  static std::vector<std::string> All() {
    return {kOtherDelete,   kUidlReuse, kRepeatedUidl,  kUidlOmit,  kListLie,
            kDuringSession, kErr,       kDisconnect,    kStall,     kSlow,
            kLostQuitOk,    kKill,      kKillAfterQuit, kKillTimed, kEnospc,
            kEio,           kTorn,      kWrongRead,     kLatency};
  }
  std::set<std::string> on;
  bool operator()(const char* name) const { return on.count(name) > 0; }
};

}  // namespace popvault::chaos
