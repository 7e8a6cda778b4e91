#include "sync/sync_engine.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "archive/message_writer.h"
#include "common/async.h"
#include "common/test_point.h"
#include "sync/listing.h"
#include "sync/retention_plan.h"

namespace popvault {
namespace {

// A message the server lists, with what the ledger knows about it. Without
// UIDL the entry's uidl is empty until RETR gives the message's SHA-256.
struct ListedMessage {
  uint32_t msgno = 0;
  uint64_t octets = 0;  // LIST size
  LedgerEntry entry;
};

// A message to fetch, as compact as a first pass over a mailbox of 50,000
// needs: one that is new to the ledger costs its UIDL only, and its kSeen
// entry is rebuilt when its RETR ends (AccountSync::Materialize).
struct ToFetch {
  uint32_t msgno = 0;
  uint64_t octets = 0;
  std::string uidl;                    // empty without UIDL
  std::unique_ptr<LedgerEntry> known;  // the ledger's entry, if it had one
};

// LIST sizes by message number, without a node per message.
class SizeIndex {
 public:
  explicit SizeIndex(const std::vector<ListEntry>& sizes) : sorted_(sizes) {
    auto by_msgno = [](const ListEntry& x, const ListEntry& y) { return x.msgno < y.msgno; };
    if (!std::is_sorted(sorted_.begin(), sorted_.end(), by_msgno)) {
      std::stable_sort(sorted_.begin(), sorted_.end(), by_msgno);
    }
  }
  // 0 for a message LIST did not show.
  uint64_t Of(uint32_t msgno) const {
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), msgno,
                               [](const ListEntry& e, uint32_t n) { return e.msgno < n; });
    return it != sorted_.end() && it->msgno == msgno ? it->octets : 0;
  }

 private:
  std::vector<ListEntry> sorted_;
};

// The ledger key of a message known by content (no UIDL, or one that cannot
// name it): kContentKeyPrefix + SHA-256, a namespace no server UIDL enters
// (JudgeListing).
std::string ContentUidl(const std::string& sha256_hex) {
  return std::string(kContentKeyPrefix) + sha256_hex;
}

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

// A kSeen or kStored ledger entry, reduced to what Classify decides on.
struct KnownMessage {
  std::string uidl;
  MessageState state;
  bool archived;  // kStored in every store of the account
  std::optional<uint64_t> listed_octets;
  int64_t dele_sent_at;
};

// What a group commit's thread reports: each store's Sync, then the ledger
// write.
struct CommitOutcome {
  std::vector<std::pair<Archive*, Status>> synced;
  Status ledger;
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
    // Reading the ledger is most of a poll that finds nothing new: it runs
    // while the session connects and logs in, which is mostly waiting.
    std::future<Status> known = Async([this] { return LoadKnown(); });
    Status open = options_.connect ? options_.connect(account_.pop3, &session_)
                                   : Pop3Session::Open(account_.pop3, &session_);
    Status loaded = known.get();
    POPVAULT_RETURN_IF_ERROR(open);
    POPVAULT_RETURN_IF_ERROR(loaded);
    WarnIfServerExpiresSooner();
    std::vector<ListEntry> sizes;
    std::vector<UidlEntry> uidls;
    Status uidl = session_->Listing(&sizes, &uidls);
    const bool has_uidl = uidl.code() != Status::Code::kNotSupported;
    if (has_uidl) POPVAULT_RETURN_IF_ERROR(uidl);
    const JudgedListing listing = JudgeListing(sizes, has_uidl ? &uidls : nullptr);
    report_->listed = listing.by_uidl.size() + listing.by_content.size();
    report_->listing_trusted = listing.trusted;
    report_->by_content = listing.by_content.size();
    if (!has_uidl) {
      log_.warning(
          "account %s: the server has no UIDL (%s): every pass downloads all %z messages, "
          "deduplicated by SHA-256, and nothing is ever deleted from this server",
          account_.name, uidl.message(), sizes.size());
    } else if (!report_->listing_trusted) {
      log_.warning(
          "account %s: the server's UIDL listing has duplicates or gaps, or disagrees with LIST: "
          "%s; archiving every message, deleting nothing this pass",
          account_.name, listing.problem);
    }

    std::vector<ToFetch> to_fetch;
    if (has_uidl) POPVAULT_RETURN_IF_ERROR(Classify(listing.by_uidl, sizes, &to_fetch));
    if (Status s = ConfirmEarlierDeletions(); !s.ok()) {
      // Archiving goes on; the entries keep their marks and the next pass
      // tries again.
      log_.critical("account %s: deletions of an earlier pass are not audited yet: %s",
                    account_.name, s.ToString());
      confirm_error_ = s;
    }
    for (const ListEntry& e : listing.by_content) {
      to_fetch.push_back({e.msgno, e.octets, "", nullptr});
    }
    // Fetch in the server's order: oldest first.
    std::sort(to_fetch.begin(), to_fetch.end(),
              [](const ToFetch& x, const ToFetch& y) { return x.msgno < y.msgno; });
    log_.information("account %s: %z messages on the server, %z to fetch", account_.name,
                     report_->listed, to_fetch.size());
    // `keep` releases nothing: QUIT need not wait for the last group commit
    // (FetchAll sends it meanwhile), nor the ledger be read again.
    const bool keep = account_.retention.kind() == RetentionPolicy::Kind::kKeep;
    if (!Stopping()) POPVAULT_RETURN_IF_ERROR(FetchAll(to_fetch, /*quit=*/keep));
    if (report_->listing_trusted && !keep) {
      POPVAULT_RETURN_IF_ERROR(DeleteReleased(listing.by_uidl, sizes));
    }

    POPVAULT_RETURN_IF_ERROR(Quit());
    POPVAULT_RETURN_IF_ERROR(CommitDeleted());
    POPVAULT_RETURN_IF_ERROR(confirm_error_);
    TrainDictionaries();
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
  // RFC 2449 EXPIRE: the server deletes mail itself after n days ("n USER"
  // after login may be per user; NEVER: it does not).
  void WarnIfServerExpiresSooner() {
    const std::string expire = session_->CapabilityArgument("EXPIRE");
    uint64_t days = 0;
    const std::string first = expire.substr(0, expire.find(' '));
    if (first.empty() || first.find_first_not_of("0123456789") != std::string::npos) return;
    days = std::stoull(first.substr(0, 9));
    std::optional<uint64_t> keep = account_.retention.MaxDaysOnServer();
    if (keep && *keep <= days) return;
    log_.warning(
        "account %s: the server announces EXPIRE %s: it deletes mail itself after %s day(s), "
        "sooner than retention '%s' would; popvault archives each message at the first pass "
        "that sees it, so poll more often than that",
        account_.name, expire, first, account_.retention.ToString());
  }

  bool Stopping() const { return options_.stop != nullptr && options_.stop->load(); }

  int64_t Now() const {
    return options_.clock ? options_.clock() : static_cast<int64_t>(std::time(nullptr));
  }

  bool InEveryStore(const LedgerEntry& entry) const { return InEveryStore(entry.stores); }
  bool InEveryStore(const std::vector<std::string>& stores) const {
    return std::all_of(archives_.begin(), archives_.end(), [&](const Archive* a) {
      return std::find(stores.begin(), stores.end(), a->name()) != stores.end();
    });
  }

  // A message to fetch that is over max_message_size, by LIST or by what an
  // earlier RETR delivered before the limit stopped it (LedgerEntry::oversize),
  // is not fetched, and so never deleted; the rest of the pass goes on. Each
  // pass says so. Also a kStored one that a store still lacks: fetching it
  // would end the session at the limit, and every message after it with it.
  bool TooLarge(const ListedMessage& m) {
    const uint64_t limit = account_.pop3.max_message_size;
    const uint64_t size = std::max(m.octets, m.entry.oversize);
    if (size <= limit) return false;
    report_->too_large++;
    log_.error(
        "account %s: %s:%hu: uidl %s: message of %s octets is over max_message_size (%s): not "
        "fetched, left on the server",
        account_.name, account_.pop3.host, account_.pop3.port, EncodeUidl(m.entry.record.uidl),
        std::to_string(size), std::to_string(limit));
    return true;
  }

  // The account's kSeen and kStored ledger entries, as Classify needs them:
  // the messages that may still be on the server. Later states (kDeleted,
  // kPurged: history that only grows) are not held, only looked up should
  // the server list them again. Runs on its own thread (Run).
  Status LoadKnown() {
    return ledger_.ForEachSummary(
        account_.name,
        [this](const Ledger::Summary& e) {
          if (e.state == MessageState::kSeen || e.state == MessageState::kStored) {
            known_.push_back({std::string(e.uidl), e.state,
                              e.state == MessageState::kStored && InEveryStore(e.stores),
                              e.listed_octets, e.dele_sent_at});
          }
          return true;
        },
        [this](std::string_view, const Status& bad) {
          // Its UIDL, if listed, is archived by content (Classify): one bad
          // value must not stop the account.
          log_.error("account %s: %s", account_.name, bad.ToString());
          report_->ledger_errors++;
        });
  }

  // Picks the messages to fetch (not yet in every store, or listed with
  // another size than they were archived with); records new UIDLs as kSeen
  // and stored messages the server no longer lists as kDeleted. Works from
  // known_ (LoadKnown), reading whole entries only for what is to fetch or
  // to change: a poll of a large mailbox that finds nothing new decodes each
  // entry once, in parallel with the login. `listing` has unique UIDLs.
  Status Classify(const std::vector<UidlEntry>& listing, const std::vector<ListEntry>& sizes,
                  std::vector<ToFetch>* to_fetch) {
    const SizeIndex octets(sizes);
    // uidl -> msgno, 0 once found in the ledger. The keys are views into `listing`.
    std::unordered_map<std::string_view, uint32_t> listed;
    listed.reserve(listing.size());
    for (const UidlEntry& u : listing) listed.emplace(u.uidl, u.msgno);
    std::vector<LedgerEntry> updates;
    const int64_t now = Now();
    classified_at_ = now;
    for (const KnownMessage& k : known_) {
      auto it = listed.find(k.uidl);
      if (it == listed.end()) {
        POPVAULT_RETURN_IF_ERROR(Unlisted(k, now, &updates));
        continue;
      }
      const uint32_t msgno = std::exchange(it->second, 0);
      const bool resized = k.listed_octets && octets.Of(msgno) != *k.listed_octets;
      // Whether the UIDL still names what was archived under it is unknown
      // after our DELE (it may have been committed, and the UIDL reused at the
      // same size), or without the size it was archived with (older versions,
      // `popvault doctor`): the content decides (CompareWithArchived).
      const bool unproven =
          k.state == MessageState::kStored && (!k.listed_octets || k.dele_sent_at != 0);
      if (k.archived && !resized && !unproven) continue;
      ListedMessage m{msgno, octets.Of(msgno), {}};
      POPVAULT_RETURN_IF_ERROR(ledger_.Get(account_.name, k.uidl, &m.entry));
      if (resized) {
        log_.warning(
            "account %s: uidl %s: LIST says %s octets, it was archived at %s: fetching it again "
            "(a server may give an old UIDL to a new message)",
            account_.name, EncodeUidl(k.uidl), std::to_string(m.octets),
            std::to_string(*k.listed_octets));
      } else if (k.archived && !unproven) {
        continue;
      }
      if (!TooLarge(m)) to_fetch->push_back(ToFetchOf(std::move(m)));
    }
    std::vector<KnownMessage>().swap(known_);
    for (const auto& [uidl, msgno] : listed) {
      if (msgno == 0) continue;  // known_ had it
      ListedMessage m{msgno, octets.Of(msgno), {}};
      Status s = ledger_.Get(account_.name, std::string(uidl), &m.entry);
      if (s.code() == Status::Code::kCorruption) {
        // Not knowing what was archived under this UIDL, keep both: this
        // message goes in by content, and nothing overwrites the old entry.
        log_.error(
            "account %s: %s; archiving that message by content (popvault doctor repairs "
            "the ledger)",
            account_.name, s.ToString());
        to_fetch->push_back({msgno, m.octets, "", nullptr});
        continue;
      }
      if (s.ok()) {
        POPVAULT_RETURN_IF_ERROR(Relisted(&m, now, &updates));
        if (m.entry.state != MessageState::kSeen && InEveryStore(m.entry)) continue;
        if (!TooLarge(m)) to_fetch->push_back(ToFetchOf(std::move(m)));
        continue;
      }
      if (s.code() != Status::Code::kNotFound) return s;
      m.entry.state = MessageState::kSeen;
      m.entry.first_seen = now;
      m.entry.record.account = account_.name;
      m.entry.record.uidl = uidl;
      POPVAULT_RETURN_IF_ERROR(Stage(m.entry, &updates));
      if (!TooLarge(m)) to_fetch->push_back({msgno, m.octets, m.entry.record.uidl, nullptr});
    }
    return ledger_.Write(updates, /*sync=*/false);
  }

  // A kStored message missing from a trusted listing was deleted from the
  // server, by someone else or by a DELE of ours whose QUIT reply we never
  // saw (dele_sent_at): that one is audited first (ConfirmEarlierDeletions).
  Status Unlisted(const KnownMessage& k, int64_t now, std::vector<LedgerEntry>* updates) {
    if (k.state != MessageState::kStored || !report_->listing_trusted) return Status::OK();
    LedgerEntry gone;
    POPVAULT_RETURN_IF_ERROR(ledger_.Get(account_.name, k.uidl, &gone));
    gone.state = MessageState::kDeleted;
    gone.deleted_at = now;
    if (gone.dele_sent_at != 0) {
      confirmed_.push_back(std::move(gone));
      return Status::OK();
    }
    return Stage(std::move(gone), updates);
  }

  // Deletions of an earlier pass that its QUIT committed without us knowing
  // (a lost reply, a kill right after QUIT): audited now, once (an append
  // that a crash cut off from its ledger write is found in the log), then
  // recorded. Until the audit line is durable they stay as they were.
  Status ConfirmEarlierDeletions() {
    if (confirmed_.empty()) return Status::OK();
    std::vector<LedgerEntry> confirmed = std::move(confirmed_);
    confirmed_.clear();
    POPVAULT_RETURN_IF_ERROR(AuditOnce(confirmed));
    for (LedgerEntry& e : confirmed) e.dele_sent_at = 0;
    log_.information("account %s: %z messages a DELE of an earlier pass deleted", account_.name,
                     confirmed.size());
    report_->deleted += confirmed.size();
    return ledger_.Write(confirmed, /*sync=*/true);
  }

  // Appends the "deleted" lines of `gone` (marked entries whose DELE was
  // committed) that the log lacks: a crash may have cut an append off from
  // the ledger write after it. Durable on return.
  Status AuditOnce(const std::vector<LedgerEntry>& gone) {
    if (options_.audit_log == nullptr) return Status::OK();
    std::vector<AuditDeletion> lines;
    std::vector<int64_t> since;
    for (const LedgerEntry& e : gone) {
      lines.push_back(AuditLineOf(e, e.deleted_at));
      // The line was written at QUIT, after the mark; a minute's slack for a
      // clock set back in between.
      since.push_back(e.dele_sent_at - 60);
    }
    std::vector<bool> found;
    POPVAULT_RETURN_IF_ERROR(options_.audit_log->FindDeleted(lines, since, &found));
    std::vector<AuditDeletion> missing;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (!found[i]) missing.push_back(lines[i]);
    }
    return options_.audit_log->Append(missing);
  }

  static ToFetch ToFetchOf(ListedMessage m) {
    std::string uidl = m.entry.record.uidl;
    return {m.msgno, m.octets, std::move(uidl), std::make_unique<LedgerEntry>(std::move(m.entry))};
  }

  // A kDeleted or kPurged UIDL listed again names a new message: RFC 1939
  // lets a server reuse a UIDL once its message is gone, so what was verified
  // and deleted under it says nothing of what is there now. (It may be the
  // same message, after a listing that omitted it or a QUIT that did not
  // delete: then the fetch is a dedup hit.) It starts over as the next
  // generation, whose record does not overwrite the old one's.
  Status Relisted(ListedMessage* m, int64_t now, std::vector<LedgerEntry>* updates) {
    if (m->entry.state != MessageState::kDeleted && m->entry.state != MessageState::kPurged) {
      return Status::OK();
    }
    m->entry = NextGeneration(m->entry, now);
    return Stage(m->entry, updates);
  }

  // A fresh kSeen entry for the message after `old` under the same UIDL.
  LedgerEntry NextGeneration(const LedgerEntry& old, int64_t now) const {
    LedgerEntry next;
    next.state = MessageState::kSeen;
    next.first_seen = now;
    next.record.account = old.record.account;
    next.record.uidl = old.record.uidl;
    next.record.generation = old.record.generation + 1;
    return next;
  }

  // Queues an unsynced ledger write, written in bounded batches: a first
  // pass over 50,000 messages must not hold one write batch of them all.
  Status Stage(LedgerEntry entry, std::vector<LedgerEntry>* updates) {
    updates->push_back(std::move(entry));
    if (updates->size() < 4096) return Status::OK();
    Status s = ledger_.Write(*updates, /*sync=*/false);
    updates->clear();
    return s;
  }

  // RETRs every message (pipelined when the server allows), stores each as
  // it completes, and group-commits. Stops early, committing what it has,
  // on shutdown or error. With `quit` (the pass deletes nothing), QUIT goes
  // out while the last group commits.
  Status FetchAll(const std::vector<ToFetch>& to_fetch, bool quit) {
    std::vector<ListEntry> requests;
    for (const ToFetch& m : to_fetch) requests.push_back({m.msgno, m.octets});
    std::unique_ptr<MessageWriter> writer;
    std::unique_ptr<TestPointSink> sink;
    std::vector<ListedMessage> pending;
    uint64_t pending_bytes = 0;
    // The codecs are fixed per message: a store may start using a new
    // dictionary in the middle of the pass (another account trained it).
    std::vector<Codec> codecs;
    auto begin = [&](size_t) -> ByteSink& {
      codecs = Codecs();
      writer = std::make_unique<MessageWriter>(codecs, options_.spool_dir);
      sink = std::make_unique<TestPointSink>(*writer);
      return *sink;
    };
    auto end = [&](size_t i) -> Status {
      ListedMessage m = Materialize(to_fetch[i]);
      bool store = true;
      POPVAULT_RETURN_IF_ERROR(StoreOne(*writer, codecs, &m, &store));
      if (store) {
        pending_bytes += m.entry.record.size;
        pending.push_back(std::move(m));
      }
      if (pending.size() >= options_.commit_every_messages ||
          pending_bytes >= options_.commit_every_bytes) {
        POPVAULT_RETURN_IF_ERROR(StartCommit(&pending));
        pending_bytes = 0;
        log_.information("account %s: fetched %z of %z", account_.name, i + 1, to_fetch.size());
      }
      return Stopping() ? Status::Aborted("stopping") : Status::OK();
    };
    Status s = session_->RetrEach(requests, begin, end);
    if (session_->max_in_flight() > 1) {
      log_.information("account %s: pipelined RETR, up to %z commands in flight", account_.name,
                       session_->max_in_flight());
    }
    if (Stopping() && s.code() == Status::Code::kAborted) s = Status::OK();
    // What is already in the stores is worth keeping: commit it, so a retry
    // does not fetch it again. An error still ends the pass.
    Status commit = StartCommit(&pending);
    // A round trip less; Run returns the QUIT status.
    if (quit && s.ok() && commit.ok()) (void)Quit();
    Status last = FinishCommit();
    if (commit.ok()) commit = last;
    if (s.code() == Status::Code::kTooLarge) RememberTooLarge(to_fetch);
    if (s.ok()) return commit;
    if (!commit.ok()) log_.error("account %s: %s", account_.name, commit.ToString());
    return s;
  }

  // RETR streamed past max_message_size (LIST understated it): the message
  // after the last one stored is the culprit. Its kSeen entry records that
  // (oversize), so later passes skip it (TooLarge) instead of failing on it
  // for ever. Without UIDL there is no key to keep it under.
  void RememberTooLarge(const std::vector<ToFetch>& to_fetch) {
    if (fetched_ >= to_fetch.size()) return;
    LedgerEntry entry = Materialize(to_fetch[fetched_]).entry;
    if (entry.record.uidl.empty()) return;
    entry.oversize = account_.pop3.max_message_size + 1;
    Status w = ledger_.Write({entry}, /*sync=*/true);
    if (!w.ok()) log_.error("account %s: %s", account_.name, w.ToString());
  }

  // The message with its ledger entry: the one the ledger had, or the kSeen
  // entry Classify wrote for a new one (empty without UIDL: AdoptByContent).
  ListedMessage Materialize(const ToFetch& f) const {
    ListedMessage m{f.msgno, f.octets, f.known ? *f.known : LedgerEntry()};
    if (!f.known && !f.uidl.empty()) {
      m.entry.state = MessageState::kSeen;
      m.entry.first_seen = classified_at_;
      m.entry.record.account = account_.name;
      m.entry.record.uidl = f.uidl;
    }
    return m;
  }

  // The finished RETR of *m through its codec layers into each store that
  // lacks the message and is up. Nothing is durable yet. A failing store is
  // marked down for the rest of the pass; the message waits for it (no DELE)
  // but lands elsewhere. *store is false when nothing needed writing (a
  // message from a server without UIDL that the ledger already has).
  Status StoreOne(MessageWriter& writer, const std::vector<Codec>& codecs, ListedMessage* m,
                  bool* store) {
    ++fetched_;
    POPVAULT_RETURN_IF_ERROR(writer.Finish());
    if (m->entry.record.uidl.empty()) {
      POPVAULT_RETURN_IF_ERROR(AdoptByContent(writer.sha256_hex(), m));
      if (m->entry.state != MessageState::kSeen && InEveryStore(m->entry)) {
        report_->deduplicated++;
        *store = false;
        return Status::OK();
      }
    } else if (m->entry.state == MessageState::kStored) {
      POPVAULT_RETURN_IF_ERROR(CompareWithArchived(writer.sha256_hex(), &m->entry));
    }
    // Still kStored: the message it was, fetched for a store that lacks it
    // or to prove its UIDL: it keeps its archive time.
    const bool known = m->entry.state == MessageState::kStored;
    ArchiveRecord& rec = m->entry.record;
    m->entry.listed_octets = m->octets;
    rec.sha256 = writer.sha256_hex();
    rec.size = writer.size();
    if (!known || rec.archived_at == 0) rec.archived_at = Now();
    rec.message_id = writer.headers().message_id;
    rec.date = writer.headers().date;
    rec.from = writer.headers().from;
    rec.subject = writer.headers().subject;
    if (m->entry.state == MessageState::kSeen) m->entry.stores.clear();
    bool all_reused = true;
    size_t written = 0;
    for (size_t i = 0; i < archives_.size(); ++i) {
      Archive* a = archives_[i];
      if (Has(m->entry, a->name()) || down_.count(a->name())) continue;
      ArchiveRecord per_store = rec;
      bool reused = false;
      Status s =
          a->PutMessage(rec.sha256, writer.compressed(codecs[i]), &per_store.stored_size, &reused);
      all_reused = all_reused && reused;
      if (s.ok()) s = a->PutRecord(per_store);
      if (!s.ok()) {
        MarkDown(*a, s);
        continue;
      }
      if (rec.stored_size == 0) rec.stored_size = per_store.stored_size;
      m->entry.stores.push_back(a->name());
      ++written;
    }
    if (m->entry.stores.empty()) return StoresDown();
    TestPoint("stored");
    m->entry.state = MessageState::kStored;
    if (known && written == 0) {
      report_->deduplicated++;  // only proved what the UIDL names: nothing new
      return Status::OK();
    }
    report_->fetched++;
    report_->fetched_bytes += rec.size;
    if (all_reused) report_->deduplicated++;
    return Status::OK();
  }

  // A kStored message fetched again (a store lacked it, its LIST size
  // changed, or what the UIDL names was unproven: Classify). The same content
  // proves a DELE marked on it was not committed. Other content is a new
  // message under a reused UIDL: the next generation; if our DELE was marked
  // on the old one, that DELE was committed, and is audited now, before the
  // entry moves on and forgets it.
  Status CompareWithArchived(const std::string& sha256, LedgerEntry* entry) {
    if (entry->record.sha256 == sha256) {
      entry->dele_sent_at = 0;
      return Status::OK();
    }
    if (entry->dele_sent_at != 0) {
      LedgerEntry old = *entry;
      old.state = MessageState::kDeleted;
      old.deleted_at = Now();
      POPVAULT_RETURN_IF_ERROR(AuditOnce({old}));
      report_->deleted++;
    }
    log_.warning(
        "account %s: uidl %s: the server now has another message under it; archiving "
        "it as generation %u",
        account_.name, EncodeUidl(entry->record.uidl), entry->record.generation + 1);
    *entry = NextGeneration(*entry, Now());
    return Status::OK();
  }

  // Without UIDL a message is known by its content: the ledger entry under
  // ContentUidl, or a new kSeen one.
  Status AdoptByContent(const std::string& sha256_hex, ListedMessage* m) {
    const std::string uidl = ContentUidl(sha256_hex);
    Status s = ledger_.Get(account_.name, uidl, &m->entry);
    if (s.ok()) return Status::OK();
    if (s.code() != Status::Code::kNotFound) return s;
    m->entry = LedgerEntry();
    m->entry.first_seen = Now();
    m->entry.record.account = account_.name;
    m->entry.record.uidl = uidl;
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

  std::vector<Codec> Codecs() const {
    std::vector<Codec> codecs;
    for (const Archive* a : archives_) codecs.push_back(a->codec());
    return codecs;
  }

  // dictionary = auto stores train once they hold enough mail. A failure
  // only means compression stays as it was.
  void TrainDictionaries() {
    if (report_->fetched == 0) return;
    for (Archive* a : archives_) {
      uint32_t id = 0;
      Status s = a->MaybeTrainDictionary(&id);
      if (!s.ok()) {
        log_.warning("store '%s': training a dictionary failed: %s", a->name(), s.ToString());
      } else if (id != 0) {
        log_.information("store '%s': trained zstd dictionary %u; new messages use it", a->name(),
                         id);
      }
    }
  }

  // Group commit: the stores first, then the ledger entries that point at
  // them, so a durable kStored entry never refers to a lost object. It runs
  // on a second thread while the next group is fetched (a RocksDB store's
  // Sync is a flush, tens of milliseconds); one group at a time, each
  // collected by FinishCommit before the next starts and before FetchAll
  // returns, so before any DELE. Takes *pending (cleared) unless the previous
  // group failed.
  Status StartCommit(std::vector<ListedMessage>* pending) {
    POPVAULT_RETURN_IF_ERROR(FinishCommit());
    if (pending->empty()) return Status::OK();
    commit_stores_.clear();
    for (Archive* a : archives_) {
      if (!down_.count(a->name())) commit_stores_.push_back(a);
    }
    commit_down_.clear();
    for (const auto& [name, status] : down_) commit_down_.insert(name);
    commit_batch_ = std::move(*pending);
    pending->clear();
    commit_ = Async([this] { return Commit(); });
    return Status::OK();
  }

  // The commit thread's part. It reads only the commit_* members, which the
  // fetching thread leaves alone until FinishCommit, and calls the stores and
  // the ledger, which are thread-safe. A store whose Sync fails, or that was
  // down, is dropped from the entries (its copies may be lost); entries left
  // with no store are not committed.
  CommitOutcome Commit() {
    CommitOutcome outcome;
    std::set<std::string> failed = commit_down_;
    for (Archive* a : commit_stores_) {
      Status s = a->Sync();
      if (!s.ok()) failed.insert(a->name());
      outcome.synced.emplace_back(a, std::move(s));
    }
    std::vector<LedgerEntry> entries;
    for (ListedMessage& m : commit_batch_) {
      std::erase_if(m.entry.stores, [&](const std::string& name) { return failed.count(name); });
      if (!m.entry.stores.empty()) entries.push_back(std::move(m.entry));
    }
    commit_batch_.clear();
    outcome.ledger = ledger_.Write(entries, /*sync=*/true);
    if (outcome.ledger.ok()) TestPoint("committed");
    return outcome;
  }

  // Waits for the group in flight, if any; marks stores whose Sync failed.
  Status FinishCommit() {
    if (!commit_.valid()) return Status::OK();
    CommitOutcome outcome = commit_.get();
    for (const auto& [archive, status] : outcome.synced) {
      if (!status.ok() && !down_.count(archive->name())) MarkDown(*archive, status);
    }
    return outcome.ledger;
  }

  // Plans from the ledger, as the dry run does (every kStored entry is synced
  // by now). Messages the plan releases are read back from every store and
  // only then marked with DELE.
  Status DeleteReleased(const std::vector<UidlEntry>& listing,
                        const std::vector<ListEntry>& sizes) {
    int64_t now = Now();
    std::vector<PlannedMessage> plan;
    POPVAULT_RETURN_IF_ERROR(PlanRetention(account_, ledger_, listing, sizes, now, &plan));
    std::vector<uint32_t> msgnos;
    std::vector<LedgerEntry> marked;
    for (const PlannedMessage& m : plan) {
      if (m.decision.verdict != RetentionDecision::Verdict::kDeleteNow) continue;
      // Counted now, uncounted once QUIT commits the DELE (CommitDeleted).
      report_->pending_deletes++;
      if (Stopping() || !InEveryStore(m.entry) || !VerifyEverywhere(m.entry)) continue;
      msgnos.push_back(m.msgno);
      marked.push_back(m.entry);
      marked.back().dele_sent_at = now;
    }
    // Durable before the first DELE: whatever becomes of the QUIT, the next
    // pass knows these may be gone by our hand, and audits them.
    POPVAULT_RETURN_IF_ERROR(ledger_.Write(marked, /*sync=*/true));
    for (LedgerEntry& e : marked) {
      e.state = MessageState::kDeleted;
      e.deleted_at = now;
      e.dele_sent_at = 0;
    }
    deleted_ = std::move(marked);
    POPVAULT_RETURN_IF_ERROR(session_->DeleEach(msgnos));
    for (size_t i = 0; i < msgnos.size(); ++i) TestPoint("deleted");
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

  // QUIT, once per pass; later calls return the first one's status.
  Status Quit() {
    if (!quit_) quit_ = session_->Quit();
    return *quit_;
  }

  // QUIT committed the DELEs: audit them, then record them. The deletions
  // happened whatever the audit log says, so its failure must not cost the
  // ledger update; it is logged and returned after it.
  Status CommitDeleted() {
    report_->deleted += deleted_.size();
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
    std::vector<AuditDeletion> lines;
    const int64_t now = Now();
    for (const LedgerEntry& e : deleted_) lines.push_back(AuditLineOf(e, now));
    return options_.audit_log->Append(lines);
  }

  // Every store of the account verified the copy before its DELE was sent.
  AuditDeletion AuditLineOf(const LedgerEntry& e, int64_t when) const {
    std::vector<std::string> stores;
    for (const Archive* a : archives_) stores.push_back(a->name());
    return {account_.name, e.record.uidl, e.record.sha256, e.record.size, stores, when};
  }

  const AccountConfig& account_;
  Ledger& ledger_;
  const std::vector<Archive*>& archives_;
  const SyncOptions& options_;
  SyncReport* report_;
  Poco::Logger& log_;
  std::unique_ptr<Pop3Session> session_;  // dropped without QUIT on every error path
  std::optional<Status> quit_;            // Quit()'s outcome, once sent
  std::vector<LedgerEntry> deleted_;      // DELE sent; kDeleted once QUIT succeeds
  std::vector<LedgerEntry> confirmed_;    // an earlier pass's DELE, gone now (Unlisted)
  Status confirm_error_;                  // ConfirmEarlierDeletions' failure, returned last
  std::map<std::string, Status> down_;    // stores that failed in this pass
  size_t fetched_ = 0;                    // RETRs completed (StoreOne calls)
  // The group commit in flight (StartCommit), and what its thread reads.
  std::future<CommitOutcome> commit_;
  std::vector<Archive*> commit_stores_;
  std::set<std::string> commit_down_;
  std::vector<ListedMessage> commit_batch_;
  int64_t classified_at_ = 0;        // first_seen of the entries Classify added
  std::vector<KnownMessage> known_;  // LoadKnown's, until Classify
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
