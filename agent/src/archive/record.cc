#include "archive/record.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>

#include "archive/record_json.h"

namespace popvault {
namespace {

constexpr size_t kMaxHeaderOctets = 998;
constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

const std::array<const char*, 10> kFields = {"account",     "uidl",        "sha256",     "size",
                                             "stored_size", "archived_at", "message_id", "date",
                                             "from",        "subject"};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lowercase is not what EncodeUidl writes: reject it
}

// Length of the valid UTF-8 sequence at the start of `s`, or 0 if invalid;
// *consumed is the maximal subpart to replace when invalid (>= 1).
size_t ValidSequenceLength(std::string_view s, size_t* consumed) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  *consumed = 1;
  if (b0 < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i]);
    const unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) return 0;
    *consumed = i + 1;
  }
  return need;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

Status FieldError(const char* field, const std::string& what) {
  return Status::InvalidArgument(std::string("archive record: field \"") + field + "\" " + what);
}

Status GetString(const Poco::JSON::Object& o, const char* field, std::string* out) {
  const Poco::Dynamic::Var v = o.get(field);
  if (v.isEmpty()) return FieldError(field, "is missing");
  if (!v.isString()) return FieldError(field, "is not a string");
  *out = v.extract<std::string>();
  return Status::OK();
}

Status GetUint64(const Poco::JSON::Object& o, const char* field, uint64_t* out) {
  const Poco::Dynamic::Var v = o.get(field);
  if (v.isEmpty()) return FieldError(field, "is missing");
  // Poco reports booleans as integers too.
  if (v.isBoolean() || !v.isInteger()) return FieldError(field, "is not an integer");
  if (v.isSigned()) {
    const auto i = v.convert<Poco::Int64>();
    if (i < 0) return FieldError(field, "is negative");
    *out = static_cast<uint64_t>(i);
  } else {
    *out = v.convert<Poco::UInt64>();
  }
  return Status::OK();
}

Status GetHeaderField(const Poco::JSON::Object& o, const char* field, std::string* out) {
  POPVAULT_RETURN_IF_ERROR(GetString(o, field, out));
  if (out->size() > kMaxHeaderOctets) return FieldError(field, "is longer than 998 octets");
  return Status::OK();
}

Status ParseRecordObject(const Poco::JSON::Object& o, ArchiveRecord* record) {
  for (const auto& [name, value] : o) {
    if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
      return Status::InvalidArgument("archive record: unknown field \"" + name + "\"");
    }
  }
  ArchiveRecord rec;
  POPVAULT_RETURN_IF_ERROR(GetString(o, "account", &rec.account));
  if (!IsValidAccountName(rec.account)) return FieldError("account", "is not [A-Za-z0-9._-]+");
  std::string encoded_uidl;
  POPVAULT_RETURN_IF_ERROR(GetString(o, "uidl", &encoded_uidl));
  if (!DecodeUidl(encoded_uidl, &rec.uidl).ok()) {
    return FieldError("uidl", "is not a percent-encoded UIDL");
  }
  POPVAULT_RETURN_IF_ERROR(GetString(o, "sha256", &rec.sha256));
  if (!IsValidSha256Hex(rec.sha256)) return FieldError("sha256", "is not 64 lowercase hex digits");
  POPVAULT_RETURN_IF_ERROR(GetUint64(o, "size", &rec.size));
  POPVAULT_RETURN_IF_ERROR(GetUint64(o, "stored_size", &rec.stored_size));
  std::string archived_at;
  POPVAULT_RETURN_IF_ERROR(GetString(o, "archived_at", &archived_at));
  if (!ParseTimestamp(archived_at, &rec.archived_at).ok()) {
    return FieldError("archived_at", "is not a YYYY-MM-DDThh:mm:ssZ timestamp");
  }
  POPVAULT_RETURN_IF_ERROR(GetHeaderField(o, "message_id", &rec.message_id));
  POPVAULT_RETURN_IF_ERROR(GetHeaderField(o, "date", &rec.date));
  POPVAULT_RETURN_IF_ERROR(GetHeaderField(o, "from", &rec.from));
  POPVAULT_RETURN_IF_ERROR(GetHeaderField(o, "subject", &rec.subject));
  *record = std::move(rec);
  return Status::OK();
}

}  // namespace

bool IsValidAccountName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidSha256Hex(std::string_view sha256) {
  if (sha256.size() != 64) return false;
  // Branch-free over all 64 digits: a ledger scan checks every entry's.
  bool ok = true;
  for (char c : sha256) ok &= (c >= '0' && c <= '9') | (c >= 'a' && c <= 'f');
  return ok;
}

std::string ToValidUtf8(std::string_view text, size_t max_octets) {
  std::string out;
  out.reserve(std::min(text.size(), max_octets));
  size_t i = 0;
  while (i < text.size()) {
    size_t consumed;
    const size_t len = ValidSequenceLength(text.substr(i), &consumed);
    const std::string_view piece = len ? text.substr(i, len) : std::string_view(kReplacement);
    if (out.size() + piece.size() > max_octets) break;
    out.append(piece);
    i += len ? len : consumed;
  }
  return out;
}

std::string EncodeUidl(const std::string& uidl) {
  std::string out;
  out.reserve(uidl.size());
  for (char c : uidl) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x21 && b <= 0x7E && b != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[b >> 4]);
      out.push_back(kHexUpper[b & 0xF]);
    }
  }
  return out;
}

Status DecodeUidl(const std::string& encoded, std::string* uidl) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    const auto b = static_cast<unsigned char>(encoded[i]);
    if (b == '%') {
      const int hi = i + 2 < encoded.size() ? HexValue(encoded[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(encoded[i + 2]) : -1;
      if (lo < 0) {
        return Status::InvalidArgument("encoded UIDL: '%' at offset " + std::to_string(i) +
                                       " is not followed by two uppercase hex digits");
      }
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else if (b >= 0x21 && b <= 0x7E) {
      out.push_back(static_cast<char>(b));
    } else {
      return Status::InvalidArgument("encoded UIDL: byte " + std::to_string(b) + " at offset " +
                                     std::to_string(i) + " must be percent-encoded");
    }
  }
  *uidl = std::move(out);
  return Status::OK();
}

std::string FormatTimestamp(int64_t unix_seconds) {
  // Floor division, so that times before 1970 land on the right day.
  int64_t days = unix_seconds / 86400, secs = unix_seconds % 86400;
  if (secs < 0) secs += 86400, --days;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02uZ", static_cast<long long>(y), m,
                d, static_cast<unsigned>(secs / 3600), static_cast<unsigned>(secs / 60 % 60),
                static_cast<unsigned>(secs % 60));
  return buf;
}

Status ParseTimestamp(const std::string& text, int64_t* unix_seconds) {
  static constexpr char kShape[] = "dddd-dd-ddTdd:dd:ddZ";
  auto bad = [&] { return Status::InvalidArgument("bad timestamp \"" + text + "\""); };
  if (text.size() != sizeof kShape - 1) return bad();
  for (size_t i = 0; i < text.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return bad();
  }
  auto num = [&](size_t pos, size_t len) {
    unsigned v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + static_cast<unsigned>(text[i] - '0');
    return v;
  };
  const int64_t y = num(0, 4);
  const unsigned mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2);
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) {
    return bad();
  }
  *unix_seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return Status::OK();
}

Poco::JSON::Object::Ptr RecordToJsonObject(const ArchiveRecord& r) {
  Poco::JSON::Object::Ptr o = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  // account and sha256 are ASCII when valid; sanitizing keeps even a bad
  // record serializable (Poco throws on invalid UTF-8).
  o->set("account", ToValidUtf8(r.account));
  o->set("uidl", EncodeUidl(r.uidl));
  o->set("sha256", ToValidUtf8(r.sha256));
  o->set("size", static_cast<Poco::UInt64>(r.size));
  o->set("stored_size", static_cast<Poco::UInt64>(r.stored_size));
  o->set("archived_at", FormatTimestamp(r.archived_at));
  o->set("message_id", ToValidUtf8(r.message_id, kMaxHeaderOctets));
  o->set("date", ToValidUtf8(r.date, kMaxHeaderOctets));
  o->set("from", ToValidUtf8(r.from, kMaxHeaderOctets));
  o->set("subject", ToValidUtf8(r.subject, kMaxHeaderOctets));
  return o;
}

std::string RecordToJson(const ArchiveRecord& record) {
  std::ostringstream out;
  RecordToJsonObject(record)->stringify(out);
  return out.str();
}

Status RecordFromJsonObject(const Poco::JSON::Object& object, ArchiveRecord* record) {
  try {
    return ParseRecordObject(object, record);
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("archive record: " + e.displayText());
  }
}

Status RecordFromJson(const std::string& json, ArchiveRecord* record) {
  Poco::JSON::Object::Ptr object;
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var root = parser.parse(json);
    if (root.type() != typeid(Poco::JSON::Object::Ptr)) {
      return Status::InvalidArgument("archive record: not a JSON object");
    }
    object = root.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("archive record: not valid JSON: " + e.displayText());
  }
  return RecordFromJsonObject(*object, record);
}

}  // namespace popvault
