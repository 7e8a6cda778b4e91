// AuditLog: an append-only record of every deletion a server committed, and
// of every archived message `popvault purge` removed from the archive.
//
// One JSON object per line (JSON Lines), appended with O_APPEND and fsync'd
// before Append returns:
//
//   {"event":"deleted","time":"2026-11-27T10:42:01Z","unix_time":1795776121,
//    "account":"office","uidl":"<EncodeUidl form>","sha256":"<64 hex>",
//    "size":1234,"stores_verified":["local","offsite"]}
//   {"event":"purged", ...the same keys..., "stores_purged":["local"]}
//
// "purged" names the stores the record was removed from (the message object
// too, unless another record still shares it).
//
// Both are appended once the removal has happened, so a failing append
// cannot undo it; callers report it loudly.
// Thread-safety: Append may be called concurrently (one write per call).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "popvault/status.h"

namespace popvault {

enum class AuditEvent {
  kDeleted,  // a server committed the DELE
  kPurged,   // removed from the archive by archive-side retention
};

struct AuditDeletion {
  std::string account;
  std::string uidl;  // exact bytes; written in EncodeUidl form
  std::string sha256;
  uint64_t size = 0;
  // kDeleted: stores that held a verified copy; kPurged: stores purged.
  std::vector<std::string> stores_verified;
  // Unix seconds when QUIT committed it, or when it was purged.
  int64_t time = 0;
  // Last, so the sync engine's positional initializers stay valid.
  AuditEvent event = AuditEvent::kDeleted;
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

  // For each of `deletions` (kDeleted), whether the log already has its
  // "deleted" line: same account, UIDL and sha256, at or after the matching
  // `not_before` (unix seconds). Reads the whole file: for recovery after a
  // crash between a committed QUIT and its Append, not for every pass.
  // Lines that do not parse (a torn last line) are passed over.
  Status FindDeleted(const std::vector<AuditDeletion>& deletions,
                     const std::vector<int64_t>& not_before, std::vector<bool>* found);

  // The JSON line (without newline) for one deletion or purge.
  static std::string Format(const AuditDeletion& deletion);

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  std::mutex mu_;
};

}  // namespace popvault
