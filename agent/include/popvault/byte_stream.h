// Byte streams: how message bytes move between the POP3 client, the codec
// layers and the storage plugins without ever holding a whole message in
// memory.
//
// Neither interface is thread-safe; each instance is used by one thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "popvault/status.h"

namespace popvault {

// Push-style consumer. The producer calls Append any number of times; an error
// return means the consumer is unusable and the producer must stop.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Append(const char* data, size_t n) = 0;
};

// Pull-style producer of a finite byte string of known size that can be read
// more than once (storage backends may need two passes, e.g. to compute a
// checksum before an upload, or to retry).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `cap` bytes into `buf`; sets *n to the count, 0 at the end.
  virtual Status Read(char* buf, size_t cap, size_t* n) = 0;
  // Starts over from the first byte.
  virtual Status Rewind() = 0;
  // Total number of bytes Read yields from the start.
  virtual uint64_t Size() const = 0;
};

// A ByteSource over a string it owns: records and other small objects.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Status Read(char* buf, size_t cap, size_t* n) override {
    *n = std::min(cap, data_.size() - pos_);
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
  size_t pos_ = 0;
};

// A ByteSink that collects everything appended in `bytes`. Unbounded: for
// objects known to be small.
class StringSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    bytes.append(data, n);
    return Status::OK();
  }
  std::string bytes;
};

}  // namespace popvault
