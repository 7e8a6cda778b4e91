// ArchiveRecord: what the archive knows about one archived message of one
// account. Serialized as JSON per schemas/archive-record.schema.json; the same
// record is kept in the ledger (for fast listing) and in every store (so an
// archive is readable without the ledger).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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
  // Not part of the JSON: which message under this UIDL it is. A server may
  // give a UIDL to a new message once the old one is deleted (RFC 1939 asks
  // only that it not do so while the old one exists); each such message is a
  // new generation, 0 for the first, with a record of its own (Archive::RecordKey).
  uint32_t generation = 0;
};

// Always valid JSON: string fields are passed through ToValidUtf8 first.
std::string RecordToJson(const ArchiveRecord& record);

// InvalidArgument (naming the field) when `json` is not a valid record: every
// field of the schema must be present with its type and format, and no other.
Status RecordFromJson(const std::string& json, ArchiveRecord* record);

// [A-Za-z0-9._-]+, the form config account names take.
bool IsValidAccountName(std::string_view name);
// 64 lowercase hex digits.
bool IsValidSha256Hex(std::string_view sha256);

// UIDLs are arbitrary bytes; the record's JSON needs text. Bytes outside
// 0x21..0x7E, and '%' itself, become %XX (uppercase hex). Reversible;
// DecodeUidl accepts only that form (InvalidArgument otherwise).
std::string EncodeUidl(const std::string& uidl);
Status DecodeUidl(const std::string& encoded, std::string* uidl);

// "2026-11-27T10:42:01Z" (proleptic Gregorian; years 0000..9999 round-trip).
std::string FormatTimestamp(int64_t unix_seconds);
// Parses exactly the FormatTimestamp form. InvalidArgument otherwise.
Status ParseTimestamp(const std::string& text, int64_t* unix_seconds);

// `text` with every invalid UTF-8 sequence (maximal subpart) replaced by
// U+FFFD, then cut at a character boundary to at most `max_octets`.
std::string ToValidUtf8(std::string_view text, size_t max_octets = SIZE_MAX);

}  // namespace popvault
