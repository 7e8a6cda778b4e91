#include "daemon/store_keeper.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <atomic>

namespace popvault {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("popvault.daemon"); }

// What passes get while a failed store waits for its reopen: every call fails,
// so the sync engine counts the store down for the pass.
class StandInStorage : public Storage {
 public:
  explicit StandInStorage(std::string why) : why_(std::move(why)) {}
  Status Put(const std::string&, ByteSource&) override { return Fail(); }
  Status Get(const std::string&, ByteSink&) override { return Fail(); }
  Status Exists(const std::string&, bool*) override { return Fail(); }
  Status Remove(const std::string&) override { return Fail(); }
  Status List(const std::string&, const std::function<bool(const std::string&)>&) override {
    return Fail();
  }
  Status Sync() override { return Fail(); }

 private:
  Status Fail() const { return Status::IOError(why_); }
  const std::string why_;
};

}  // namespace

// Forwards every call; remembers the first IOError (the contract's sign that
// the instance may be failed for good) and whether a Sync succeeded since.
class StoreKeeper::Watch : public Storage {
 public:
  explicit Watch(std::unique_ptr<Storage> inner) : inner_(std::move(inner)) {}

  Status Put(const std::string& key, ByteSource& src) override {
    return Note(inner_->Put(key, src));
  }
  Status Get(const std::string& key, ByteSink& sink) override {
    return Note(inner_->Get(key, sink));
  }
  Status Exists(const std::string& key, bool* exists) override {
    return Note(inner_->Exists(key, exists));
  }
  Status Remove(const std::string& key) override { return Note(inner_->Remove(key)); }
  Status List(const std::string& prefix,
              const std::function<bool(const std::string&)>& fn) override {
    return Note(inner_->List(prefix, fn));
  }
  Status Sync() override {
    Status s = Note(inner_->Sync());
    if (s.ok()) synced_ = true;
    return s;
  }

  bool failed() const { return failed_; }
  bool synced() const { return synced_; }
  std::string error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  Status Note(Status s) {
    if (s.code() == Status::Code::kIOError && !failed_.exchange(true)) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = s.message();
    }
    return s;
  }

  std::unique_ptr<Storage> inner_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  std::string error_;  // the first IOError; mu_
};

StoreKeeper::StoreKeeper(Opener open) : open_(std::move(open)) {}

StoreKeeper::~StoreKeeper() = default;

std::chrono::seconds StoreKeeper::Backoff(int attempts) {
  std::chrono::seconds delay = kFirstReopen;
  for (int i = 0; i < attempts && delay < kMaxReopen; ++i) delay *= 2;
  return std::min(delay, kMaxReopen);
}

Status StoreKeeper::OpenArchive(const StoreConfig& store, std::shared_ptr<Archive>* archive,
                                Watch** watch) {
  std::unique_ptr<Storage> storage;
  POPVAULT_RETURN_IF_ERROR(open_(store, &storage));
  auto watched = std::make_unique<Watch>(std::move(storage));
  *watch = watched.get();
  *archive = std::make_shared<Archive>(store.name, std::move(watched), store.compression_level);
  const Status s = (*archive)->EnableDictionaries(store.dictionary_train_after);
  if (!s.ok()) Log().warning("%s; compressing without a dictionary", s.ToString());
  return Status::OK();
}

Status StoreKeeper::Open(const StoreConfig& store) {
  if (Has(store.name)) return Status::OK();
  std::shared_ptr<Archive> archive;
  Watch* watch = nullptr;
  POPVAULT_RETURN_IF_ERROR(OpenArchive(store, &archive, &watch));
  std::lock_guard<std::mutex> lock(mu_);
  Kept& kept = stores_[store.name];
  kept.config = store;
  kept.archive = std::move(archive);
  kept.watch = watch;
  return Status::OK();
}

bool StoreKeeper::Has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return stores_.count(name) > 0;
}

std::shared_ptr<Archive> StoreKeeper::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stores_.find(name);
  return it == stores_.end() ? nullptr : it->second.archive;
}

bool StoreKeeper::failed(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stores_.find(name);
  return it != stores_.end() && it->second.failed;
}

void StoreKeeper::Fail(Kept& kept, const std::string& error, Time now) {
  const std::chrono::seconds delay = Backoff(kept.attempts);
  kept.failed = true;
  kept.error = error;
  kept.due = now + delay;
  Log().error("store %s failed: %s; reopening it in %?d s (or at SIGHUP)", kept.config.name, error,
              static_cast<int64_t>(delay.count()));
}

void StoreKeeper::Check(Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, kept] : stores_) {
    if (kept.failed || kept.watch == nullptr) continue;
    if (kept.watch->failed()) {
      Fail(kept, kept.watch->error(), now);
    } else if (kept.watch->synced()) {
      kept.attempts = 0;  // healthy again: the next failure starts over
    }
  }
}

int StoreKeeper::ReopenDue(Time now) {
  int reopened = 0;
  for (;;) {
    std::string name;
    std::shared_ptr<Archive> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::find_if(stores_.begin(), stores_.end(), [&](auto& entry) {
        Kept& kept = entry.second;
        if (!kept.failed || kept.reopening || kept.due > now) return false;
        if (kept.watch != nullptr) {
          // Due: new passes get the stand-in; those in flight keep the old.
          kept.draining = std::move(kept.archive);
          kept.watch = nullptr;
          kept.archive = std::make_shared<Archive>(
              entry.first,
              std::make_unique<StandInStorage>("store " + entry.first + " failed (" + kept.error +
                                               ") and is being reopened"),
              kept.config.compression_level);
        }
        return kept.draining == nullptr || kept.draining.use_count() == 1;
      });
      if (it == stores_.end()) return reopened;
      name = it->first;
      it->second.reopening = true;
      old = std::move(it->second.draining);
    }
    old.reset();  // the last holder: closes the failed instance before the new one opens
    StoreConfig config;
    {
      std::lock_guard<std::mutex> lock(mu_);
      config = stores_.at(name).config;
    }
    std::shared_ptr<Archive> fresh;
    Watch* watch = nullptr;
    const Status s = OpenArchive(config, &fresh, &watch);
    std::lock_guard<std::mutex> lock(mu_);
    Kept& kept = stores_.at(name);
    kept.reopening = false;
    ++kept.attempts;
    if (s.ok()) {
      // Copies the failed instance wrote may be intact in memory only.
      fresh->RewriteExisting();
      kept.archive = std::move(fresh);
      kept.watch = watch;
      kept.failed = false;
      kept.error.clear();
      Log().notice("store %s reopened", name);
      ++reopened;
    } else {
      const std::chrono::seconds delay = Backoff(kept.attempts);
      kept.due = now + delay;
      Log().error("store %s: reopening failed: %s; next attempt in %?d s (or at SIGHUP)", name,
                  s.ToString(), static_cast<int64_t>(delay.count()));
    }
  }
}

void StoreKeeper::ReopenFailedNow(Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, kept] : stores_) {
    if (kept.failed && kept.due > now) kept.due = now;
  }
}

std::optional<StoreKeeper::Time> StoreKeeper::NextDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<Time> next;
  for (const auto& [name, kept] : stores_) {
    // A draining store waits for a pass to end, which wakes the daemon anyway.
    if (!kept.failed || kept.reopening || kept.draining) continue;
    if (!next || kept.due < *next) next = kept.due;
  }
  return next;
}

}  // namespace popvault
