// Server-side retention against the real Dovecot: the dry run's prediction
// and the sync that follows it.
#include <catch2/catch.hpp>
#include <sstream>

#include "harness.h"

namespace popvault::testing {
namespace {

size_t CountLines(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

TEST_CASE("retention --dry-run predicts what sync deletes, and deletes nothing itself") {
  FillMailbox("spare7", 6, 71);
  std::vector<ServerMessage> before = DumpMailbox("spare7");
  REQUIRE(before.size() >= 6);
  Workspace::Account account{.user = "spare7"};
  Workspace ws(account);
  REQUIRE(ws.Popvault("sync").exit_code == 0);

  account.retention = "keep_newest:2";
  ws.Rewrite(account);
  CHECK(ws.Popvault("retention").exit_code == 2);  // deletions happen in sync only
  Outcome dry = ws.Popvault("retention", {"--dry-run"});
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  const size_t expected = before.size() - 2;
  CHECK(CountLines(dry.out, "would delete now (keep_newest:2)") == expected);
  CHECK(CountLines(dry.out, "kept (policy)") == 2);
  CHECK_THAT(dry.out, Catch::Matchers::Contains(std::to_string(expected) +
                                                " message(s) would be deleted now"));
  CHECK(DumpMailbox("spare7").size() == before.size());

  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  CHECK_THAT(sync.out,
             Catch::Matchers::Contains(std::to_string(expected) + " deleted from server"));
  std::vector<ServerMessage> left = DumpMailbox("spare7");
  REQUIRE(left.size() == 2);
  CHECK(left[0].sha256 == before[before.size() - 2].sha256);
  CHECK(left[1].sha256 == before[before.size() - 1].sha256);
}

}  // namespace
}  // namespace popvault::testing
