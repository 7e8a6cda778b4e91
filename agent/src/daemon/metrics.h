// Metrics: per-account counters and gauges of the daemon, rendered in the
// Prometheus text exposition format (version 0.0.4) for GET /metrics.
//
// Thread-safe: workers record passes while the HTTP server renders.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "popvault/status.h"
#include "sync/sync_engine.h"

namespace popvault {

class Metrics {
 public:
  // One finished pass of `account`; `now` (unix) and `duration` in seconds.
  void RecordPass(const std::string& account, const SyncReport& report, const Status& status,
                  double now, double duration);

  // The account stopped being polled ([AUTH], [SYS/PERM]) or started again.
  void SetStopped(const std::string& account, bool stopped);

  // Forgets accounts not in `accounts` (removed by a reload); makes the
  // others known, so they show up (with zeros) before their first pass.
  void KeepOnly(const std::set<std::string>& accounts);

  std::string Render() const;

 private:
  struct Account {
    double last_poll = 0;     // unix seconds; 0: never
    double last_success = 0;  // unix seconds; 0: never
    double last_duration = 0;
    uint64_t polls_ok = 0, polls_failed = 0;
    uint64_t messages = 0, bytes = 0, deletes = 0;
    uint64_t verify_failed = 0, on_server = 0;
    uint64_t deduplicated = 0, pending_deletes = 0, too_large = 0;
    bool stopped = false;
    std::string error_code, error_message;  // of the last pass; empty if it succeeded
  };

  mutable std::mutex mu_;
  std::map<std::string, Account> accounts_;
};

// `value` escaped for a Prometheus label value (backslash, quote, newline).
std::string PrometheusLabel(const std::string& value);

}  // namespace popvault
