// RetentionPolicy: decides which archived messages to delete from the server.
//
// A policy only decides; it never deletes anything. The sync engine deletes a
// message the policy releases only after re-verifying its stored copy in
// every store.
//
// Grammar (the `retention =` config value):
//
//   keep                       never delete (the default)
//   delete_after_archive       delete once archived in every store
//   TERM [, TERM]...           each term at most once, in any order:
//     delete_after_days:N      archived at least N days ago (N >= 1), counted
//                              from the archive time recorded in the ledger
//     keep_newest:N            not among the N newest messages on the server
//                              (N >= 1); "newest" is by position in the
//                              server's listing (POP3 lists oldest first), and
//                              every listed message counts, archived or not
//     max_server_bytes:SIZE    while the server's total (LIST octets of every
//                              listed message) exceeds SIZE, the oldest
//                              archived messages (by listing position); SIZE
//                              is bytes, or with a K, M or G suffix (x1024^n)
//
// `keep` and `delete_after_archive` combine with nothing. Each TERM is a limit
// on what may stay on the server: a message goes when ANY term releases it
// ("delete_after_days:30, max_server_bytes:2G" = older than 30 days, or needed
// to bring the mailbox to 2 GiB). max_server_bytes counts the messages the
// other terms already release as gone, and never releases a message that is
// not archived; such messages still count towards the total, so the server
// may stay above SIZE until they are archived.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "popvault/status.h"

namespace popvault {

// One message the server lists, as the policy sees it.
struct RetentionCandidate {
  uint32_t msgno = 0;
  uint64_t octets = 0;  // from LIST; only max_server_bytes reads it
  // True when the ledger entry is kStored in every store of the account:
  // only such a message may be released. Others still count for
  // keep_newest and max_server_bytes.
  bool archived = false;
  LedgerEntry entry;  // record.archived_at is read when archived
};

struct RetentionDecision {
  enum class Verdict {
    kDeleteNow,    // released at `now`
    kDeleteLater,  // a time term releases it at delete_at, unless another does first
    kKeep,         // no term releases it (it may, once more mail arrives)
    kNotArchived,  // not in every store: never released
  };
  Verdict verdict = Verdict::kKeep;
  int64_t delete_at = 0;  // kDeleteLater: unix seconds
  std::string reason;     // kDeleteNow: the term that released it, as written
};

class RetentionPolicy {
 public:
  enum class Kind { kKeep, kDeleteAfterArchive, kLimits };

  RetentionPolicy() = default;
  explicit RetentionPolicy(Kind kind) : kind_(kind) {}

  // Parses the grammar above (spaces around terms are ignored).
  // InvalidArgument naming the offending term otherwise.
  static Status Parse(const std::string& text, RetentionPolicy* policy);

  Kind kind() const { return kind_; }
  // The canonical form; Parse(ToString()) gives an equal policy.
  std::string ToString() const;

  // The most days an archived message stays on the server under this policy
  // (0 for delete_after_archive); nullopt when some may stay for ever (keep,
  // keep_newest, max_server_bytes alone). Compared with CAPA EXPIRE.
  std::optional<uint64_t> MaxDaysOnServer() const {
    if (kind_ == Kind::kDeleteAfterArchive) return 0;
    if (kind_ == Kind::kLimits && delete_after_days_ > 0 && keep_newest_ == 0) {
      return delete_after_days_;
    }
    return std::nullopt;
  }

  // True if deciding needs each message's LIST octets.
  bool NeedsSizes() const { return max_server_bytes_ > 0; }

  // Decides for every message the server lists. `messages` must be in the
  // server's listing order (oldest first); the result is parallel to it.
  std::vector<RetentionDecision> Decide(const std::vector<RetentionCandidate>& messages,
                                        int64_t now) const;

  // Indices into `messages` of those Decide releases now, in listing order.
  std::vector<size_t> Release(const std::vector<RetentionCandidate>& messages, int64_t now) const;

 private:
  Status ParseTerm(const std::string& term);

  Kind kind_ = Kind::kKeep;
  uint64_t delete_after_days_ = 0;  // 0: term absent
  uint64_t keep_newest_ = 0;        // 0: term absent
  uint64_t max_server_bytes_ = 0;   // 0: term absent
};

}  // namespace popvault
