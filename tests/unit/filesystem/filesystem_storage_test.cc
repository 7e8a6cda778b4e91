#include "filesystem_storage.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "archive/test_support.h"

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// fsync interposition: these definitions in the test binary take the place of
// libc's for the storage code linked into it, so the tests can see which
// files and directories get synced, and in which state (a temp file synced
// under its temp name was synced before the rename), and can make a sync
// fail. The real work is done by the system calls themselves.
// ---------------------------------------------------------------------------
namespace {

struct SyncCall {
  std::string function;
  std::string path;
  bool operator<(const SyncCall& o) const {
    return std::tie(function, path) < std::tie(o.function, o.path);
  }
  bool operator==(const SyncCall& o) const = default;
};

std::ostream& operator<<(std::ostream& os, const SyncCall& c) {
  return os << c.function << "(" << c.path << ")";
}

struct SyncLog {
  std::mutex mu;
  bool recording = false;
  int fail_errno = 0;  // nonzero: every sync fails with it
  std::vector<SyncCall> calls;
};

SyncLog& Log() {
  static SyncLog log;
  return log;
}

// Returns the error to fail with, or 0.
int Intercept(const char* function, int fd) {
  SyncLog& log = Log();
  std::lock_guard<std::mutex> lock(log.mu);
  if (!log.recording) return 0;
  std::error_code ec;
  const fs::path path = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  log.calls.push_back({function, path.string()});
  return log.fail_errno;
}

long Result(int fail_errno, long syscall_result) {
  if (fail_errno == 0) return syscall_result;
  errno = fail_errno;
  return -1;
}

}  // namespace

extern "C" int fsync(int fd) {
  const int fail = Intercept("fsync", fd);
  return static_cast<int>(Result(fail, fail ? 0 : ::syscall(SYS_fsync, fd)));
}

extern "C" int fdatasync(int fd) {
  const int fail = Intercept("fdatasync", fd);
  return static_cast<int>(Result(fail, fail ? 0 : ::syscall(SYS_fdatasync, fd)));
}

extern "C" int syncfs(int fd) noexcept {
  const int fail = Intercept("syncfs", fd);
  return static_cast<int>(Result(fail, fail ? 0 : ::syscall(SYS_syncfs, fd)));
}

namespace popvault {
namespace {

using testing::StringSink;
using testing::StringSource;
using testing::TempDir;

constexpr size_t kMiB = 1 << 20;

// Records sync calls while alive.
class SyncRecorder {
 public:
  SyncRecorder() { Set(true, 0); }
  ~SyncRecorder() { Set(false, 0); }
  void FailWith(int err) { Set(true, err); }
  std::vector<SyncCall> Take() {
    std::lock_guard<std::mutex> lock(Log().mu);
    return std::exchange(Log().calls, {});
  }
  std::set<SyncCall> TakeSet() {
    const std::vector<SyncCall> calls = Take();
    return {calls.begin(), calls.end()};
  }

 private:
  static void Set(bool recording, int fail_errno) {
    std::lock_guard<std::mutex> lock(Log().mu);
    Log().recording = recording;
    Log().fail_errno = fail_errno;
    Log().calls.clear();
  }
};

std::unique_ptr<Storage> Open(const std::string& root) {
  std::unique_ptr<Storage> s;
  const Status status = OpenFilesystemStorage(root, &s);
  INFO(status.ToString());
  REQUIRE(status.ok());
  return s;
}

Status PutString(Storage& s, const std::string& key, const std::string& data,
                 size_t step = SIZE_MAX) {
  StringSource src(data, step);
  return s.Put(key, src);
}

std::string GetString(Storage& s, const std::string& key) {
  StringSink sink;
  const Status status = s.Get(key, sink);
  INFO(key << ": " << status.ToString());
  REQUIRE(status.ok());
  return sink.data_;
}

std::vector<std::string> ListKeys(Storage& s, const std::string& prefix) {
  std::vector<std::string> keys;
  const Status status = s.List(prefix, [&](const std::string& k) {
    keys.push_back(k);
    return true;
  });
  INFO(prefix << ": " << status.ToString());
  REQUIRE(status.ok());
  return keys;
}

bool Exists(Storage& s, const std::string& key) {
  bool exists = false;
  REQUIRE(s.Exists(key, &exists).ok());
  return exists;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

bool IsTemp(const fs::path& p) { return p.filename().string().find(".tmp~") != std::string::npos; }

// Every temp file anywhere under `root`.
std::vector<std::string> TempFiles(const std::string& root) {
  std::vector<std::string> temps;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (IsTemp(e.path())) temps.push_back(e.path().string());
  }
  return temps;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("Filesystem storage round-trips objects as plain files at <root>/<key>") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  const std::string big = testing::RandomBytes(3 * kMiB + 12345, 9);
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{256 << 10}, size_t{(256 << 10) + 1}, kMiB, big.size()}) {
    INFO("size " << size);
    const std::string data = big.substr(0, size);
    REQUIRE(PutString(*s, "messages/ab/abcdef.zst", data, 100003).ok());
    CHECK(GetString(*s, "messages/ab/abcdef.zst") == data);
    CHECK(ReadFile(root + "/messages/ab/abcdef.zst") == data);
    CHECK(Exists(*s, "messages/ab/abcdef.zst"));
  }
  REQUIRE(PutString(*s, "top", "at the root").ok());
  CHECK(ReadFile(root + "/top") == "at the root");
  CHECK(TempFiles(root).empty());
}

TEST_CASE("Filesystem storage overwrite replaces the whole object") {
  TempDir dir;
  auto s = Open(dir.Sub("store"));
  const std::string big = testing::RandomBytes(2 * kMiB + 5, 11);
  REQUIRE(PutString(*s, "records/acct/u.json", big).ok());
  REQUIRE(PutString(*s, "records/acct/u.json", "small now").ok());
  CHECK(GetString(*s, "records/acct/u.json") == "small now");
  REQUIRE(PutString(*s, "records/acct/u.json", big).ok());
  CHECK(GetString(*s, "records/acct/u.json") == big);
  CHECK(ListKeys(*s, "") == std::vector<std::string>{"records/acct/u.json"});
}

TEST_CASE("Filesystem storage reports missing objects, and directories are not objects") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  REQUIRE(PutString(*s, "a/b", "x").ok());
  for (const char* key : {"missing", "a/missing", "no/such/dir", "a"}) {
    INFO(key);
    StringSink sink;
    CHECK(s->Get(key, sink).code() == Status::Code::kNotFound);
    CHECK(!Exists(*s, key));
  }
  CHECK(s->Remove("a").ok());  // a directory: no object to remove
  CHECK(GetString(*s, "a/b") == "x");
}

TEST_CASE("Filesystem storage Remove") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  REQUIRE(PutString(*s, "a/b", std::string(kMiB + 10, 'q')).ok());
  REQUIRE(PutString(*s, "a/bc", "keep").ok());
  REQUIRE(s->Remove("a/b").ok());
  REQUIRE(s->Remove("a/b").ok());            // already gone: still OK
  REQUIRE(s->Remove("no/such/dir/x").ok());  // never there
  CHECK(!Exists(*s, "a/b"));
  StringSink sink;
  CHECK(s->Get("a/b", sink).code() == Status::Code::kNotFound);
  CHECK(!fs::exists(root + "/a/b"));
  CHECK(ListKeys(*s, "a/") == std::vector<std::string>{"a/bc"});
  REQUIRE(s->Sync().ok());
}

TEST_CASE("Filesystem storage List walks a prefix in byte order") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  // '-' < '.' < '/' < digits: a directory's keys sort as its name plus '/'.
  for (const char* key :
       {"b", "a/2", "ab/1", "a/1", "a/10", "a-/x", "a.b", "records/x.json", "messages/ab/abc1.zst",
        "messages/ab/abd2.zst", "messages/ab/ab.zst", "messages/abc/z", ".hidden/k"}) {
    REQUIRE(PutString(*s, key, key).ok());
  }
  CHECK(ListKeys(*s, "a/") == std::vector<std::string>{"a/1", "a/10", "a/2"});
  CHECK(ListKeys(*s, "a") == std::vector<std::string>{"a-/x", "a.b", "a/1", "a/10", "a/2", "ab/1"});
  CHECK(ListKeys(*s, "") == std::vector<std::string>{".hidden/k", "a-/x", "a.b", "a/1", "a/10",
                                                     "a/2", "ab/1", "b", "messages/ab/ab.zst",
                                                     "messages/ab/abc1.zst", "messages/ab/abd2.zst",
                                                     "messages/abc/z", "records/x.json"});
  // A prefix ending mid-component.
  CHECK(ListKeys(*s, "messages/ab/abc") == std::vector<std::string>{"messages/ab/abc1.zst"});
  CHECK(ListKeys(*s, "messages/ab") ==
        std::vector<std::string>{"messages/ab/ab.zst", "messages/ab/abc1.zst",
                                 "messages/ab/abd2.zst", "messages/abc/z"});
  CHECK(ListKeys(*s, "messages/ab/abc1.zst") == std::vector<std::string>{"messages/ab/abc1.zst"});
  for (const char* none : {"c", "messages/cd/", "b/", "a/1/", "messages/ab/abc1.zst/x", "a//", "/a",
                           "a/../a/", "./a/", "../"}) {
    INFO(none);
    CHECK(ListKeys(*s, none).empty());
  }
  int calls = 0;
  REQUIRE(s->List("", [&](const std::string&) { return ++calls < 2; }).ok());
  CHECK(calls == 2);
  calls = 0;
  REQUIRE(s->List("messages/", [&](const std::string&) { return ++calls < 3; }).ok());
  CHECK(calls == 3);
  for (const char* bad : {"a b", "a~", "caf\xc3\xa9"}) {
    CHECK(s->List(bad, [](const std::string&) { return true; }).code() ==
          Status::Code::kInvalidArgument);
  }
  // Foreign entries whose names are not key components are no objects.
  WriteFile(root + "/lost+found/x", "foreign");
  WriteFile(root + "/a/with space", "foreign");
  CHECK(ListKeys(*s, "").size() == 13);
}

TEST_CASE("Filesystem storage List reads only directories that can match") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  REQUIRE(PutString(*s, "messages/ab/ab1.zst", "1").ok());
  REQUIRE(PutString(*s, "messages/cd/cd1.zst", "2").ok());
  // A symlink loop: looking at it at all fails (ELOOP).
  fs::create_symlink("loop", root + "/messages/cd/loop");
  CHECK(ListKeys(*s, "messages/ab/") == std::vector<std::string>{"messages/ab/ab1.zst"});
  CHECK(ListKeys(*s, "messages/ab/ab1") == std::vector<std::string>{"messages/ab/ab1.zst"});
  CHECK(ListKeys(*s, "messages/a") == std::vector<std::string>{"messages/ab/ab1.zst"});
  const Status all = s->List("messages/", [](const std::string&) { return true; });
  CHECK(all.code() == Status::Code::kIOError);
  CHECK(Contains(all.message(), root + "/messages/cd/loop"));
}

TEST_CASE("Filesystem storage validates keys") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  for (const std::string& bad : std::vector<std::string>{
           "", "/a", "a/", "a//b", "..", "a/../b", "a..b", "../x", ".", "./a", "a/./b", "a/.",
           "a b", "a%b", "a~b", "caf\xc3\xa9", std::string("a\0b", 3), std::string(513, 'k')}) {
    INFO("key \"" << bad << "\"");
    CHECK(PutString(*s, bad, "x").code() == Status::Code::kInvalidArgument);
    StringSink sink;
    CHECK(s->Get(bad, sink).code() == Status::Code::kInvalidArgument);
    bool exists;
    CHECK(s->Exists(bad, &exists).code() == Status::Code::kInvalidArgument);
    CHECK(s->Remove(bad).code() == Status::Code::kInvalidArgument);
  }
  CHECK(!fs::exists(dir.Sub("x")));
  std::string longest;
  while (longest.size() < 510) longest += "k/";
  longest += "kk";
  REQUIRE(longest.size() == 512);
  REQUIRE(PutString(*s, longest, "deep").ok());
  CHECK(GetString(*s, longest) == "deep");
  CHECK(ListKeys(*s, "k/k/") == std::vector<std::string>{longest});
  REQUIRE(PutString(*s, "A-Z_a.z/0-9", "y").ok());
  REQUIRE(PutString(*s, ".dot/.start", "z").ok());
  CHECK(GetString(*s, ".dot/.start") == "z");
}

// Yields `size` pseudo-random bytes computed from their position, so that
// neither side of the test holds the object in memory.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

char ByteAt(uint64_t pos) { return static_cast<char>(Mix(pos / 8) >> (pos % 8 * 8)); }

class GeneratedSource : public ByteSource {
 public:
  explicit GeneratedSource(uint64_t size) : size_(size) {}
  Status Read(char* buf, size_t cap, size_t* n) override {
    *n = static_cast<size_t>(std::min<uint64_t>(cap, size_ - pos_));
    for (size_t i = 0; i < *n; ++i) buf[i] = ByteAt(pos_ + i);
    pos_ += *n;
    return Status::OK();
  }
  Status Rewind() override {
    pos_ = 0;
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  uint64_t size_;
  uint64_t pos_ = 0;
};

class CheckingSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    for (size_t i = 0; i < n; ++i) mismatches_ += data[i] != ByteAt(pos_ + i);
    pos_ += n;
    largest_append_ = std::max(largest_append_, n);
    return Status::OK();
  }
  uint64_t pos_ = 0;
  uint64_t mismatches_ = 0;
  size_t largest_append_ = 0;
};

// In bytes, from /proc/self/status.
uint64_t ProcStatus(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  FAIL("no " << field << " in /proc/self/status");
  return 0;
}

// Resets the peak RSS (VmHWM) to the current RSS (Linux 4.0+), and remembers
// that RSS.
int64_t rss_at_reset = 0;

void ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.close();
  REQUIRE(clear.good());
  rss_at_reset = static_cast<int64_t>(ProcStatus("VmRSS"));
  REQUIRE(static_cast<int64_t>(ProcStatus("VmHWM")) <= rss_at_reset + static_cast<int64_t>(kMiB));
}

int64_t PeakRssGrowth() { return static_cast<int64_t>(ProcStatus("VmHWM")) - rss_at_reset; }

TEST_CASE("Filesystem storage streams a 100 MB object with bounded memory") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  const uint64_t size = 100 * kMiB + 7;
  // Far below the object's size, far above the 256 KiB buffer.
  const int64_t allowed_growth = 16 * kMiB;

  ResetPeakRss();
  GeneratedSource src(size);
  REQUIRE(s->Put("messages/big/object.zst", src).ok());
  CHECK(PeakRssGrowth() < allowed_growth);
  CHECK(fs::file_size(root + "/messages/big/object.zst") == size);

  ResetPeakRss();
  CheckingSink sink;
  REQUIRE(s->Get("messages/big/object.zst", sink).ok());
  CHECK(PeakRssGrowth() < allowed_growth);
  CHECK(sink.pos_ == size);
  CHECK(sink.mismatches_ == 0);
  CHECK(sink.largest_append_ <= kMiB);
}

TEST_CASE("Filesystem storage is safe under concurrent Puts, Gets and Syncs") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  const std::string versions[2] = {testing::RandomBytes(2 * kMiB + 3, 1),
                                   testing::RandomBytes(kMiB / 2, 2)};
  constexpr int kThreads = 4;
  constexpr int kRounds = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string me = std::to_string(t);
      for (int i = 0; i < kRounds; ++i) {
        const std::string round = std::to_string(i);
        if (!PutString(*s, "shared", versions[(t + i) % 2], 65536).ok()) ++failures;
        if (!PutString(*s, "own/" + me + "/" + round, versions[i % 2]).ok()) ++failures;
        // Every thread creates the same new directories at once.
        if (!PutString(*s, "fresh/" + round + "/dir/" + me, me).ok()) ++failures;
        StringSink sink;
        const Status got = s->Get("shared", sink);
        if (!got.ok() || (sink.data_ != versions[0] && sink.data_ != versions[1])) ++failures;
        if (!s->Sync().ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  const std::string shared = GetString(*s, "shared");
  CHECK((shared == versions[0] || shared == versions[1]));
  CHECK(ListKeys(*s, "own/").size() == kThreads * kRounds);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kRounds; ++i) {
      const std::string key = "own/" + std::to_string(t) + "/" + std::to_string(i);
      CHECK(GetString(*s, key) == versions[i % 2]);
      CHECK(GetString(*s, "fresh/" + std::to_string(i) + "/dir/" + std::to_string(t)) ==
            std::to_string(t));
    }
  }
  CHECK(TempFiles(root).empty());
}

TEST_CASE("Filesystem storage never lists or returns temp files a crash left behind") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  {
    auto s = Open(root);
    REQUIRE(PutString(*s, "messages/ab/ab1.zst", "complete").ok());
  }
  // What a crash mid-Put leaves: a partial temp file next to the object, and
  // one in a directory holding nothing else.
  const std::string beside = root + "/messages/ab/.ab1.zst.tmp~0123456789abcdef";
  const std::string alone = root + "/messages/cd/.cd1.zst.tmp~fedcba9876543210";
  WriteFile(beside, "compl");
  WriteFile(alone, "partial");
  auto s = Open(root);
  CHECK(ListKeys(*s, "") == std::vector<std::string>{"messages/ab/ab1.zst"});
  CHECK(ListKeys(*s, "messages/cd/").empty());
  CHECK(GetString(*s, "messages/ab/ab1.zst") == "complete");
  CHECK(!Exists(*s, "messages/cd/cd1.zst"));
  // Fresh temp files may belong to a live Put elsewhere: kept. A day-old one
  // is a crash's: the next List removes it.
  CHECK(fs::exists(beside));
  CHECK(fs::exists(alone));
  fs::last_write_time(alone, fs::file_time_type::clock::now() - std::chrono::hours(25));
  CHECK(ListKeys(*s, "messages/").size() == 1);
  CHECK(fs::exists(beside));
  CHECK(!fs::exists(alone));
  // Overwriting the object is unaffected by the leftover.
  REQUIRE(PutString(*s, "messages/ab/ab1.zst", "again").ok());
  CHECK(GetString(*s, "messages/ab/ab1.zst") == "again");
}

TEST_CASE("Filesystem storage I/O errors name the path and the reason") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  REQUIRE(PutString(*s, "file", "an object").ok());

  SECTION("a path component is a file") {
    const Status put = PutString(*s, "file/x", "y");
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), root + "/file/"));
    CHECK(Contains(put.message(), "Not a directory"));
    StringSink sink;
    CHECK(s->Get("file/x", sink).code() == Status::Code::kNotFound);
    CHECK(!Exists(*s, "file/x"));
    CHECK(s->Remove("file/x").ok());
    CHECK(ListKeys(*s, "file/").empty());
  }

  SECTION("a key that is a directory of other keys") {
    REQUIRE(PutString(*s, "dir/x", "y").ok());
    const Status put = PutString(*s, "dir", "z");
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), root + "/dir"));
    CHECK(TempFiles(root).empty());
  }

  SECTION("a name longer than the filesystem allows") {
    const Status put = PutString(*s, std::string(300, 'n'), "z");
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), "File name too long"));
    CHECK(TempFiles(root).empty());
  }

  SECTION("a write fails (file size limit; same path as a full disk)") {
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    struct rlimit small = old;
    small.rlim_cur = kMiB;
    const auto old_handler = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const Status put = PutString(*s, "file", testing::RandomBytes(3 * kMiB, 3));
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), "writing " + root + "/.file.tmp~"));
    CHECK(Contains(put.message(), "File too large"));
    CHECK(GetString(*s, "file") == "an object");
    CHECK(TempFiles(root).empty());
  }

  SECTION("the root cannot be created") {
    std::unique_ptr<Storage> other;
    const Status open = OpenFilesystemStorage(root + "/file/store", &other);
    CHECK(open.code() == Status::Code::kIOError);
    CHECK(Contains(open.message(), root + "/file/store"));
    CHECK(OpenFilesystemStorage(root + "/file", &other).code() == Status::Code::kIOError);
    CHECK(OpenFilesystemStorage("", &other).code() == Status::Code::kInvalidArgument);
  }
}

// Claims a different size than it yields.
class LyingSource : public StringSource {
 public:
  LyingSource(std::string data, int64_t delta) : StringSource(std::move(data)), delta_(delta) {}
  uint64_t Size() const override { return StringSource::Size() + delta_; }

 private:
  int64_t delta_;
};

class FailingSink : public ByteSink {
 public:
  Status Append(const char*, size_t) override { return Status::IOError("sink full"); }
};

TEST_CASE("Filesystem storage keeps the old object when a Put's source misbehaves") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  auto s = Open(root);
  const std::string old = testing::RandomBytes(kMiB + 7, 5);
  REQUIRE(PutString(*s, "k", old).ok());
  for (int64_t delta : {1, -1}) {
    INFO("delta " << delta);
    LyingSource lying(testing::RandomBytes(3 * kMiB, 6), delta);
    const Status put = s->Put("k", lying);
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), root + "/k"));
    CHECK(GetString(*s, "k") == old);
  }
  CHECK(TempFiles(root).empty());
  FailingSink sink;
  CHECK(s->Get("k", sink).message() == "sink full");
}

TEST_CASE("Filesystem storage syncs data before the rename and directories at Sync") {
  TempDir dir;
  const std::string root = dir.Sub("store");
  SyncRecorder recorder;
  auto s = Open(root);
  CHECK(recorder.Take() == std::vector<SyncCall>{{"syncfs", root}});

  // The data is synced under the temp name, i.e. before the rename; nothing
  // else is synced before Sync.
  REQUIRE(PutString(*s, "records/acct/x.json", "{}").ok());
  const std::vector<SyncCall> put = recorder.Take();
  REQUIRE(put.size() == 1);
  CHECK(put[0].function == "fdatasync");
  CHECK(put[0].path.starts_with(root + "/records/acct/.x.json.tmp~"));

  // A new directory chain: every directory up to the root.
  REQUIRE(s->Sync().ok());
  CHECK(recorder.TakeSet() == std::set<SyncCall>{{"fsync", root + "/records/acct"},
                                                 {"fsync", root + "/records"},
                                                 {"fsync", root}});

  // Known-durable directories are not synced again; each changed one once.
  REQUIRE(PutString(*s, "records/acct/y.json", "{}").ok());
  REQUIRE(PutString(*s, "records/acct/z.json", "{}").ok());
  REQUIRE(PutString(*s, "messages/ab/ab1.zst", "m").ok());
  recorder.Take();
  REQUIRE(s->Sync().ok());
  CHECK(recorder.Take().size() == 4);  // no duplicates
  REQUIRE(PutString(*s, "messages/ab/ab2.zst", "m").ok());
  recorder.Take();
  REQUIRE(s->Sync().ok());
  CHECK(recorder.Take() == std::vector<SyncCall>{{"fsync", root + "/messages/ab"}});

  REQUIRE(s->Remove("records/acct/x.json").ok());
  REQUIRE(s->Sync().ok());
  CHECK(recorder.Take() == std::vector<SyncCall>{{"fsync", root + "/records/acct"}});
  REQUIRE(s->Sync().ok());
  CHECK(recorder.Take().empty());

  SECTION("a failed data sync fails the Put and keeps the old object") {
    recorder.FailWith(EIO);
    const Status put = PutString(*s, "records/acct/y.json", "new");
    CHECK(put.code() == Status::Code::kIOError);
    CHECK(Contains(put.message(), "Input/output error"));
    CHECK(GetString(*s, "records/acct/y.json") == "{}");
    CHECK(TempFiles(root).empty());
  }

  SECTION("a failed Sync fails every later Sync of the instance") {
    REQUIRE(PutString(*s, "records/acct/w.json", "{}").ok());
    recorder.FailWith(EIO);
    const Status first = s->Sync();
    CHECK(first.code() == Status::Code::kIOError);
    CHECK(Contains(first.message(), root + "/records/acct"));
    CHECK(Contains(first.message(), "Input/output error"));
    recorder.FailWith(0);
    const Status again = s->Sync();
    CHECK(again.code() == Status::Code::kIOError);
    CHECK(Contains(again.message(), "earlier sync"));
    CHECK(Open(root)->Sync().ok());
  }
}

TEST_CASE("Filesystem storage keeps objects across reopen") {
  TempDir dir;
  const std::string root = dir.Sub("store/");  // a trailing '/' is fine
  {
    auto s = Open(root);
    REQUIRE(PutString(*s, "persist/k", "durable bytes").ok());
    REQUIRE(s->Sync().ok());
  }
  auto s = Open(dir.Sub("store"));
  CHECK(GetString(*s, "persist/k") == "durable bytes");
  CHECK(ListKeys(*s, "") == std::vector<std::string>{"persist/k"});
}

}  // namespace
}  // namespace popvault
