// Helpers shared by the archive, ledger and storage tests.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "popvault/byte_stream.h"
#include "popvault/storage.h"

namespace popvault::testing {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/popvault-archive-test-XXXXXX";
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Serves a string in reads of at most `step` bytes, to exercise short reads.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string data, size_t step = SIZE_MAX)
      : data_(std::move(data)), step_(step) {}
  Status Read(char* buf, size_t cap, size_t* n) override {
    *n = std::min({cap, step_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, *n);
    pos_ += *n;
    return Status::OK();
  }
  Status Rewind() override {
    pos_ = 0;
    return Status::OK();
  }
  uint64_t Size() const override { return data_.size(); }

 private:
  std::string data_;
  size_t step_;
  size_t pos_ = 0;
};

class StringSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    data_.append(data, n);
    return Status::OK();
  }
  std::string data_;
};

// Passes every call to `inner` (not owned): tests derive from it to count
// or fail some calls, like LevelDB's fault-injection Env.
class ForwardingStorage : public Storage {
 public:
  explicit ForwardingStorage(Storage* inner) : inner_(inner) {}
  Status Put(const std::string& key, ByteSource& src) override { return inner_->Put(key, src); }
  Status Get(const std::string& key, ByteSink& sink) override { return inner_->Get(key, sink); }
  Status Exists(const std::string& key, bool* exists) override {
    return inner_->Exists(key, exists);
  }
  Status Remove(const std::string& key) override { return inner_->Remove(key); }
  Status List(const std::string& prefix,
              const std::function<bool(const std::string&)>& fn) override {
    return inner_->List(prefix, fn);
  }
  Status Sync() override { return inner_->Sync(); }

 private:
  Storage* inner_;
};

// Reads a whole ByteSource from its start.
inline Status ReadAll(ByteSource& src, std::string* out) {
  POPVAULT_RETURN_IF_ERROR(src.Rewind());
  out->clear();
  char buf[65536];
  for (;;) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(src.Read(buf, sizeof buf, &n));
    if (n == 0) return Status::OK();
    out->append(buf, n);
  }
}

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

}  // namespace popvault::testing
