// Archive-side retention (PurgeAccount) against a real ledger and two
// RocksDB-backed stores, with the time given by the test.
#include "retention/purge.h"

#include <Poco/DigestEngine.h>
#include <Poco/JSON/Parser.h>
#include <Poco/SHA2Engine.h>
#include <stdlib.h>
#include <zstd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "rocksdb_storage.h"

namespace popvault {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kNow = 1800000000;

std::string Sha256Of(const std::string& bytes) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(bytes);
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::string Compress(const std::string& bytes) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), 3);
  REQUIRE(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

class Harness {
 public:
  Harness() {
    char tmpl[] = "/tmp/popvault-purge-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    REQUIRE(Ledger::Open(dir_ + "/ledger", &ledger_).ok());
    for (const char* name : {"local", "offsite"}) {
      std::unique_ptr<Storage> storage;
      REQUIRE(OpenRocksDbStorage(dir_ + "/" + name, &storage).ok());
      storages_.push_back(storage.get());
      owned_.push_back(std::make_unique<Archive>(name, std::move(storage), 3));
      archives.push_back(owned_.back().get());
    }
    REQUIRE(AuditLog::Open(dir_ + "/audit.log", &audit_).ok());
  }
  ~Harness() {
    audit_.reset();
    owned_.clear();
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Archives `body` as (account, uidl) in both stores, archived `age_days`
  // before kNow, and records it in the ledger in `state`. Returns its sha256.
  std::string Add(const std::string& account, const std::string& uidl, const std::string& body,
                  int64_t age_days, MessageState state) {
    LedgerEntry e;
    e.state = state;
    e.record.account = account;
    e.record.uidl = uidl;
    if (state != MessageState::kSeen) {
      e.record.sha256 = Sha256Of(body);
      e.record.size = body.size();
      e.record.archived_at = kNow - age_days * kDay;
      for (Archive* archive : archives) {
        StringSource compressed(Compress(body));
        uint64_t stored_size = 0;
        REQUIRE(archive->PutMessage(e.record.sha256, compressed, &stored_size).ok());
        e.record.stored_size = stored_size;
        REQUIRE(archive->PutRecord(e.record).ok());
        e.stores.push_back(archive->name());
      }
    }
    REQUIRE(ledger_->Write({e}, /*sync=*/true).ok());
    return e.record.sha256;
  }

  Status Purge(const PurgeSettings& settings, PurgeReport* report, bool dry_run = false) {
    return PurgeAccount(settings, *ledger_, archives, kNow, dry_run, audit_.get(), report);
  }

  Status Write(const LedgerEntry& e) { return ledger_->Write({e}, /*sync=*/true); }

  LedgerEntry Entry(const std::string& account, const std::string& uidl) {
    LedgerEntry e;
    REQUIRE(ledger_->Get(account, uidl, &e).ok());
    return e;
  }
  MessageState StateOf(const std::string& account, const std::string& uidl) {
    return Entry(account, uidl).state;
  }

  // How many of the two stores hold the key.
  int CountKey(const std::string& key) {
    int n = 0;
    for (Storage* storage : storages_) {
      bool exists = false;
      REQUIRE(storage->Exists(key, &exists).ok());
      n += exists ? 1 : 0;
    }
    return n;
  }
  int Records(const std::string& account, const std::string& uidl) {
    return CountKey(Archive::RecordKey(account, uidl));
  }
  int Objects(const std::string& sha256) { return CountKey(Archive::MessageKey(sha256)); }

  // Writes `record` under `key` in both stores (and its content, if given),
  // bypassing the ledger: what another agent, an older ledger or a superseded
  // generation leaves in a store.
  void PutRaw(const std::string& key, const ArchiveRecord& record, const std::string& body = "") {
    for (size_t i = 0; i < storages_.size(); ++i) {
      if (!body.empty()) {
        StringSource compressed(Compress(body));
        uint64_t stored_size = 0;
        REQUIRE(archives[i]->PutMessage(record.sha256, compressed, &stored_size).ok());
      }
      StringSource json(RecordToJson(record));
      REQUIRE(storages_[i]->Put(key, json).ok());
    }
  }

  std::vector<std::string> AuditLines() {
    std::ifstream in(dir_ + "/audit.log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::vector<Archive*> archives;

 private:
  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  std::vector<Storage*> storages_;
  std::vector<std::unique_ptr<Archive>> owned_;
  std::unique_ptr<AuditLog> audit_;
};

PurgeSettings Days(int days, const std::string& account = "acct") {
  return PurgeSettings{account, days, /*legal_hold=*/false};
}

TEST_CASE("purge: archive_retention_days = 0 never purges") {
  Harness h;
  const std::string sha = h.Add("acct", "old", "ancient", 10000, MessageState::kDeleted);
  PurgeReport report;
  REQUIRE(h.Purge(Days(0), &report).ok());
  CHECK(report.purged.empty());
  CHECK(h.StateOf("acct", "old") == MessageState::kDeleted);
  CHECK(h.Records("acct", "old") == 2);
  CHECK(h.Objects(sha) == 2);
  CHECK(h.AuditLines().empty());
}

TEST_CASE("purge: legal_hold refuses, whatever the days say") {
  Harness h;
  const std::string sha = h.Add("acct", "old", "ancient", 10000, MessageState::kDeleted);
  for (int days : {0, 30}) {
    PurgeReport report;
    const Status s = h.Purge(PurgeSettings{"acct", days, /*legal_hold=*/true}, &report);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kSecurity);
    CHECK(s.message().find("legal hold") != std::string::npos);
    CHECK(report.purged.empty());
  }
  CHECK(h.StateOf("acct", "old") == MessageState::kDeleted);
  CHECK(h.Records("acct", "old") == 2);
  CHECK(h.Objects(sha) == 2);
  CHECK(h.AuditLines().empty());
}

TEST_CASE("purge: only kDeleted messages archived before the cutoff go") {
  Harness h;
  const std::string old_gone = h.Add("acct", "old-gone", "a", 31, MessageState::kDeleted);
  const std::string old_on_server = h.Add("acct", "old-listed", "b", 31, MessageState::kStored);
  const std::string new_gone = h.Add("acct", "new-gone", "c", 29, MessageState::kDeleted);
  const std::string at_cutoff = h.Add("acct", "at-cutoff", "d", 30, MessageState::kDeleted);
  h.Add("acct", "seen", "e", 0, MessageState::kSeen);

  PurgeReport report;
  REQUIRE(h.Purge(Days(30), &report).ok());
  REQUIRE(report.purged.size() == 1);
  CHECK(report.purged[0].record.uidl == "old-gone");
  CHECK(report.objects_removed == 1);

  const LedgerEntry purged = h.Entry("acct", "old-gone");
  CHECK(purged.state == MessageState::kPurged);
  CHECK(purged.stores.empty());               // sync fetches it again if relisted
  CHECK(purged.record.sha256 == old_gone);    // what was archived stays known
  CHECK(h.Records("acct", "old-gone") == 0);  // from both stores
  CHECK(h.Objects(old_gone) == 0);
  for (const char* uidl : {"old-listed", "new-gone", "at-cutoff"}) {
    INFO(uidl);
    CHECK(h.StateOf("acct", uidl) != MessageState::kPurged);
    CHECK(h.Records("acct", uidl) == 2);
  }
  CHECK(h.Objects(old_on_server) == 2);
  CHECK(h.Objects(new_gone) == 2);
  CHECK(h.Objects(at_cutoff) == 2);
  CHECK(h.StateOf("acct", "seen") == MessageState::kSeen);

  // Purged is final: a second run finds nothing more.
  PurgeReport again;
  REQUIRE(h.Purge(Days(30), &again).ok());
  CHECK(again.purged.empty());
}

TEST_CASE("purge: content another entry still has keeps its object") {
  Harness h;
  const std::string shared = h.Add("acct", "mine", "same bytes", 100, MessageState::kDeleted);
  h.Add("other", "theirs", "same bytes", 100, MessageState::kStored);
  // Two expired UIDLs of one content: the object goes once, with the last.
  const std::string twice = h.Add("acct", "dup-1", "twice", 100, MessageState::kDeleted);
  h.Add("acct", "dup-2", "twice", 100, MessageState::kDeleted);

  PurgeReport report;
  REQUIRE(h.Purge(Days(30), &report).ok());
  CHECK(report.purged.size() == 3);
  CHECK(report.objects_removed == 1);
  CHECK(h.Records("acct", "mine") == 0);
  CHECK(h.Objects(shared) == 2);  // "other" still needs it
  CHECK(h.Records("other", "theirs") == 2);
  CHECK(h.StateOf("other", "theirs") == MessageState::kStored);
  CHECK(h.Objects(twice) == 0);
}

// A record as an agent writes it for (account, uidl) with this content.
ArchiveRecord RecordOf(const std::string& account, const std::string& uidl,
                       const std::string& body) {
  ArchiveRecord r;
  r.account = account;
  r.uidl = uidl;
  r.sha256 = Sha256Of(body);
  r.size = body.size();
  r.archived_at = kNow - 100 * kDay;
  return r;
}

TEST_CASE("purge: a store holding records the ledger does not know refuses, removes nothing") {
  // Ledger lost, or a second agent (with its own ledger) archiving account
  // "held", under legal_hold there, into the same store: its record names
  // content our expired message shares.
  Harness h;
  const std::string shared = h.Add("acct", "mine", "same bytes", 100, MessageState::kDeleted);
  const std::string own = h.Add("acct", "own", "only mine", 100, MessageState::kDeleted);
  const ArchiveRecord theirs = RecordOf("held", "x.1", "same bytes");
  const std::string key = Archive::RecordKey("held", "x.1");
  h.PutRaw(key, theirs);

  for (bool dry_run : {true, false}) {
    INFO("dry_run " << dry_run);
    PurgeReport report;
    const Status s = h.Purge(Days(30), &report, dry_run);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kSecurity);
    CHECK(s.message().find("account 'acct'") != std::string::npos);
    CHECK(s.message().find("store local") != std::string::npos);
    CHECK(s.message().find("1 record(s)") != std::string::npos);
    CHECK(s.message().find(key) != std::string::npos);
    CHECK(s.message().find("Hint:") != std::string::npos);
    CHECK(report.purged.empty());
  }
  for (const char* uidl : {"mine", "own"}) {
    INFO(uidl);
    CHECK(h.StateOf("acct", uidl) == MessageState::kDeleted);
    CHECK(h.Records("acct", uidl) == 2);
  }
  CHECK(h.Objects(shared) == 2);
  CHECK(h.Objects(own) == 2);
  CHECK(h.CountKey(key) == 2);
  CHECK(h.AuditLines().empty());
}

TEST_CASE("purge: content a record still names keeps its object, whatever the ledger says") {
  // A ledger restored from an older copy: it knows (other, theirs) only as
  // seen, but the stores hold its record, which names our expired content.
  Harness h;
  const std::string shared = h.Add("acct", "mine", "same bytes", 100, MessageState::kDeleted);
  h.Add("other", "theirs", "", 0, MessageState::kSeen);
  h.PutRaw(Archive::RecordKey("other", "theirs"), RecordOf("other", "theirs", "same bytes"));

  PurgeReport dry;
  REQUIRE(h.Purge(Days(30), &dry, /*dry_run=*/true).ok());
  CHECK(dry.purged.size() == 1);
  CHECK(dry.objects_removed == 0);

  PurgeReport report;
  const Status s = h.Purge(Days(30), &report);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(report.purged.size() == 1);
  CHECK(report.objects_removed == 0);
  CHECK(h.StateOf("acct", "mine") == MessageState::kPurged);
  CHECK(h.Records("acct", "mine") == 0);
  CHECK(h.Objects(shared) == 2);
  CHECK(h.Records("other", "theirs") == 2);
}

TEST_CASE("purge: a superseded generation's record keeps its object and stays") {
  // The server reused UIDL "old": the earlier message's record sits under
  // "<key-safe uidl>.1.json" (a generation the ledger entry no longer points
  // at) and names the same content as the entry's current record.
  Harness h;
  const std::string sha = h.Add("acct", "old", "reused", 100, MessageState::kDeleted);
  // Another expired message's content, named only by a superseded record.
  const std::string other = h.Add("acct", "gone", "gone bytes", 100, MessageState::kDeleted);
  const std::string superseded = "records/acct/old.1.json";
  const std::string superseded_gone = "records/acct/gone.12.json";
  h.PutRaw(superseded, RecordOf("acct", "old", "reused"));
  h.PutRaw(superseded_gone, RecordOf("acct", "gone", "gone bytes"));

  PurgeReport report;
  const Status s = h.Purge(Days(30), &report);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(report.purged.size() == 2);
  CHECK(report.objects_removed == 0);
  CHECK(h.StateOf("acct", "old") == MessageState::kPurged);
  CHECK(h.Records("acct", "old") == 0);  // the current generation goes
  CHECK(h.CountKey(superseded) == 2);    // the superseded one stays
  CHECK(h.CountKey(superseded_gone) == 2);
  CHECK(h.Objects(sha) == 2);
  CHECK(h.Objects(other) == 2);

  // The listing every reader uses takes generations as records too.
  std::vector<std::string> uidls;
  REQUIRE(h.archives[0]
              ->ListRecords("acct",
                            [&](const ArchiveRecord& r) {
                              uidls.push_back(r.uidl);
                              return true;
                            })
              .ok());
  CHECK(uidls == std::vector<std::string>{"gone", "old"});
}

TEST_CASE("purge: a purged entry no longer holds its content's object") {
  Harness h;
  h.Add("acct", "first", "bytes", 100, MessageState::kDeleted);
  PurgeReport first;
  REQUIRE(h.Purge(Days(30), &first).ok());
  // The same content archived again later, under another UIDL, then gone.
  const std::string sha = h.Add("acct", "second", "bytes", 50, MessageState::kDeleted);
  PurgeReport second;
  REQUIRE(h.Purge(Days(30), &second).ok());
  CHECK(second.objects_removed == 1);
  CHECK(h.Objects(sha) == 0);
}

TEST_CASE("purge: --dry-run reports and changes nothing") {
  Harness h;
  const std::string sha = h.Add("acct", "old", "ancient", 100, MessageState::kDeleted);
  PurgeReport report;
  REQUIRE(h.Purge(Days(30), &report, /*dry_run=*/true).ok());
  REQUIRE(report.purged.size() == 1);
  CHECK(report.purged[0].record.sha256 == sha);
  CHECK(report.objects_removed == 1);
  CHECK(h.StateOf("acct", "old") == MessageState::kDeleted);
  CHECK(h.Records("acct", "old") == 2);
  CHECK(h.Objects(sha) == 2);
  CHECK(h.AuditLines().empty());
}

TEST_CASE("purge: a run after a crash between stores and ledger completes") {
  Harness h;
  const std::string sha = h.Add("acct", "old", "ancient", 100, MessageState::kDeleted);
  // What a crash after RemoveFromStores leaves: the entry still kDeleted, the
  // record gone from one store, the object from both.
  REQUIRE(h.archives[0]->RemoveRecord("acct", "old").ok());
  for (Archive* archive : h.archives) REQUIRE(archive->RemoveMessage(sha).ok());
  REQUIRE(h.Records("acct", "old") == 1);

  PurgeReport report;
  const Status s = h.Purge(Days(30), &report);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(report.purged.size() == 1);
  CHECK(h.StateOf("acct", "old") == MessageState::kPurged);
  CHECK(h.Records("acct", "old") == 0);
}

TEST_CASE("purge: one audit line per purged message, JSON, deleted lines unchanged") {
  Harness h;
  const std::string sha = h.Add("acct", "a/b c", "ancient", 100, MessageState::kDeleted);
  h.Add("acct", "old-2", "older", 200, MessageState::kDeleted);
  PurgeReport report;
  REQUIRE(h.Purge(Days(30), &report).ok());
  const std::vector<std::string> lines = h.AuditLines();
  REQUIRE(lines.size() == 2);
  Poco::JSON::Parser parser;
  auto line = parser.parse(lines[0]).extract<Poco::JSON::Object::Ptr>();
  CHECK(line->getValue<std::string>("event") == "purged");
  CHECK(line->getValue<std::string>("account") == "acct");
  CHECK(line->getValue<std::string>("uidl") == EncodeUidl("a/b c"));
  CHECK(line->getValue<std::string>("sha256") == sha);
  CHECK(line->getValue<Poco::Int64>("unix_time") == kNow);
  CHECK(line->getValue<std::string>("time") == FormatTimestamp(kNow));
  CHECK(line->getValue<Poco::UInt64>("size") == 7);
  auto stores = line->getArray("stores_purged");
  REQUIRE(stores);
  CHECK(stores->size() == 2);
  CHECK(stores->getElement<std::string>(0) == "local");
  parser.reset();
  CHECK(parser.parse(lines[1]).extract<Poco::JSON::Object::Ptr>()->has("event"));

  AuditDeletion deleted{"acct", "u", sha, 7, {"local"}, kNow};  // as the sync engine writes
  const std::string text = AuditLog::Format(deleted);
  CHECK(text.rfind("{\"event\":\"deleted\",", 0) == 0);
  CHECK(text.find("\"stores_verified\":[\"local\"]") != std::string::npos);
}

TEST_CASE("Archive::RemoveRecord and RemoveMessage: absent is OK, malformed is not") {
  Harness h;
  Archive& archive = *h.archives[0];
  CHECK(archive.RemoveRecord("acct", "never-there").ok());
  CHECK(archive.RemoveMessage(std::string(64, 'a')).ok());
  CHECK(archive.RemoveMessage("not-a-sha").code() == Status::Code::kInvalidArgument);
  CHECK(archive.RemoveRecord("bad/account", "u").code() == Status::Code::kInvalidArgument);
}

TEST_CASE("Ledger: kPurged persists as \"purged\" and lists no stores") {
  Harness h;
  CHECK(std::string(MessageStateName(MessageState::kPurged)) == "purged");
  h.Add("acct", "old", "ancient", 100, MessageState::kDeleted);
  PurgeReport report;
  REQUIRE(h.Purge(Days(30), &report).ok());
  LedgerEntry still_listing = h.Entry("acct", "old");
  CHECK(still_listing.state == MessageState::kPurged);
  still_listing.stores = {"local"};
  CHECK(h.Write(still_listing).code() == Status::Code::kInvalidArgument);
  CHECK(h.Entry("acct", "old").stores.empty());
}

}  // namespace
}  // namespace popvault
