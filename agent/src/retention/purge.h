// Archive-side retention: `popvault purge` removes archived mail older than
// an account's archive_retention_days (0, the default: never) from its stores.
//
// Only kDeleted messages are purged, i.e. those the server no longer has: a
// message still on the server would be fetched and archived again by the next
// sync once the archive had forgotten it. Of those, a message goes when its
// record's archived_at is before now - days * 86400.
//
// Per purged message: its record (the current generation, RecordKey) is
// removed from every store of the account. Its message object goes from a
// store only when nothing else there or in the ledger still names its sha256:
// no other ledger entry (any account, state kStored or kDeleted, not purged in
// this run) and no record in that store (any account, any generation, other
// than those purged in this run). The stores' own records count because the
// ledger may not know them all: after it was lost or restored from an older
// copy, or when a second agent writes to the same store. A record is known
// when the ledger has an entry for its (account, uidl) in any state; a record
// under a generation key ("<key-safe uidl>.<N>.json", Archive::StoredRecord)
// is superseded: kept, never purged here, its content still referenced. If a
// store holds any record the ledger does not know, nothing is purged at all
// (Security naming the store, how many, one key and a hint), dry run or not.
//
// Every store is decided before any is changed. Then, store by store: records
// removed, Sync, objects removed, Sync (a record never outlives its object);
// then the ledger entries become kPurged (listing no stores) and one "purged"
// audit line each is appended. A crash before the ledger write leaves
// kDeleted entries whose records or objects are already gone; the next run
// removes them again, which is not an error (removing nothing is OK).
//
// The reference count covers the whole ledger, so no sync may store mail
// meanwhile; the ledger's database lock gives that: one process at a time.
// Nothing locks a store against another agent: one that starts sharing it
// between this run's listing and its removals is not seen (the next run
// refuses, once its records are there). Cost: every record of every store of
// the account is read once per run that has something to purge.
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
  // Message objects (distinct contents) removed from at least one store, or
  // that would be; content another entry or record still has is kept.
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
