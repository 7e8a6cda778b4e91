// One conformance suite for every storage plugin, loaded as the agent loads
// it (PluginLoader, shared library). Each backend gets the same checks of the
// contract in popvault/storage.h; the Archive layer on top shows that a
// corrupted object is caught on read-back whatever the backend.
#include <Poco/SHA2Engine.h>
#include <rocksdb/db.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "archive/archive.h"
#include "conformance_backends.h"

namespace popvault {
namespace {

// `size` pseudo-random bytes generated on the fly: a large object without a
// large buffer on the test's side.
class GeneratedSource : public ByteSource {
 public:
  explicit GeneratedSource(uint64_t size) : size_(size) {}
  Status Read(char* buf, size_t cap, size_t* n) override {
    *n = static_cast<size_t>(std::min<uint64_t>(cap, size_ - pos_));
    for (size_t i = 0; i < *n; ++i) buf[i] = static_cast<char>(Next());
    pos_ += *n;
    return Status::OK();
  }
  Status Rewind() override {
    pos_ = 0;
    state_ = 1;
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  uint8_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<uint8_t>(state_);
  }
  uint64_t size_, pos_ = 0, state_ = 1;
};

class HashingSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    sha_.update(data, n);
    size += n;
    largest_chunk = std::max(largest_chunk, n);
    return Status::OK();
  }
  std::string Hex() { return Poco::DigestEngine::digestToHex(sha_.digest()); }
  uint64_t size = 0;
  size_t largest_chunk = 0;

 private:
  Poco::SHA2Engine sha_{Poco::SHA2Engine::SHA_256};
};

std::string HashOf(ByteSource& src) {
  HashingSink sink;
  char buf[1 << 16];
  size_t n = 0;
  REQUIRE(src.Rewind().ok());
  while (src.Read(buf, sizeof buf, &n).ok() && n > 0) REQUIRE(sink.Append(buf, n).ok());
  REQUIRE(src.Rewind().ok());
  return sink.Hex();
}

// Peak resident set size of this process, in bytes.
uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string Put(Storage& s, const std::string& key, const std::string& value) {
  StringSource src(value);
  Status st = s.Put(key, src);
  INFO(st.ToString());
  REQUIRE(st.ok());
  return value;
}

std::string Get(Storage& s, const std::string& key) {
  StringSink sink;
  Status st = s.Get(key, sink);
  INFO(key << ": " << st.ToString());
  REQUIRE(st.ok());
  return sink.bytes;
}

void RoundTrip(Storage& s) {
  Put(s, "messages/ab/one.zst", "first object");
  Put(s, "records/acct/u_20v.json", std::string("with\0nul\r\n", 10));
  bool exists = false;
  REQUIRE(s.Exists("messages/ab/one.zst", &exists).ok());
  CHECK(exists);
  CHECK(Get(s, "messages/ab/one.zst") == "first object");
  CHECK(Get(s, "records/acct/u_20v.json") == std::string("with\0nul\r\n", 10));
  Put(s, "empty", "");
  CHECK(Get(s, "empty").empty());
  REQUIRE(s.Sync().ok());
}

void RePut(Storage& s) {
  Put(s, "k/same", "value");
  Put(s, "k/same", "value");
  CHECK(Get(s, "k/same") == "value");
  Put(s, "k/same", "a different, longer value");
  CHECK(Get(s, "k/same") == "a different, longer value");
  Put(s, "k/same", "short");
  CHECK(Get(s, "k/same") == "short");
}

void MissingKey(Storage& s) {
  StringSink sink;
  CHECK(s.Get("no/such/key", sink).code() == Status::Code::kNotFound);
  bool exists = true;
  REQUIRE(s.Exists("no/such/key", &exists).ok());
  CHECK_FALSE(exists);
  CHECK(s.Remove("no/such/key").ok());
  Put(s, "gone/soon", "x");
  REQUIRE(s.Remove("gone/soon").ok());
  REQUIRE(s.Exists("gone/soon", &exists).ok());
  CHECK_FALSE(exists);
}

void ListsInOrder(Storage& s) {
  for (const char* k : {"l/b/2", "l/a/1", "l/ab", "l/a/3", "m/x"}) Put(s, k, k);
  std::vector<std::string> keys;
  REQUIRE(s.List("l/a", [&](const std::string& k) {
             keys.push_back(k);
             return true;
           }).ok());
  CHECK(keys == std::vector<std::string>{"l/a/1", "l/a/3", "l/ab"});
  keys.clear();
  REQUIRE(s.List("l/", [&](const std::string& k) {
             keys.push_back(k);
             return keys.size() < 2;  // stop early
           }).ok());
  CHECK(keys.size() == 2);
}

void LargeObjectStreams(Storage& s) {
  constexpr uint64_t kSize = 100ull << 20;
  GeneratedSource src(kSize);
  const std::string expected = HashOf(src);
  const uint64_t rss_before = PeakRss();
  REQUIRE(s.Put("large/object", src).ok());
  HashingSink sink;
  REQUIRE(s.Get("large/object", sink).ok());
  CHECK(sink.size == kSize);
  CHECK(sink.Hex() == expected);
  CHECK(sink.largest_chunk <= (16u << 20));
  const uint64_t growth = PeakRss() - rss_before;
  INFO("peak RSS grew by " << (growth >> 20) << " MiB for a " << (kSize >> 20) << " MiB object");
#ifndef __SANITIZE_ADDRESS__  // ASan's quarantine keeps freed memory resident
  CHECK(growth < (64ull << 20));
#endif
  REQUIRE(s.Remove("large/object").ok());
}

void ConcurrentPuts(Storage& s) {
  constexpr int kThreads = 8, kKeys = 16;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        StringSource own("thread " + std::to_string(t) + " key " + std::to_string(k));
        StringSource shared("shared value from thread " + std::to_string(t));
        if (!s.Put("c/" + std::to_string(t) + "/" + std::to_string(k), own).ok()) ++failures;
        if (!s.Put("c/shared", shared).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures == 0);
  REQUIRE(s.Sync().ok());
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kKeys; ++k) {
      CHECK(Get(s, "c/" + std::to_string(t) + "/" + std::to_string(k)) ==
            "thread " + std::to_string(t) + " key " + std::to_string(k));
    }
  }
  // The key every thread wrote holds one whole value, never a mix.
  CHECK_THAT(Get(s, "c/shared"), Catch::Matchers::Matches("shared value from thread [0-7]"));
}

// The Archive over this backend stores a message, then a byte of the stored
// object flips behind its back: VerifyMessage must say Corruption.
void CorruptionCaughtOnReadBack(std::unique_ptr<Storage> storage) {
  Storage& raw = *storage;
  Archive archive("conformance", std::move(storage), 3);
  const std::string message = "Subject: hello\r\n\r\nbody\r\n";
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(message);
  const std::string sha = Poco::DigestEngine::digestToHex(engine.digest());
  std::string frame(ZSTD_compressBound(message.size()), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), message.data(), message.size(), 3));
  StringSource good(frame);
  uint64_t stored = 0;
  REQUIRE(archive.PutMessage(sha, good, &stored).ok());
  REQUIRE(archive.VerifyMessage(sha).ok());

  std::string damaged = Get(raw, Archive::MessageKey(sha));
  damaged[damaged.size() / 2] ^= 0x40;
  Put(raw, Archive::MessageKey(sha), damaged);
  CHECK(archive.VerifyMessage(sha).code() == Status::Code::kCorruption);
  REQUIRE(raw.Remove(Archive::MessageKey(sha)).ok());
  CHECK(archive.VerifyMessage(sha).code() == Status::Code::kNotFound);
}

void RunSuite(const std::string& backend) {
  ConformanceBackend b(backend);
  SECTION("put, get and exists round trip") { RoundTrip(b.Open()); }
  SECTION("a re-put replaces the object whole") { RePut(b.Open()); }
  SECTION("a missing key") { MissingKey(b.Open()); }
  SECTION("list by prefix, in key order") { ListsInOrder(b.Open()); }
  SECTION("a 100 MB object streams with bounded memory") { LargeObjectStreams(b.Open()); }
  SECTION("concurrent puts") { ConcurrentPuts(b.Open()); }
  SECTION("a corrupted stored object is caught on read-back") {
    CorruptionCaughtOnReadBack(b.Take());
  }
}

#ifdef POPVAULT_CONFORMANCE_LOCAL
uint64_t BlobBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".blob") bytes += f.file_size();
  }
  return bytes;
}

// The rocksdb plugin leaves RocksDB's blob garbage collection off (it would
// rewrite old mail at every compaction) and reclaims at the Sync after removals.
TEST_CASE("rocksdb plugin: the Sync after removals gives their space back, the rest stays") {
  ConformanceBackend b("rocksdb");
  Storage& s = b.Open();
  constexpr int kObjects = 8;
  for (int i = 0; i < kObjects; ++i) {
    GeneratedSource src((3u << 19) + i);  // 1.5 MiB: two chunks, both blobs
    REQUIRE(s.Put("big/" + std::to_string(i), src).ok());
  }
  REQUIRE(s.Sync().ok());
  const uint64_t before = BlobBytes(b.StorePath());
  CHECK(before >= kObjects * (3u << 19));
  for (int i = 2; i < kObjects; ++i) REQUIRE(s.Remove("big/" + std::to_string(i)).ok());
  REQUIRE(s.Sync().ok());
  const uint64_t after = BlobBytes(b.StorePath());
  INFO("blob bytes before " << before << ", after " << after);
  CHECK(after < before / 2);
  for (int i = 0; i < 2; ++i) {
    GeneratedSource expected((3u << 19) + i);
    HashingSink sink;
    REQUIRE(s.Get("big/" + std::to_string(i), sink).ok());
    CHECK(sink.Hex() == HashOf(expected));
  }
}

// Each Sync after Puts flushes a table; a short run must not close the
// store in the middle of the compaction those tables call for (closing
// throws its work away, and the next run would inherit the same backlog).
TEST_CASE("rocksdb plugin: closing a store finishes the compaction its syncs called for") {
  ConformanceBackend b("rocksdb");
  {
    std::unique_ptr<Storage> s = b.Take();
    // 24 MB of small values in tables: the compaction runs long enough that
    // a close which does not wait for it always cuts it short.
    std::string pool(1 << 20, '\0');
    std::mt19937 rng(7);
    for (char& c : pool) c = static_cast<char>(rng());
    for (int i = 0; i < 4; ++i) {
      for (int k = 0; k < 2000; ++k) {
        const int n = i * 2000 + k;
        Put(*s, "o/" + std::to_string(n), pool.substr(n % 1000 * 1000, 3000));
      }
      REQUIRE(s->Sync().ok());
    }
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Options options;
  options.disable_auto_compactions = true;  // look at what the store left
  REQUIRE(rocksdb::DB::Open(options, b.StorePath(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string l0;
  REQUIRE(db->GetProperty("rocksdb.num-files-at-level0", &l0));
  INFO("level-0 files left: " << l0);
  CHECK(std::stoi(l0) < 4);  // RocksDB compacts from 4
}

TEST_CASE("rocksdb plugin conforms to the Storage contract") { RunSuite("rocksdb"); }
TEST_CASE("filesystem plugin conforms to the Storage contract") { RunSuite("filesystem"); }
#endif
#ifdef POPVAULT_CONFORMANCE_S3
TEST_CASE("s3 plugin (Ceph RGW) conforms to the Storage contract") { RunSuite("s3"); }
#endif

}  // namespace
}  // namespace popvault
