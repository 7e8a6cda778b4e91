#include "pop3/protocol.h"

#include <Poco/DigestEngine.h>
#include <Poco/MD5Engine.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace popvault::pop3 {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string UpperCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Parses a run of decimal digits at the front of *s and removes it.
template <typename T>
bool ConsumeNumber(std::string_view* s, T* value) {
  const char* end = s->data() + s->size();
  auto [ptr, ec] = std::from_chars(s->data(), end, *value);
  if (ec != std::errc() || ptr == s->data()) return false;
  s->remove_prefix(ptr - s->data());
  return true;
}

// Removes the leading spaces of *s; false if there were none.
bool ConsumeSpaces(std::string_view* s) {
  if (s->empty() || (*s)[0] != ' ') return false;
  s->remove_prefix(std::min(s->find_first_not_of(' '), s->size()));
  return true;
}

// Digits only: from_chars would also accept a leading '-' for signed types.
bool StartsWithDigit(std::string_view s) {
  return !s.empty() && std::isdigit(static_cast<unsigned char>(s[0]));
}

}  // namespace

Status ParseResponse(std::string_view line, Response* response) {
  std::string_view rest;
  if (StartsWithNoCase(line, "+OK")) {
    response->ok = true;
    rest = line.substr(3);
  } else if (StartsWithNoCase(line, "-ERR")) {
    response->ok = false;
    rest = line.substr(4);
  } else {
    return Status::Protocol("malformed reply \"" + Printable(line) + "\"");
  }
  if (!rest.empty() && rest[0] != ' ') {
    return Status::Protocol("malformed reply \"" + Printable(line) + "\"");
  }
  if (!rest.empty()) rest.remove_prefix(1);
  response->text.assign(rest);
  response->code.clear();
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close != std::string_view::npos) response->code = UpperCase(rest.substr(1, close - 1));
  }
  return Status::OK();
}

Status ErrorStatus(const Response& response, bool login_command, const std::string& context) {
  using Code = Status::Code;
  Code code = login_command ? Code::kAuthFailed : Code::kServerError;
  // RFC 2449 §8: codes are hierarchical; unknown ones fall back to the default.
  if (response.code == "IN-USE") code = Code::kInUse;
  if (response.code == "LOGIN-DELAY") code = Code::kLoginDelay;
  if (response.code == "SYS/TEMP") code = Code::kSysTemp;
  if (response.code == "SYS/PERM") code = Code::kSysPerm;
  if (response.code == "AUTH") code = Code::kAuthFailed;
  return Status(code, context + ": server replied \"-ERR " + Printable(response.text) + "\"");
}

std::string_view StripLineEnding(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Status ParseUidlLine(std::string_view line, UidlEntry* entry) {
  std::string_view rest = line;
  uint32_t msgno = 0;
  if (!StartsWithDigit(rest) || !ConsumeNumber(&rest, &msgno) || msgno == 0 ||
      !ConsumeSpaces(&rest) || rest.empty()) {
    return Status::Protocol("malformed UIDL line \"" + Printable(line) + "\"");
  }
  entry->msgno = msgno;
  entry->uidl.assign(rest);
  return Status::OK();
}

Status ParseListLine(std::string_view line, ListEntry* entry) {
  std::string_view rest = line;
  uint32_t msgno = 0;
  uint64_t octets = 0;
  if (!StartsWithDigit(rest) || !ConsumeNumber(&rest, &msgno) || msgno == 0 ||
      !ConsumeSpaces(&rest) || !StartsWithDigit(rest) || !ConsumeNumber(&rest, &octets) ||
      (!rest.empty() && rest[0] != ' ')) {
    return Status::Protocol("malformed LIST line \"" + Printable(line) + "\"");
  }
  entry->msgno = msgno;
  entry->octets = octets;
  return Status::OK();
}

std::string CapabilityName(std::string_view line) {
  return UpperCase(line.substr(0, line.find(' ')));
}

std::string CapabilityArguments(std::string_view line) {
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return "";
  size_t start = line.find_first_not_of(' ', space);
  return start == std::string_view::npos ? "" : std::string(line.substr(start));
}

std::string ApopTimestamp(std::string_view greeting) {
  size_t open = greeting.find('<');
  if (open == std::string_view::npos) return "";
  size_t close = greeting.find('>', open);
  if (close == std::string_view::npos) return "";
  std::string_view stamp = greeting.substr(open, close - open + 1);
  // RFC 1939 §7: the timestamp is a msg-id, which has an '@'.
  if (stamp.find('@') == std::string_view::npos) return "";
  return std::string(stamp);
}

std::string ApopDigest(std::string_view timestamp, std::string_view secret) {
  Poco::MD5Engine md5;
  md5.update(timestamp.data(), timestamp.size());
  md5.update(secret.data(), secret.size());
  return Poco::DigestEngine::digestToHex(md5.digest());
}

std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace popvault::pop3
