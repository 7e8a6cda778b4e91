#include "retention/purge.h"

#include <unordered_map>
#include <unordered_set>

namespace popvault {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

using RefCounts = std::unordered_map<std::string, size_t>;

// How many entries of the whole ledger still stand for each sha256: every
// account's, since a message object is shared by everything with its content.
Status CountReferences(Ledger& ledger, RefCounts* refs) {
  return ledger.ForEach("", [&](const LedgerEntry& e) {
    const bool archived = e.state == MessageState::kStored || e.state == MessageState::kDeleted;
    if (archived && !e.record.sha256.empty()) ++(*refs)[e.record.sha256];
    return true;
  });
}

// The account's kDeleted entries archived before `cutoff`.
Status SelectExpired(const std::string& account, Ledger& ledger, int64_t cutoff,
                     std::vector<LedgerEntry>* out) {
  return ledger.ForEach(account, [&](const LedgerEntry& e) {
    if (e.state == MessageState::kDeleted && e.record.archived_at < cutoff) out->push_back(e);
    return true;
  });
}

// The sha256s whose last references are all in `expired`: their objects go.
std::vector<std::string> UnreferencedAfter(const std::vector<LedgerEntry>& expired,
                                           RefCounts refs) {
  std::vector<std::string> out;
  for (const LedgerEntry& e : expired) {
    if (--refs[e.record.sha256] == 0) out.push_back(e.record.sha256);
  }
  return out;
}

// What one store's own records say. The ledger alone cannot: after it was
// lost or restored from an older copy, or beside a second agent writing to
// the same store, records it does not count still name their content.
struct StoreScan {
  RefCounts refs;                    // records naming each sha256, except those purged now
  size_t unknown = 0;                // records whose (account, uidl) the ledger lacks
  std::string example;               // the first of those keys
  std::vector<std::string> objects;  // what this store may lose
};

// Reads every record of the store (every account, every generation). A record
// is known when the ledger has an entry for its (account, uidl), in any state;
// one of another generation than the entry's is superseded: it is never
// purged here, but its content is still referenced.
Status ScanStore(Archive& archive, Ledger& ledger, const std::unordered_set<std::string>& purged,
                 StoreScan* scan) {
  Status ledger_error;
  auto count = [&](const Archive::StoredRecord& r) {
    if (purged.count(r.key) == 0) ++scan->refs[r.record.sha256];
    LedgerEntry entry;
    const Status s = ledger.Get(r.record.account, r.record.uidl, &entry);
    if (s.code() == Status::Code::kNotFound) {
      if (scan->unknown++ == 0) scan->example = r.key;
    } else if (!s.ok()) {
      ledger_error = s;
      return false;
    }
    return true;
  };
  POPVAULT_RETURN_IF_ERROR(
      archive.ListStoredRecords("", count).WithContext("store " + archive.name()));
  return ledger_error;
}

// The refusal when a store holds records the ledger does not know: what they
// still need cannot be told, so nothing is purged anywhere.
Status UnknownRecords(const Archive& archive, const StoreScan& scan) {
  return Status::Security(
      "store " + archive.name() + " holds " + std::to_string(scan.unknown) +
      " record(s) the ledger does not know (e.g. " + scan.example +
      "), so content they name may still be needed; nothing purged. Hint: the ledger was lost "
      "or restored from an older copy, or another agent writes to this store; purge only from "
      "the agent whose ledger knows every record of the store (give each agent its own stores)");
}

// Per store: the sha256s no ledger entry (`unreferenced`) and no record of
// that store still names, once `expired` is gone. Refuses (above) if a store
// holds unknown records. Decided for every store before any is changed.
Status PlanStores(const std::vector<Archive*>& archives, Ledger& ledger,
                  const std::vector<LedgerEntry>& expired,
                  const std::vector<std::string>& unreferenced, std::vector<StoreScan>* scans) {
  std::unordered_set<std::string> purged;
  for (const LedgerEntry& e : expired) {
    purged.insert(Archive::RecordKey(e.record.account, e.record.uidl, e.record.generation));
  }
  for (Archive* archive : archives) {
    StoreScan& scan = scans->emplace_back();
    POPVAULT_RETURN_IF_ERROR(ScanStore(*archive, ledger, purged, &scan));
    if (scan.unknown > 0) return UnknownRecords(*archive, scan);
    for (const std::string& sha256 : unreferenced) {
      if (scan.refs.count(sha256) == 0) scan.objects.push_back(sha256);
    }
  }
  return Status::OK();
}

// Distinct contents removed from at least one store.
size_t CountObjects(const std::vector<StoreScan>& scans) {
  std::unordered_set<std::string> all;
  for (const StoreScan& scan : scans) all.insert(scan.objects.begin(), scan.objects.end());
  return all.size();
}

// Removes records, syncs, removes objects, syncs, store by store. The order
// keeps every store self-describing through a crash: a record never outlives
// the object it names (a store read without the ledger would show it as lost
// mail), and the ledger says kPurged only after both (PurgeAccount), since a
// kPurged entry is never selected again and would leave its leftovers for
// good. Removing what is already gone (a run that crashed before marking the
// ledger) is OK.
Status RemoveFromStores(const std::vector<Archive*>& archives,
                        const std::vector<LedgerEntry>& expired,
                        const std::vector<StoreScan>& scans) {
  for (size_t i = 0; i < archives.size(); ++i) {
    Archive* archive = archives[i];
    const std::string context = "store " + archive->name();
    for (const LedgerEntry& e : expired) {
      POPVAULT_RETURN_IF_ERROR(
          archive->RemoveRecord(e.record.account, e.record.uidl, e.record.generation));
    }
    POPVAULT_RETURN_IF_ERROR(archive->Sync().WithContext(context));
    for (const std::string& sha256 : scans[i].objects) {
      POPVAULT_RETURN_IF_ERROR(archive->RemoveMessage(sha256));
    }
    POPVAULT_RETURN_IF_ERROR(archive->Sync().WithContext(context));
  }
  return Status::OK();
}

Status MarkPurged(Ledger& ledger, const std::vector<LedgerEntry>& expired) {
  std::vector<LedgerEntry> updates = expired;
  for (LedgerEntry& e : updates) {
    e.state = MessageState::kPurged;
    e.stores.clear();
  }
  return ledger.Write(updates, /*sync=*/true);
}

Status Audit(AuditLog* audit_log, const std::vector<Archive*>& archives,
             const std::vector<LedgerEntry>& purged, int64_t now) {
  if (audit_log == nullptr) return Status::OK();
  std::vector<std::string> stores;
  for (const Archive* archive : archives) stores.push_back(archive->name());
  std::vector<AuditDeletion> lines;
  for (const LedgerEntry& e : purged) {
    lines.push_back({e.record.account, e.record.uidl, e.record.sha256, e.record.size, stores, now,
                     AuditEvent::kPurged});
  }
  return audit_log->Append(lines);
}

}  // namespace

Status PurgeAccount(const PurgeSettings& settings, Ledger& ledger,
                    const std::vector<Archive*>& archives, int64_t now, bool dry_run,
                    AuditLog* audit_log, PurgeReport* report) {
  const std::string context = "account '" + settings.account + "'";
  if (settings.legal_hold) {
    return Status::Security(context + ": under legal hold (legal_hold = true), nothing purged");
  }
  if (settings.retention_days <= 0) return Status::OK();
  const int64_t cutoff = now - static_cast<int64_t>(settings.retention_days) * kSecondsPerDay;
  std::vector<LedgerEntry> expired;
  RefCounts refs;
  POPVAULT_RETURN_IF_ERROR(
      SelectExpired(settings.account, ledger, cutoff, &expired).WithContext(context));
  if (expired.empty()) return Status::OK();
  POPVAULT_RETURN_IF_ERROR(CountReferences(ledger, &refs).WithContext(context));
  const std::vector<std::string> unreferenced = UnreferencedAfter(expired, std::move(refs));
  std::vector<StoreScan> scans;
  POPVAULT_RETURN_IF_ERROR(
      PlanStores(archives, ledger, expired, unreferenced, &scans).WithContext(context));
  if (!dry_run) {
    POPVAULT_RETURN_IF_ERROR(RemoveFromStores(archives, expired, scans).WithContext(context));
    POPVAULT_RETURN_IF_ERROR(MarkPurged(ledger, expired).WithContext(context));
  }
  report->purged = expired;
  report->objects_removed = CountObjects(scans);
  return dry_run ? Status::OK() : Audit(audit_log, archives, expired, now).WithContext(context);
}

}  // namespace popvault
