// FaultyStore: a real store (the filesystem plugin) behind a Storage that
// fails, lies and dawdles at random, inside the popvault process of a pass.
//
// Whether a call fails is a hash of (seed, operation, key, how many times
// this operation hit this key): the same for a seed however the sync
// engine's threads interleave.
//
// The lies are the ones a real backend tells and the engine's read-back
// verification must catch: a Get that delivers a flipped byte, and a torn
// write (a prefix of the object, reported as OK or as an error). A tear
// only ever hits a key that holds no object yet: tearing an object that is
// already there could destroy the archived copy of a message the server
// no longer has, which no engine can undo. Every fault is logged (one line,
// O_APPEND) before it happens, so the harness knows which contents were torn
// even when the process is killed.
#pragma once

#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "archive/test_support.h"
#include "chaos_common.h"

namespace popvault::chaos {

// Per-mille chance of each fault per call; 0: off.
struct StorageFaultRates {
  unsigned enospc = 0, eio = 0, torn = 0, wrong_read = 0, latency = 0;
};

class FaultyStore : public testing::ForwardingStorage {
 public:
  FaultyStore(std::unique_ptr<Storage> inner, std::string name, StorageFaultRates rates,
              uint64_t seed, int log_fd)
      : ForwardingStorage(inner.get()),
        inner_(std::move(inner)),
        name_(std::move(name)),
        rates_(rates),
        seed_(seed),
        log_fd_(log_fd) {}

  Status Put(const std::string& key, ByteSource& src) override {
    Dawdle("put", key);
    if (Draw("put-enospc", key) < rates_.enospc) {
      Log("enospc", key);
      return Status::IOError(key + ": No space left on device (injected)");
    }
    if (Draw("put-eio", key) < rates_.eio) {
      Log("eio", key);
      return Status::IOError(key + ": Input/output error (injected)");
    }
    bool exists = true;
    if (key.rfind("messages/", 0) == 0 && Draw("put-torn", key) < rates_.torn &&
        inner_->Exists(key, &exists).ok() && !exists) {
      return Tear(key, src);
    }
    return ForwardingStorage::Put(key, src);
  }

  Status Get(const std::string& key, ByteSink& sink) override {
    Dawdle("get", key);
    if (Draw("get-eio", key) < rates_.eio) {
      Log("eio", key);
      return Status::IOError(key + ": Input/output error (injected)");
    }
    if (Draw("get-wrong", key) >= rates_.wrong_read) return ForwardingStorage::Get(key, sink);
    testing::StringSink object;
    POPVAULT_RETURN_IF_ERROR(ForwardingStorage::Get(key, object));
    if (!object.data_.empty()) {
      Log("wrong-read", key);
      object.data_[Draw("get-wrong-at", key) * object.data_.size() / 1000] ^= 0x20;
    }
    return sink.Append(object.data_.data(), object.data_.size());
  }

  Status Exists(const std::string& key, bool* exists) override {
    if (Draw("exists-eio", key) < rates_.eio) {
      Log("eio", key);
      return Status::IOError(key + ": Input/output error (injected)");
    }
    return ForwardingStorage::Exists(key, exists);
  }

  Status Sync() override {
    Dawdle("sync", "");
    if (Draw("sync-eio", "") < rates_.eio) {
      Log("eio", "(sync)");
      return Status::IOError("fsync: Input/output error (injected)");
    }
    return ForwardingStorage::Sync();
  }

 private:
  // A prefix of the object under `key`, then OK or an error: the harness
  // learns of it from the log, written first.
  Status Tear(const std::string& key, ByteSource& src) {
    std::string object;
    POPVAULT_RETURN_IF_ERROR(testing::ReadAll(src, &object));
    Log("torn", key);
    testing::StringSource prefix(object.substr(0, Draw("torn-at", key) * object.size() / 1000));
    POPVAULT_RETURN_IF_ERROR(ForwardingStorage::Put(key, prefix));
    if (Draw("torn-error", key) < 500) return Status::IOError(key + ": write torn (injected)");
    return Status::OK();
  }

  void Dawdle(const char* op, const std::string& key) {
    if (Draw(std::string("latency-") + op, key) < rates_.latency) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + Draw("latency-ms", key) % 15));
    }
  }

  // Uniform in [0, 1000), fixed by (seed, what, key, occurrence).
  unsigned Draw(const std::string& what, const std::string& key) {
    uint64_t n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = occurrences_[what + "\n" + key]++;
    }
    uint64_t h = seed_;
    for (char c : what + "\n" + key) h = Mix(h, static_cast<unsigned char>(c));
    return static_cast<unsigned>(Mix(h, n) % 1000);
  }

  // "<store> <fault> <key>": one write, so lines stay whole when the
  // process dies or several threads log.
  void Log(const char* fault, const std::string& key) {
    const std::string line = name_ + " " + fault + " " + key + "\n";
    if (log_fd_ >= 0) (void)!::write(log_fd_, line.data(), line.size());
  }

  std::unique_ptr<Storage> inner_;
  std::string name_;
  StorageFaultRates rates_;
  uint64_t seed_;
  int log_fd_;
  std::mutex mu_;
  std::map<std::string, uint64_t> occurrences_;
};

}  // namespace popvault::chaos
