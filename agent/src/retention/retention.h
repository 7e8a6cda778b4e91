// RetentionPolicy: decides which archived messages to delete from the server.
//
// A policy only answers "may this message go?"; it never deletes anything. The
// sync engine deletes a message the policy releases only after re-verifying
// its stored copy in every store.
#pragma once

#include <cstdint>
#include <string>

#include "popvault/status.h"

namespace popvault {

struct LedgerEntry;

class RetentionPolicy {
 public:
  enum class Kind { kKeep, kDeleteAfterArchive };

  RetentionPolicy() = default;
  explicit RetentionPolicy(Kind kind) : kind_(kind) {}

  // Parses "keep" or "delete_after_archive". InvalidArgument otherwise.
  static Status Parse(const std::string& text, RetentionPolicy* policy);

  Kind kind() const { return kind_; }
  std::string ToString() const;

  // True if `entry` (in state kStored) may be deleted from the server at `now`.
  bool ShouldDelete(const LedgerEntry& entry, int64_t now) const;

 private:
  Kind kind_ = Kind::kKeep;
};

}  // namespace popvault
