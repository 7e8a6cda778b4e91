// SyncAccount: one archive pass over one account. This is the whole path of a
// message from RETR to DELE, in one place:
//
//   connect + authenticate          Pop3Session::Open (warn if CAPA EXPIRE is
//                                   shorter than the retention policy)
//   LIST, UIDL                      which messages the server has, how large;
//                                   JudgeListing: keyed by UIDL or by content
//   classify against the ledger     new -> kSeen; gone from server -> kDeleted
//                                   (audited then if our DELE did it); a deleted
//                                   UIDL listed again -> kSeen, next generation;
//                                   over max_message_size -> skipped, reported
//   for each message not yet stored in every store (pipelined RETR):
//     RETR -> MessageWriter         SHA-256 + zstd + header capture, streaming
//     Archive::PutMessage/PutRecord in every store of the account
//     group commit                  Archive::Sync, then Ledger::Write(kStored, sync)
//   PlanRetention                   the policy over the whole listing, from
//                                   the ledger
//   for each stored message the plan releases:
//     Archive::VerifyMessage        read back + SHA-256, in every store
//   mark them (dele_sent_at, synced), DELE them (pipelined)
//   QUIT                            the server commits the DELEs (`keep`:
//                                   none; sent during the last commit)
//   AuditLog::Append                one fsync'd line per committed deletion
//   Ledger::Write(kDeleted)
//
// No DELE is sent for a message whose kStored ledger entry (and the stored
// objects behind it) are not yet synced, nor for one LIST shows with another
// size than it was archived with, nor in a session whose listing is
// untrustworthy (duplicate UIDLs, gaps, LIST disagreeing) or that has no
// UIDL; there every message is still archived, those without a UIDL that
// names them by SHA-256 ("sha256:<hex>", downloaded every pass). Each DELE's
// entry is marked and synced first, so a deletion is audited even if the
// QUIT reply is lost. Any error drops the connection without QUIT, so the
// server deletes nothing of that session.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "config/config.h"
#include "ledger/ledger.h"
#include "pop3/pop3_session.h"
#include "popvault/status.h"
#include "retention/audit_log.h"

namespace popvault {

struct SyncOptions {
  std::string spool_dir;           // temporary files for large messages
  std::function<int64_t()> clock;  // unix seconds; the system clock if empty
  // Opens the POP3 session; Pop3Session::Open if empty (tests pass a fake).
  std::function<Status(const Pop3Options&, std::unique_ptr<Pop3Session>*)> connect;
  // Shutdown: once *stop is true the pass fetches and marks nothing more,
  // commits what it stored, QUITs (every DELE sent so far was verified) and
  // returns Aborted. Not owned; may be null.
  const std::atomic<bool>* stop = nullptr;
  // Every deletion QUIT committed is appended here before the ledger records
  // it. Not owned; may be null (no audit trail).
  AuditLog* audit_log = nullptr;
  // Group commit: sync stores and ledger after this many messages or bytes.
  size_t commit_every_messages = 256;
  uint64_t commit_every_bytes = 64ull << 20;
};

struct SyncReport {
  uint64_t listed = 0;           // messages on the server
  uint64_t fetched = 0;          // retrieved and stored in this pass
  uint64_t fetched_bytes = 0;    // raw octets of those
  uint64_t deleted = 0;          // deletions the server committed at QUIT
  uint64_t deduplicated = 0;     // fetched, but every store already held that content
  uint64_t verify_failed = 0;    // released by retention, but a stored copy failed read-back
  uint64_t pending_deletes = 0;  // released by retention but still on the server after
                                 // the pass (verification failed, a store down, shutdown)
  uint64_t too_large = 0;        // over max_message_size: not archived, left on the server
  bool listing_trusted = true;   // false: no UIDL, duplicate UIDLs or gaps; nothing deleted
  uint64_t by_content = 0;       // listed messages known by content, not UIDL (JudgeListing)
  uint64_t ledger_errors = 0;    // ledger entries that did not decode (popvault doctor)
};

// `archives` are the account's stores, in config order; not owned. Fills
// *report as far as the pass got, also on error.
Status SyncAccount(const AccountConfig& account, Ledger& ledger,
                   const std::vector<Archive*>& archives, const SyncOptions& options,
                   SyncReport* report);

}  // namespace popvault
