#include "doctor/doctor.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace popvault {

void DoctorFinding::Add(std::string what) {
  ++count;
  if (examples.size() < kExamples) examples.push_back(std::move(what));
}

namespace {

constexpr size_t kWriteBatch = 1000;

// "uidl X generation N", for findings.
std::string Name(const std::string& uidl, uint32_t generation) {
  return "uidl " + EncodeUidl(uidl) + " generation " + std::to_string(generation);
}

class Doctor {
 public:
  Doctor(const DoctorOptions& options, Ledger& ledger, DoctorReport* report)
      : options_(options), ledger_(ledger), report_(report) {}

  Status Run() {
    report_->account = options_.account;
    POPVAULT_RETURN_IF_ERROR(IndexRecords());
    POPVAULT_RETURN_IF_ERROR(ScanLedger());
    for (auto& [uidl, item] : items_) POPVAULT_RETURN_IF_ERROR(Examine(uidl, item));
    if (!options_.dry_run) POPVAULT_RETURN_IF_ERROR(Write());
    return Verdict();
  }

 private:
  // A store's record of a UIDL.
  struct StoredRecord {
    size_t store;  // index into options_.archives
    ArchiveRecord record;
  };
  // What the ledger and the stores hold of one UIDL.
  struct Item {
    bool in_ledger = false;
    bool decodes = false;
    std::string why;  // what is wrong with the value, unless it decodes
    std::vector<StoredRecord> records;
  };

  Status IndexRecords() {
    for (size_t i = 0; i < options_.archives.size(); ++i) {
      Status s = options_.archives[i]->ListRecords(options_.account, [&](const ArchiveRecord& r) {
        items_[r.uidl].records.push_back({i, r});
        ++report_->records;
        return true;
      });
      if (!s.ok()) {
        // Judging entries against a partial listing would drop good copies.
        return Status(s.code(), "store " + options_.archives[i]->name() + ": " + s.message() +
                                    " (nothing repaired: every record must be readable)");
      }
    }
    return Status::OK();
  }

  Status ScanLedger() {
    return ledger_.ForEachSummary(
        options_.account,
        [&](const Ledger::Summary& e) {
          Item& item = items_[std::string(e.uidl)];
          item.in_ledger = item.decodes = true;
          ++report_->entries;
          return true;
        },
        [&](std::string_view uidl, const Status& bad) {
          ++report_->entries;
          Item& item = items_[std::string(uidl)];
          item.in_ledger = true;
          item.why = bad.message();
        });
  }

  Status Examine(const std::string& uidl, Item& item) {
    LedgerEntry entry;
    if (item.decodes) {
      // The summary decodes only the head; the record may still be damaged.
      const Status s = ledger_.Get(options_.account, uidl, &entry);
      if (s.code() == Status::Code::kCorruption) {
        item.decodes = false;
        item.why = s.message();
      } else {
        POPVAULT_RETURN_IF_ERROR(s);
      }
    }
    if (!item.in_ledger) {
      report_->unknown_records.Add(Name(uidl, Newest(item)) + ": in the stores, not the ledger");
      return Rebuild(uidl, item);
    }
    if (!item.decodes) {
      report_->undecodable.Add(item.why);
      return Rebuild(uidl, item);
    }
    if (!item.records.empty() && Newest(item) > entry.record.generation) {
      report_->newer_records.Add(Name(uidl, Newest(item)) + ": the ledger has generation " +
                                 std::to_string(entry.record.generation));
      return Rebuild(uidl, item);
    }
    return CheckCopies(item, &entry);
  }

  static uint32_t Newest(const Item& item) {
    uint32_t newest = 0;
    for (const StoredRecord& r : item.records) newest = std::max(newest, r.record.generation);
    return newest;
  }

  // The entry from the UIDL's record of the newest generation (see the header).
  Status Rebuild(const std::string& uidl, const Item& item) {
    LedgerEntry e;
    e.record.account = options_.account;
    e.record.uidl = uidl;
    e.state = MessageState::kSeen;
    e.first_seen = options_.now;
    if (item.records.empty()) return Stage(std::move(e));
    const uint32_t newest = Newest(item);
    const StoredRecord* chosen = nullptr;
    for (const StoredRecord& r : item.records) {
      if (r.record.generation != newest) continue;
      bool intact = false;
      POPVAULT_RETURN_IF_ERROR(Verified(r.store, r.record.sha256, &intact));
      if (chosen == nullptr || (intact && e.stores.empty())) {
        chosen = &r;
        e.stores.clear();
      }
      if (intact && r.record.sha256 == chosen->record.sha256) {
        e.stores.push_back(options_.archives[r.store]->name());
      }
    }
    e.record.generation = newest;
    if (e.stores.empty()) {
      report_->no_copy.Add(Name(uidl, newest) + ": no store holds its message intact; the ledger " +
                           "now says kSeen (fetched again if the server still has it, else lost)");
      return Stage(std::move(e));
    }
    e.record = chosen->record;
    e.state = MessageState::kStored;
    e.first_seen = e.record.archived_at;
    return Stage(std::move(e));
  }

  // Checks each store a kStored/kDeleted entry lists, and drops those that
  // lack an intact copy.
  Status CheckCopies(const Item& item, LedgerEntry* e) {
    std::vector<std::string> kept, problems;
    for (const std::string& store : e->stores) {
      const size_t i = StoreIndex(store);
      if (i == options_.archives.size()) {
        report_->unknown_stores.Add(Name(e->record.uidl, e->record.generation) + ": store " +
                                    store + " is not one of the account's stores (not checked)");
        kept.push_back(store);
        continue;
      }
      if (e->state != MessageState::kStored && e->state != MessageState::kDeleted) {
        kept.push_back(store);
        continue;
      }
      std::string why;
      POPVAULT_RETURN_IF_ERROR(CopyProblem(item, *e, i, &why));
      if (why.empty()) {
        kept.push_back(store);
      } else {
        problems.push_back(why);
      }
    }
    if (problems.empty()) return Status::OK();
    std::string what =
        Name(e->record.uidl, e->record.generation) + " (" + MessageStateName(e->state) + "): ";
    for (size_t i = 0; i < problems.size(); ++i) what += (i ? "; " : "") + problems[i];
    report_->missing_copies.Add(what);
    // A copy in a store the entry does not list counts as well.
    for (size_t i = 0; i < options_.archives.size(); ++i) {
      const std::string& name = options_.archives[i]->name();
      if (std::count(e->stores.begin(), e->stores.end(), name)) continue;
      std::string why;
      POPVAULT_RETURN_IF_ERROR(CopyProblem(item, *e, i, &why));
      if (why.empty()) kept.push_back(name);
    }
    if (kept.empty() && e->state == MessageState::kDeleted &&
        e->record.archived_at < options_.purge_before) {
      report_->unfinished_purges.Add(what + ": past archive_retention_days");
      return Status::OK();  // popvault purge finishes it (and audits it)
    }
    if (kept.empty() && (e->state == MessageState::kDeleted || e->dele_sent_at != 0)) {
      report_->data_loss.Add(
          what + ": the server " +
          (e->state == MessageState::kDeleted ? "no longer has it" : "was told to delete it") +
          " and no store holds an intact copy");
      return Status::OK();  // left as it is: every run reports it again
    }
    e->stores = std::move(kept);
    if (e->stores.empty()) {
      // Still on the server: the next sync fetches it again.
      e->state = MessageState::kSeen;
      const ArchiveRecord old = e->record;
      e->record = ArchiveRecord();
      e->record.account = old.account;
      e->record.uidl = old.uidl;
      e->record.generation = old.generation;
    }
    return Stage(std::move(*e));
  }

  size_t StoreIndex(const std::string& name) const {
    size_t i = 0;
    while (i < options_.archives.size() && options_.archives[i]->name() != name) ++i;
    return i;
  }

  // Empty *why if store `i` holds e's record (same generation and sha256)
  // and its message verifies; else what is wrong, naming the store.
  Status CopyProblem(const Item& item, const LedgerEntry& e, size_t i, std::string* why) {
    const StoredRecord* found = nullptr;
    for (const StoredRecord& r : item.records) {
      if (r.store == i && r.record.generation == e.record.generation) found = &r;
    }
    const std::string store = "store " + options_.archives[i]->name() + ": ";
    if (found == nullptr) {
      *why = store + "record missing";
      return Status::OK();
    }
    if (found->record.sha256 != e.record.sha256) {
      *why = store + "its record names another message (" + found->record.sha256 + ")";
      return Status::OK();
    }
    bool intact = false;
    POPVAULT_RETURN_IF_ERROR(Verified(i, e.record.sha256, &intact, why));
    return Status::OK();
  }

  // Whether store `i` holds the message `sha256` intact (cached: messages
  // are shared by content). A store that cannot be read is an error; a
  // missing or damaged object is not (*why says which).
  Status Verified(size_t i, const std::string& sha256, bool* intact, std::string* why = nullptr) {
    auto key = std::make_pair(i, sha256);
    auto it = verified_.find(key);
    if (it == verified_.end()) {
      Status s = options_.archives[i]->VerifyMessage(sha256);
      if (!s.ok() && s.code() != Status::Code::kNotFound && s.code() != Status::Code::kCorruption) {
        return s;
      }
      it = verified_.emplace(key, s.ok() ? "" : s.ToString()).first;  // names store and message
    }
    *intact = it->second.empty();
    if (why != nullptr) *why = it->second;
    return Status::OK();
  }

  Status Stage(LedgerEntry e) {
    report_->writes.push_back(std::move(e));
    return Status::OK();
  }

  Status Write() {
    const std::vector<LedgerEntry>& all = report_->writes;
    for (size_t at = 0; at < all.size(); at += kWriteBatch) {
      const size_t end = std::min(all.size(), at + kWriteBatch);
      POPVAULT_RETURN_IF_ERROR(
          ledger_.Write(std::vector<LedgerEntry>(all.begin() + at, all.begin() + end), false));
    }
    return all.empty() ? Status::OK() : ledger_.Sync();
  }

  Status Verdict() const {
    const DoctorReport& r = *report_;
    if (r.data_loss.count == 0 && r.no_copy.count == 0 && r.unrepaired.count == 0) {
      return Status::OK();
    }
    return Status::Corruption(
        "account " + options_.account + ": " + std::to_string(r.data_loss.count) +
        " message(s) lost (DATA LOSS: gone from the server, no intact copy in any store), " +
        std::to_string(r.no_copy.count) + " record(s) without an intact message, " +
        std::to_string(r.unrepaired.count) + " entr(ies) left unrepaired");
  }

  const DoctorOptions& options_;
  Ledger& ledger_;
  DoctorReport* report_;
  std::map<std::string, Item> items_;  // by UIDL: the order the ledger has
  std::map<std::pair<size_t, std::string>, std::string> verified_;  // -> why not intact
};

}  // namespace

Status DoctorAccount(const DoctorOptions& options, Ledger& ledger, DoctorReport* report) {
  return Doctor(options, ledger, report).Run();
}

}  // namespace popvault
