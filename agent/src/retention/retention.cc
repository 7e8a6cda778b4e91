#include "retention/retention.h"

#include "ledger/ledger.h"

namespace popvault {

Status RetentionPolicy::Parse(const std::string& text, RetentionPolicy* policy) {
  if (text == "keep") {
    *policy = RetentionPolicy(Kind::kKeep);
  } else if (text == "delete_after_archive") {
    *policy = RetentionPolicy(Kind::kDeleteAfterArchive);
  } else {
    return Status::InvalidArgument("expected keep or delete_after_archive, got '" + text + "'");
  }
  return Status::OK();
}

std::string RetentionPolicy::ToString() const {
  switch (kind_) {
    case Kind::kKeep:
      return "keep";
    case Kind::kDeleteAfterArchive:
      return "delete_after_archive";
  }
  return "keep";
}

bool RetentionPolicy::ShouldDelete(const LedgerEntry& entry, int64_t /*now*/) const {
  if (entry.state != MessageState::kStored) return false;
  return kind_ == Kind::kDeleteAfterArchive;
}

}  // namespace popvault
