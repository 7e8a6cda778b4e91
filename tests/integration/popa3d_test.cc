// popvault against popa3d (tests/fixtures/popa3d.sh: the Debian package's binary, served by
// socat on 127.0.0.1 over TLS), a real server that derives each UIDL from the message's
// headers. The harness's fixture env is popa3d's here (same keys as Dovecot's).
//
// pvp3d-demo: every UIDL unique, a listing popvault may trust: archived byte-exact, then
// deleted after verification. pvp3d-corpus: the shared corpus, where look-alike messages
// share a UIDL: every message must still be archived byte-exact, nothing deleted even with
// delete_after_archive, and a warning names each repeated UIDL.
#include <catch2/catch.hpp>
#include <set>

#include "harness.h"

namespace popvault::testing {
namespace {

TEST_CASE("popa3d: a listing without repeats is archived byte-exact, then deleted verified") {
  const std::vector<ServerMessage> before = TrustedMailbox("pvp3d-demo", 100);
  Workspace ws({.user = "pvp3d-demo", .retention = "delete_after_archive"});
  CheckSyncArchivesThenDeletes(ws, "pvp3d-demo", before);
}

// popa3d derives UIDLs from headers, so look-alikes share one: every message of
// that untrusted listing must be archived (before issue #12's fix only one
// message per repeated UIDL was), and nothing deleted.
TEST_CASE(
    "popa3d: look-alikes sharing a UIDL are all archived byte-exact and nothing is deleted "
    "(corpus)",
    "[untrusted-listing]") {
  if (CorpusMissing()) return;
  const std::vector<ServerMessage> before = DumpMailbox("pvp3d-corpus", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVP3D-CORPUS_MESSAGES"]));
  const std::set<std::string> repeated = RepeatedUidls(before);
  REQUIRE_FALSE(repeated.empty());  // the precondition: look-alikes share a UIDL

  Workspace ws({.user = "pvp3d-corpus", .retention = "delete_after_archive"});
  CheckSyncKeepsUntrustedListing(ws, "pvp3d-corpus", before, repeated);
}

}  // namespace
}  // namespace popvault::testing
