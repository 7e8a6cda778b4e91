// Pure parsing and formatting helpers for POP3 (RFC 1939, 2449, 3206).
//
// No I/O and no state: every function works on bytes the caller already has,
// so each rule can be unit-tested on its own. The session turns the results
// into Status values that name the server and the command.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pop3/pop3_session.h"
#include "popvault/status.h"

namespace popvault::pop3 {

// Longest status line, CAPA/UIDL/LIST line we accept, line ending included.
// RFC 1939 allows 512 octets for a status line and RFC 1939 §7 70 for a
// unique-id; real servers exceed both, so we allow 4096 and fail with
// kProtocol beyond it (memory stays bounded). Message lines are not bounded.
inline constexpr size_t kMaxLineOctets = 4096;

struct Response {
  bool ok = false;
  // RFC 2449 response code without brackets, upper-cased ("SYS/TEMP"); empty
  // when the reply has none.
  std::string code;
  // Everything after the status indicator and one space, code included.
  std::string text;
};

// Parses a status line (line ending already stripped). "+OK" and "-ERR" are
// matched case-insensitively and must be followed by a space or the end of the
// line. Anything else is kProtocol.
Status ParseResponse(std::string_view line, Response* response);

// The Status for a -ERR reply. Response codes win; without one, a -ERR to a
// login command (USER, PASS, APOP) is kAuthFailed and any other kServerError.
// Free text is never interpreted. `context` prefixes the message.
Status ErrorStatus(const Response& response, bool login_command, const std::string& context);

// Strips one trailing "\r\n" or "\n" from a line as delivered by a multi-line
// reply.
std::string_view StripLineEnding(std::string_view line);

// Parses "msgno SP+ uid" (line ending stripped). The uid is every byte after
// the first run of spaces, kept exactly, including any further or trailing
// spaces (mpop also accepts such uids). kProtocol when the msgno is not a
// positive 32-bit number or the uid is empty.
Status ParseUidlLine(std::string_view line, UidlEntry* entry);

// Parses "msgno SP+ octets [SP anything]" (line ending stripped); RFC 1939
// allows extra information after the size. kProtocol on malformed numbers.
Status ParseListLine(std::string_view line, ListEntry* entry);

// The first word of a CAPA line, upper-cased; empty for an empty line.
std::string CapabilityName(std::string_view line);

// The rest of a CAPA line after its name and the spaces that follow, as sent
// ("LOGIN-DELAY 900" -> "900"); empty when the capability has no arguments.
std::string CapabilityArguments(std::string_view line);

// The APOP timestamp "<...@...>" from the greeting text, brackets included;
// empty when the greeting has none.
std::string ApopTimestamp(std::string_view greeting);

// Lower-case hex MD5(timestamp + secret), the APOP digest of RFC 1939 §7.
std::string ApopDigest(std::string_view timestamp, std::string_view secret);

// `text` with control characters replaced by '?', for quoting untrusted
// server replies in error messages and logs.
std::string Printable(std::string_view text);

}  // namespace popvault::pop3
