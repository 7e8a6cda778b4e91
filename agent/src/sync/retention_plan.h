// Retention planning: which messages on the server a pass deletes, and why.
//
// One source of truth for `popvault sync` (which deletes) and
// `popvault retention --dry-run` (which only shows): both build the same
// candidates from the server's listing and the ledger, and ask the account's
// RetentionPolicy. The engine then still re-verifies every store's copy
// before each DELE; a message that fails stays (the plan does not pick a
// substitute in that pass).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "ledger/ledger.h"
#include "pop3/pop3_session.h"
#include "popvault/status.h"
#include "retention/retention.h"

namespace popvault {

struct SyncOptions;

// One message the server lists, in listing order.
struct PlannedMessage {
  uint32_t msgno = 0;
  std::string uidl;
  uint64_t octets = 0;  // from LIST; 0 when LIST was not asked
  bool in_ledger = false;
  // As the ledger has it; empty for a kDeleted or kPurged one listed again
  // (a reused UIDL: another message, not archived yet).
  LedgerEntry entry;
  // Account stores without a copy, when the entry is kStored; empty otherwise.
  std::vector<std::string> missing_stores;
  RetentionDecision decision;
};

// Plans the trusted `listing` (JudgeListing). A message counts as archived
// only if it is kStored in every store and LIST shows the size it was
// archived with. `sizes` is the LIST reply, or empty when the
// policy does not need sizes (RetentionPolicy::NeedsSizes); given, it must
// have exactly the listing's message numbers (Protocol otherwise: the server
// contradicts itself, so nothing is deleted). Reads the ledger only.
Status PlanRetention(const AccountConfig& account, Ledger& ledger,
                     const std::vector<UidlEntry>& listing, const std::vector<ListEntry>& sizes,
                     int64_t now, std::vector<PlannedMessage>* plan);

// What the dry run says about one message: "would delete now
// (delete_after_days:30)", "would delete at 2026-11-27T10:42:01Z",
// "kept (policy)", "waits for store offsite", or "not archived yet".
std::string DescribeDecision(const PlannedMessage& message);

// The dry run's row: encoded UIDL, ID (sha256 prefix), LIST octets,
// archived_at, DescribeDecision; separated by two spaces.
std::string FormatPlannedMessage(const PlannedMessage& message);

struct RetentionPreview {
  int64_t now = 0;
  bool listing_trusted = true;       // false: nothing would be deleted, plan is empty
  std::vector<PlannedMessage> plan;  // every listed message
};

// The dry run: connects (options.connect, else Pop3Session::Open), UIDL,
// LIST, QUIT, and plans as of options.clock. Sends no DELE and writes
// nothing. Predicts exactly which already archived messages a sync pass
// started at the same time deletes, provided their copies verify; messages
// that pass fetches are then judged by the same rules.
Status PreviewRetention(const AccountConfig& account, Ledger& ledger, const SyncOptions& options,
                        RetentionPreview* preview);

}  // namespace popvault
