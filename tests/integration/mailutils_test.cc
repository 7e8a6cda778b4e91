// popvault against GNU Mailutils pop3d (tests/fixtures/mailutils.sh: the Debian package's
// binary in inetd mode under socat on 127.0.0.1, its own TLS, Maildir mailboxes), a real
// server that stamps an X-UIDL header into every message and takes the UIDL from it. The
// harness's fixture env is mailutils' here (same keys as Dovecot's).
//
// pvmu-demo: every UIDL unique, a listing popvault may trust: archived byte-exact, verified,
// then deleted. pvmu-corpus: the shared corpus, archived byte-exact and kept. pvmu-xuidl:
// re-filed copies carry their original's X-UIDL, so UIDLs repeat: every message must still
// be archived byte-exact and nothing deleted, even with delete_after_archive.
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "harness.h"

namespace popvault::testing {
namespace {

// The "sha256" of each audit log line that records a deletion verified in store "local".
std::multiset<std::string> VerifiedDeletions(const std::string& audit_log) {
  std::multiset<std::string> out;
  std::istringstream lines(audit_log);
  const std::string key = "\"sha256\":\"";
  for (std::string line; std::getline(lines, line);) {
    size_t at = line.find(key);
    if (line.find("\"event\":\"deleted\"") == std::string::npos || at == std::string::npos ||
        line.find("\"stores_verified\":[\"local\"]") == std::string::npos) {
      continue;
    }
    out.insert(line.substr(at + key.size(), 64));
  }
  return out;
}

TEST_CASE("mailutils: a listing without repeats is archived byte-exact, then deleted verified") {
  const std::vector<ServerMessage> before = TrustedMailbox("pvmu-demo", 100);
  Workspace ws({.user = "pvmu-demo", .retention = "delete_after_archive"});
  CheckSyncArchivesThenDeletes(ws, "pvmu-demo", before);
  // Each deletion was recorded after its copy was verified in the store.
  CHECK(VerifiedDeletions(ReadFile(ws.dir() + "/state/audit.log")) == Shas(before));

  Outcome again = ws.Popvault("sync");
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Matchers::Contains(": 0 on server, 0 fetched"));
}

TEST_CASE("mailutils: the corpus is archived byte-exact and kept, a resync adds nothing") {
  if (CorpusMissing()) return;
  const std::vector<ServerMessage> before = DumpMailbox("pvmu-corpus", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVMU-CORPUS_MESSAGES"]));
  REQUIRE(before.size() >= 1000);

  Workspace ws({.user = "pvmu-corpus", .retention = "keep"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err.substr(0, 4000));
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out, Catch::Matchers::Contains(std::to_string(before.size()) + " fetched"));
  CHECK_THAT(sync.out, Catch::Matchers::Contains(", 0 deleted from server"));
  CHECK(ShaByUidl(ws.Archived()) == ShaByUidl(before));

  Outcome again = ws.Popvault("sync");
  INFO(again.out << again.err.substr(0, 4000));
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Matchers::Contains(" 0 fetched"));
  CHECK(ws.Archived().size() == before.size());
  // Served again unchanged (pop3d's X-UIDL stamps are settled), and every store holds
  // every message byte for byte.
  const std::vector<ServerMessage> after = DumpMailbox("pvmu-corpus", /*with_bytes=*/true);
  CHECK(ShaByUidl(after) == ShaByUidl(before));
  ws.CheckStoresHold(before);
}

TEST_CASE(
    "mailutils: re-filed copies sharing an X-UIDL are all archived byte-exact and nothing is "
    "deleted",
    "[untrusted-listing]") {
  const std::vector<ServerMessage> before = DumpMailbox("pvmu-xuidl", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVMU-XUIDL_MESSAGES"]));
  const std::set<std::string> repeated = RepeatedUidls(before);
  REQUIRE(repeated.size() == 3);  // the precondition: the fixture's three re-filed copies

  Workspace ws({.user = "pvmu-xuidl", .retention = "delete_after_archive"});
  Outcome sync = CheckSyncKeepsUntrustedListing(ws, "pvmu-xuidl", before, repeated);
  INFO(sync.out << sync.err.substr(0, 4000));
  CHECK(sync.exit_code == 0);  // a listing it cannot trust is no failure: it archives all
  CHECK(ReadFile(ws.dir() + "/state/audit.log").empty());  // no deletion recorded
}

}  // namespace
}  // namespace popvault::testing
