// StoreKeeper: the daemon's open stores, and their recovery from sticky
// errors (popvault/storage.h, "Failure"). Without it a store instance that
// failed for good (a filesystem store after a failed fsync, a RocksDB store
// after a background error such as a full disk) failed every later pass until
// the process restarted.
//
// Every store's Storage is watched: its first IOError marks the instance
// failed. Check (after each pass) schedules a reopen at that moment plus
// Backoff(attempts), attempts being the reopens since the store last synced
// OK. Once due, passes get a stand-in whose every call fails (IOError naming
// the store and its error: a pass counts the store down, so nothing that
// relies on it is deleted from a server), and as soon as no pass holds the
// failed instance any more ReopenDue destroys it (a RocksDB store must be
// closed before it can be opened again) and opens the store anew. A reopen
// that fails keeps the stand-in and backs off further. ReopenFailedNow
// (SIGHUP) makes every failed store due at once.
//
// The keeper never sleeps and never reads a clock: callers pass the time.
// Thread-safe; the slow part (closing and opening) runs outside its lock, so
// Get never waits for a reopen. `open` may be called from several threads
// (ReopenDue and Open): it must serialise itself.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "archive/archive.h"
#include "config/config.h"
#include "popvault/storage.h"

namespace popvault {

class StoreKeeper {
 public:
  using Clock = std::chrono::steady_clock;
  using Time = Clock::time_point;
  using Opener = std::function<Status(const StoreConfig&, std::unique_ptr<Storage>*)>;

  static constexpr std::chrono::seconds kFirstReopen{30};
  static constexpr std::chrono::seconds kMaxReopen{3600};

  explicit StoreKeeper(Opener open);
  ~StoreKeeper();
  StoreKeeper(const StoreKeeper&) = delete;
  StoreKeeper& operator=(const StoreKeeper&) = delete;

  // Opens `store` (and enables its dictionaries) unless a store of that name
  // is kept already. An open error is returned and nothing is kept; a
  // dictionary error is only logged (compression stays plain).
  Status Open(const StoreConfig& store);

  bool Has(const std::string& name) const;

  // The archive a pass is to use; null if `name` was never opened.
  std::shared_ptr<Archive> Get(const std::string& name) const;

  // Notes, at `now`, every store instance that has failed since it was opened
  // (logged; its reopen is scheduled), and resets the backoff of those that
  // have synced OK since.
  void Check(Time now);

  // Reopens the failed stores due at `now` that no pass holds any more (see
  // above). Returns how many were reopened.
  int ReopenDue(Time now);

  // SIGHUP: every failed store is due at `now`.
  void ReopenFailedNow(Time now);

  // When the next failed store becomes due; none if no store has failed.
  std::optional<Time> NextDue() const;

  // Whether `name` is failed (waiting for, or in, a reopen).
  bool failed(const std::string& name) const;

  // min(kFirstReopen * 2^attempts, kMaxReopen).
  static std::chrono::seconds Backoff(int attempts);

 private:
  class Watch;  // the Storage wrapper that notes the first IOError

  struct Kept {
    StoreConfig config;
    std::shared_ptr<Archive> archive;  // what Get hands out
    Watch* watch = nullptr;            // inside `archive`; null for a stand-in
    bool failed = false;
    int attempts = 0;                   // reopens since the last good Sync
    Time due{};                         // of the next reopen, if failed
    std::string error;                  // what failed, for the stand-in and logs
    std::shared_ptr<Archive> draining;  // the failed instance, until no pass holds it
    bool reopening = false;             // a ReopenDue is closing/opening it
  };

  Status OpenArchive(const StoreConfig& store, std::shared_ptr<Archive>* archive, Watch** watch);
  void Fail(Kept& kept, const std::string& error, Time now);

  Opener open_;
  mutable std::mutex mu_;
  std::map<std::string, Kept> stores_;  // by store name
};

}  // namespace popvault
