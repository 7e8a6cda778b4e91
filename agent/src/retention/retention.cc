#include "retention/retention.h"

#include <cctype>

namespace popvault {
namespace {

constexpr int64_t kSecondsPerDay = 86400;
// Bounds that keep archived_at + days and the byte arithmetic far from overflow.
constexpr uint64_t kMaxDays = 100000;
constexpr uint64_t kMaxCount = 1ull << 32;
constexpr uint64_t kMaxBytes = 1ull << 60;

constexpr const char* kGrammar =
    "expected keep, delete_after_archive, or a comma list of delete_after_days:N, "
    "keep_newest:N, max_server_bytes:SIZE";

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// A positive decimal integer no larger than `max`.
Status ParseCount(const std::string& term, const std::string& digits, uint64_t max,
                  uint64_t* value) {
  if (digits.empty() || digits.size() > 19 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("'" + term + "': expected a positive whole number");
  }
  *value = std::stoull(digits);
  if (*value == 0 || *value > max) {
    return Status::InvalidArgument("'" + term + "': must be between 1 and " + std::to_string(max));
  }
  return Status::OK();
}

// Digits with an optional K, M or G (binary multiples, either case).
Status ParseSize(const std::string& term, std::string text, uint64_t* bytes) {
  uint64_t unit = 1;
  if (!text.empty()) {
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        unit = 1ull << 10;
        break;
      case 'M':
        unit = 1ull << 20;
        break;
      case 'G':
        unit = 1ull << 30;
        break;
    }
    if (unit != 1) text.pop_back();
  }
  uint64_t n = 0;
  Status s = ParseCount(term, text, kMaxBytes / unit, &n);
  if (!s.ok()) {
    return Status::InvalidArgument("'" + term +
                                   "': expected a positive size in bytes, optionally with a K, M "
                                   "or G suffix (e.g. 2G)");
  }
  *bytes = n * unit;
  return Status::OK();
}

std::string FormatSize(uint64_t bytes) {
  const char* suffixes = "KMG";
  int i = -1;
  while (i < 2 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++i;
  }
  return std::to_string(bytes) + (i < 0 ? "" : std::string(1, suffixes[i]));
}

}  // namespace

Status RetentionPolicy::Parse(const std::string& text, RetentionPolicy* policy) {
  std::string whole = Trim(text);
  if (whole == "keep" || whole == "delete_after_archive") {
    *policy = RetentionPolicy(whole == "keep" ? Kind::kKeep : Kind::kDeleteAfterArchive);
    return Status::OK();
  }
  RetentionPolicy parsed(Kind::kLimits);
  size_t start = 0;
  while (true) {
    size_t comma = whole.find(',', start);
    std::string term = Trim(whole.substr(start, comma - start));
    if (term == "keep" || term == "delete_after_archive") {
      return Status::InvalidArgument("'" + term + "' cannot be combined with other terms");
    }
    POPVAULT_RETURN_IF_ERROR(parsed.ParseTerm(term));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  *policy = parsed;
  return Status::OK();
}

Status RetentionPolicy::ParseTerm(const std::string& term) {
  size_t colon = term.find(':');
  std::string name = term.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : term.substr(colon + 1);
  uint64_t* slot = name == "delete_after_days"  ? &delete_after_days_
                   : name == "keep_newest"      ? &keep_newest_
                   : name == "max_server_bytes" ? &max_server_bytes_
                                                : nullptr;
  if (slot == nullptr || colon == std::string::npos) {
    return Status::InvalidArgument(term.empty() ? std::string("empty term; ") + kGrammar
                                                : "unknown term '" + term + "'; " + kGrammar);
  }
  if (*slot != 0) return Status::InvalidArgument("'" + name + "' given twice");
  if (slot == &max_server_bytes_) return ParseSize(term, value, slot);
  return ParseCount(term, value, slot == &keep_newest_ ? kMaxCount : kMaxDays, slot);
}

std::string RetentionPolicy::ToString() const {
  if (kind_ == Kind::kKeep) return "keep";
  if (kind_ == Kind::kDeleteAfterArchive) return "delete_after_archive";
  std::vector<std::string> terms;
  if (delete_after_days_ > 0)
    terms.push_back("delete_after_days:" + std::to_string(delete_after_days_));
  if (keep_newest_ > 0) terms.push_back("keep_newest:" + std::to_string(keep_newest_));
  if (max_server_bytes_ > 0) terms.push_back("max_server_bytes:" + FormatSize(max_server_bytes_));
  std::string out;
  for (const std::string& t : terms) out += (out.empty() ? "" : ", ") + t;
  return out;
}

std::vector<RetentionDecision> RetentionPolicy::Decide(
    const std::vector<RetentionCandidate>& messages, int64_t now) const {
  using Verdict = RetentionDecision::Verdict;
  std::vector<RetentionDecision> out(messages.size());
  auto release = [&](size_t i, std::string reason) {
    out[i].verdict = Verdict::kDeleteNow;
    out[i].reason = std::move(reason);
  };
  uint64_t remaining = 0;  // server octets once the released messages are gone
  for (size_t i = 0; i < messages.size(); ++i) {
    const RetentionCandidate& m = messages[i];
    remaining += m.octets;
    if (!m.archived) {
      out[i].verdict = Verdict::kNotArchived;
    } else if (kind_ == Kind::kDeleteAfterArchive) {
      release(i, "delete_after_archive");
    } else if (delete_after_days_ > 0) {
      int64_t due =
          m.entry.record.archived_at + static_cast<int64_t>(delete_after_days_) * kSecondsPerDay;
      if (now >= due) {
        release(i, "delete_after_days:" + std::to_string(delete_after_days_));
      } else {
        out[i].verdict = Verdict::kDeleteLater;
        out[i].delete_at = due;
      }
    }
    // Positions 0 .. size-N-1 are older than the N newest.
    if (keep_newest_ > 0 && i + keep_newest_ < messages.size() && m.archived &&
        out[i].verdict != Verdict::kDeleteNow) {
      release(i, "keep_newest:" + std::to_string(keep_newest_));
    }
    if (out[i].verdict == Verdict::kDeleteNow) remaining -= m.octets;
  }
  for (size_t i = 0; max_server_bytes_ > 0 && i < messages.size(); ++i) {
    if (remaining <= max_server_bytes_) break;
    Verdict v = out[i].verdict;
    if (v == Verdict::kNotArchived || v == Verdict::kDeleteNow) continue;
    release(i, "max_server_bytes:" + FormatSize(max_server_bytes_));
    remaining -= messages[i].octets;
  }
  return out;
}

std::vector<size_t> RetentionPolicy::Release(const std::vector<RetentionCandidate>& messages,
                                             int64_t now) const {
  std::vector<RetentionDecision> decisions = Decide(messages, now);
  std::vector<size_t> released;
  for (size_t i = 0; i < decisions.size(); ++i) {
    if (decisions[i].verdict == RetentionDecision::Verdict::kDeleteNow) released.push_back(i);
  }
  return released;
}

}  // namespace popvault
