// StoreKeeper with a fault-injecting storage that goes sticky (every call
// fails after its first failure, like a filesystem store after a failed fsync
// or RocksDB after a background error) and a fake clock: the failed store is
// reopened after the backoff, or at once on SIGHUP, and archiving resumes.
#include "daemon/store_keeper.h"

#include <catch2/catch.hpp>
#include <map>
#include <mutex>

#include "archive/test_support.h"

namespace popvault {
namespace {

using std::chrono::seconds;
using Time = StoreKeeper::Time;

const Time kT0 = Time() + std::chrono::hours(1000);
const std::string kSha(64, 'a');

// The bytes of a store, which outlive its instances (a directory on disk).
struct Backend {
  std::mutex mu;
  std::map<std::string, std::string> objects;
  bool fail_next_sync = false;  // the next Sync of any instance fails
  int open_instances = 0;
};

// One open instance over a Backend. After its first failure every call fails
// (sticky), as the Storage contract allows; a new instance is healthy.
class StickyStorage : public Storage {
 public:
  explicit StickyStorage(Backend* backend) : backend_(backend) {
    std::lock_guard<std::mutex> lock(backend_->mu);
    ++backend_->open_instances;
  }
  ~StickyStorage() override {
    std::lock_guard<std::mutex> lock(backend_->mu);
    --backend_->open_instances;
  }
  Status Put(const std::string& key, ByteSource& src) override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::string bytes;
    POPVAULT_RETURN_IF_ERROR(testing::ReadAll(src, &bytes));
    std::lock_guard<std::mutex> lock(backend_->mu);
    backend_->objects[key] = bytes;
    return Status::OK();
  }
  Status Get(const std::string& key, ByteSink& sink) override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::string bytes;
    {
      std::lock_guard<std::mutex> lock(backend_->mu);
      auto it = backend_->objects.find(key);
      if (it == backend_->objects.end()) return Status::NotFound(key);
      bytes = it->second;
    }
    return sink.Append(bytes.data(), bytes.size());
  }
  Status Exists(const std::string& key, bool* exists) override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::lock_guard<std::mutex> lock(backend_->mu);
    *exists = backend_->objects.count(key) > 0;
    return Status::OK();
  }
  Status Remove(const std::string& key) override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::lock_guard<std::mutex> lock(backend_->mu);
    backend_->objects.erase(key);
    return Status::OK();
  }
  Status List(const std::string& prefix,
              const std::function<bool(const std::string&)>& fn) override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::vector<std::string> keys;
    {
      std::lock_guard<std::mutex> lock(backend_->mu);
      for (const auto& [key, bytes] : backend_->objects) {
        if (key.rfind(prefix, 0) == 0) keys.push_back(key);
      }
    }
    for (const std::string& key : keys) {
      if (!fn(key)) break;
    }
    return Status::OK();
  }
  Status Sync() override {
    POPVAULT_RETURN_IF_ERROR(Check());
    std::lock_guard<std::mutex> lock(backend_->mu);
    if (backend_->fail_next_sync) {
      backend_->fail_next_sync = false;
      sticky_ = true;
      return Status::IOError("fsync: Input/output error");
    }
    return Status::OK();
  }

 private:
  Status Check() const {
    return sticky_ ? Status::IOError("an earlier sync failed; reopen it") : Status::OK();
  }
  Backend* backend_;
  std::atomic<bool> sticky_{false};
};

struct Fixture {
  Backend backend;
  int opens = 0;
  Status open_error;  // what the next opens return (OK: open one)
  StoreKeeper keeper{[this](const StoreConfig&, std::unique_ptr<Storage>* storage) {
    ++opens;
    if (!open_error.ok()) return open_error;
    *storage = std::make_unique<StickyStorage>(&backend);
    return Status::OK();
  }};

  Fixture() {
    StoreConfig store;
    store.name = "local";
    store.plugin = "sticky";
    REQUIRE(keeper.Open(store).ok());
  }

  // What a pass does with the store: one record, then the group commit.
  Status Store(const std::string& uidl) {
    std::shared_ptr<Archive> archive = keeper.Get("local");
    REQUIRE(archive);
    ArchiveRecord record;
    record.account = "acct";
    record.uidl = uidl;
    record.sha256 = kSha;
    POPVAULT_RETURN_IF_ERROR(archive->PutRecord(record));
    return archive->Sync();
  }

  std::vector<std::string> Uidls() {
    std::vector<std::string> out;
    REQUIRE(keeper.Get("local")
                ->ListRecords("acct",
                              [&](const ArchiveRecord& r) {
                                out.push_back(r.uidl);
                                return true;
                              })
                .ok());
    return out;
  }

  // A sticky failure at kT0, noted after the pass.
  void FailAt(Time now) {
    backend.fail_next_sync = true;
    CHECK(Store("lost").code() == Status::Code::kIOError);
    CHECK(Store("still-failing").code() == Status::Code::kIOError);  // sticky
    keeper.Check(now);
    REQUIRE(keeper.failed("local"));
  }
};

TEST_CASE("StoreKeeper: backoff is min(30 s * 2^n, 1 h)") {
  CHECK(StoreKeeper::Backoff(0) == seconds(30));
  CHECK(StoreKeeper::Backoff(1) == seconds(60));
  CHECK(StoreKeeper::Backoff(4) == seconds(480));
  CHECK(StoreKeeper::Backoff(6) == seconds(1920));
  CHECK(StoreKeeper::Backoff(7) == seconds(3600));
  CHECK(StoreKeeper::Backoff(1000) == seconds(3600));
}

TEST_CASE("StoreKeeper: a sticky store is reopened after the backoff and archiving resumes") {
  Fixture f;
  REQUIRE(f.Store("before").ok());
  f.keeper.Check(kT0);
  CHECK(!f.keeper.failed("local"));
  CHECK(f.keeper.NextDue() == std::nullopt);

  f.FailAt(kT0);
  CHECK(f.keeper.NextDue() == kT0 + seconds(30));
  CHECK(f.keeper.ReopenDue(kT0 + seconds(29)) == 0);
  CHECK(f.opens == 1);
  CHECK(f.Store("meanwhile").code() == Status::Code::kIOError);

  CHECK_FALSE(f.keeper.Get("local")->rewrites_existing());
  CHECK(f.keeper.ReopenDue(kT0 + seconds(30)) == 1);
  CHECK(f.opens == 2);
  CHECK(f.backend.open_instances == 1);  // the failed one was closed first
  // What the failed instance wrote may be intact in memory only: written again.
  CHECK(f.keeper.Get("local")->rewrites_existing());
  CHECK(!f.keeper.failed("local"));
  CHECK(f.keeper.NextDue() == std::nullopt);
  REQUIRE(f.Store("after").ok());
  // Writes the failed instance refused never arrived; the rest is there.
  CHECK(f.Uidls() == std::vector<std::string>{"after", "before", "lost"});
}

TEST_CASE("StoreKeeper: a failed store a pass still holds is reopened once the pass lets go") {
  Fixture f;
  std::shared_ptr<Archive> in_flight = f.keeper.Get("local");
  f.FailAt(kT0);
  CHECK(f.keeper.ReopenDue(kT0 + seconds(30)) == 0);
  CHECK(f.opens == 1);
  // New passes get the stand-in, naming the store and the failure.
  std::shared_ptr<Archive> stand_in = f.keeper.Get("local");
  REQUIRE(stand_in != in_flight);
  const Status s = stand_in->Sync();
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(s.message().find("store local failed") != std::string::npos);
  CHECK(s.message().find("fsync: Input/output error") != std::string::npos);
  stand_in.reset();
  CHECK(f.keeper.NextDue() == std::nullopt);  // waits for the pass, not the clock

  in_flight.reset();
  CHECK(f.keeper.ReopenDue(kT0 + seconds(31)) == 1);
  REQUIRE(f.Store("after").ok());
}

TEST_CASE("StoreKeeper: a reopen that fails backs off further, and a good sync resets it") {
  Fixture f;
  f.FailAt(kT0);
  f.open_error = Status::IOError("No space left on device");
  CHECK(f.keeper.ReopenDue(kT0 + seconds(30)) == 0);
  CHECK(f.opens == 2);
  CHECK(f.keeper.failed("local"));
  CHECK(f.keeper.NextDue() == kT0 + seconds(30 + 60));
  CHECK(f.keeper.ReopenDue(kT0 + seconds(89)) == 0);
  CHECK(f.keeper.ReopenDue(kT0 + seconds(90)) == 0);
  CHECK(f.keeper.NextDue() == kT0 + seconds(90 + 120));

  f.open_error = Status::OK();
  CHECK(f.keeper.ReopenDue(kT0 + seconds(210)) == 1);
  // Failing again before any good Sync: the backoff keeps growing.
  f.FailAt(kT0 + seconds(300));
  CHECK(f.keeper.NextDue() == kT0 + seconds(300 + 240));
  CHECK(f.keeper.ReopenDue(kT0 + seconds(540)) == 1);
  REQUIRE(f.Store("good").ok());
  f.keeper.Check(kT0 + seconds(600));  // synced OK: healthy again
  f.FailAt(kT0 + seconds(700));
  CHECK(f.keeper.NextDue() == kT0 + seconds(700 + 30));
}

TEST_CASE("StoreKeeper: SIGHUP reopens a failed store at once") {
  Fixture f;
  f.FailAt(kT0);
  f.keeper.ReopenFailedNow(kT0 + seconds(1));
  CHECK(f.keeper.NextDue() == kT0 + seconds(1));
  CHECK(f.keeper.ReopenDue(kT0 + seconds(1)) == 1);
  REQUIRE(f.Store("after").ok());
  // A healthy store is left alone.
  f.keeper.ReopenFailedNow(kT0 + seconds(2));
  CHECK(f.keeper.ReopenDue(kT0 + seconds(2)) == 0);
  CHECK(f.opens == 2);
}

TEST_CASE("StoreKeeper: an error that says nothing about the instance is not a failure") {
  Fixture f;
  testing::StringSink out;
  CHECK(f.keeper.Get("local")->ReadMessage(kSha, out).code() == Status::Code::kNotFound);
  f.keeper.Check(kT0);
  CHECK(!f.keeper.failed("local"));
}

}  // namespace
}  // namespace popvault
