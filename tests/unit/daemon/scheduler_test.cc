// Scheduler policy with a fake clock (plain time points) and a fake random
// source: intervals, jitter bounds, backoff, LOGIN-DELAY, [AUTH]/[SYS/PERM],
// exclusivity and reloads.
#include "daemon/scheduler.h"

#include <catch2/catch.hpp>

namespace popvault {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Time = Scheduler::Time;

const Time kT0 = Time() + std::chrono::hours(1000);

// Random source returning a fixed value, changeable by the test.
struct FakeRandom {
  double value = 0.5;  // 0.5: no jitter (factor 1.0)
  std::function<double()> Fn() {
    return [this] { return value; };
  }
};

Scheduler::Outcome Result(Status status) { return Scheduler::Outcome{std::move(status)}; }

// Runs one pass of `name` at `now` with `outcome`; requires it to be due.
void Pass(Scheduler& s, const std::string& name, Time now, const Scheduler::Outcome& outcome) {
  std::optional<std::string> due = s.TakeDue(now);
  REQUIRE(due == name);
  s.Finish(name, outcome, now);
}

TEST_CASE("new accounts are due at once, then after their interval", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(60)}}, kT0);
  Pass(s, "a", kT0, Result(Status::OK()));
  CHECK_FALSE(s.TakeDue(kT0 + seconds(59)));
  CHECK(s.NextDue() == kT0 + seconds(60));
  CHECK(s.TakeDue(kT0 + seconds(60)) == "a");
}

TEST_CASE("jitter stays within +-10% of the interval", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(100)}}, kT0);
  r.value = 0.0;  // lowest
  Pass(s, "a", kT0, Result(Status::OK()));
  CHECK(s.NextDue() == kT0 + seconds(90));
  r.value = 0.999999;  // highest
  Pass(s, "a", kT0 + seconds(90), Result(Status::OK()));
  Time next = *s.NextDue();
  CHECK(next > kT0 + seconds(90) + seconds(109));
  CHECK(next <= kT0 + seconds(90) + seconds(110));
}

TEST_CASE("failures back off exponentially up to an hour, success resets", "[scheduler]") {
  CHECK(Scheduler::Backoff(seconds(60), 1) == seconds(120));
  CHECK(Scheduler::Backoff(seconds(60), 3) == seconds(480));
  CHECK(Scheduler::Backoff(seconds(60), 6) == seconds(3600));  // 3840 capped
  CHECK(Scheduler::Backoff(seconds(60), 1000) == seconds(3600));
  // An interval longer than the cap is never shortened by a failure.
  CHECK(Scheduler::Backoff(seconds(7200), 2) == seconds(7200));

  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(60)}}, kT0);
  Time now = kT0;
  for (Status::Code code : {Status::Code::kInUse, Status::Code::kSysTemp, Status::Code::kNetwork}) {
    Pass(s, "a", now, Result(Status(code, "x")));
    now = *s.NextDue();
  }
  CHECK(s.Find("a")->failures == 3);
  CHECK(now - kT0 == seconds(120 + 240 + 480));
  Pass(s, "a", now, Result(Status::OK()));
  CHECK(s.Find("a")->failures == 0);
  CHECK(*s.NextDue() - now == seconds(60));
}

TEST_CASE("[AUTH] and [SYS/PERM] stop polling until a reload", "[scheduler]") {
  for (Status::Code code : {Status::Code::kAuthFailed, Status::Code::kSysPerm}) {
    FakeRandom r;
    Scheduler s(r.Fn());
    s.SetAccounts({{"a", seconds(1)}, {"b", seconds(1)}}, kT0);
    REQUIRE(s.TakeDue(kT0) == "a");
    s.Finish("a", Result(Status(code, "bad password")), kT0);
    CHECK(s.Find("a")->stopped);
    CHECK(s.Find("a")->stop_reason.find("bad password") != std::string::npos);
    CHECK(s.TakeDue(kT0 + std::chrono::hours(24)) == "b");  // the other goes on
    CHECK_FALSE(s.TakeDue(kT0 + std::chrono::hours(24)));
    s.SetAccounts({{"a", seconds(1)}, {"b", seconds(1)}}, kT0 + std::chrono::hours(25));
    CHECK_FALSE(s.Find("a")->stopped);
    CHECK(s.TakeDue(kT0 + std::chrono::hours(25)) == "a");
  }
}

TEST_CASE("a refused login waits at least the announced LOGIN-DELAY", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(1)}}, kT0);
  // The session announced LOGIN-DELAY 300: no login before +300 s, whatever
  // the (1 s) interval says.
  REQUIRE(s.TakeDue(kT0) == "a");
  s.Finish("a", {Status::OK(), seconds(300), kT0}, kT0 + seconds(2));
  CHECK_FALSE(s.TakeDue(kT0 + seconds(299)));
  CHECK(s.NextDue() == kT0 + seconds(300));
  // The server refuses anyway: wait the delay again, not the 2 s backoff.
  Time t = kT0 + seconds(300);
  Pass(s, "a", t, Result(Status(Status::Code::kLoginDelay, "[LOGIN-DELAY]")));
  CHECK(s.NextDue() == t + seconds(300));
}

TEST_CASE("a refused login without an announced delay backs off", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(10)}}, kT0);
  Pass(s, "a", kT0, Result(Status(Status::Code::kLoginDelay, "[LOGIN-DELAY]")));
  CHECK(s.NextDue() == kT0 + seconds(20));
}

TEST_CASE("an account is never handed out twice at once", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(1)}, {"b", seconds(1)}}, kT0);
  std::optional<std::string> first = s.TakeDue(kT0), second = s.TakeDue(kT0);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(*first != *second);
  Time later = kT0 + std::chrono::hours(1);
  CHECK_FALSE(s.TakeDue(later));  // both running, however overdue
  CHECK_FALSE(s.NextDue());
  s.Finish(*first, Result(Status::OK()), later);
  CHECK_FALSE(s.TakeDue(later));
  CHECK(s.TakeDue(later + seconds(1)) == *first);
}

TEST_CASE("the most overdue account goes first", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(10)}, {"b", seconds(5)}}, kT0);
  Pass(s, "a", kT0, Result(Status::OK()));  // a due at +10
  Pass(s, "b", kT0, Result(Status::OK()));  // b due at +5
  CHECK(s.TakeDue(kT0 + seconds(20)) == "b");
  CHECK(s.TakeDue(kT0 + seconds(20)) == "a");
}

TEST_CASE("reload adds, removes and changes accounts", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(600)}, {"b", seconds(600)}}, kT0);
  Pass(s, "a", kT0, Result(Status::OK()));
  REQUIRE(s.TakeDue(kT0) == "b");  // b running during the reload

  Time t = kT0 + seconds(5);
  s.SetAccounts({{"a", seconds(10)}, {"c", seconds(600)}}, t);
  CHECK(s.TakeDue(t) == "c");             // added: due at once
  CHECK(s.NextDue() == t + seconds(10));  // a: shorter interval applies now
  REQUIRE(s.Find("b") != nullptr);        // removed while running...
  s.Finish("b", Result(Status::OK()), t);
  CHECK(s.Find("b") == nullptr);  // ...forgotten when it ends
  CHECK_FALSE(s.TakeDue(t + std::chrono::hours(1)) == "b");
}

TEST_CASE("an account removed and re-added while running stays scheduled", "[scheduler]") {
  FakeRandom r;
  Scheduler s(r.Fn());
  s.SetAccounts({{"a", seconds(60)}}, kT0);
  REQUIRE(s.TakeDue(kT0) == "a");
  s.SetAccounts({}, kT0);
  s.SetAccounts({{"a", seconds(60)}}, kT0);
  s.Finish("a", Result(Status::OK()), kT0);
  REQUIRE(s.Find("a") != nullptr);
  CHECK(s.NextDue() == kT0 + seconds(60));
}

}  // namespace
}  // namespace popvault
