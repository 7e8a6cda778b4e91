// Crash safety: a sync with delete_after_archive is killed with SIGKILL at
// each dangerous point and run again. Mail may be delayed, never lost or
// stored twice: server ∪ archive always covers the original set, and once the
// server is empty every store gives back every original message byte for byte.
#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "harness.h"

namespace popvault::testing {
namespace {

std::multiset<std::string> Shas(const std::vector<ServerMessage>& messages) {
  std::multiset<std::string> shas;
  for (const ServerMessage& m : messages) shas.insert(m.sha256);
  return shas;
}

// Every original message is on the server or in the archive, and the archive
// holds each UIDL at most once.
void CheckNothingLost(const Workspace& ws, const std::vector<ServerMessage>& original) {
  std::vector<ServerMessage> archived = ws.Archived();
  std::set<std::string> uidls;
  for (const ServerMessage& m : archived) {
    INFO("uidl " << m.uidl_hex << " archived twice");
    CHECK(uidls.insert(m.uidl_hex).second);
  }
  std::multiset<std::string> have = Shas(archived);
  for (const ServerMessage& m : DumpMailbox("spare5")) {
    if (!uidls.count(m.uidl_hex)) have.insert(m.sha256);
  }
  CHECK(have == Shas(original));
}

TEST_CASE("kill -9 at any point of a deleting sync loses and duplicates nothing") {
  FillMailbox("spare5", 30, 5);
  const std::vector<ServerMessage> original = DumpMailbox("spare5", /*with_bytes=*/true);
  REQUIRE(original.size() >= 30);
  Workspace ws({.user = "spare5", .retention = "delete_after_archive"});

  // Each point is reached in the state the previous crash left behind.
  const char* crashes[] = {
      "retr-data:6",  // in the middle of the RETRs, nothing committed
      "stored:4",     // objects written, ledger not yet
      "committed:1",  // ledger synced, no DELE sent yet
      "deleted:3",    // DELEs sent, QUIT not
  };
  for (const char* crash : crashes) {
    Outcome o = ws.Popvault("sync", {}, {std::string("POPVAULT_CRASH_AT=") + crash});
    INFO("crash at " << crash << ": " << o.out << o.err);
    REQUIRE(o.signal == SIGKILL);
    CheckNothingLost(ws, original);
    CHECK(DumpMailbox("spare5").size() == original.size());  // no QUIT, no deletion
  }

  Outcome done = ws.Popvault("sync");
  INFO(done.out << done.err);
  REQUIRE(done.exit_code == 0);
  CHECK(DumpMailbox("spare5").empty());
  CheckNothingLost(ws, original);
  CHECK(ws.Archived().size() == original.size());
  // The ledger says so; the stores must too: the server's copies are gone.
  ws.CheckStoresHold(original);
}

}  // namespace
}  // namespace popvault::testing
