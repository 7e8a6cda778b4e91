#include "retention/purge.h"

#include <unordered_map>

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

// Removes records and objects from every store and syncs them. Removing what
// is already gone (a run that crashed before marking the ledger) is OK.
Status RemoveFromStores(const std::vector<Archive*>& archives,
                        const std::vector<LedgerEntry>& expired,
                        const std::vector<std::string>& objects) {
  for (Archive* archive : archives) {
    for (const LedgerEntry& e : expired) {
      POPVAULT_RETURN_IF_ERROR(archive->RemoveRecord(e.record.account, e.record.uidl));
    }
    for (const std::string& sha256 : objects) {
      POPVAULT_RETURN_IF_ERROR(archive->RemoveMessage(sha256));
    }
    POPVAULT_RETURN_IF_ERROR(archive->Sync().WithContext("store " + archive->name()));
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
  const std::vector<std::string> objects = UnreferencedAfter(expired, std::move(refs));
  if (!dry_run) {
    POPVAULT_RETURN_IF_ERROR(RemoveFromStores(archives, expired, objects).WithContext(context));
    POPVAULT_RETURN_IF_ERROR(MarkPurged(ledger, expired).WithContext(context));
  }
  report->purged = expired;
  report->objects_removed = objects.size();
  return dry_run ? Status::OK() : Audit(audit_log, archives, expired, now).WithContext(context);
}

}  // namespace popvault
