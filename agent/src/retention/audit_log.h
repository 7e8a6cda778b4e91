// AuditLog: an append-only record of every deletion a server committed.
//
// One JSON object per line (JSON Lines), appended with O_APPEND and fsync'd
// before Append returns:
//
//   {"event":"deleted","time":"2026-11-27T10:42:01Z","unix_time":1795776121,
//    "account":"office","uidl":"<EncodeUidl form>","sha256":"<64 hex>",
//    "size":1234,"stores_verified":["local","offsite"]}
//
// The engine appends after QUIT's +OK: the deletions have happened, so a
// failing append cannot undo them; callers log it loudly and carry on.
// Thread-safety: Append may be called concurrently (one write per call).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "popvault/status.h"

namespace popvault {

struct AuditDeletion {
  std::string account;
  std::string uidl;  // exact bytes; written in EncodeUidl form
  std::string sha256;
  uint64_t size = 0;
  std::vector<std::string> stores_verified;
  int64_t time = 0;  // unix seconds when QUIT committed it
};

class AuditLog {
 public:
  // Opens (creating, mode 0600, with missing parent directories) `path`.
  static Status Open(const std::string& path, std::unique_ptr<AuditLog>* log);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  const std::string& path() const { return path_; }

  // Appends one line per deletion in a single write, then fsyncs. IOError
  // naming the file on failure.
  Status Append(const std::vector<AuditDeletion>& deletions);

  // The JSON line (without newline) for one deletion.
  static std::string Format(const AuditDeletion& deletion);

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  std::mutex mu_;
};

}  // namespace popvault
