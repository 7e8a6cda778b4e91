// Doctor: checks an account's ledger entries against the records and message
// objects of its stores, and rebuilds the ledger from the stores where they
// disagree (`popvault doctor`). The stores are the archive; the ledger is the
// agent's index of it, so the stores win, except that nothing is ever removed
// from a store and the server is never contacted.
//
// Findings, per account:
//   undecodable      a ledger value that does not decode
//   missing_copies   a kStored/kDeleted entry lists a store whose record of
//                    it (account, uidl, generation, sha256) is missing, or
//                    whose message object is missing or fails
//                    Archive::VerifyMessage
//   unknown_records  a record in a store with no ledger entry for its UIDL
//   newer_records    a record of a newer generation than the UIDL's entry
//   unknown_stores   an entry lists a store the account no longer has (not
//                    checked, not changed: its copy may still be there)
//   data_loss        a kDeleted entry (the server no longer has the message)
//                    or a kStored one whose DELE was sent, with no intact
//                    copy in any store of the account: left as it is, so that
//                    every later run reports it again
//   unfinished_purges  such a kDeleted entry archived before purge_before: a
//                    `popvault purge` that stopped between removing it from
//                    the stores and writing kPurged; left for purge to finish
//
// Repairs (what `writes` holds; written unless dry_run):
//   - undecodable entry, unknown or newer record: the entry is rebuilt from
//     the UIDL's record of the highest generation in any store: kStored,
//     listing the stores where that record and its verified message are,
//     first_seen = archived_at, listed_octets unset (unknown). With no intact
//     copy anywhere it is written kSeen (fetched again if the server still
//     has it) and reported in `no_copy`. An undecodable entry with no record
//     in any store becomes a fresh kSeen entry.
//   - missing copies: the entry lists only the stores with an intact copy
//     (plus those not in the config); a kStored entry left with none goes
//     back to kSeen, so the next sync fetches it again.
// Writes go in batches, synced at the end.
//
// Status: OK if the account is consistent once `writes` are in (with dry_run:
// would be); Corruption on data loss, `no_copy` or `unrepaired`;
// a ledger or store error as it came (a store whose records cannot all be
// listed stops the account before anything is written).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "ledger/ledger.h"
#include "popvault/status.h"

namespace popvault {

// One kind of finding: how many, and the first few described.
struct DoctorFinding {
  static constexpr size_t kExamples = 5;
  uint64_t count = 0;
  std::vector<std::string> examples;  // at most kExamples
  void Add(std::string what);
};

struct DoctorReport {
  std::string account;
  uint64_t entries = 0;  // ledger entries of the account, decodable or not
  uint64_t records = 0;  // records of the account, summed over its stores
  DoctorFinding undecodable;
  DoctorFinding missing_copies;
  DoctorFinding unknown_records;
  DoctorFinding newer_records;
  DoctorFinding unknown_stores;
  DoctorFinding data_loss;
  DoctorFinding unfinished_purges;
  DoctorFinding no_copy;     // rebuilt entries whose message no store holds intact
  DoctorFinding unrepaired;  // undecodable entries whose UIDL cannot be told
  // The entries written (with dry_run: that would be), in UIDL order.
  std::vector<LedgerEntry> writes;
};

struct DoctorOptions {
  std::string account;
  // The account's stores, as configured; entries naming others are only
  // reported (unknown_stores).
  std::vector<Archive*> archives;
  bool dry_run = false;
  int64_t now = 0;  // first_seen of a fresh kSeen entry
  // What `popvault purge` may remove: kDeleted entries archived before this
  // (unix seconds; 0: nothing, e.g. archive_retention_days 0 or legal hold).
  int64_t purge_before = 0;
};

Status DoctorAccount(const DoctorOptions& options, Ledger& ledger, DoctorReport* report);

}  // namespace popvault
