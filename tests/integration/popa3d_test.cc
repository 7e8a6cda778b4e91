// popvault against popa3d (tests/fixtures/popa3d.sh: the Debian package's binary, served by
// socat on 127.0.0.1 over TLS), a real server that derives each UIDL from the message's
// headers. The harness's fixture env is popa3d's here (same keys as Dovecot's).
//
// pvp3d-demo: every UIDL unique, a listing popvault may trust: archived byte-exact, then
// deleted after verification. pvp3d-corpus: the shared corpus, where look-alike messages
// share a UIDL: every message must still be archived byte-exact, nothing deleted even with
// delete_after_archive, and a warning names each repeated UIDL.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "harness.h"

namespace popvault::testing {
namespace {

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST_CASE("popa3d: a listing without repeats is archived byte-exact, then deleted verified") {
  const std::vector<ServerMessage> before = DumpMailbox("pvp3d-demo", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVP3D-DEMO_MESSAGES"]));
  REQUIRE(before.size() >= 100);
  std::set<std::string> uidls;
  for (const ServerMessage& m : before) uidls.insert(m.uidl_hex);
  REQUIRE(uidls.size() == before.size());  // the precondition: a trustworthy listing

  Workspace ws({.user = "pvp3d-demo", .retention = "delete_after_archive"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out,
             Catch::Matchers::Contains(std::to_string(before.size()) + " deleted from server"));
  CHECK(DumpMailbox("pvp3d-demo").empty());
  std::map<std::string, std::string> archived, served;
  for (const ServerMessage& m : ws.Archived()) archived[m.uidl_hex] = m.sha256;
  for (const ServerMessage& m : before) served[m.uidl_hex] = m.sha256;
  CHECK(archived == served);
  ws.CheckStoresHold(before);  // the server's copies are gone
}

// Fails until popvault archives every message of an untrusted listing (the lead's change
// in agent/src/sync for issue #12): today only one message per repeated UIDL is archived.
TEST_CASE(
    "popa3d: look-alikes sharing a UIDL are all archived byte-exact and nothing is deleted "
    "(corpus)",
    "[untrusted-listing]") {
  if (FixtureEnv::Get()["CORPUS_PRESENT"] != "1") {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") {
      FAIL("the shared corpus is not beside this clone (CI=true: a skip would count as a pass)");
    }
    std::cout << "SKIPPED: the shared corpus is not beside this clone\n";
    return;
  }
  const std::vector<ServerMessage> before = DumpMailbox("pvp3d-corpus", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVP3D-CORPUS_MESSAGES"]));
  std::map<std::string, int> times;
  for (const ServerMessage& m : before) ++times[m.uidl_hex];
  std::set<std::string> repeated;
  for (const auto& [uidl, n] : times) {
    if (n > 1) repeated.insert(uidl);
  }
  REQUIRE_FALSE(repeated.empty());  // the precondition: look-alikes share a UIDL

  Workspace ws({.user = "pvp3d-corpus", .retention = "delete_after_archive"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err.substr(0, 4000));
  CHECK(DumpMailbox("pvp3d-corpus").size() == before.size());  // no DELE committed
  CHECK_THAT(sync.out, Catch::Matchers::Contains(", 0 deleted from server"));
  std::string unnamed;  // repeated UIDLs the warnings do not name
  for (const std::string& uidl : repeated) {
    if (sync.err.find(Unhex(uidl)) == std::string::npos) unnamed.append(1, ' ').append(Unhex(uidl));
  }
  INFO("repeated UIDLs not named in the warnings:" << unnamed);
  CHECK(unnamed.empty());
  // Every message the server serves is in every store, byte for byte.
  ws.CheckStoresHold(before);
  // And the ledger knows each content (identical messages share one entry
  // when known by content, so compare sets).
  std::set<std::string> archived, served;
  for (const ServerMessage& m : ws.Archived()) archived.insert(m.sha256);
  for (const ServerMessage& m : before) served.insert(m.sha256);
  CHECK(archived == served);
}

}  // namespace
}  // namespace popvault::testing
