// DoctorAccount over a real ledger and real stores (RocksDB and filesystem):
// each kind of damage, its repair, and what is never hidden or written.
#include "doctor/doctor.h"

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "archive/message_writer.h"
#include "archive/test_support.h"
#include "filesystem_storage.h"
#include "rocksdb_storage.h"

namespace popvault {
namespace {

using testing::StringSource;
using testing::TempDir;

constexpr int64_t kNow = 1700000000;

std::string Message(int i) {
  return "Subject: message " + std::to_string(i) + "\r\n\r\nbody " + std::to_string(i) + "\r\n";
}

// An account "acct" with two stores, "local" (RocksDB) and "tree"
// (filesystem), and a ledger, all under one temporary directory.
class Bench {
 public:
  Bench() {
    OpenLedger();
    std::unique_ptr<Storage> storage;
    REQUIRE(OpenRocksDbStorage(dir_.Sub("local"), &storage).ok());
    storages_["local"] = storage.get();
    archives_.push_back(std::make_unique<Archive>("local", std::move(storage), 3));
    REQUIRE(OpenFilesystemStorage(dir_.Sub("tree"), &storage).ok());
    storages_["tree"] = storage.get();
    archives_.push_back(std::make_unique<Archive>("tree", std::move(storage), 3));
  }

  // Stores `bytes` as (uidl, generation) in `stores` and records it in the
  // ledger as sync would: `state`, listing those stores.
  LedgerEntry Archived(const std::string& uidl, const std::string& bytes, uint32_t generation = 0,
                       MessageState state = MessageState::kStored,
                       std::vector<std::string> stores = {"local", "tree"}) {
    MessageWriter writer(std::vector<int>{3}, dir_.path());
    REQUIRE(writer.Append(bytes.data(), bytes.size()).ok());
    REQUIRE(writer.Finish().ok());
    LedgerEntry e;
    e.state = state;
    e.first_seen = kNow - 100;
    e.listed_octets = bytes.size();
    e.record.account = "acct";
    e.record.uidl = uidl;
    e.record.sha256 = writer.sha256_hex();
    e.record.size = writer.size();
    e.record.archived_at = kNow - 50;
    e.record.subject = "message";
    e.record.generation = generation;
    for (const std::string& name : stores) {
      Archive& a = ArchiveNamed(name);
      REQUIRE(a.PutMessage(e.record.sha256, writer.compressed(3), &e.record.stored_size).ok());
      REQUIRE(a.PutRecord(e.record).ok());
      REQUIRE(a.Sync().ok());
    }
    e.stores = stores;
    REQUIRE(ledger_->Write({e}, true).ok());
    return e;
  }

  Status Doctor(DoctorReport* report, bool dry_run = false, int64_t purge_before = 0) {
    DoctorOptions options;
    options.purge_before = purge_before;
    options.account = "acct";
    for (auto& a : archives_) options.archives.push_back(a.get());
    options.dry_run = dry_run;
    options.now = kNow;
    *report = DoctorReport();
    return DoctorAccount(options, *ledger_, report);
  }

  void Write(const LedgerEntry& e) { REQUIRE(ledger_->Write({e}, true).ok()); }
  Status Get(const std::string& uidl, LedgerEntry* e) { return ledger_->Get("acct", uidl, e); }
  LedgerEntry EntryOf(const std::string& uidl) {
    LedgerEntry e;
    REQUIRE(Get(uidl, &e).ok());
    return e;
  }

  // Replaces the ledger value of `uidl` with bytes that do not decode.
  void CorruptEntry(const std::string& uidl) {
    ledger_.reset();
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir_.Sub("ledger"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    REQUIRE(
        db->Put(rocksdb::WriteOptions(), std::string("acct") + '\0' + uidl, "\x02garbage").ok());
    db.reset();
    OpenLedger();
  }

  // The ledger is lost: a new, empty one.
  void LoseLedger() {
    ledger_.reset();
    std::filesystem::remove_all(dir_.Sub("ledger"));
    OpenLedger();
  }

  // Overwrites the message object of `sha256` in store `name` with junk.
  void DamageObject(const std::string& name, const std::string& sha256) {
    StringSource junk("not a zstd frame");
    REQUIRE(storages_[name]->Put(Archive::MessageKey(sha256), junk).ok());
  }

  void RemoveObject(const std::string& name, const std::string& sha256) {
    REQUIRE(storages_[name]->Remove(Archive::MessageKey(sha256)).ok());
  }

  Archive& ArchiveNamed(const std::string& name) {
    for (auto& a : archives_) {
      if (a->name() == name) return *a;
    }
    FAIL("no store " << name);
    throw;
  }

 private:
  void OpenLedger() { REQUIRE(Ledger::Open(dir_.Sub("ledger"), &ledger_).ok()); }

  TempDir dir_;
  std::unique_ptr<Ledger> ledger_;
  std::map<std::string, Storage*> storages_;  // owned by archives_
  std::vector<std::unique_ptr<Archive>> archives_;
};

using Stores = std::vector<std::string>;

// What a clean second run must show.
void CheckClean(Bench& bench) {
  DoctorReport again;
  REQUIRE(bench.Doctor(&again).ok());
  CHECK(again.writes.empty());
  CHECK(again.undecodable.count + again.missing_copies.count + again.unknown_records.count +
            again.newer_records.count + again.data_loss.count ==
        0);
}

TEST_CASE("a consistent archive needs nothing") {
  Bench bench;
  bench.Archived("a", Message(1));
  bench.Archived("b", Message(2), 0, MessageState::kDeleted);
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.entries == 2);
  CHECK(report.records == 4);
  CHECK(report.writes.empty());
  CheckClean(bench);
}

TEST_CASE("an undecodable entry is rebuilt from the stores' record") {
  Bench bench;
  const LedgerEntry a = bench.Archived("a", Message(1));
  bench.Archived("b", Message(2));
  bench.CorruptEntry("a");
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.undecodable.count == 1);
  REQUIRE(report.undecodable.examples.size() == 1);
  CHECK_THAT(report.undecodable.examples[0], Catch::Contains("UIDL a: truncated"));
  REQUIRE(report.writes.size() == 1);
  const LedgerEntry got = bench.EntryOf("a");
  CHECK(got.state == MessageState::kStored);
  CHECK(got.stores == Stores{"local", "tree"});
  CHECK(got.record.sha256 == a.record.sha256);
  CHECK(got.record.size == a.record.size);
  CHECK(got.record.subject == "message");
  CHECK(got.first_seen == a.record.archived_at);
  CHECK_FALSE(got.listed_octets);  // not known from a record
  CheckClean(bench);
}

TEST_CASE("an undecodable entry of a UIDL with odd bytes is rebuilt under that very UIDL") {
  // The entry is known only from the ledger's Corruption status, which names
  // it in EncodeUidl form: spaces, '%', ':' and bytes outside ASCII included.
  for (const std::string& uidl :
       {std::string("x y%25:"), std::string("a:"), std::string("\xff\x01:: b")}) {
    INFO(EncodeUidl(uidl));
    Bench bench;
    const LedgerEntry a = bench.Archived(uidl, Message(1));
    bench.CorruptEntry(uidl);
    DoctorReport report;
    REQUIRE(bench.Doctor(&report).ok());
    CHECK(report.undecodable.count == 1);
    CHECK(report.unrepaired.count == 0);
    CHECK(report.unknown_records.count == 0);
    const LedgerEntry got = bench.EntryOf(uidl);
    CHECK(got.state == MessageState::kStored);
    CHECK(got.record.sha256 == a.record.sha256);
    CheckClean(bench);
  }
}

TEST_CASE("an undecodable entry with no record in any store becomes a fresh kSeen entry") {
  Bench bench;
  bench.Archived("a", Message(1));
  bench.CorruptEntry("gone");
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.undecodable.count == 1);
  const LedgerEntry got = bench.EntryOf("gone");
  CHECK(got.state == MessageState::kSeen);  // fetched again if the server still lists it
  CHECK(got.stores.empty());
  CHECK(got.first_seen == kNow);
  CheckClean(bench);
}

TEST_CASE("the entries of a lost ledger are rebuilt from the newest generation") {
  Bench bench;
  bench.Archived("a", Message(1));
  bench.Archived("b", Message(2), 0, MessageState::kDeleted);
  const LedgerEntry b1 = bench.Archived("b", Message(3), 1);
  bench.LoseLedger();
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.unknown_records.count == 2);
  CHECK(report.entries == 0);
  CHECK(bench.EntryOf("a").state == MessageState::kStored);
  const LedgerEntry b = bench.EntryOf("b");
  CHECK(b.state == MessageState::kStored);
  CHECK(b.record.generation == 1);
  CHECK(b.record.sha256 == b1.record.sha256);
  CheckClean(bench);
}

TEST_CASE("a damaged or missing object drops its store, with none left the entry is kSeen") {
  Bench bench;
  const LedgerEntry a = bench.Archived("a", Message(1));
  const LedgerEntry b = bench.Archived("b", Message(2));
  bench.DamageObject("tree", a.record.sha256);
  bench.DamageObject("local", b.record.sha256);
  bench.RemoveObject("tree", b.record.sha256);
  bench.Archived("c", Message(3));
  REQUIRE(bench.ArchiveNamed("local").RemoveRecord("acct", "c").ok());
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.missing_copies.count == 3);
  REQUIRE(report.missing_copies.examples.size() == 3);
  CHECK_THAT(report.missing_copies.examples[0], Catch::Contains("store tree: message"));
  CHECK_THAT(report.missing_copies.examples[2], Catch::Contains("store local: record missing"));
  CHECK(bench.EntryOf("c").stores == Stores{"tree"});
  const LedgerEntry got_a = bench.EntryOf("a");
  CHECK(got_a.state == MessageState::kStored);
  CHECK(got_a.stores == Stores{"local"});
  // Still on the server (kStored, no DELE sent): the next sync fetches it.
  const LedgerEntry got_b = bench.EntryOf("b");
  CHECK(got_b.state == MessageState::kSeen);
  CHECK(got_b.stores.empty());
  CHECK(report.data_loss.count == 0);
}

TEST_CASE("a deleted message with no intact copy is data loss, reported every time") {
  Bench bench;
  const LedgerEntry a = bench.Archived("a", Message(1), 0, MessageState::kDeleted);
  bench.Archived("b", Message(2), 0, MessageState::kDeleted);
  bench.DamageObject("local", a.record.sha256);
  bench.RemoveObject("tree", a.record.sha256);
  for (int run = 0; run < 2; ++run) {
    DoctorReport report;
    const Status s = bench.Doctor(&report);
    CHECK(s.code() == Status::Code::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("DATA LOSS"));
    CHECK(report.data_loss.count == 1);
    REQUIRE(report.data_loss.examples.size() == 1);
    CHECK_THAT(report.data_loss.examples[0], Catch::Contains("uidl a"));
    CHECK(report.writes.empty());
    // Left as it was, so nothing hides it.
    const LedgerEntry got = bench.EntryOf("a");
    CHECK(got.state == MessageState::kDeleted);
    CHECK(got.stores == Stores{"local", "tree"});
  }
}

TEST_CASE("a purge that stopped before its ledger write is not data loss, and is left to purge") {
  Bench bench;
  const LedgerEntry a = bench.Archived("a", Message(1), 0, MessageState::kDeleted);
  bench.RemoveObject("local", a.record.sha256);
  bench.RemoveObject("tree", a.record.sha256);
  DoctorReport report;
  // Archived after the cut-off: purge would not have removed it.
  CHECK(bench.Doctor(&report, false, a.record.archived_at).code() == Status::Code::kCorruption);
  CHECK(report.data_loss.count == 1);
  REQUIRE(bench.Doctor(&report, false, a.record.archived_at + 1).ok());
  CHECK(report.data_loss.count == 0);
  CHECK(report.unfinished_purges.count == 1);
  CHECK(report.writes.empty());
  CHECK(bench.EntryOf("a").state == MessageState::kDeleted);
}

TEST_CASE("a dry run reports what it would write and writes nothing") {
  Bench bench;
  bench.Archived("a", Message(1));
  bench.Archived("b", Message(2));
  bench.CorruptEntry("a");
  const LedgerEntry c = bench.Archived("c", Message(3));
  bench.DamageObject("tree", c.record.sha256);
  DoctorReport report;
  REQUIRE(bench.Doctor(&report, /*dry_run=*/true).ok());
  CHECK(report.undecodable.count == 1);
  CHECK(report.missing_copies.count == 1);
  REQUIRE(report.writes.size() == 2);
  CHECK(report.writes[0].record.uidl == "a");
  CHECK(report.writes[1].stores == Stores{"local"});
  LedgerEntry e;
  CHECK(bench.Get("a", &e).code() == Status::Code::kCorruption);
  CHECK(bench.EntryOf("c").stores == Stores{"local", "tree"});
  // The same again, since nothing changed.
  DoctorReport again;
  REQUIRE(bench.Doctor(&again, /*dry_run=*/true).ok());
  CHECK(again.writes.size() == 2);
}

TEST_CASE("an older generation's record leaves the newer entry, a newer one replaces it") {
  Bench bench;
  bench.Archived("a", Message(1), 0, MessageState::kDeleted);
  const LedgerEntry a1 = bench.Archived("a", Message(2), 1);
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.newer_records.count == 0);
  CHECK(report.writes.empty());
  CHECK(bench.EntryOf("a").record.sha256 == a1.record.sha256);

  // The ledger went back to generation 0 (say, restored from a backup).
  bench.Archived("a", Message(1), 0, MessageState::kDeleted);
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.newer_records.count == 1);
  const LedgerEntry got = bench.EntryOf("a");
  CHECK(got.record.generation == 1);
  CHECK(got.record.sha256 == a1.record.sha256);
  CHECK(got.state == MessageState::kStored);
  CheckClean(bench);
}

TEST_CASE("an entry listing a store the account no longer has is reported, kept") {
  Bench bench;
  LedgerEntry a = bench.Archived("a", Message(1));
  a.stores.push_back("old");
  bench.Write(a);
  DoctorReport report;
  REQUIRE(bench.Doctor(&report).ok());
  CHECK(report.unknown_stores.count == 1);
  CHECK(report.writes.empty());
  CHECK(bench.EntryOf("a").stores == Stores{"local", "tree", "old"});
}

}  // namespace
}  // namespace popvault
