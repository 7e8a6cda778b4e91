#include "ledger/ledger.h"

#include <rocksdb/db.h>

#include <catch2/catch.hpp>

#include "test_support.h"

namespace popvault {
namespace {

using testing::TempDir;

LedgerEntry Seen(const std::string& account, const std::string& uidl, int64_t first_seen = 100) {
  LedgerEntry e;
  e.state = MessageState::kSeen;
  e.first_seen = first_seen;
  e.record.account = account;
  e.record.uidl = uidl;
  return e;
}

LedgerEntry Stored(const std::string& account, const std::string& uidl) {
  LedgerEntry e = Seen(account, uidl);
  e.state = MessageState::kStored;
  e.record.sha256 = std::string(64, 'e');
  e.record.size = 42;
  e.record.stored_size = 21;
  e.record.archived_at = 1795776121;
  e.record.subject = "hello";
  e.stores = {"main", "offsite"};
  return e;
}

std::vector<std::string> Keys(Ledger& ledger, const std::string& account) {
  std::vector<std::string> keys;
  REQUIRE(ledger
              .ForEach(account,
                       [&](const LedgerEntry& e) {
                         keys.push_back(e.record.account + "|" + e.record.uidl);
                         return true;
                       })
              .ok());
  return keys;
}

TEST_CASE("MessageStateName") {
  CHECK(std::string(MessageStateName(MessageState::kSeen)) == "seen");
  CHECK(std::string(MessageStateName(MessageState::kStored)) == "stored");
  CHECK(std::string(MessageStateName(MessageState::kDeleted)) == "deleted");
}

TEST_CASE("Ledger state transitions persist across reopen") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  const std::string uidl("uid\0\xff 1", 7);
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    LedgerEntry e;
    CHECK(ledger->Get("acct", uidl, &e).code() == Status::Code::kNotFound);
    REQUIRE(ledger->Write({Seen("acct", uidl, 1000)}, false).ok());
    REQUIRE(ledger->Sync().ok());
  }
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    LedgerEntry e;
    REQUIRE(ledger->Get("acct", uidl, &e).ok());
    CHECK(e.state == MessageState::kSeen);
    CHECK(e.first_seen == 1000);
    CHECK(e.record.account == "acct");
    CHECK(e.record.uidl == uidl);
    CHECK(e.record.sha256.empty());
    CHECK(e.stores.empty());
    LedgerEntry stored = Stored("acct", uidl);
    stored.first_seen = 1000;
    REQUIRE(ledger->Write({stored}, true).ok());
  }
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    LedgerEntry e;
    REQUIRE(ledger->Get("acct", uidl, &e).ok());
    CHECK(e.state == MessageState::kStored);
    CHECK(e.record.sha256 == std::string(64, 'e'));
    CHECK(e.record.size == 42);
    CHECK(e.record.subject == "hello");
    CHECK(e.record.uidl == uidl);
    CHECK(e.stores == std::vector<std::string>{"main", "offsite"});
    e.state = MessageState::kDeleted;
    e.deleted_at = 2000;
    REQUIRE(ledger->Write({e}, true).ok());
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  LedgerEntry e;
  REQUIRE(ledger->Get("acct", uidl, &e).ok());
  CHECK(e.state == MessageState::kDeleted);
  CHECK(e.deleted_at == 2000);
  CHECK(e.first_seen == 1000);
  CHECK(e.record.sha256 == std::string(64, 'e'));
}

TEST_CASE("Ledger::OpenForReading reads beside the writer and writes nothing") {
  TempDir dir;
  std::unique_ptr<Ledger> writer;
  REQUIRE(Ledger::Open(dir.Sub("ledger"), &writer).ok());
  REQUIRE(writer->Write({Stored("acct", "a"), Seen("acct", "b")}, /*sync=*/true).ok());

  std::unique_ptr<Ledger> second;
  CHECK_FALSE(Ledger::Open(dir.Sub("ledger"), &second).ok());  // the writer holds it
  std::unique_ptr<Ledger> reader;
  REQUIRE(Ledger::OpenForReading(dir.Sub("ledger"), &reader).ok());
  CHECK(Keys(*reader, "acct") == std::vector<std::string>{"acct|a", "acct|b"});
  LedgerEntry e;
  REQUIRE(reader->Get("acct", "a", &e).ok());
  CHECK(e.record.subject == "hello");
  CHECK(reader->Write({Seen("acct", "c")}, true).code() == Status::Code::kNotSupported);
  reader.reset();
  REQUIRE(writer->Write({Seen("acct", "c")}, true).ok());
  CHECK(Keys(*writer, "acct").size() == 3);
}

TEST_CASE("Ledger::Write is all or nothing") {
  TempDir dir;
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(dir.Sub("ledger"), &ledger).ok());
  LedgerEntry no_record = Stored("a", "2");
  no_record.record.sha256.clear();
  LedgerEntry bad_hash = Stored("a", "3");
  bad_hash.record.sha256 = "xyz";
  LedgerEntry bad_account = Seen("a", "4");
  bad_account.record.account = std::string("a\0b", 3);
  for (const LedgerEntry& bad : {no_record, bad_hash, bad_account, Seen("", "5")}) {
    CHECK(ledger->Write({Seen("a", "1"), bad, Stored("a", "6")}, true).code() ==
          Status::Code::kInvalidArgument);
    CHECK(Keys(*ledger, "").empty());
  }
  REQUIRE(ledger->Write({Seen("a", "1"), Stored("a", "6"), Seen("b", "1")}, true).ok());
  CHECK(Keys(*ledger, "") == std::vector<std::string>{"a|1", "a|6", "b|1"});
}

TEST_CASE("Ledger::ForEach orders by account then UIDL bytes and filters by account") {
  TempDir dir;
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(dir.Sub("ledger"), &ledger).ok());
  const std::string nul(1, '\0');
  // Written out of order, with UIDLs that hold NUL and high bytes.
  REQUIRE(ledger
              ->Write({Seen("ab", "1"), Seen("a", "\xff"), Seen("a", "x" + nul + "y"),
                       Seen("a", "x"), Seen("a", nul), Seen("a", ""), Seen("a.b", "1"),
                       Seen("b", "0"), Stored("a", "x" + nul)},
                      false)
              .ok());
  CHECK(Keys(*ledger, "a") == std::vector<std::string>{"a|", "a|" + nul, "a|x", "a|x" + nul,
                                                       "a|x" + nul + "y", "a|\xff"});
  CHECK(Keys(*ledger, "ab") == std::vector<std::string>{"ab|1"});
  CHECK(Keys(*ledger, "a.b") == std::vector<std::string>{"a.b|1"});
  CHECK(Keys(*ledger, "c").empty());
  CHECK(Keys(*ledger, "") == std::vector<std::string>{"a|", "a|" + nul, "a|x", "a|x" + nul,
                                                      "a|x" + nul + "y", "a|\xff", "a.b|1", "ab|1",
                                                      "b|0"});

  LedgerEntry e;
  REQUIRE(ledger->Get("a", "x" + nul, &e).ok());
  CHECK(e.state == MessageState::kStored);
  REQUIRE(ledger->Get("a", "x", &e).ok());
  CHECK(e.state == MessageState::kSeen);
  CHECK(ledger->Get("a", "x" + nul + nul, &e).code() == Status::Code::kNotFound);

  int calls = 0;
  REQUIRE(ledger->ForEach("", [&](const LedgerEntry&) { return ++calls < 3; }).ok());
  CHECK(calls == 3);
  CHECK(ledger->ForEach("a/b", [](const LedgerEntry&) { return true; }).code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("Ledger::ForEach gives each entry its own fields, none left from the one before") {
  TempDir dir;
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(dir.Sub("ledger"), &ledger).ok());
  LedgerEntry purged = Stored("a", "3");
  purged.state = MessageState::kPurged;
  purged.stores.clear();
  // In key order: a full record, then one without, then one with no stores.
  REQUIRE(ledger->Write({Stored("a", "1"), Seen("a", "2", 7), purged}, false).ok());
  std::vector<LedgerEntry> seen;
  REQUIRE(ledger
              ->ForEach("a",
                        [&](const LedgerEntry& e) {
                          seen.push_back(e);
                          return true;
                        })
              .ok());
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].record.sha256 == std::string(64, 'e'));
  CHECK(seen[0].stores == std::vector<std::string>{"main", "offsite"});
  CHECK(seen[1].record.uidl == "2");
  CHECK(seen[1].first_seen == 7);
  CHECK(seen[1].record.sha256.empty());
  CHECK(seen[1].record.subject.empty());
  CHECK(seen[1].record.size == 0);
  CHECK(seen[1].record.archived_at == 0);
  CHECK(seen[1].stores.empty());
  CHECK(seen[2].state == MessageState::kPurged);
  CHECK(seen[2].record.subject == "hello");
  CHECK(seen[2].stores.empty());
}

TEST_CASE("Ledger::ForEachSummary gives state and stores as ForEach does, JSON entries too") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    REQUIRE(ledger->Write({Stored("a", "1"), Seen("a", "2"), Stored("b", "3")}, true).ok());
  }
  {
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    const std::string old_json = R"({"state":"seen","first_seen":5,"deleted_at":0,"stores":["x"]})";
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("a\0old", 5), old_json).ok());
    delete db;
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  std::vector<std::string> got;
  REQUIRE(ledger
              ->ForEachSummary("a",
                               [&](const Ledger::Summary& e) {
                                 std::string line(e.uidl);
                                 line += std::string(" ") + MessageStateName(e.state);
                                 for (const std::string& s : e.stores) line += " " + s;
                                 got.push_back(line);
                                 return true;
                               })
              .ok());
  CHECK(got == std::vector<std::string>{"1 stored main offsite", "2 seen", "old seen x"});

  // A value cut inside its head (state, times, stores, account, UIDL).
  {
    ledger.reset();
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    std::string value;
    REQUIRE(db->Get(rocksdb::ReadOptions(),
                    std::string("a\0"
                                "1",
                                3),
                    &value)
                .ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(),
                    std::string("a\0"
                                "1",
                                3),
                    value.substr(0, 8))
                .ok());
    delete db;
    REQUIRE(Ledger::Open(path, &ledger).ok());
  }
  const Status cut = ledger->ForEachSummary("a", [](const Ledger::Summary&) { return true; });
  CHECK(cut.code() == Status::Code::kCorruption);
  CHECK_THAT(cut.message(), Catch::Contains("UIDL 1"));
}

TEST_CASE("Ledger reports a damaged entry as Corruption naming it") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    REQUIRE(ledger->Write({Stored("acct", "good")}, true).ok());
  }
  const std::string uidl = "bad uidl\x01";
  SECTION("not JSON") {
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0", 5) + uidl, "{oops").ok());
    delete db;
  }
  SECTION("record of another message") {
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    std::string value;
    REQUIRE(db->Get(rocksdb::ReadOptions(), std::string("acct\0good", 9), &value).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0", 5) + uidl, value).ok());
    delete db;
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  LedgerEntry e;
  const Status get = ledger->Get("acct", uidl, &e);
  CHECK(get.code() == Status::Code::kCorruption);
  CHECK_THAT(get.message(), Catch::Contains("acct") && Catch::Contains(EncodeUidl(uidl)));
  const Status each = ledger->ForEach("acct", [](const LedgerEntry&) { return true; });
  CHECK(each.code() == Status::Code::kCorruption);
  CHECK_THAT(each.message(), Catch::Contains(EncodeUidl(uidl)));
  REQUIRE(ledger->Get("acct", "good", &e).ok());
}

TEST_CASE("Ledger entries round-trip every field, header text as valid UTF-8") {
  TempDir dir;
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(dir.Sub("ledger"), &ledger).ok());
  LedgerEntry e = Stored("acct", std::string("uid\0\xff 1", 7));
  e.state = MessageState::kDeleted;
  e.first_seen = 1795776000;
  e.deleted_at = 1795779999;
  e.oversize = 0;
  e.record.message_id = "<1@x>";
  e.record.date = "Fri, 27 Nov 2026 10:00:00 +0000";
  e.record.from = "a@b";
  e.record.subject = "caf\xc3\xa9 \xff";  // the last byte is not UTF-8
  REQUIRE(ledger->Write({e, Seen("acct", "new")}, true).ok());
  LedgerEntry got;
  REQUIRE(ledger->Get("acct", e.record.uidl, &got).ok());
  CHECK(got.state == e.state);
  CHECK(got.first_seen == e.first_seen);
  CHECK(got.deleted_at == e.deleted_at);
  CHECK(got.stores == e.stores);
  CHECK(got.record.sha256 == e.record.sha256);
  CHECK(got.record.size == 42);
  CHECK(got.record.stored_size == 21);
  CHECK(got.record.archived_at == e.record.archived_at);
  CHECK(got.record.message_id == "<1@x>");
  CHECK(got.record.date == e.record.date);
  CHECK(got.record.from == "a@b");
  CHECK(got.record.subject == "caf\xc3\xa9 \xef\xbf\xbd");
  REQUIRE(ledger->Get("acct", "new", &got).ok());
  CHECK(got.state == MessageState::kSeen);
  CHECK(got.record.sha256.empty());
  LedgerEntry reused = Stored("acct", "reused");
  reused.listed_octets = 4321;
  reused.dele_sent_at = 1795779000;
  reused.record.generation = 3;
  REQUIRE(ledger->Write({reused}, true).ok());
  REQUIRE(ledger->Get("acct", "reused", &got).ok());
  CHECK(got.listed_octets == 4321);
  CHECK(got.dele_sent_at == 1795779000);
  CHECK(got.record.generation == 3);
  bool summarized = false;
  REQUIRE(ledger
              ->ForEachSummary("acct",
                               [&](const Ledger::Summary& sum) {
                                 if (sum.uidl != "reused") return true;
                                 summarized =
                                     sum.listed_octets == 4321 && sum.dele_sent_at == 1795779000;
                                 return true;
                               })
              .ok());
  CHECK(summarized);
  LedgerEntry big = Seen("acct", "big");
  big.oversize = 300ull << 20;
  REQUIRE(ledger->Write({big}, true).ok());
  REQUIRE(ledger->Get("acct", "big", &got).ok());
  CHECK(got.oversize == 300ull << 20);
}

TEST_CASE("Ledger reads entries an earlier version wrote as JSON, and refuses cut binary ones") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    REQUIRE(ledger->Write({Stored("acct", "good")}, true).ok());
  }
  {
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    // The JSON form values had before the binary one (EncodeEntry then).
    ArchiveRecord record;
    record.account = "acct";
    record.uidl = "old";
    record.sha256 = std::string(64, 'a');
    record.size = 10;
    record.stored_size = 9;
    record.archived_at = 6;
    record.subject = "s";
    const std::string old_json =
        R"({"state":"stored","first_seen":5,"deleted_at":0,"stores":["main"],"oversize":7,)"
        R"("record":)" +
        RecordToJson(record) + "}";
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0old", 8), old_json).ok());
    std::string value;
    REQUIRE(db->Get(rocksdb::ReadOptions(), std::string("acct\0good", 9), &value).ok());
    value.pop_back();  // cut the last byte of a binary entry
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0cut", 8), value).ok());
    delete db;
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  LedgerEntry got;
  const Status old = ledger->Get("acct", "old", &got);
  INFO(old.ToString());
  REQUIRE(old.ok());
  CHECK(got.state == MessageState::kStored);
  CHECK(got.first_seen == 5);
  CHECK(got.oversize == 7);
  CHECK(got.stores == std::vector<std::string>{"main"});
  CHECK(got.record.sha256 == std::string(64, 'a'));
  CHECK(got.record.subject == "s");
  const Status cut = ledger->Get("acct", "cut", &got);
  CHECK(cut.code() == Status::Code::kCorruption);
  CHECK_THAT(cut.message(), Catch::Contains("cut"));
}

TEST_CASE("Ledger reads the first binary form, which had no size, DELE mark or generation") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  {
    rocksdb::DB* db = nullptr;
    rocksdb::Options options;
    options.create_if_missing = true;
    REQUIRE(rocksdb::DB::Open(options, path, &db).ok());
    // 0x01, kStored, first_seen 5, deleted_at 0, oversize 0, one store "m",
    // account "acct", uidl "v1", then a record: sha256, size 10, stored 9,
    // archived_at 6, four empty header strings.
    std::string v1(
        "\x01\x02\x05\x00\x00\x01\x01"
        "m\x04"
        "acct\x02"
        "v1\x01",
        17);
    v1.push_back(64);
    v1.append(64, 'b');
    v1.append("\x0a\x09\x06\x00\x00\x00\x00", 7);
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0v1", 7), v1).ok());
    delete db;
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  LedgerEntry got;
  const Status s = ledger->Get("acct", "v1", &got);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(got.state == MessageState::kStored);
  CHECK(got.stores == std::vector<std::string>{"m"});
  CHECK(got.record.sha256 == std::string(64, 'b'));
  CHECK(got.record.size == 10);
  CHECK_FALSE(got.listed_octets);
  CHECK(got.dele_sent_at == 0);
  CHECK(got.record.generation == 0);
}

TEST_CASE("Ledger::ForEachSummary with a corrupt callback reports a bad entry and goes on") {
  TempDir dir;
  const std::string path = dir.Sub("ledger");
  {
    std::unique_ptr<Ledger> ledger;
    REQUIRE(Ledger::Open(path, &ledger).ok());
    REQUIRE(ledger->Write({Stored("acct", "a"), Stored("acct", "c")}, true).ok());
  }
  {
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), std::string("acct\0b", 6), "\x02junk").ok());
    delete db;
  }
  std::unique_ptr<Ledger> ledger;
  REQUIRE(Ledger::Open(path, &ledger).ok());
  std::vector<std::string> seen, bad;
  auto each = [&](const Ledger::Summary& sum) {
    seen.emplace_back(sum.uidl);
    return true;
  };
  CHECK(ledger->ForEachSummary("acct", each).code() == Status::Code::kCorruption);
  seen.clear();
  REQUIRE(ledger
              ->ForEachSummary("acct", each,
                               [&](std::string_view uidl, const Status& s) {
                                 bad.push_back(std::string(uidl) + ": " + s.message());
                               })
              .ok());
  CHECK(seen == std::vector<std::string>{"a", "c"});
  REQUIRE(bad.size() == 1);
  CHECK_THAT(bad[0], Catch::StartsWith("b: ") && Catch::Contains("UIDL b"));
}

}  // namespace
}  // namespace popvault
