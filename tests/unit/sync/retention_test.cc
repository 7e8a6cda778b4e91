// RetentionPolicy: the grammar and each term's decision, with time given by
// the test.
#include "retention/retention.h"

#include <catch2/catch.hpp>

namespace popvault {
namespace {

using Verdict = RetentionDecision::Verdict;

constexpr int64_t kDay = 86400;
constexpr int64_t kT0 = 1700000000;

RetentionPolicy Policy(const std::string& text) {
  RetentionPolicy p;
  Status s = RetentionPolicy::Parse(text, &p);
  INFO(text << ": " << s.ToString());
  REQUIRE(s.ok());
  return p;
}

std::string ParseError(const std::string& text) {
  RetentionPolicy p;
  Status s = RetentionPolicy::Parse(text, &p);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  return s.message();
}

RetentionCandidate Archived(uint64_t octets, int64_t archived_at = kT0) {
  RetentionCandidate c;
  c.octets = octets;
  c.archived = true;
  c.entry.state = MessageState::kStored;
  c.entry.record.archived_at = archived_at;
  return c;
}

RetentionCandidate NotArchived(uint64_t octets) {
  RetentionCandidate c;
  c.octets = octets;
  return c;
}

std::vector<Verdict> Verdicts(const RetentionPolicy& p, const std::vector<RetentionCandidate>& m,
                              int64_t now) {
  std::vector<Verdict> out;
  for (const RetentionDecision& d : p.Decide(m, now)) out.push_back(d.verdict);
  return out;
}

TEST_CASE("retention: the grammar's forms parse to their canonical text") {
  CHECK(Policy("keep").kind() == RetentionPolicy::Kind::kKeep);
  CHECK(Policy(" delete_after_archive ").kind() == RetentionPolicy::Kind::kDeleteAfterArchive);
  CHECK(Policy("delete_after_days:30").ToString() == "delete_after_days:30");
  CHECK(Policy("keep_newest:100").ToString() == "keep_newest:100");
  CHECK(Policy("max_server_bytes:2G").ToString() == "max_server_bytes:2G");
  CHECK(Policy("max_server_bytes:512k").ToString() == "max_server_bytes:512K");
  CHECK(Policy("max_server_bytes:1536K").ToString() == "max_server_bytes:1536K");
  CHECK(Policy("max_server_bytes:1000").ToString() == "max_server_bytes:1000");
  CHECK(Policy("max_server_bytes:1048576").ToString() == "max_server_bytes:1M");
  CHECK(Policy("max_server_bytes:2G , delete_after_days:7,keep_newest:5").ToString() ==
        "delete_after_days:7, keep_newest:5, max_server_bytes:2G");
  CHECK(Policy("keep_newest:5").kind() == RetentionPolicy::Kind::kLimits);
  CHECK(Policy("max_server_bytes:1K").NeedsSizes());
  CHECK_FALSE(Policy("delete_after_days:1").NeedsSizes());
}

TEST_CASE("retention: parse errors name the offending term") {
  CHECK_THAT(ParseError("forever"), Catch::Matchers::Contains("unknown term 'forever'"));
  CHECK_THAT(ParseError("forever"), Catch::Matchers::Contains("delete_after_days:N"));
  CHECK_THAT(ParseError(""), Catch::Matchers::Contains("empty term"));
  CHECK_THAT(ParseError("keep_newest:3,"), Catch::Matchers::Contains("empty term"));
  CHECK_THAT(ParseError("keep, delete_after_days:3"),
             Catch::Matchers::Contains("'keep' cannot be combined"));
  CHECK_THAT(ParseError("delete_after_archive,keep_newest:1"),
             Catch::Matchers::Contains("'delete_after_archive' cannot be combined"));
  CHECK_THAT(ParseError("delete_after_days"),
             Catch::Matchers::Contains("unknown term 'delete_after_days'"));
  CHECK_THAT(ParseError("delete_after_days:0"), Catch::Matchers::Contains("between 1 and"));
  CHECK_THAT(ParseError("delete_after_days:-1"), Catch::Matchers::Contains("positive whole"));
  CHECK_THAT(ParseError("delete_after_days:3d"), Catch::Matchers::Contains("positive whole"));
  CHECK_THAT(ParseError("delete_after_days:99999999999999999999"),
             Catch::Matchers::Contains("positive whole"));
  CHECK_THAT(ParseError("keep_newest:2, keep_newest:3"),
             Catch::Matchers::Contains("'keep_newest' given twice"));
  CHECK_THAT(ParseError("max_server_bytes:2T"),
             Catch::Matchers::Contains("'max_server_bytes:2T': expected a positive size"));
  CHECK_THAT(ParseError("max_server_bytes:G"), Catch::Matchers::Contains("positive size"));
  CHECK_THAT(ParseError("max_server_bytes:0"), Catch::Matchers::Contains("positive size"));
}

TEST_CASE("retention: keep releases nothing, delete_after_archive every archived message") {
  std::vector<RetentionCandidate> m = {Archived(10), NotArchived(10), Archived(10)};
  CHECK(Verdicts(Policy("keep"), m, kT0) ==
        std::vector<Verdict>{Verdict::kKeep, Verdict::kNotArchived, Verdict::kKeep});
  CHECK(Policy("delete_after_archive").Release(m, kT0) == std::vector<size_t>{0, 2});
}

TEST_CASE("retention: delete_after_days counts from archived_at, to the second") {
  RetentionPolicy p = Policy("delete_after_days:30");
  std::vector<RetentionCandidate> m = {Archived(10, kT0), Archived(10, kT0 + 5), NotArchived(10)};
  std::vector<RetentionDecision> early = p.Decide(m, kT0 + 30 * kDay - 1);
  CHECK(early[0].verdict == Verdict::kDeleteLater);
  CHECK(early[0].delete_at == kT0 + 30 * kDay);
  CHECK(early[1].delete_at == kT0 + 5 + 30 * kDay);
  CHECK(early[2].verdict == Verdict::kNotArchived);
  std::vector<RetentionDecision> due = p.Decide(m, kT0 + 30 * kDay);
  CHECK(due[0].verdict == Verdict::kDeleteNow);
  CHECK(due[0].reason == "delete_after_days:30");
  CHECK(due[1].verdict == Verdict::kDeleteLater);
  CHECK(p.Release(m, kT0 + 365 * kDay) == std::vector<size_t>{0, 1});
}

TEST_CASE("retention: keep_newest keeps the last N of the listing, archived or not") {
  RetentionPolicy p = Policy("keep_newest:2");
  std::vector<RetentionCandidate> m = {Archived(1), NotArchived(1), Archived(1), NotArchived(1),
                                       Archived(1)};
  CHECK(Verdicts(p, m, kT0) == std::vector<Verdict>{Verdict::kDeleteNow, Verdict::kNotArchived,
                                                    Verdict::kDeleteNow, Verdict::kNotArchived,
                                                    Verdict::kKeep});
  CHECK(p.Decide(m, kT0)[0].reason == "keep_newest:2");
  CHECK(Policy("keep_newest:5").Release(m, kT0).empty());
  CHECK(Policy("keep_newest:9").Release(m, kT0).empty());
}

TEST_CASE("retention: max_server_bytes releases the oldest archived until the total fits") {
  RetentionPolicy p = Policy("max_server_bytes:1K");
  // 1500 octets in all: the oldest, not archived, cannot go, so the next
  // oldest archived ones do, until at most 1024 remain (700).
  std::vector<RetentionCandidate> m = {NotArchived(300), Archived(200), Archived(200),
                                       Archived(400), Archived(400)};
  CHECK(p.Release(m, kT0) == std::vector<size_t>{1, 2, 3});
  CHECK(p.Decide(m, kT0)[1].reason == "max_server_bytes:1K");
  CHECK(p.Decide(m, kT0)[4].verdict == Verdict::kKeep);
  m[0].octets = 24;  // 1224 in all: one message is enough
  CHECK(p.Release(m, kT0) == std::vector<size_t>{1});
  m[0].octets = 2000;  // never fits while the unarchived one is there: all archived go
  CHECK(p.Release(m, kT0) == std::vector<size_t>{1, 2, 3, 4});
  CHECK(p.Release({Archived(1024)}, kT0).empty());  // "under" is at most SIZE
}

TEST_CASE("retention: combined terms release a message when any of them does") {
  RetentionPolicy p = Policy("delete_after_days:30, max_server_bytes:1000");
  std::vector<RetentionCandidate> m = {Archived(300, kT0), Archived(300, kT0 - 40 * kDay),
                                       Archived(300, kT0), Archived(300, kT0)};
  // 1200 octets: the 40-day-old message goes by age, which already brings
  // the total to 900, so max_server_bytes releases nothing more.
  std::vector<RetentionDecision> d = p.Decide(m, kT0);
  CHECK(d[0].verdict == Verdict::kDeleteLater);
  CHECK(d[1].verdict == Verdict::kDeleteNow);
  CHECK(d[1].reason == "delete_after_days:30");
  CHECK(p.Release(m, kT0) == std::vector<size_t>{1});
  m.push_back(Archived(300, kT0));  // 1500: now the oldest by position goes too
  CHECK(p.Release(m, kT0) == std::vector<size_t>{0, 1});

  RetentionPolicy q = Policy("keep_newest:1, delete_after_days:1");
  std::vector<RetentionCandidate> n = {Archived(1, kT0), Archived(1, kT0 - 2 * kDay)};
  CHECK(q.Release(n, kT0) == std::vector<size_t>{0, 1});  // keep_newest does not protect
}

}  // namespace
}  // namespace popvault
