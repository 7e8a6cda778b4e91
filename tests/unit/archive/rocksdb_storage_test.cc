#include "rocksdb_storage.h"

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <thread>

#include "test_support.h"

namespace popvault {
namespace {

using testing::StringSink;
using testing::StringSource;
using testing::TempDir;

constexpr size_t kMiB = 1 << 20;

std::unique_ptr<Storage> Open(const std::string& path) {
  std::unique_ptr<Storage> s;
  REQUIRE(OpenRocksDbStorage(path, &s).ok());
  return s;
}

Status PutString(Storage& s, const std::string& key, const std::string& data,
                 size_t step = SIZE_MAX) {
  StringSource src(data, step);
  return s.Put(key, src);
}

std::string GetString(Storage& s, const std::string& key) {
  StringSink sink;
  REQUIRE(s.Get(key, sink).ok());
  return sink.data_;
}

std::vector<std::string> ListKeys(Storage& s, const std::string& prefix) {
  std::vector<std::string> keys;
  REQUIRE(s.List(prefix, [&](const std::string& k) {
             keys.push_back(k);
             return true;
           }).ok());
  return keys;
}

// Counts every database entry (manifest or chunk) that belongs to `key`, by
// looking at the backend's internal layout from outside.
int RawEntriesOf(const std::string& path, const std::string& key) {
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), path, &db).ok());
  int count = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const std::string chunk_prefix = "c/" + key + std::string(1, '\0');
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string k = it->key().ToString();
    if (k == "m/" + key || k.starts_with(chunk_prefix)) ++count;
  }
  it.reset();
  delete db;
  return count;
}

// A sink that gives up after `limit` bytes.
class FailingSink : public ByteSink {
 public:
  Status Append(const char*, size_t n) override {
    received_ += n;
    return received_ > kMiB ? Status::IOError("sink full") : Status::OK();
  }

 private:
  size_t received_ = 0;
};

// Claims more bytes than it yields.
class ShortSource : public StringSource {
 public:
  using StringSource::StringSource;
  uint64_t Size() const override { return StringSource::Size() + 1; }
};

TEST_CASE("RocksDB storage round-trips small, empty and chunked objects") {
  TempDir dir;
  auto s = Open(dir.Sub("db"));
  const std::string big = testing::RandomBytes(3 * kMiB + 12345, 9);
  for (size_t size : {size_t{0}, size_t{1}, kMiB - 1, kMiB, kMiB + 1, 2 * kMiB, big.size()}) {
    INFO("size " << size);
    const std::string data = big.substr(0, size);
    REQUIRE(PutString(*s, "objects/o.bin", data, 100003).ok());
    CHECK(GetString(*s, "objects/o.bin") == data);
    bool exists = false;
    REQUIRE(s->Exists("objects/o.bin", &exists).ok());
    CHECK(exists);
  }
  bool exists = true;
  REQUIRE(s->Exists("objects/other", &exists).ok());
  CHECK(!exists);
  StringSink sink;
  CHECK(s->Get("objects/other", sink).code() == Status::Code::kNotFound);
}

TEST_CASE("RocksDB storage re-put replaces the object and drops the old chunks") {
  TempDir dir;
  const std::string path = dir.Sub("db");
  const std::string big = testing::RandomBytes(3 * kMiB + 5, 11);
  {
    auto s = Open(path);
    REQUIRE(PutString(*s, "k", big).ok());
    REQUIRE(PutString(*s, "k2", "neighbour").ok());
  }
  CHECK(RawEntriesOf(path, "k") == 1 + 4);
  {
    auto s = Open(path);
    REQUIRE(PutString(*s, "k", "small now").ok());
    CHECK(GetString(*s, "k") == "small now");
  }
  CHECK(RawEntriesOf(path, "k") == 1 + 1);
  {
    auto s = Open(path);
    REQUIRE(PutString(*s, "k", big.substr(0, 2 * kMiB)).ok());
    CHECK(GetString(*s, "k") == big.substr(0, 2 * kMiB));
    CHECK(GetString(*s, "k2") == "neighbour");
  }
  CHECK(RawEntriesOf(path, "k") == 1 + 2);
}

TEST_CASE("RocksDB storage Remove") {
  TempDir dir;
  const std::string path = dir.Sub("db");
  {
    auto s = Open(path);
    REQUIRE(PutString(*s, "a/b", std::string(kMiB + 10, 'q')).ok());
    REQUIRE(PutString(*s, "a/bc", "keep").ok());
    REQUIRE(s->Remove("a/b").ok());
    REQUIRE(s->Remove("a/b").ok());  // already gone: still OK
    bool exists = true;
    REQUIRE(s->Exists("a/b", &exists).ok());
    CHECK(!exists);
    StringSink sink;
    CHECK(s->Get("a/b", sink).code() == Status::Code::kNotFound);
    CHECK(ListKeys(*s, "a/") == std::vector<std::string>{"a/bc"});
  }
  CHECK(RawEntriesOf(path, "a/b") == 0);
}

TEST_CASE("RocksDB storage List walks a prefix in byte order") {
  TempDir dir;
  auto s = Open(dir.Sub("db"));
  for (const char* key : {"b", "a/2", "ab/1", "a/1", "a/10", "a-/x", "records/x.json"}) {
    REQUIRE(PutString(*s, key, key).ok());
  }
  CHECK(ListKeys(*s, "a/") == std::vector<std::string>{"a/1", "a/10", "a/2"});
  CHECK(ListKeys(*s, "a") == std::vector<std::string>{"a-/x", "a/1", "a/10", "a/2", "ab/1"});
  CHECK(ListKeys(*s, "") ==
        std::vector<std::string>{"a-/x", "a/1", "a/10", "a/2", "ab/1", "b", "records/x.json"});
  CHECK(ListKeys(*s, "c").empty());
  int calls = 0;
  REQUIRE(s->List("", [&](const std::string&) { return ++calls < 2; }).ok());
  CHECK(calls == 2);
  CHECK(s->List("a b", [](const std::string&) { return true; }).code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("RocksDB storage validates keys") {
  TempDir dir;
  auto s = Open(dir.Sub("db"));
  for (const std::string& bad :
       std::vector<std::string>{"", "/a", "a/", "a//b", "..", "a/../b", "a..b", "a b", "a%b",
                                "caf\xc3\xa9", std::string("a\0b", 3), std::string(513, 'k')}) {
    INFO("key \"" << bad << "\"");
    CHECK(PutString(*s, bad, "x").code() == Status::Code::kInvalidArgument);
    StringSink sink;
    CHECK(s->Get(bad, sink).code() == Status::Code::kInvalidArgument);
    bool exists;
    CHECK(s->Exists(bad, &exists).code() == Status::Code::kInvalidArgument);
    CHECK(s->Remove(bad).code() == Status::Code::kInvalidArgument);
  }
  const std::string longest(512, 'k');
  REQUIRE(PutString(*s, longest, "x").ok());
  CHECK(GetString(*s, longest) == "x");
  REQUIRE(PutString(*s, "A-Z_a.z/0-9", "y").ok());
}

TEST_CASE("RocksDB storage keeps data across reopen and refuses a foreign format") {
  TempDir dir;
  const std::string path = dir.Sub("db");
  {
    auto s = Open(path);
    REQUIRE(PutString(*s, "persist", "durable bytes").ok());
    REQUIRE(s->Sync().ok());
  }
  {
    auto s = Open(path);
    CHECK(GetString(*s, "persist") == "durable bytes");
  }
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::Options(), path, &db).ok());
  REQUIRE(db->Put(rocksdb::WriteOptions(), "!format", "something else 9").ok());
  delete db;
  std::unique_ptr<Storage> s;
  CHECK(OpenRocksDbStorage(path, &s).code() == Status::Code::kNotSupported);
}

TEST_CASE("RocksDB storage failures leave the old object in place") {
  TempDir dir;
  auto s = Open(dir.Sub("db"));
  const std::string old = testing::RandomBytes(kMiB + 7, 5);
  REQUIRE(PutString(*s, "k", old).ok());
  ShortSource lying(testing::RandomBytes(3 * kMiB, 6));
  CHECK(!s->Put("k", lying).ok());
  CHECK(GetString(*s, "k") == old);

  FailingSink sink;
  CHECK(s->Get("k", sink).code() == Status::Code::kIOError);
}

TEST_CASE("RocksDB storage is safe under concurrent Puts and Gets") {
  TempDir dir;
  auto s = Open(dir.Sub("db"));
  const std::string versions[2] = {testing::RandomBytes(2 * kMiB + 3, 1),
                                   testing::RandomBytes(kMiB / 2, 2)};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        if (!PutString(*s, "shared", versions[(t + i) % 2]).ok()) ++failures;
        if (!PutString(*s, "own/" + std::to_string(t), versions[i % 2]).ok()) ++failures;
        StringSink sink;
        const Status got = s->Get("shared", sink);
        if (!got.ok() || (sink.data_ != versions[0] && sink.data_ != versions[1])) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(ListKeys(*s, "own/").size() == 4);
  REQUIRE(s->Sync().ok());
}

}  // namespace
}  // namespace popvault
