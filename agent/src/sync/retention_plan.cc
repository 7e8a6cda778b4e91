#include "sync/retention_plan.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <string_view>

#include "sync/listing.h"
#include "sync/sync_engine.h"

namespace popvault {
namespace {

Status ReadEntry(const AccountConfig& account, Ledger& ledger, PlannedMessage* m) {
  Status s = ledger.Get(account.name, m->uidl, &m->entry);
  if (s.code() == Status::Code::kNotFound) return Status::OK();
  if (s.code() == Status::Code::kCorruption) {
    // What it said is unknown: not archived, as far as deleting goes (the
    // engine archives the message by content; `popvault doctor` repairs it).
    m->entry = LedgerEntry();
    return Status::OK();
  }
  POPVAULT_RETURN_IF_ERROR(s);
  if (m->entry.state == MessageState::kDeleted || m->entry.state == MessageState::kPurged) {
    // Listed again after it was deleted: a new message under a reused UIDL,
    // not archived yet (the engine fetches it as the next generation).
    m->entry = LedgerEntry();
    return Status::OK();
  }
  m->in_ledger = true;
  if (m->entry.state != MessageState::kStored) return Status::OK();
  for (const std::string& store : account.stores) {
    if (std::find(m->entry.stores.begin(), m->entry.stores.end(), store) == m->entry.stores.end()) {
      m->missing_stores.push_back(store);
    }
  }
  return Status::OK();
}

// Archived, as far as deleting goes: in every store, listed with the size it
// was archived with (another size is another message under the same UIDL),
// and not waiting for the content to prove the UIDL still names it (no size
// recorded, or a DELE of ours whose outcome is unknown: the engine fetches
// those first).
bool Archived(const PlannedMessage& m) {
  if (m.entry.state != MessageState::kStored || !m.missing_stores.empty()) return false;
  return m.entry.listed_octets && m.octets == *m.entry.listed_octets && m.entry.dele_sent_at == 0;
}

}  // namespace

Status PlanRetention(const AccountConfig& account, Ledger& ledger,
                     const std::vector<UidlEntry>& listing, const std::vector<ListEntry>& sizes,
                     int64_t now, std::vector<PlannedMessage>* plan) {
  std::map<uint32_t, uint64_t> octets;
  for (const ListEntry& e : sizes) octets[e.msgno] = e.octets;
  if (!sizes.empty() && (octets.size() != sizes.size() || octets.size() != listing.size())) {
    return Status::Protocol("LIST and UIDL disagree on the messages in the mailbox");
  }
  plan->clear();
  std::vector<RetentionCandidate> candidates;
  for (const UidlEntry& u : listing) {
    PlannedMessage m;
    m.msgno = u.msgno;
    m.uidl = u.uidl;
    if (!sizes.empty()) {
      auto it = octets.find(u.msgno);
      if (it == octets.end()) {
        return Status::Protocol("LIST has no size for message " + std::to_string(u.msgno));
      }
      m.octets = it->second;
    }
    POPVAULT_RETURN_IF_ERROR(ReadEntry(account, ledger, &m));
    candidates.push_back({m.msgno, m.octets, Archived(m), m.entry});
    plan->push_back(std::move(m));
  }
  std::vector<RetentionDecision> decisions = account.retention.Decide(candidates, now);
  for (size_t i = 0; i < plan->size(); ++i) (*plan)[i].decision = std::move(decisions[i]);
  return Status::OK();
}

std::string DescribeDecision(const PlannedMessage& m) {
  using Verdict = RetentionDecision::Verdict;
  switch (m.decision.verdict) {
    case Verdict::kDeleteNow:
      return "would delete now (" + m.decision.reason + ")";
    case Verdict::kDeleteLater:
      return "would delete at " + FormatTimestamp(m.decision.delete_at);
    case Verdict::kKeep:
      return "kept (policy)";
    case Verdict::kNotArchived:
      break;
  }
  if (m.missing_stores.empty()) return "not archived yet";
  std::string stores;
  for (const std::string& s : m.missing_stores) stores += (stores.empty() ? "" : ", ") + s;
  return "waits for store " + stores;
}

std::string FormatPlannedMessage(const PlannedMessage& m) {
  bool has_record = m.entry.state == MessageState::kStored;
  std::string id = has_record ? m.entry.record.sha256.substr(0, 16) : "-";
  std::string archived = has_record ? FormatTimestamp(m.entry.record.archived_at) : "-";
  return EncodeUidl(m.uidl) + "  " + id + "  " + std::to_string(m.octets) + "  " + archived + "  " +
         DescribeDecision(m);
}

Status PreviewRetention(const AccountConfig& account, Ledger& ledger, const SyncOptions& options,
                        RetentionPreview* preview) {
  *preview = RetentionPreview();
  preview->now = options.clock ? options.clock() : static_cast<int64_t>(std::time(nullptr));
  std::unique_ptr<Pop3Session> session;
  POPVAULT_RETURN_IF_ERROR(options.connect ? options.connect(account.pop3, &session)
                                           : Pop3Session::Open(account.pop3, &session));
  std::vector<UidlEntry> uidls;
  std::vector<ListEntry> sizes;
  POPVAULT_RETURN_IF_ERROR(session->Listing(&sizes, &uidls));
  // Nothing was marked, so QUIT changes nothing on the server.
  POPVAULT_RETURN_IF_ERROR(session->Quit());
  const JudgedListing listing = JudgeListing(sizes, &uidls);
  preview->listing_trusted = listing.trusted;
  if (!preview->listing_trusted) return Status::OK();
  return PlanRetention(account, ledger, listing.by_uidl, sizes, preview->now, &preview->plan);
}

}  // namespace popvault
