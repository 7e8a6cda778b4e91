// Test doubles for the POP3 module: a Transport that replays scripted server
// bytes and records what the client wrote, and a ByteSink into a string.
#pragma once

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pop3/transport.h"
#include "popvault/byte_stream.h"

namespace popvault::pop3::testing {

// Shared between a test and the transport the session owns, so the test can
// inspect it after the session is gone.
struct Wire {
  std::deque<std::string> chunks;  // each Read returns (a prefix of) the front one
  std::vector<ReadWait> waits;     // of every Read, in order
  // Returned by the Read that finds `chunks` empty (instead of end of stream)
  // when not OK, e.g. a timeout.
  Status read_error;
  std::string written;  // client bytes; "<TLS>" marks a handshake
  bool secure = false;
  bool closed = false;
  int tls_starts = 0;
  Status tls_result;  // what StartTls returns
};

class ScriptedTransport : public Transport {
 public:
  explicit ScriptedTransport(std::shared_ptr<Wire> wire) : wire_(std::move(wire)) {}

  Status Read(char* buf, size_t cap, size_t* n, ReadWait wait) override {
    if (wire_->closed) return Status::Network("read after close");
    wire_->waits.push_back(wait);
    if (wire_->chunks.empty()) {
      if (!wire_->read_error.ok()) return wire_->read_error;
      *n = 0;  // end of stream
      return Status::OK();
    }
    std::string& front = wire_->chunks.front();
    *n = std::min(cap, front.size());
    std::memcpy(buf, front.data(), *n);
    front.erase(0, *n);
    if (front.empty()) wire_->chunks.pop_front();
    return Status::OK();
  }

  Status Write(const char* data, size_t n) override {
    if (wire_->closed) return Status::Network("write after close");
    wire_->written.append(data, n);
    return Status::OK();
  }

  Status StartTls() override {
    ++wire_->tls_starts;
    if (!wire_->tls_result.ok()) return wire_->tls_result;
    wire_->written += "<TLS>";
    wire_->secure = true;
    return Status::OK();
  }

  bool secure() const override { return wire_->secure; }
  void Close() override { wire_->closed = true; }

 private:
  std::shared_ptr<Wire> wire_;
};

// Splits `bytes` at the given ascending offsets into chunks (empty chunks are
// skipped: a Read never returns 0 bytes except at the end).
inline std::deque<std::string> SplitAt(const std::string& bytes, std::vector<size_t> cuts) {
  std::deque<std::string> chunks;
  size_t start = 0;
  cuts.push_back(bytes.size());
  for (size_t cut : cuts) {
    if (cut > start) chunks.push_back(bytes.substr(start, cut - start));
    start = std::max(start, cut);
  }
  return chunks;
}

class StringSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    data_.append(data, n);
    ++appends_;
    return Status::OK();
  }
  const std::string& data() const { return data_; }
  size_t appends() const { return appends_; }

 private:
  std::string data_;
  size_t appends_ = 0;
};

}  // namespace popvault::pop3::testing
