#include "daemon/daemon.h"

#include <Poco/Logger.h>

#include <charconv>
#include <filesystem>
#include <set>

#include "sync/sync_engine.h"

namespace popvault {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("popvault.daemon"); }

double UnixNow() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// "900" or "900 USER" (RFC 2449 §6.8: pre-login CAPA may add USER) -> 900 s.
std::chrono::seconds ParseLoginDelay(const std::string& argument) {
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(argument.data(), argument.data() + argument.size(), seconds);
  (void)end;
  return ec == std::errc() && seconds > 0 ? std::chrono::seconds(seconds) : std::chrono::seconds(0);
}

bool SameStore(const StoreConfig& a, const StoreConfig& b) {
  if (a.plugin != b.plugin || a.compression_level != b.compression_level ||
      a.dictionary_train_after != b.dictionary_train_after ||
      a.options.size() != b.options.size()) {
    return false;
  }
  for (size_t i = 0; i < a.options.size(); ++i) {
    if (a.options[i].key != b.options[i].key || a.options[i].value != b.options[i].value) {
      return false;
    }
  }
  return true;
}

// [agent] keys a running daemon cannot change: named in a warning on reload.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  if (running.state_dir != next.state_dir) changed.push_back("state_dir");
  if (running.plugin_dir != next.plugin_dir) changed.push_back("plugin_dir");
  if (running.metrics_listen != next.metrics_listen) changed.push_back("metrics_listen");
  if (running.max_concurrent_accounts != next.max_concurrent_accounts) {
    changed.push_back("max_concurrent_accounts");
  }
  return changed;
}

}  // namespace

struct Daemon::Job {
  AccountConfig account;
  std::vector<std::shared_ptr<Archive>> stores;  // kept alive across a reload
};

Daemon::Daemon(const Config& config, const DaemonOptions& options)
    : options_(options),
      spool_dir_(config.state_dir + "/spool"),
      config_path_(config.path),
      config_(config),
      stores_([this](const StoreConfig& store, std::unique_ptr<Storage>* storage) {
        // The loader reads only the main file's path from the config (relative
        // plugin paths, error locations); it is the same across reloads.
        Config where;
        where.path = config_path_;
        std::lock_guard<std::mutex> lock(loader_mu_);
        return loader_->OpenStorage(where, store, storage);
      }),
      scheduler_([this] { return std::uniform_real_distribution<double>(0, 1)(random_); }),
      random_(std::random_device{}()) {}

Status Daemon::Create(const Config& config, const DaemonOptions& options,
                      std::unique_ptr<Daemon>* daemon) {
  std::unique_ptr<Daemon> d(new Daemon(config, options));
  std::error_code ec;
  std::filesystem::create_directories(d->spool_dir_, ec);
  if (ec) return Status::IOError("cannot create " + d->spool_dir_ + ": " + ec.message());
  POPVAULT_RETURN_IF_ERROR(Ledger::Open(config.state_dir + "/ledger", &d->ledger_));
  POPVAULT_RETURN_IF_ERROR(AuditLog::Open(config.audit_log, &d->audit_log_));
  d->loader_ = std::make_unique<PluginLoader>(config.plugin_dir.empty() ? DefaultPluginDir()
                                                                        : config.plugin_dir);
  POPVAULT_RETURN_IF_ERROR(d->OpenStores(config));
  if (!config.metrics_listen.empty()) {
    Daemon* self = d.get();
    POPVAULT_RETURN_IF_ERROR(MetricsServer::Start(
        config.metrics_listen, d->metrics_,
        [self] {
          std::lock_guard<std::mutex> lock(self->mu_);
          return !self->stopping_;
        },
        &d->http_));
  }
  *daemon = std::move(d);
  return Status::OK();
}

Daemon::~Daemon() {
  http_.reset();  // its handlers read metrics_ and mu_
}

uint16_t Daemon::metrics_port() const { return http_ ? http_->port() : 0; }

// Opens the stores of `config` that are not open yet. A changed store is an
// error; a store no account uses any more stays open (harmless, and a pass
// may still hold it) until the daemon exits.
Status Daemon::OpenStores(const Config& config) {
  for (const StoreConfig& store : config.stores) {
    const StoreConfig* running = config_.FindStore(store.name);
    if (stores_.Has(store.name) && running != nullptr && !SameStore(*running, store)) {
      return Status::InvalidArgument("[store." + store.name +
                                     "] changed: restart popvault to apply it");
    }
  }
  for (const StoreConfig& store : config.stores) {
    POPVAULT_RETURN_IF_ERROR(stores_.Open(store));
  }
  return Status::OK();
}

void Daemon::ApplyAccounts() {
  std::vector<Scheduler::AccountSpec> specs;
  std::set<std::string> names;
  for (const AccountConfig& a : config_.accounts) {
    specs.push_back({a.name, a.poll_interval});
    names.insert(a.name);
  }
  scheduler_.SetAccounts(specs, Scheduler::Clock::now());
  metrics_.KeepOnly(names);
  for (const std::string& name : names) metrics_.SetStopped(name, false);
}

void Daemon::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ApplyAccounts();
  }
  int threads = std::max(1, config_.max_concurrent_accounts);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  Log().information("running: %z account(s), %d at a time", config_.accounts.size(), threads);
}

Status Daemon::Reload(const Config& next) {
  std::lock_guard<std::mutex> lock(mu_);
  // Whatever becomes of the new config: an admin who freed the disk reloads.
  stores_.ReopenFailedNow(StoreKeeper::Clock::now());
  wake_.notify_all();
  Config merged = next;
  std::vector<std::string> restart_only = RestartOnlyChanges(config_, next);
  for (const std::string& key : restart_only) {
    Log().warning("reload: [agent] %s changed; it takes effect after a restart", key);
  }
  merged.state_dir = config_.state_dir;
  merged.plugin_dir = config_.plugin_dir;
  merged.metrics_listen = config_.metrics_listen;
  merged.max_concurrent_accounts = config_.max_concurrent_accounts;
  // Stores first: if one cannot open, the old config keeps running unchanged.
  POPVAULT_RETURN_IF_ERROR(OpenStores(merged));
  config_ = std::move(merged);
  ApplyAccounts();
  wake_.notify_all();
  Log().information("reloaded %s: %z account(s)", config_.path, config_.accounts.size());
  return Status::OK();
}

void Daemon::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Outside mu_: closing and opening a store can take seconds.
    lock.unlock();
    stores_.ReopenDue(StoreKeeper::Clock::now());
    lock.lock();
    if (stopping_) break;
    std::optional<std::string> name = scheduler_.TakeDue(Scheduler::Clock::now());
    if (!name) {
      std::optional<Scheduler::Time> next = scheduler_.NextDue();
      std::optional<StoreKeeper::Time> reopen = stores_.NextDue();
      if (reopen && (!next || *reopen < *next)) next = reopen;
      next ? (void)wake_.wait_until(lock, *next) : wake_.wait(lock);
      continue;
    }
    Job job;
    job.account = *config_.FindAccount(*name);
    for (const std::string& store : job.account.stores) job.stores.push_back(stores_.Get(store));
    ++running_;
    lock.unlock();
    Scheduler::Outcome outcome = RunPass(job);
    job.stores.clear();  // lets a failed store close for its reopen
    stores_.Check(StoreKeeper::Clock::now());
    lock.lock();
    --running_;
    scheduler_.Finish(*name, outcome, Scheduler::Clock::now());
    const Scheduler::AccountState* state = scheduler_.Find(*name);
    if (state != nullptr && state->stopped) {
      metrics_.SetStopped(*name, true);
      Log().error("account '%s' is not polled again until a reload: %s", *name, state->stop_reason);
    }
    wake_.notify_all();
  }
}

Scheduler::Outcome Daemon::RunPass(const Job& job) {
  Scheduler::Outcome outcome;
  SyncOptions options;
  options.spool_dir = spool_dir_;
  options.stop = &stop_;
  options.audit_log = audit_log_.get();
  // Wraps the real login to learn the session's LOGIN-DELAY (RFC 2449), also
  // from a [LOGIN-DELAY] refusal: then the wait counts from this attempt,
  // since when the server last let us in is unknown.
  options.connect = [&outcome](const Pop3Options& pop3, std::unique_ptr<Pop3Session>* session) {
    Pop3Session::OpenInfo info;
    Status s = Pop3Session::Open(pop3, session, &info);
    if (s.ok() || s.code() == Status::Code::kLoginDelay) {
      outcome.logged_in = Scheduler::Clock::now();
      outcome.login_delay = ParseLoginDelay(info.login_delay);
    }
    return s;
  };
  std::vector<Archive*> archives;
  for (const auto& store : job.stores) archives.push_back(store.get());
  SyncReport report;
  auto start = std::chrono::steady_clock::now();
  outcome.status = SyncAccount(job.account, *ledger_, archives, options, &report);
  double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.RecordPass(job.account.name, report, outcome.status, UnixNow(), duration);
  if (outcome.status.ok()) {
    Log().information("account '%s': %?u on server, %?u fetched, %?u deleted", job.account.name,
                      report.listed, report.fetched, report.deleted);
  } else {
    Log().warning("account '%s': %s", job.account.name, outcome.status.ToString());
  }
  return outcome;
}

void Daemon::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  stop_ = true;
  wake_.notify_all();
}

bool Daemon::Stop() {
  RequestStop();
  std::unique_lock<std::mutex> lock(mu_);
  bool ended = wake_.wait_for(lock, options_.stop_timeout, [this] { return running_ == 0; });
  int stuck = running_;
  lock.unlock();
  Status s = ledger_->Sync();
  if (!s.ok()) Log().error("ledger sync at shutdown: %s", s.ToString());
  if (!ended) {
    Log().error("%d pass(es) did not end within %ds of the stop request", stuck,
                static_cast<int>(options_.stop_timeout.count()));
    return false;
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  return true;
}

}  // namespace popvault
