#include "archive/record.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace popvault {
namespace {

std::string AllBytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

ArchiveRecord SampleRecord() {
  ArchiveRecord r;
  r.account = "alice.work-1_x";
  r.uidl = "UID 17%/\x01\xff";
  r.sha256 = std::string(62, 'a') + "0f";
  r.size = 123456;
  r.stored_size = 7890;
  r.archived_at = 1795776121;
  r.message_id = "<abc@example.org>";
  r.date = "Fri, 27 Nov 2026 10:42:01 +0000";
  r.from = "Zoë <zoe@example.org>";
  r.subject = "quote \" backslash \\ tab \t nul \0 end";
  r.subject.push_back('\0');
  return r;
}

bool SameRecord(const ArchiveRecord& a, const ArchiveRecord& b) {
  return a.account == b.account && a.uidl == b.uidl && a.sha256 == b.sha256 && a.size == b.size &&
         a.stored_size == b.stored_size && a.archived_at == b.archived_at &&
         a.message_id == b.message_id && a.date == b.date && a.from == b.from &&
         a.subject == b.subject;
}

Poco::JSON::Object::Ptr ParseObject(const std::string& json) {
  Poco::JSON::Parser parser;  // rejects invalid UTF-8 and malformed JSON
  return parser.parse(json).extract<Poco::JSON::Object::Ptr>();
}

// The JSON of SampleRecord with one field replaced by raw JSON text
// (or removed when `raw` is empty).
std::string WithField(const std::string& field, const std::string& raw) {
  Poco::JSON::Object::Ptr o = ParseObject(RecordToJson(SampleRecord()));
  o->remove(field);
  std::ostringstream out;
  o->stringify(out);
  std::string json = out.str();
  if (raw.empty()) return json;
  json.pop_back();  // '}'
  return json + ",\"" + field + "\":" + raw + "}";
}

void ExpectInvalid(const std::string& json, const std::string& field) {
  ArchiveRecord r;
  const Status s = RecordFromJson(json, &r);
  INFO(json);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains(field));
}

TEST_CASE("record JSON round trip keeps every field, odd UIDL bytes included") {
  ArchiveRecord in = SampleRecord();
  std::string json = RecordToJson(in);
  ArchiveRecord out;
  REQUIRE(RecordFromJson(json, &out).ok());
  CHECK(SameRecord(in, out));

  in.uidl = AllBytes();
  in.size = UINT64_MAX;
  in.stored_size = 0;
  in.archived_at = 0;
  json = RecordToJson(in);
  REQUIRE(RecordFromJson(json, &out).ok());
  CHECK(SameRecord(in, out));
  CHECK(ParseObject(json)->getValue<std::string>("uidl") == EncodeUidl(AllBytes()));
  CHECK(ParseObject(json)->getValue<std::string>("archived_at") == "1970-01-01T00:00:00Z");
}

TEST_CASE("record JSON replaces invalid UTF-8 in header values and stays valid JSON") {
  ArchiveRecord in = SampleRecord();
  in.subject = "caf\xe9 \xff\xfe ok \xc3\xa9";  // Latin-1 é, junk, then UTF-8 é
  in.from = "\xe2\x82";                         // truncated sequence
  const std::string json = RecordToJson(in);
  REQUIRE_NOTHROW(ParseObject(json));
  ArchiveRecord out;
  REQUIRE(RecordFromJson(json, &out).ok());
  CHECK(out.subject == "caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD ok \xc3\xa9");
  CHECK(out.from == "\xEF\xBF\xBD");
  // What came back is valid, so it survives a second round unchanged.
  ArchiveRecord again;
  REQUIRE(RecordFromJson(RecordToJson(out), &again).ok());
  CHECK(SameRecord(out, again));
}

TEST_CASE("ToValidUtf8 replaces maximal invalid subparts and cuts at character boundaries") {
  const std::string kFffd = "\xEF\xBF\xBD";
  CHECK(ToValidUtf8("plain ascii") == "plain ascii");
  CHECK(ToValidUtf8("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
  CHECK(ToValidUtf8("\xc0\xaf") == kFffd + kFffd);                          // overlong
  CHECK(ToValidUtf8("\xed\xa0\x80") == kFffd + kFffd + kFffd);              // surrogate
  CHECK(ToValidUtf8("\xf4\x90\x80\x80") == kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  CHECK(ToValidUtf8("\xe2\x82"
                    "a") == kFffd + "a");
  CHECK(ToValidUtf8("\xf0\x9f\x98") == kFffd);
  CHECK(ToValidUtf8("a\xc3\xa9", 2) == "a");
  std::string e500;
  for (int i = 0; i < 500; ++i) e500 += "\xc3\xa9";
  CHECK(ToValidUtf8(e500, 998).size() == 998);
  CHECK(ToValidUtf8("\xff\xff", 4) == kFffd);
}

TEST_CASE("RecordFromJson names the missing or malformed field") {
  for (const char* field : {"account", "uidl", "sha256", "size", "stored_size", "archived_at",
                            "message_id", "date", "from", "subject"}) {
    ExpectInvalid(WithField(field, ""), field);
  }
  ExpectInvalid(WithField("size", "\"12\""), "size");
  ExpectInvalid(WithField("size", "true"), "size");
  ExpectInvalid(WithField("size", "-1"), "size");
  ExpectInvalid(WithField("size", "1.5"), "size");
  ExpectInvalid(WithField("stored_size", "null"), "stored_size");
  ExpectInvalid(WithField("subject", "42"), "subject");
  ExpectInvalid(WithField("subject", "\"" + std::string(999, 'x') + "\""), "subject");
  ExpectInvalid(WithField("account", "\"a/b\""), "account");
  ExpectInvalid(WithField("account", "\"\""), "account");
  ExpectInvalid(WithField("sha256", "\"" + std::string(64, 'A') + "\""), "sha256");
  ExpectInvalid(WithField("sha256", "\"" + std::string(63, 'a') + "\""), "sha256");
  ExpectInvalid(WithField("uidl", "\"%4\""), "uidl");
  ExpectInvalid(WithField("uidl", "\"a b\""), "uidl");
  ExpectInvalid(WithField("archived_at", "1795776121"), "archived_at");
  ExpectInvalid(WithField("archived_at", "\"2026-02-30T00:00:00Z\""), "archived_at");
  ExpectInvalid(WithField("archived_at", "\"2026-11-27T10:42:01+00:00\""), "archived_at");
  ExpectInvalid(WithField("archived_at", "\"2026-11-27 10:42:01Z\""), "archived_at");
  ExpectInvalid(WithField("colour", "\"blue\""), "colour");

  ArchiveRecord r;
  CHECK(RecordFromJson("not json", &r).code() == Status::Code::kInvalidArgument);
  CHECK(RecordFromJson("[1,2]", &r).code() == Status::Code::kInvalidArgument);
  CHECK(RecordFromJson(RecordToJson(SampleRecord()) + "x", &r).code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("EncodeUidl/DecodeUidl round-trip every byte value") {
  for (int b = 0; b < 256; ++b) {
    const std::string uidl(1, static_cast<char>(b));
    const std::string encoded = EncodeUidl(uidl);
    if (b >= 0x21 && b <= 0x7E && b != '%') {
      CHECK(encoded == uidl);
    } else {
      char expected[4];
      std::snprintf(expected, sizeof expected, "%%%02X", b);
      CHECK(encoded == expected);
    }
    std::string decoded;
    REQUIRE(DecodeUidl(encoded, &decoded).ok());
    CHECK(decoded == uidl);
  }
  std::string decoded;
  REQUIRE(DecodeUidl(EncodeUidl(AllBytes() + AllBytes()), &decoded).ok());
  CHECK(decoded == AllBytes() + AllBytes());
  REQUIRE(DecodeUidl("", &decoded).ok());
  CHECK(decoded.empty());
}

TEST_CASE("DecodeUidl rejects malformed input") {
  for (const std::string& bad : std::vector<std::string>{
           "%", "a%", "%4", "%G0", "%4a", "%%41", "a b", "\x80", "x\x7f", std::string("a\0b", 3)}) {
    std::string decoded = "unchanged";
    INFO(bad);
    CHECK(DecodeUidl(bad, &decoded).code() == Status::Code::kInvalidArgument);
    CHECK(decoded == "unchanged");
  }
}

TEST_CASE("FormatTimestamp and ParseTimestamp") {
  CHECK(FormatTimestamp(0) == "1970-01-01T00:00:00Z");
  CHECK(FormatTimestamp(1795776121) == "2026-11-27T10:42:01Z");
  CHECK(FormatTimestamp(1709251199) == "2024-02-29T23:59:59Z");
  CHECK(FormatTimestamp(-1) == "1969-12-31T23:59:59Z");
  CHECK(FormatTimestamp(253402300799) == "9999-12-31T23:59:59Z");
  CHECK(FormatTimestamp(-62135596800) == "0001-01-01T00:00:00Z");
  for (int64_t t : {int64_t{0}, int64_t{-1}, int64_t{951782400}, int64_t{1795776121},
                    int64_t{253402300799}, int64_t{-62135596800}, int64_t{4107542399}}) {
    int64_t back = 12345;
    REQUIRE(ParseTimestamp(FormatTimestamp(t), &back).ok());
    CHECK(back == t);
  }
  int64_t t;
  CHECK(ParseTimestamp("2023-02-29T00:00:00Z", &t).code() == Status::Code::kInvalidArgument);
  CHECK(ParseTimestamp("2026-13-01T00:00:00Z", &t).code() == Status::Code::kInvalidArgument);
  CHECK(ParseTimestamp("2026-11-27T24:00:00Z", &t).code() == Status::Code::kInvalidArgument);
  CHECK(ParseTimestamp("2026-11-27T10:42:01.5Z", &t).code() == Status::Code::kInvalidArgument);
  CHECK(ParseTimestamp("2026-11-27t10:42:01z", &t).code() == Status::Code::kInvalidArgument);
}

// Checks `json` against the keywords schemas/archive-record.schema.json uses:
// required, additionalProperties:false, type string/integer, pattern,
// minimum, maxLength (as an octet bound) and $ref to $defs.
void CheckAgainstSchema(const std::string& json) {
  const std::string schema_path =
      std::string(POPVAULT_SOURCE_DIR) + "/schemas/archive-record.schema.json";
  std::ifstream in(schema_path);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  const Poco::JSON::Object::Ptr schema = ParseObject(text.str());
  const Poco::JSON::Object::Ptr record = ParseObject(json);
  CHECK(schema->getValue<std::string>("$schema") == "https://json-schema.org/draft/2020-12/schema");
  const auto props = schema->getObject("properties");
  const auto defs = schema->getObject("$defs");
  REQUIRE(!schema->getValue<bool>("additionalProperties"));
  std::vector<std::string> required;
  for (const auto& r : *schema->getArray("required")) required.push_back(r.toString());
  CHECK(required.size() == props->size());
  for (const auto& name : required) CHECK(record->has(name));
  for (const auto& [name, value] : *record) {
    INFO(name);
    REQUIRE(props->has(name));
    Poco::JSON::Object::Ptr p = props->getObject(name);
    if (p->has("$ref")) {
      const std::string ref = p->getValue<std::string>("$ref");
      REQUIRE(ref.starts_with("#/$defs/"));
      p = defs->getObject(ref.substr(8));
    }
    const std::string type = p->getValue<std::string>("type");
    if (type == "integer") {
      CHECK((value.isInteger() && !value.isBoolean()));
      if (p->has("minimum") && value.isSigned()) CHECK(value.convert<Poco::Int64>() >= 0);
      continue;
    }
    REQUIRE(type == "string");
    REQUIRE(value.isString());
    const std::string s = value.extract<std::string>();
    if (p->has("pattern")) {
      CHECK(std::regex_search(s, std::regex(p->getValue<std::string>("pattern"))));
    }
    if (p->has("maxLength")) CHECK(s.size() <= p->getValue<size_t>("maxLength"));
  }
}

TEST_CASE("RecordToJson output conforms to the published schema") {
  ArchiveRecord r = SampleRecord();
  CheckAgainstSchema(RecordToJson(r));
  r.uidl = AllBytes();
  r.subject = std::string(2000, '\xff');  // grows 3x when replaced, then is cut
  r.from.clear();
  CheckAgainstSchema(RecordToJson(r));
}

}  // namespace
}  // namespace popvault
