#include "sync/sync_engine.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <unordered_set>

#include "archive/message_writer.h"
#include "common/test_point.h"
#include "sync/retention_plan.h"

namespace popvault {
namespace {

// A message the server lists, with what the ledger knows about it.
struct ListedMessage {
  uint32_t msgno = 0;
  LedgerEntry entry;
};

// Lets tests crash or pause the process in the middle of a RETR.
class TestPointSink : public ByteSink {
 public:
  explicit TestPointSink(ByteSink& next) : next_(next) {}
  Status Append(const char* data, size_t n) override {
    TestPoint("retr-data");
    return next_.Append(data, n);
  }

 private:
  ByteSink& next_;
};

class AccountSync {
 public:
  AccountSync(const AccountConfig& account, Ledger& ledger, const std::vector<Archive*>& archives,
              const SyncOptions& options, SyncReport* report)
      : account_(account),
        ledger_(ledger),
        archives_(archives),
        options_(options),
        report_(report),
        log_(Poco::Logger::get("popvault.sync")) {}

  Status Run() {
    POPVAULT_RETURN_IF_ERROR(options_.connect ? options_.connect(account_.pop3, &session_)
                                              : Pop3Session::Open(account_.pop3, &session_));
    std::vector<UidlEntry> listing;
    POPVAULT_RETURN_IF_ERROR(session_->Uidl(&listing));
    report_->listed = listing.size();
    report_->listing_trusted = ListingIsTrustworthy(listing);
    if (!report_->listing_trusted) {
      log_.warning(
          "account %s: the server's UIDL listing has duplicates or gaps; archiving "
          "without deleting anything this pass",
          account_.name);
    }

    std::vector<ListedMessage> to_fetch;
    POPVAULT_RETURN_IF_ERROR(Classify(listing, &to_fetch));
    POPVAULT_RETURN_IF_ERROR(FetchAll(to_fetch));
    if (report_->listing_trusted) POPVAULT_RETURN_IF_ERROR(DeleteReleased(listing));

    POPVAULT_RETURN_IF_ERROR(session_->Quit());
    POPVAULT_RETURN_IF_ERROR(CommitDeleted());
    POPVAULT_RETURN_IF_ERROR(StoresDown());
    if (Stopping())
      return Status::Aborted("stopped for shutdown; the rest waits for the next pass");
    if (report_->verify_failed > 0) {
      return Status::Corruption(std::to_string(report_->verify_failed) +
                                " stored message(s) failed read-back verification; they stay on "
                                "the server and will be fetched again");
    }
    return Status::OK();
  }

 private:
  bool Stopping() const { return options_.stop != nullptr && options_.stop->load(); }

  int64_t Now() const {
    return options_.clock ? options_.clock() : static_cast<int64_t>(std::time(nullptr));
  }

  bool InEveryStore(const LedgerEntry& entry) const {
    std::set<std::string> have(entry.stores.begin(), entry.stores.end());
    for (const Archive* a : archives_) {
      if (!have.count(a->name())) return false;
    }
    return true;
  }

  // Picks the messages to fetch (not yet in every store); records new UIDLs
  // as kSeen and stored messages the server no longer lists as kDeleted.
  Status Classify(const std::vector<UidlEntry>& listing, std::vector<ListedMessage>* to_fetch) {
    std::vector<LedgerEntry> updates;
    std::unordered_set<std::string> listed;
    for (const UidlEntry& u : listing) {
      if (!listed.insert(u.uidl).second) continue;  // duplicate: archive the first only
      ListedMessage m{u.msgno, {}};
      Status s = ledger_.Get(account_.name, u.uidl, &m.entry);
      if (s.code() == Status::Code::kNotFound) {
        m.entry.state = MessageState::kSeen;
        m.entry.first_seen = Now();
        m.entry.record.account = account_.name;
        m.entry.record.uidl = u.uidl;
        updates.push_back(m.entry);
      } else if (!s.ok()) {
        return s;
      } else if (m.entry.state == MessageState::kDeleted) {
        // Listed again after we saw it gone (a listing that omitted it, or a
        // QUIT that did not really delete): it is on the server, so stored.
        m.entry.state = MessageState::kStored;
        m.entry.deleted_at = 0;
        updates.push_back(m.entry);
      }
      bool archived = m.entry.state != MessageState::kSeen && InEveryStore(m.entry);
      if (!archived) to_fetch->push_back(std::move(m));
    }
    if (report_->listing_trusted) POPVAULT_RETURN_IF_ERROR(MarkGone(listed, &updates));
    log_.information("account %s: %z messages on the server, %z to fetch", account_.name,
                     listing.size(), to_fetch->size());
    return ledger_.Write(updates, /*sync=*/false);
  }

  // A stored message missing from a trusted listing was deleted from the
  // server, by us (a QUIT whose reply we lost) or by someone else.
  Status MarkGone(const std::unordered_set<std::string>& listed,
                  std::vector<LedgerEntry>* updates) {
    int64_t now = Now();
    return ledger_.ForEach(account_.name, [&](const LedgerEntry& e) {
      if (e.state == MessageState::kStored && !listed.count(e.record.uidl)) {
        LedgerEntry gone = e;
        gone.state = MessageState::kDeleted;
        gone.deleted_at = now;
        updates->push_back(gone);
      }
      return true;
    });
  }

  Status FetchAll(const std::vector<ListedMessage>& to_fetch) {
    std::vector<ListedMessage> pending;
    uint64_t pending_bytes = 0;
    for (size_t i = 0; i < to_fetch.size() && !Stopping(); ++i) {
      ListedMessage m = to_fetch[i];
      Status s = FetchOne(&m);
      if (!s.ok()) {
        // What is already in the stores is worth keeping: commit it, so a
        // retry does not fetch it again. The error still ends the pass.
        Status commit = CommitStored(&pending);
        if (!commit.ok()) log_.error("account %s: %s", account_.name, commit.ToString());
        return s;
      }
      pending_bytes += m.entry.record.size;
      pending.push_back(std::move(m));
      if (pending.size() >= options_.commit_every_messages ||
          pending_bytes >= options_.commit_every_bytes) {
        POPVAULT_RETURN_IF_ERROR(CommitStored(&pending));
        pending_bytes = 0;
        log_.information("account %s: fetched %z of %z", account_.name, i + 1, to_fetch.size());
      }
    }
    return CommitStored(&pending);
  }

  // RETR into the codec layers, then into each store that lacks the message
  // and is up. Nothing is durable yet. A failing store is marked down for the
  // rest of the pass; the message waits for it (no DELE) but lands elsewhere.
  Status FetchOne(ListedMessage* m) {
    MessageWriter writer(CompressionLevels(), options_.spool_dir);
    TestPointSink sink(writer);
    POPVAULT_RETURN_IF_ERROR(session_->Retr(m->msgno, sink));
    POPVAULT_RETURN_IF_ERROR(writer.Finish());

    ArchiveRecord& rec = m->entry.record;
    rec.sha256 = writer.sha256_hex();
    rec.size = writer.size();
    rec.archived_at = Now();
    rec.message_id = writer.headers().message_id;
    rec.date = writer.headers().date;
    rec.from = writer.headers().from;
    rec.subject = writer.headers().subject;
    if (m->entry.state == MessageState::kSeen) m->entry.stores.clear();
    bool all_reused = true;
    for (Archive* a : archives_) {
      if (Has(m->entry, a->name()) || down_.count(a->name())) continue;
      ArchiveRecord per_store = rec;
      bool reused = false;
      Status s = a->PutMessage(rec.sha256, writer.compressed(a->compression_level()),
                               &per_store.stored_size, &reused);
      all_reused = all_reused && reused;
      if (s.ok()) s = a->PutRecord(per_store);
      if (!s.ok()) {
        MarkDown(*a, s);
        continue;
      }
      if (rec.stored_size == 0) rec.stored_size = per_store.stored_size;
      m->entry.stores.push_back(a->name());
    }
    if (m->entry.stores.empty()) return StoresDown();
    TestPoint("stored");
    m->entry.state = MessageState::kStored;
    report_->fetched++;
    report_->fetched_bytes += rec.size;
    if (all_reused) report_->deduplicated++;
    return Status::OK();
  }

  static bool Has(const LedgerEntry& entry, const std::string& store) {
    return std::find(entry.stores.begin(), entry.stores.end(), store) != entry.stores.end();
  }

  void MarkDown(const Archive& archive, const Status& error) {
    Status s = error.WithContext("store '" + archive.name() + "'");
    log_.error("account %s: %s; messages wait for this store and stay on the server", account_.name,
               s.ToString());
    down_.emplace(archive.name(), s);
  }

  // The first error of a store that went down in this pass.
  Status StoresDown() const { return down_.empty() ? Status::OK() : down_.begin()->second; }

  std::vector<int> CompressionLevels() const {
    std::vector<int> levels;
    for (const Archive* a : archives_) levels.push_back(a->compression_level());
    return levels;
  }

  // Group commit: the stores first, then the ledger entries that point at
  // them, so a durable kStored entry never refers to a lost object. A store
  // whose Sync fails is dropped from the batch's entries (its copies may be
  // lost); entries left with no store are not committed.
  Status CommitStored(std::vector<ListedMessage>* pending) {
    if (pending->empty()) return Status::OK();
    for (Archive* a : archives_) {
      if (down_.count(a->name())) continue;
      Status s = a->Sync();
      if (!s.ok()) MarkDown(*a, s);
    }
    std::vector<LedgerEntry> entries;
    for (ListedMessage& m : *pending) {
      std::erase_if(m.entry.stores, [&](const std::string& name) { return down_.count(name); });
      if (!m.entry.stores.empty()) entries.push_back(m.entry);
    }
    POPVAULT_RETURN_IF_ERROR(ledger_.Write(entries, /*sync=*/true));
    TestPoint("committed");
    pending->clear();
    return Status::OK();
  }

  // Plans from the ledger, as the dry run does (every kStored entry is synced
  // by now). Messages the plan releases are read back from every store and
  // only then marked with DELE.
  Status DeleteReleased(const std::vector<UidlEntry>& listing) {
    int64_t now = Now();
    std::vector<ListEntry> sizes;
    if (account_.retention.NeedsSizes()) POPVAULT_RETURN_IF_ERROR(session_->List(&sizes));
    std::vector<PlannedMessage> plan;
    POPVAULT_RETURN_IF_ERROR(PlanRetention(account_, ledger_, listing, sizes, now, &plan));
    for (const PlannedMessage& m : plan) {
      if (m.decision.verdict != RetentionDecision::Verdict::kDeleteNow) continue;
      // Counted now, uncounted once QUIT commits the DELE (CommitDeleted).
      report_->pending_deletes++;
      if (Stopping() || !InEveryStore(m.entry) || !VerifyEverywhere(m.entry)) continue;
      POPVAULT_RETURN_IF_ERROR(session_->Dele(m.msgno));
      TestPoint("deleted");
      LedgerEntry gone = m.entry;
      gone.state = MessageState::kDeleted;
      gone.deleted_at = now;
      deleted_.push_back(gone);
    }
    return Status::OK();
  }

  // A copy that is missing or fails read-back is not trusted: the store is
  // dropped from the entry, so the next pass fetches the message again for
  // it. A store that cannot be read at all (I/O) only delays the deletion.
  bool VerifyEverywhere(const LedgerEntry& entry) {
    for (Archive* a : archives_) {
      if (down_.count(a->name())) return false;
      Status s = a->VerifyMessage(entry.record.sha256);
      if (s.ok()) continue;
      if (s.code() != Status::Code::kCorruption && s.code() != Status::Code::kNotFound) {
        MarkDown(*a, s);
        return false;
      }
      log_.error("account %s: uidl %s: store '%s': %s; not deleting it", account_.name,
                 EncodeUidl(entry.record.uidl), a->name(), s.ToString());
      report_->verify_failed++;
      LedgerEntry retry = entry;
      std::erase(retry.stores, a->name());
      if (retry.stores.empty()) retry.state = MessageState::kSeen;
      Status w = ledger_.Write({retry}, /*sync=*/false);
      if (!w.ok()) log_.error("account %s: %s", account_.name, w.ToString());
      return false;
    }
    return true;
  }

  // QUIT committed the DELEs: audit them, then record them. The deletions
  // happened whatever the audit log says, so its failure must not cost the
  // ledger update; it is logged and returned after it.
  Status CommitDeleted() {
    report_->deleted = deleted_.size();
    report_->pending_deletes -= deleted_.size();
    if (!deleted_.empty()) {
      log_.information("account %s: server deleted %z archived messages", account_.name,
                       deleted_.size());
    }
    Status audit = AuditDeleted();
    if (!audit.ok()) {
      log_.critical("account %s: %z deletions committed by the server are NOT in the audit log: %s",
                    account_.name, deleted_.size(), audit.ToString());
    }
    POPVAULT_RETURN_IF_ERROR(ledger_.Write(deleted_, /*sync=*/true));
    return audit;
  }

  Status AuditDeleted() {
    if (options_.audit_log == nullptr || deleted_.empty()) return Status::OK();
    std::vector<std::string> stores;
    for (const Archive* a : archives_) stores.push_back(a->name());
    std::vector<AuditDeletion> lines;
    int64_t now = Now();
    for (const LedgerEntry& e : deleted_) {
      lines.push_back({account_.name, e.record.uidl, e.record.sha256, e.record.size, stores, now});
    }
    return options_.audit_log->Append(lines);
  }

  const AccountConfig& account_;
  Ledger& ledger_;
  const std::vector<Archive*>& archives_;
  const SyncOptions& options_;
  SyncReport* report_;
  Poco::Logger& log_;
  std::unique_ptr<Pop3Session> session_;  // dropped without QUIT on every error path
  std::vector<LedgerEntry> deleted_;      // DELE sent; kDeleted once QUIT succeeds
  std::map<std::string, Status> down_;    // stores that failed in this pass
};

}  // namespace

Status SyncAccount(const AccountConfig& account, Ledger& ledger,
                   const std::vector<Archive*>& archives, const SyncOptions& options,
                   SyncReport* report) {
  *report = SyncReport();
  if (archives.empty()) return Status::InvalidArgument("account has no stores");
  return AccountSync(account, ledger, archives, options, report)
      .Run()
      .WithContext("account '" + account.name + "'");
}

}  // namespace popvault
