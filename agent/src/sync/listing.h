// JudgeListing: what one session's LIST and UIDL replies say the mailbox
// holds, judged once per pass: which messages can be known by their UIDL,
// which only by their content, and whether anything may be deleted.
//
// RFC 1939 promises message numbers 1..n, one LIST and one UIDL line each,
// and a UIDL unique within the mailbox. Servers break each of these (popa3d
// derives UIDLs from headers, so look-alike messages share one), and every
// message a server offers must still end up in the archive:
//   - a UIDL shared by several messages, or one in the namespace reserved for
//     content keys ("sha256:..."), cannot name one message: those messages are
//     keyed by their content (the ledger's "sha256:<hex>", as for a server
//     without UIDL); the others keep their UIDLs.
//   - gaps, repeated message numbers, or LIST and UIDL disagreeing on the
//     messages: the pairing of numbers and UIDLs itself is in doubt, so every
//     message is keyed by its content.
// Only a listing with none of these is trusted: deletions need it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pop3/pop3_session.h"

namespace popvault {

// The ledger key prefix of messages known by content: no UIDL a server sends
// may be taken for one (a hostile server could otherwise name an archived
// message's content key and have it deleted).
inline constexpr std::string_view kContentKeyPrefix = "sha256:";

struct JudgedListing {
  bool trusted = false;
  // Messages known by their UIDL, in message number order.
  std::vector<UidlEntry> by_uidl;
  // Messages known only by content once fetched (msgno, LIST octets; 0 when
  // LIST did not show the message), in message number order.
  std::vector<ListEntry> by_content;
  // Why the listing is not trusted, for the warning: the repeated UIDLs with
  // their message numbers, gaps, disagreements (bounded length). Empty if
  // trusted.
  std::string problem;
};

// `uidls` is null for a server without UIDL. Consumes *uidls.
JudgedListing JudgeListing(const std::vector<ListEntry>& sizes, std::vector<UidlEntry>* uidls);

}  // namespace popvault
