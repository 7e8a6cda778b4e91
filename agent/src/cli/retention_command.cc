// popvault retention --dry-run: what the next sync would delete from each
// server, and when. Deletions themselves only happen in sync (and the
// daemon), so without --dry-run this command refuses: one code path deletes.
#include <iostream>

#include "cli/commands.h"
#include "sync/retention_plan.h"
#include "sync/sync_engine.h"

namespace popvault {
namespace {

Status PreviewAccount(Ledger& ledger, const AccountConfig& account, size_t* would_delete) {
  SyncOptions options;
  RetentionPreview preview;
  POPVAULT_RETURN_IF_ERROR(PreviewRetention(account, ledger, options, &preview)
                               .WithContext("account '" + account.name + "'"));
  std::cout << "account " << account.name << ": retention " << account.retention.ToString() << ", "
            << preview.plan.size() << " message(s) on the server, as of "
            << FormatTimestamp(preview.now) << "\n";
  if (!preview.listing_trusted) {
    std::cout << "  the server's UIDL listing has duplicates or gaps: nothing would be deleted\n";
    return Status::OK();
  }
  for (const PlannedMessage& m : preview.plan) {
    std::cout << "  " << FormatPlannedMessage(m) << "\n";
    if (m.decision.verdict == RetentionDecision::Verdict::kDeleteNow) ++*would_delete;
  }
  return Status::OK();
}

}  // namespace

int Retention(Context& ctx, const Args& args) {
  if (!args.dry_run) {
    std::cerr << "popvault: retention only previews (--dry-run); deletions happen in sync\n";
    return 2;
  }
  std::vector<const AccountConfig*> accounts;
  if (!SelectCommandAccounts(ctx, args, &accounts)) return 2;
  Ledger* ledger = nullptr;
  Status s = ctx.GetLedger(&ledger);
  int failures = s.ok() ? 0 : 1;
  size_t would_delete = 0;
  for (size_t i = 0; s.ok() && i < accounts.size(); ++i) {
    Status account_status = PreviewAccount(*ledger, *accounts[i], &would_delete);
    if (!account_status.ok()) {
      std::cerr << "popvault: " << account_status.ToString() << "\n";
      ++failures;
    }
  }
  if (!s.ok()) std::cerr << "popvault: " << s.ToString() << "\n";
  std::cout << would_delete << " message(s) would be deleted now\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace popvault
