#include "sync/listing.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <unordered_map>

#include "archive/record.h"

namespace popvault {
namespace {

// The warning names every repeated UIDL up to this many (an admin compares
// them with the mailbox), and counts the rest.
constexpr size_t kMaxNamedUidls = 1000;

bool ByMsgno(const UidlEntry& x, const UidlEntry& y) { return x.msgno < y.msgno; }

// Message numbers 1..n, each once.
bool Contiguous(const std::vector<uint32_t>& msgnos) {
  for (size_t i = 0; i < msgnos.size(); ++i) {
    if (msgnos[i] != i + 1) return false;
  }
  return true;
}

// The message numbers of a LIST or UIDL reply, sorted.
template <typename Entry>
std::vector<uint32_t> SortedMsgnos(const std::vector<Entry>& entries) {
  std::vector<uint32_t> out;
  out.reserve(entries.size());
  for (const Entry& e : entries) out.push_back(e.msgno);
  std::sort(out.begin(), out.end());
  return out;
}

// Every message either reply shows, with its LIST size (0 if LIST lacks it).
std::vector<ListEntry> Union(const std::vector<ListEntry>& sizes,
                             const std::vector<UidlEntry>& uidls) {
  std::map<uint32_t, uint64_t> all;
  for (const UidlEntry& e : uidls) all.emplace(e.msgno, 0);
  for (const ListEntry& e : sizes) all[e.msgno] = e.octets;
  std::vector<ListEntry> out;
  out.reserve(all.size());
  for (const auto& [msgno, octets] : all) out.push_back({msgno, octets});
  return out;
}

// "UIDL 'x' is shared by messages 3, 7; ..." for the first few repeated
// UIDLs, and how many messages share how many UIDLs in all.
std::string DescribeRepeats(const std::vector<UidlEntry>& sorted,
                            const std::unordered_map<std::string_view, uint32_t>& count) {
  std::map<std::string_view, std::vector<uint32_t>> shared;
  size_t messages = 0;
  for (const UidlEntry& e : sorted) {
    if (count.at(e.uidl) < 2) continue;
    ++messages;
    if (shared.size() < kMaxNamedUidls || shared.count(e.uidl)) shared[e.uidl].push_back(e.msgno);
  }
  size_t uidls = 0;
  for (const auto& [uidl, n] : count) uidls += n > 1;
  std::string out = std::to_string(messages);
  out.append(" messages share ").append(std::to_string(uidls)).append(" UIDL(s) (");
  size_t named = 0;
  for (const auto& [uidl, msgnos] : shared) {
    if (named++) out.append("; ");
    out.append("'").append(EncodeUidl(std::string(uidl))).append("': messages");
    for (size_t i = 0; i < msgnos.size(); ++i) {
      out.append(i ? ", " : " ").append(std::to_string(msgnos[i]));
    }
  }
  if (uidls > named) out.append("; ...");
  out.append(")");
  return out;
}

}  // namespace

JudgedListing JudgeListing(const std::vector<ListEntry>& sizes, std::vector<UidlEntry>* uidls) {
  JudgedListing out;
  if (uidls == nullptr) {
    out.by_content = sizes;
    std::sort(out.by_content.begin(), out.by_content.end(),
              [](const ListEntry& x, const ListEntry& y) { return x.msgno < y.msgno; });
    out.problem = "the server has no UIDL";
    return out;
  }
  if (!std::is_sorted(uidls->begin(), uidls->end(), ByMsgno)) {
    std::stable_sort(uidls->begin(), uidls->end(), ByMsgno);
  }
  const std::vector<uint32_t> listed = SortedMsgnos(sizes);
  const std::vector<uint32_t> named = SortedMsgnos(*uidls);
  if (!Contiguous(named) || listed != named) {
    out.by_content = Union(sizes, *uidls);
    out.problem = !Contiguous(named) ? "the UIDL listing has gaps or repeated message numbers"
                                     : "LIST and UIDL disagree on the messages in the mailbox";
    out.problem.append(" (LIST ").append(std::to_string(sizes.size())).append(", UIDL ");
    out.problem.append(std::to_string(uidls->size()))
        .append(" lines): every message is known by content");
    uidls->clear();
    return out;
  }
  // Decided before any UIDL is moved out: `count` holds views into *uidls.
  std::unordered_map<std::string_view, uint32_t> count;
  count.reserve(uidls->size());
  for (const UidlEntry& e : *uidls) ++count[e.uidl];
  std::vector<bool> keep_uidl(uidls->size());
  size_t reserved = 0;
  for (size_t i = 0; i < uidls->size(); ++i) {
    const UidlEntry& e = (*uidls)[i];
    const bool is_reserved = std::string_view(e.uidl).starts_with(kContentKeyPrefix);
    reserved += is_reserved;
    keep_uidl[i] = count.at(e.uidl) == 1 && !is_reserved;
    if (!keep_uidl[i]) out.by_content.push_back({e.msgno, 0});
  }
  if (!out.by_content.empty()) {
    std::vector<uint64_t> octets(sizes.size() + 1, 0);  // LIST is 1..n here too
    for (const ListEntry& e : sizes) octets[e.msgno] = e.octets;
    for (ListEntry& e : out.by_content) e.octets = octets[e.msgno];
    if (reserved < out.by_content.size()) out.problem = DescribeRepeats(*uidls, count);
    if (reserved > 0) {
      if (!out.problem.empty()) out.problem.append("; ");
      out.problem.append(std::to_string(reserved)).append(" UIDL(s) start with '");
      out.problem.append(kContentKeyPrefix).append("', which popvault reserves");
    }
    out.problem.append(": those messages are known by content");
  }
  count.clear();
  std::vector<UidlEntry> by_uidl;
  by_uidl.reserve(uidls->size() - out.by_content.size());
  for (size_t i = 0; i < uidls->size(); ++i) {
    if (keep_uidl[i]) by_uidl.push_back(std::move((*uidls)[i]));
  }
  uidls->clear();
  out.by_uidl = std::move(by_uidl);
  out.trusted = out.by_content.empty();
  return out;
}

}  // namespace popvault
