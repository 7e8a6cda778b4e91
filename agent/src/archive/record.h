// ArchiveRecord: what the archive knows about one archived message of one
// account. Serialized as JSON per schemas/archive-record.schema.json; the same
// record is kept in the ledger (for fast listing) and in every store (so an
// archive is readable without the ledger).
#pragma once

#include <cstdint>
#include <string>

#include "popvault/status.h"

namespace popvault {

struct ArchiveRecord {
  std::string account;       // config account name
  std::string uidl;          // exact bytes the server sent in UIDL
  std::string sha256;        // lowercase hex SHA-256 of the raw message
  uint64_t size = 0;         // raw message octets, as RETR delivered them after dot-unstuffing
  uint64_t stored_size = 0;  // octets of the compressed object
  int64_t archived_at = 0;   // seconds since the Unix epoch, UTC
  // Header field values as seen in the message (unfolded, not MIME-decoded;
  // invalid UTF-8 replaced by U+FFFD, at most 998 octets). Empty if absent.
  std::string message_id;
  std::string date;
  std::string from;
  std::string subject;
};

std::string RecordToJson(const ArchiveRecord& record);

// InvalidArgument (naming the field) when `json` is not a valid record.
Status RecordFromJson(const std::string& json, ArchiveRecord* record);

// UIDLs are arbitrary bytes; JSON and storage keys need text. Bytes outside
// 0x21..0x7E, and '%' itself, become %XX (uppercase hex). Reversible.
std::string EncodeUidl(const std::string& uidl);
Status DecodeUidl(const std::string& encoded, std::string* uidl);

// "2026-11-27T10:42:01Z"
std::string FormatTimestamp(int64_t unix_seconds);

}  // namespace popvault
