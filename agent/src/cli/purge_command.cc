// popvault purge: archive-side retention (retention/purge.h). Removes from the
// stores archived mail that the servers no longer have and that is older than
// the account's archive_retention_days; accounts under legal_hold refuse.
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "retention/purge.h"

namespace popvault {
namespace {

void PrintReport(const AccountConfig& account, const PurgeReport& report, bool dry_run) {
  for (const LedgerEntry& e : report.purged) {
    std::cout << "  " << (dry_run ? "would purge " : "purged ") << e.record.account << " "
              << EncodeUidl(e.record.uidl) << " id " << e.record.sha256.substr(0, 16)
              << " archived " << FormatTimestamp(e.record.archived_at) << "\n";
  }
  std::cout << account.name << ": " << report.purged.size() << " message(s) "
            << (dry_run ? "would be purged, " : "purged, ") << report.objects_removed
            << " message object(s) " << (dry_run ? "would be removed" : "removed") << "\n";
}

Status PurgeOne(Context& ctx, const AccountConfig& account, bool dry_run, AuditLog* audit_log) {
  if (!account.legal_hold && account.archive_retention_days == 0) {
    std::cout << account.name << ": archive_retention_days = 0, nothing is ever purged\n";
    return Status::OK();
  }
  Ledger* ledger = nullptr;
  POPVAULT_RETURN_IF_ERROR(ctx.GetLedger(&ledger));
  std::vector<Archive*> archives;
  for (const std::string& name : account.stores) {
    Archive* archive = nullptr;
    POPVAULT_RETURN_IF_ERROR(ctx.GetArchive(name, &archive));
    archives.push_back(archive);
  }
  const PurgeSettings settings{account.name, account.archive_retention_days, account.legal_hold};
  PurgeReport report;
  const Status s =
      PurgeAccount(settings, *ledger, archives, std::time(nullptr), dry_run, audit_log, &report);
  if (s.ok() || !report.purged.empty()) PrintReport(account, report, dry_run);
  return s;
}

}  // namespace

int Purge(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  if (!SelectCommandAccounts(ctx, args, &accounts)) return 2;
  // Opened before anything is purged, so every purge can be audited.
  std::unique_ptr<AuditLog> audit_log;
  Status s;
  if (!args.dry_run) s = AuditLog::Open(ctx.config().audit_log, &audit_log);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  int failures = 0;
  for (const AccountConfig* account : accounts) {
    s = PurgeOne(ctx, *account, args.dry_run, audit_log.get());
    if (!s.ok()) {
      std::cerr << "popvault: " << s.ToString() << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace popvault
