#include "archive/archive.h"

#include <zstd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <set>

#include "archive/message_writer.h"
#include "rocksdb_storage.h"
#include "test_support.h"

namespace popvault {
namespace {

using testing::StringSink;
using testing::StringSource;
using testing::TempDir;

// Forwards to a real store and counts the Puts that reach it.
class CountingStorage : public testing::ForwardingStorage {
 public:
  CountingStorage(Storage* inner, std::atomic<int>* puts) : ForwardingStorage(inner), puts_(puts) {}
  Status Put(const std::string& key, ByteSource& src) override {
    ++*puts_;
    return ForwardingStorage::Put(key, src);
  }

 private:
  std::atomic<int>* puts_;
};

struct Fixture {
  TempDir dir;
  std::unique_ptr<Storage> store;  // the RocksDB store under the archive
  std::atomic<int> puts{0};
  std::unique_ptr<Archive> archive;

  Fixture() {
    REQUIRE(OpenRocksDbStorage(dir.Sub("store"), &store).ok());
    archive =
        std::make_unique<Archive>("main", std::make_unique<CountingStorage>(store.get(), &puts), 3);
  }
};

struct Compressed {
  std::string sha256;
  std::string frame;
};

Compressed Compress(const std::string& message) {
  MessageWriter w({3}, "/tmp");
  REQUIRE(w.Append(message.data(), message.size()).ok());
  REQUIRE(w.Finish().ok());
  Compressed c{w.sha256_hex(), {}};
  REQUIRE(testing::ReadAll(w.compressed(3), &c.frame).ok());
  return c;
}

ArchiveRecord Record(const std::string& account, const std::string& uidl) {
  ArchiveRecord r;
  r.account = account;
  r.uidl = uidl;
  r.sha256 = std::string(64, 'c');
  r.size = 10;
  r.stored_size = 5;
  r.archived_at = 1795776121;
  r.subject = "about " + EncodeUidl(uidl);
  return r;
}

std::vector<std::string> ListUidls(Archive& archive, const std::string& account) {
  std::vector<std::string> uidls;
  REQUIRE(archive
              .ListRecords(account,
                           [&](const ArchiveRecord& r) {
                             uidls.push_back(r.account + ":" + r.uidl);
                             return true;
                           })
              .ok());
  return uidls;
}

TEST_CASE("Archive stores, verifies and reads back a message on RocksDB") {
  Fixture f;
  const std::string message = "From: a@b\r\nSubject: hi\r\n\r\n" + testing::RandomBytes(3 << 20, 1);
  MessageWriter w({3}, f.dir.path());
  REQUIRE(w.Append(message.data(), message.size()).ok());
  REQUIRE(w.Finish().ok());

  uint64_t stored_size = 0;
  REQUIRE(f.archive->PutMessage(w.sha256_hex(), w.compressed(3), &stored_size).ok());
  CHECK(stored_size == w.compressed(3).Size());
  REQUIRE(f.archive->Sync().ok());
  CHECK(f.archive->VerifyMessage(w.sha256_hex()).ok());

  StringSink read;
  REQUIRE(f.archive->ReadMessage(w.sha256_hex(), read).ok());
  CHECK(read.data_ == message);

  // The object is the zstd frame itself, under the documented key.
  const std::string key = Archive::MessageKey(w.sha256_hex());
  CHECK(key == "messages/" + w.sha256_hex().substr(0, 2) + "/" + w.sha256_hex() + ".zst");
  StringSink raw;
  REQUIRE(f.store->Get(key, raw).ok());
  CHECK(raw.data_.size() == stored_size);
  CHECK(ZSTD_findFrameCompressedSize(raw.data_.data(), raw.data_.size()) == raw.data_.size());
}

TEST_CASE("Archive::PutMessage of a message already stored writes nothing") {
  Fixture f;
  const Compressed c = Compress("Subject: same\r\n\r\nbody\r\n");
  StringSource src(c.frame);
  uint64_t first = 0, second = 0;
  REQUIRE(f.archive->PutMessage(c.sha256, src, &first).ok());
  CHECK(f.puts == 1);
  REQUIRE(f.archive->PutMessage(c.sha256, src, &second).ok());
  CHECK(f.puts == 1);
  CHECK(second == first);
  CHECK(first == c.frame.size());
}

TEST_CASE("Archive::PutMessage after RewriteExisting writes an intact copy again") {
  Fixture f;
  const Compressed c = Compress("Subject: same\r\n\r\nbody\r\n");
  uint64_t size = 0;
  bool reused = true;
  StringSource first(c.frame);
  REQUIRE(f.archive->PutMessage(c.sha256, first, &size, &reused).ok());
  // A store reopened after a failed Sync: the copy reads back intact, but
  // nothing says it reached the disk, so it is written (and synced) again.
  f.archive->RewriteExisting();
  StringSource again(c.frame);
  REQUIRE(f.archive->PutMessage(c.sha256, again, &size, &reused).ok());
  CHECK(f.puts == 2);
  CHECK_FALSE(reused);
  CHECK(f.archive->VerifyMessage(c.sha256).ok());
}

TEST_CASE("Archive detects damaged objects and PutMessage repairs them") {
  Fixture f;
  const Compressed c = Compress("Subject: precious\r\n\r\n" + std::string(5000, 'x'));
  const Compressed other = Compress("Subject: other\r\n\r\n");
  const std::string key = Archive::MessageKey(c.sha256);
  std::string flipped = c.frame;
  flipped[flipped.size() / 2] ^= 0x40;

  for (const std::string& bad :
       {flipped, c.frame + "x", c.frame + c.frame, c.frame.substr(0, c.frame.size() - 5),
        std::string(), testing::RandomBytes(200, 3), other.frame}) {
    INFO("stored object size " << bad.size());
    StringSource damaged(bad);
    REQUIRE(f.store->Put(key, damaged).ok());
    const Status s = f.archive->VerifyMessage(c.sha256);
    CHECK(s.code() == Status::Code::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("main") && Catch::Contains(c.sha256));
    StringSink sink;
    CHECK(f.archive->ReadMessage(c.sha256, sink).code() == Status::Code::kCorruption);

    StringSource good(c.frame);
    uint64_t stored_size = 0;
    const int puts_before = f.puts;
    REQUIRE(f.archive->PutMessage(c.sha256, good, &stored_size).ok());
    CHECK(f.puts == puts_before + 1);
    CHECK(f.archive->VerifyMessage(c.sha256).ok());
  }
}

TEST_CASE("Archive reports missing messages and malformed hashes") {
  Fixture f;
  const std::string sha(64, 'a');
  CHECK(f.archive->VerifyMessage(sha).code() == Status::Code::kNotFound);
  StringSink sink;
  CHECK(f.archive->ReadMessage(sha, sink).code() == Status::Code::kNotFound);
  CHECK(f.archive->VerifyMessage("ABC").code() == Status::Code::kInvalidArgument);
  StringSource src("x");
  uint64_t n;
  CHECK(f.archive->PutMessage(std::string(64, 'A'), src, &n).code() ==
        Status::Code::kInvalidArgument);
  CHECK(f.puts == 0);
}

TEST_CASE("Archive::ListRecords lists per account, exact UIDLs, in key order") {
  Fixture f;
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::vector<std::pair<std::string, std::string>> records = {
      {"a", "plain1"}, {"a", "x/y..z"}, {"a", "%2F"},     {"a", all_bytes},
      {"a", "a.b"},    {"a", "a_2Eb"},  {"ab", "plain1"}, {"b", ""}};
  std::set<std::string> keys;
  for (const auto& [account, uidl] : records) {
    REQUIRE(f.archive->PutRecord(Record(account, uidl)).ok());
    keys.insert(Archive::RecordKey(account, uidl));
  }
  CHECK(keys.size() == records.size());  // no two UIDLs share a key

  std::vector<std::string> a = ListUidls(*f.archive, "a");
  CHECK(a.size() == 6);
  for (const auto& entry : a) CHECK(entry.starts_with("a:"));
  CHECK(std::find(a.begin(), a.end(), "a:" + all_bytes) != a.end());
  CHECK(std::find(a.begin(), a.end(), "a:x/y..z") != a.end());
  CHECK(ListUidls(*f.archive, "ab") == std::vector<std::string>{"ab:plain1"});
  CHECK(ListUidls(*f.archive, "b") == std::vector<std::string>{"b:"});
  CHECK(ListUidls(*f.archive, "c").empty());
  CHECK(ListUidls(*f.archive, "").size() == records.size());

  ArchiveRecord got;
  int calls = 0;
  REQUIRE(f.archive
              ->ListRecords("",
                            [&](const ArchiveRecord& r) {
                              got = r;
                              return ++calls < 2;
                            })
              .ok());
  CHECK(calls == 2);

  // Rewriting a record replaces it.
  ArchiveRecord changed = Record("b", "");
  changed.subject = "new";
  REQUIRE(f.archive->PutRecord(changed).ok());
  REQUIRE(f.archive
              ->ListRecords("b",
                            [&](const ArchiveRecord& r) {
                              got = r;
                              return true;
                            })
              .ok());
  CHECK(got.subject == "new");
}

TEST_CASE("Archive::RecordKey escapes UIDLs into valid storage keys") {
  CHECK(Archive::RecordKey("acc", "a+b/c.1") == "records/acc/a_2Bb_2Fc_2E1.json");
  CHECK(Archive::RecordKey("acc", "Az09-") == "records/acc/Az09-.json");
  CHECK(Archive::RecordKey("acc", "..") == "records/acc/_2E_2E.json");
  std::string escaped_dots;  // 85 * 3 = 255 bytes: the longest escaped form used as is
  for (int i = 0; i < 85; ++i) escaped_dots += "_2E";
  CHECK(Archive::RecordKey("acc", std::string(85, '.')) == "records/acc/" + escaped_dots + ".json");
  const std::string long_key = Archive::RecordKey("acc", std::string(86, '.'));
  CHECK(long_key.size() == std::string("records/acc/_H.json").size() + 64);
  CHECK(long_key.starts_with("records/acc/_H"));
  CHECK(long_key != Archive::RecordKey("acc", std::string(87, '.')));
}

TEST_CASE("Archive::ListRecords fails loudly on a bad record") {
  Fixture f;
  REQUIRE(f.archive->PutRecord(Record("a", "good")).ok());
  const std::string bad_key = Archive::RecordKey("a", "bad");
  SECTION("unparseable") {
    StringSource junk("{\"account\":\"a\"");
    REQUIRE(f.store->Put(bad_key, junk).ok());
  }
  SECTION("under another record's key") {
    StringSource moved(RecordToJson(Record("a", "elsewhere")));
    REQUIRE(f.store->Put(bad_key, moved).ok());
  }
  const Status s = f.archive->ListRecords("a", [](const ArchiveRecord&) { return true; });
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains(bad_key));
}

TEST_CASE("Archive::PutRecord rejects what it could not list back") {
  Fixture f;
  CHECK(f.archive->PutRecord(Record("a/b", "u")).code() == Status::Code::kInvalidArgument);
  ArchiveRecord no_hash = Record("a", "u");
  no_hash.sha256.clear();
  CHECK(f.archive->PutRecord(no_hash).code() == Status::Code::kInvalidArgument);
  CHECK(f.archive->ListRecords("a/b", [](const ArchiveRecord&) { return true; }).code() ==
        Status::Code::kInvalidArgument);
  CHECK(f.puts == 0);
}

}  // namespace
}  // namespace popvault
