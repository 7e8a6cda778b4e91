// Archive-side retention: `popvault purge` removes archived mail older than
// an account's archive_retention_days (0, the default: never) from its stores.
//
// Only kDeleted messages are purged, i.e. those the server no longer has: a
// message still on the server would be fetched and archived again by the next
// sync once the archive had forgotten it. Of those, a message goes when its
// record's archived_at is before now - days * 86400.
//
// Per purged message: its record is removed from every store of the account;
// its message object only when no other ledger entry (any account, state
// kStored or kDeleted, not purged in this run) has the same sha256, since
// objects are shared by content. Then, stores synced, the ledger entries
// become kPurged (listing no stores) and one "purged" audit line each is
// appended. A crash before the ledger write leaves kDeleted entries whose
// records or objects are already gone; the next run removes them again,
// which is not an error (removing nothing is OK).
//
// The reference count covers the whole ledger, so no sync may store mail
// meanwhile; the ledger's database lock gives that: one process at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "ledger/ledger.h"
#include "popvault/status.h"
#include "retention/audit_log.h"

namespace popvault {

// The account's purge settings (from AccountConfig; the config module sits
// above this one).
struct PurgeSettings {
  std::string account;
  int retention_days = 0;   // 0: never purge
  bool legal_hold = false;  // refuse to purge anything
};

struct PurgeReport {
  // Purged (with dry_run: would be), in ledger order; entries as they were.
  std::vector<LedgerEntry> purged;
  // Message objects (distinct contents) removed, or that would be; content
  // another entry still has is kept.
  size_t objects_removed = 0;
};

// Purges what the rules above select at `now` (unix seconds) from `archives`
// (the account's stores), appending to `audit_log` unless it is null. With
// dry_run, only fills *report. Security if the account is under legal hold
// (whatever retention_days says), nothing purged; OK with nothing purged if
// retention_days is 0. On a store or ledger error some records or objects may
// be gone while the entries are still kDeleted, and *report is empty: a later
// run completes them. If only the audit append fails, everything is purged
// and *report says so, but the IOError is returned.
Status PurgeAccount(const PurgeSettings& settings, Ledger& ledger,
                    const std::vector<Archive*>& archives, int64_t now, bool dry_run,
                    AuditLog* audit_log, PurgeReport* report);

}  // namespace popvault
