// Ledger: the agent's durable memory of every message it has seen on every
// account, keyed by (account, exact UIDL). Separate from the archive stores.
//
// Per-message state machine (each transition is one atomic write):
//
//   (absent) --UIDL lists it--> kSeen --stored in every store--> kStored
//            --QUIT committed its DELE, or the server no longer lists it--> kDeleted
//            --`popvault purge` removed it from the archive--> kPurged
//
// A kDeleted or kPurged UIDL that the server lists again names a *new*
// message (servers may reuse a UIDL once its message is gone): the entry
// starts over at kSeen with the next record.generation, and is fetched. The
// earlier generation's record stays in the stores under its own key.
//
// A message is fetched again only while it is absent or kSeen, or in fewer
// than all of its account's stores (a kPurged entry keeps its record as
// history but lists no stores, so it is fetched again should the server list
// its UIDL once more). The rule that
// keeps mail safe: no DELE is sent for a message before the kStored entry that
// justifies it is durable (Write with sync=true, or Sync()).
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "archive/record.h"
#include "popvault/status.h"

namespace rocksdb {
class DB;
}

namespace popvault {

enum class MessageState { kSeen = 1, kStored = 2, kDeleted = 3, kPurged = 4 };
const char* MessageStateName(MessageState state);

struct LedgerEntry {
  MessageState state = MessageState::kSeen;
  int64_t first_seen = 0;  // unix seconds when UIDL first listed it
  int64_t deleted_at = 0;  // unix seconds when kDeleted was reached
  // kSeen: a RETR stopped after this many octets at max_message_size (the
  // server's LIST size understated it); sync skips it while it is over.
  uint64_t oversize = 0;
  // The server's LIST size of the message when it was archived (unset: not
  // known, archived by an older version or rebuilt by `popvault doctor`). A
  // listing that shows another size under this UIDL is another message: it is
  // fetched again, never deleted unread.
  std::optional<uint64_t> listed_octets;
  // kStored: unix seconds when a DELE was sent for it, synced before the DELE
  // went out. Until a listing tells, it is unknown whether the server
  // committed it (a lost QUIT reply, a kill after QUIT): gone from the next
  // trusted listing, the deletion is audited then; listed, it is cleared.
  int64_t dele_sent_at = 0;
  // account and uidl are always set; the rest from kStored on (kPurged keeps
  // it: what was archived, and when).
  ArchiveRecord record;
  // Names of the stores that hold a verified copy.
  std::vector<std::string> stores;
};

class Ledger {
 public:
  // Opens (creating if needed) the ledger database in directory `dir`. One
  // process at a time: a second Open fails while the first holds it.
  static Status Open(const std::string& dir, std::unique_ptr<Ledger>* ledger);
  // Opens the existing ledger in `dir` for reading, also while another
  // process has it open (popvault list beside popvault run). It reads the
  // ledger as of this call; Write and Sync fail with NotSupported.
  static Status OpenForReading(const std::string& dir, std::unique_ptr<Ledger>* ledger);
  ~Ledger();

  // NotFound if the ledger has no entry for (account, uidl); Corruption
  // (naming account and encoded UIDL) if its stored value does not decode.
  Status Get(const std::string& account, const std::string& uidl, LedgerEntry* entry);

  // Writes all entries atomically (all or none survive a crash). With
  // sync=true they are durable on return; otherwise they become durable at
  // the next Sync() or synced Write. InvalidArgument, writing nothing, if an
  // entry has a bad account name, is kStored without a record (sha256 set),
  // is kPurged but lists stores, or has a record that would not read back.
  Status Write(const std::vector<LedgerEntry>& entries, bool sync);

  // Makes every earlier Write durable.
  Status Sync();

  // Calls fn for each entry of `account` (every account if empty), ordered by
  // account then UIDL bytes, until fn returns false. Stops at the first entry
  // that does not decode, with Corruption naming it.
  Status ForEach(const std::string& account, const std::function<bool(const LedgerEntry&)>& fn);

  // What a poll needs of an entry, for ForEachSummary.
  struct Summary {
    std::string_view uidl;
    MessageState state;
    const std::vector<std::string>& stores;
    std::optional<uint64_t> listed_octets;
    int64_t dele_sent_at;
  };
  // As ForEach, but decodes only the state and stores (not the archive
  // record): a poll over a large mailbox reads every entry. The views are
  // valid during the call only. With `corrupt`, an entry that does not
  // decode is passed to it (its exact UIDL, and Corruption naming it) and the
  // scan goes on.
  using CorruptFn = std::function<void(std::string_view uidl, const Status& why)>;
  Status ForEachSummary(const std::string& account, const std::function<bool(const Summary&)>& fn,
                        const CorruptFn& corrupt = nullptr);

 private:
  Ledger(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<void> scratch);
  std::shared_ptr<void> scratch_;  // a reader's directory (OpenForReading); outlives db_
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace popvault
