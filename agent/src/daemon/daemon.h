// Daemon: the long-running archiver behind `popvault run`. Owns the ledger,
// the plugin loader and every store (opened up front, shared by all passes:
// Ledger and Archive are thread-safe; a store that fails for good is reopened
// with backoff, or at once on SIGHUP: StoreKeeper), a Scheduler, a pool of
// max_concurrent_accounts worker threads that run SyncAccount, the Metrics
// and the optional HTTP endpoint.
//
// Lifecycle: Create -> Start -> (Reload)* -> Stop -> destruction. Start,
// Reload and Stop are called from one controlling thread (the app's main
// thread and its reload thread, serialised by the caller); metrics() may be
// read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "archive/archive.h"
#include "config/config.h"
#include "daemon/metrics.h"
#include "daemon/metrics_server.h"
#include "daemon/scheduler.h"
#include "daemon/store_keeper.h"
#include "ledger/ledger.h"
#include "plugin_loader/plugin_loader.h"
#include "retention/audit_log.h"

namespace popvault {

struct DaemonOptions {
  // Shutdown: how long passes in flight get to finish the message they are
  // on, commit and QUIT before Stop gives up on them.
  std::chrono::seconds stop_timeout{25};
};

class Daemon {
 public:
  // Opens the ledger and every store of `config` and binds the metrics
  // endpoint (if metrics_listen is set). Polls nothing yet.
  static Status Create(const Config& config, const DaemonOptions& options,
                       std::unique_ptr<Daemon>* daemon);

  // Requires Stop() to have returned true (or never Start()ed).
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts the workers and the HTTP endpoint; every account is due at once.
  void Start();

  // Makes every failed store due for its reopen at once (SIGHUP), whatever
  // becomes of the new config; then applies it: accounts added, removed or
  // changed take effect at
  // their next pass (a pass in flight finishes with the old settings); new
  // stores are opened. A store whose settings changed is rejected
  // (InvalidArgument, nothing applied): its open handle cannot be swapped
  // under running passes. [agent] keys other than log_level need a restart:
  // their change is logged and the running values stay.
  Status Reload(const Config& config);

  // Takes no new passes and sets the stop flag of those in flight (each
  // finishes its message, commits and QUITs); returns at once.
  void RequestStop();

  // RequestStop(), then waits up to stop_timeout for the passes in flight;
  // then syncs the ledger. True if every pass ended: the workers are joined
  // and the daemon may be destroyed. False: passes are still stuck (e.g. in
  // a network wait); the caller must end the process without destroying the
  // daemon (dropping their connections: no QUIT, so the server deletes
  // nothing of those sessions).
  bool Stop();

  const Metrics& metrics() const { return metrics_; }

  // The HTTP endpoint's port; 0 if there is none.
  uint16_t metrics_port() const;

 private:
  struct Job;  // one pass: the account and its stores, copied out under mu_

  Daemon(const Config& config, const DaemonOptions& options);
  Status OpenStores(const Config& config);
  void ApplyAccounts();  // scheduler + metrics from config_; mu_ held
  void WorkerLoop();
  Scheduler::Outcome RunPass(const Job& job);

  const DaemonOptions options_;
  const std::string spool_dir_;    // <state_dir>/spool; state_dir needs a restart
  const std::string config_path_;  // the main config file; the same across reloads
  Config config_;                  // the running config; guarded by mu_ after Start
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<AuditLog> audit_log_;  // committed deletions; opened with the ledger
  // Declared before stores_, so the stores (plugin code) are destroyed first.
  std::unique_ptr<PluginLoader> loader_;
  std::mutex loader_mu_;  // the loader is not thread-safe; stores reopen on workers
  StoreKeeper stores_;
  Metrics metrics_;
  std::unique_ptr<MetricsServer> http_;

  std::mutex mu_;
  std::condition_variable wake_;   // schedule changed, a pass ended, or stopping
  Scheduler scheduler_;            // mu_
  std::mt19937_64 random_;         // the scheduler's jitter; mu_
  int running_ = 0;                // passes in flight; mu_
  bool stopping_ = false;          // mu_
  std::atomic<bool> stop_{false};  // SyncOptions::stop of every pass
  std::vector<std::thread> workers_;
};

}  // namespace popvault
