// End to end against the private Dovecot: every message archived byte-exact,
// nothing fetched twice, and deletion only of verified copies.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "harness.h"

namespace popvault::testing {
namespace {

std::map<std::string, std::string> ByUidl(const std::vector<ServerMessage>& messages) {
  std::map<std::string, std::string> sha_by_uidl;
  for (const ServerMessage& m : messages) {
    INFO("uidl " << m.uidl_hex << " appears twice");
    CHECK(sha_by_uidl.emplace(m.uidl_hex, m.sha256).second);
  }
  return sha_by_uidl;
}

// Archives `user`'s mailbox and checks the archive against an independent
// read of the server: same UIDLs, same SHA-256, and both `export` (every
// message) and `cat` (every `cat_every`-th) give back exactly the bytes RETR
// served. A second sync must fetch nothing.
void CheckArchivesByteExact(const std::string& user, const std::string& tls, size_t cat_every) {
  std::vector<ServerMessage> server = DumpMailbox(user);
  REQUIRE_FALSE(server.empty());
  Workspace ws({.user = user, .tls = tls});

  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out, Catch::Matchers::Contains(std::to_string(server.size()) + " fetched"));

  std::vector<ServerMessage> archived = ws.Archived();
  CHECK(ByUidl(archived) == ByUidl(server));

  const std::string out = ws.dir() + "/export";
  Outcome exported = ws.Popvault("export", {"--output", out});
  INFO(exported.out << exported.err);
  REQUIRE(exported.exit_code == 0);
  for (const ServerMessage& m : server) {
    std::string bytes = ReadFile(out + "/" + user + "/" + m.sha256 + ".eml");
    INFO("exported " << m.sha256);
    CHECK(bytes.size() == m.size);
    CHECK(Sha256Hex(bytes) == m.sha256);
  }
  for (size_t i = 0; i < archived.size(); i += cat_every) {
    Outcome cat = ws.Popvault("cat", {archived[i].sha256});
    INFO("cat " << archived[i].sha256 << ": " << cat.err);
    REQUIRE(cat.exit_code == 0);
    CHECK(cat.out.size() == archived[i].size);
    CHECK(Sha256Hex(cat.out) == archived[i].sha256);
  }

  Outcome again = ws.Popvault("sync");
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Matchers::Contains(" 0 fetched"));
  CHECK(DumpMailbox(user).size() == server.size());  // retention = keep
}

TEST_CASE("the corpus mailbox is archived byte-exact over implicit TLS") {
  if (CorpusMissing()) return;
  REQUIRE(std::stoi(FixtureEnv::Get()["CORPUS_MESSAGES"]) >= 1000);
  CheckArchivesByteExact("corpus", "implicit", /*cat_every=*/40);
}

TEST_CASE("the generated quirky mailbox is archived byte-exact over STLS") {
  CheckArchivesByteExact("generated", "starttls", /*cat_every=*/1);
}

// The workspace logs warnings only; some tests read information lines.
void RaiseLogLevel(const Workspace& ws) {
  std::ifstream in(ws.config());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "log_level = warning";
  REQUIRE(text.find(from) != std::string::npos);
  text.replace(text.find(from), from.size(), "log_level = information");
  std::ofstream(ws.config()) << text;
}

// Dovecot announces PIPELINING. The engine logs how many commands were in
// flight at most: more than one shows RETRs were sent ahead of replies.
TEST_CASE("RETR is pipelined against Dovecot, and lock-step with pipelining = false") {
  const std::vector<ServerMessage> server = DumpMailbox("generated");
  REQUIRE(server.size() >= 60);
  for (bool pipelining : {true, false}) {
    Workspace ws({.user = "generated",
                  .extra = std::string("pipelining = ") + (pipelining ? "true" : "false")});
    RaiseLogLevel(ws);
    Outcome sync = ws.Popvault("sync");
    INFO(sync.out << sync.err);
    REQUIRE(sync.exit_code == 0);
    const size_t at = sync.err.find("pipelined RETR, up to ");
    if (pipelining) {
      REQUIRE(at != std::string::npos);
      CHECK(std::stoi(sync.err.substr(at + 22)) > 1);
    } else {
      CHECK(at == std::string::npos);
    }
    CHECK(ByUidl(ws.Archived()) == ByUidl(server));
  }
}

TEST_CASE("delete_after_archive empties the server of verified messages only") {
  FillMailbox("spare1", 40, 11);
  std::vector<ServerMessage> before = DumpMailbox("spare1", /*with_bytes=*/true);
  REQUIRE(before.size() >= 40);

  Workspace ws({.user = "spare1", .retention = "delete_after_archive"});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out,
             Catch::Matchers::Contains(std::to_string(before.size()) + " deleted from server"));
  CHECK(DumpMailbox("spare1").empty());
  CHECK(ByUidl(ws.Archived()) == ByUidl(before));
  ws.CheckStoresHold(before);  // the server's copies are gone: the store's are the mail
}

TEST_CASE("a stored copy that fails read-back is not deleted and is fetched again") {
  FillMailbox("spare2", 12, 12);
  std::vector<ServerMessage> before = DumpMailbox("spare2", /*with_bytes=*/true);
  Workspace::Account account{.user = "spare2"};
  Workspace ws(account);
  REQUIRE(ws.Popvault("sync").exit_code == 0);

  // Damage one stored object behind popvault's back.
  const ServerMessage victim = before[3];
  Outcome corrupt = Run({POPVAULT_CORRUPT_TOOL, ws.dir() + "/archive", victim.sha256});
  INFO(corrupt.err);
  REQUIRE(corrupt.exit_code == 0);

  account.retention = "delete_after_archive";
  ws.Rewrite(account);
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  CHECK(sync.exit_code == 1);
  CHECK_THAT(sync.err, Catch::Matchers::Contains("failed read-back verification"));
  std::vector<ServerMessage> left = DumpMailbox("spare2");
  REQUIRE(left.size() == 1);
  CHECK(left[0].sha256 == victim.sha256);

  // The next pass fetches it again, verifies the fresh copy and deletes it.
  Outcome repair = ws.Popvault("sync");
  INFO(repair.out << repair.err);
  CHECK(repair.exit_code == 0);
  CHECK_THAT(repair.out, Catch::Matchers::Contains("1 fetched"));
  CHECK(DumpMailbox("spare2").empty());
  Outcome cat = ws.Popvault("cat", {victim.sha256});
  CHECK(Sha256Hex(cat.out) == victim.sha256);
  ws.CheckStoresHold(before);  // the repaired object too
}

}  // namespace
}  // namespace popvault::testing
