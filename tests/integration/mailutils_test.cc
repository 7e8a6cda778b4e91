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
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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

bool CorpusMissing() {
  if (FixtureEnv::Get()["CORPUS_PRESENT"] == "1") return false;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    FAIL("the shared corpus is not beside this clone (CI=true: a skip would count as a pass)");
  }
  std::cout << "SKIPPED: the shared corpus is not beside this clone\n";
  return true;
}

TEST_CASE("mailutils: a listing without repeats is archived byte-exact, then deleted verified") {
  const std::vector<ServerMessage> before = DumpMailbox("pvmu-demo", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVMU-DEMO_MESSAGES"]));
  REQUIRE(before.size() >= 100);
  std::set<std::string> uidls;
  for (const ServerMessage& m : before) uidls.insert(m.uidl_hex);
  REQUIRE(uidls.size() == before.size());  // the precondition: a trustworthy listing

  Workspace ws({.user = "pvmu-demo", .retention = "delete_after_archive"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out,
             Catch::Matchers::Contains(std::to_string(before.size()) + " deleted from server"));
  CHECK(DumpMailbox("pvmu-demo").empty());
  std::map<std::string, std::string> archived, served;
  for (const ServerMessage& m : ws.Archived()) archived[m.uidl_hex] = m.sha256;
  for (const ServerMessage& m : before) served[m.uidl_hex] = m.sha256;
  CHECK(archived == served);
  // Each deletion was recorded after its copy was verified in the store.
  std::multiset<std::string> served_contents;
  for (const ServerMessage& m : before) served_contents.insert(m.sha256);
  CHECK(VerifiedDeletions(ReadAll(ws.dir() + "/state/audit.log")) == served_contents);
  ws.CheckStoresHold(before);  // the server's copies are gone

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
  std::map<std::string, std::string> archived, served;
  for (const ServerMessage& m : ws.Archived()) archived[m.uidl_hex] = m.sha256;
  for (const ServerMessage& m : before) served[m.uidl_hex] = m.sha256;
  CHECK(archived == served);

  Outcome again = ws.Popvault("sync");
  INFO(again.out << again.err.substr(0, 4000));
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Matchers::Contains(" 0 fetched"));
  CHECK(ws.Archived().size() == before.size());
  // Served again unchanged (pop3d's X-UIDL stamps are settled), and every store holds
  // every message byte for byte.
  const std::vector<ServerMessage> after = DumpMailbox("pvmu-corpus", /*with_bytes=*/true);
  std::map<std::string, std::string> served_after;
  for (const ServerMessage& m : after) served_after[m.uidl_hex] = m.sha256;
  CHECK(served_after == served);
  ws.CheckStoresHold(before);
}

TEST_CASE(
    "mailutils: re-filed copies sharing an X-UIDL are all archived byte-exact and nothing is "
    "deleted",
    "[untrusted-listing]") {
  const std::vector<ServerMessage> before = DumpMailbox("pvmu-xuidl", /*with_bytes=*/true);
  REQUIRE(before.size() == std::stoul(FixtureEnv::Get()["PVMU-XUIDL_MESSAGES"]));
  std::map<std::string, int> times;
  for (const ServerMessage& m : before) ++times[m.uidl_hex];
  std::set<std::string> repeated;
  for (const auto& [uidl, n] : times) {
    if (n > 1) repeated.insert(uidl);
  }
  REQUIRE(repeated.size() == 3);  // the precondition: the fixture's three re-filed copies

  Workspace ws({.user = "pvmu-xuidl", .retention = "delete_after_archive"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err.substr(0, 4000));
  CHECK(sync.exit_code == 0);  // a listing it cannot trust is no failure: it archives all
  CHECK(DumpMailbox("pvmu-xuidl").size() == before.size());  // no DELE committed
  CHECK_THAT(sync.out, Catch::Matchers::Contains(", 0 deleted from server"));
  CHECK(ReadAll(ws.dir() + "/state/audit.log").empty());
  std::string unnamed;  // repeated UIDLs the warnings do not name
  for (const std::string& uidl : repeated) {
    if (sync.err.find(Unhex(uidl)) == std::string::npos) unnamed.append(1, ' ').append(Unhex(uidl));
  }
  INFO("repeated UIDLs not named in the warnings:" << unnamed);
  CHECK(unnamed.empty());
  ws.CheckStoresHold(before);
  // The ledger knows each content (the exact copy shares its original's entry).
  std::set<std::string> archived, served;
  for (const ServerMessage& m : ws.Archived()) archived.insert(m.sha256);
  for (const ServerMessage& m : before) served.insert(m.sha256);
  CHECK(archived == served);
}

}  // namespace
}  // namespace popvault::testing
