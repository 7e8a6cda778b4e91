// Scheduler: decides when each account is polled next. Pure bookkeeping: it
// never sleeps, never reads a clock and never touches the network, so its
// policy is tested with a fake clock and a fake random source.
//
// Policy, per account:
//   - a new account is due at once; a successful pass schedules the next one
//     after poll_interval with jitter (±10%), so many accounts spread out;
//   - a failed pass backs off: min(interval * 2^failures, max(1 h, interval)),
//     jittered; kAuthFailed and kSysPerm ([AUTH], [SYS/PERM]) stop polling the
//     account until the next SetAccounts (a config reload);
//   - LOGIN-DELAY: a session that announced "LOGIN-DELAY n" makes the next
//     login no earlier than n seconds after this one; a refused login
//     ([LOGIN-DELAY]) waits at least the last announced delay;
//   - an account is handed out to one pass at a time (TakeDue marks it
//     running until Finish), so two sessions never share a mailbox.
//
// Not thread-safe: the daemon calls it under its own mutex.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "popvault/status.h"

namespace popvault {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using Time = Clock::time_point;

  struct AccountSpec {
    std::string name;
    std::chrono::seconds interval{300};
  };

  // What one pass reported back.
  struct Outcome {
    Status status;
    // "LOGIN-DELAY n" from the session's last CAPA; 0 if none or no login.
    std::chrono::seconds login_delay{0};
    Time logged_in{};  // when the login succeeded (meaningful if login_delay > 0)
  };

  struct AccountState {
    std::chrono::seconds interval{300};
    Time due{};
    int failures = 0;                     // consecutive failed passes
    bool running = false;                 // handed out by TakeDue, not yet finished
    bool stopped = false;                 // [AUTH] or [SYS/PERM]: not polled until reload
    bool removed = false;                 // dropped by a reload while running
    std::chrono::seconds login_delay{0};  // last announced LOGIN-DELAY
    Time not_before{};                    // earliest login the server allows
    std::string stop_reason;
  };

  static constexpr std::chrono::seconds kMaxBackoff{3600};

  // `uniform01` returns values in [0, 1); it drives the jitter.
  explicit Scheduler(std::function<double()> uniform01);

  // Replaces the set of accounts (at start and on every reload). New accounts
  // are due at `now`; an account whose interval shrank is due no later than
  // one new interval from now; every stopped account is polled again (the
  // reload may have fixed its password). An account removed while running
  // is forgotten when its pass finishes.
  void SetAccounts(const std::vector<AccountSpec>& accounts, Time now);

  // An account that is due at `now` and not running, marked running; none if
  // there is no such account. The earliest-due account wins.
  std::optional<std::string> TakeDue(Time now);

  // Records the end of the pass TakeDue handed out and schedules the next.
  void Finish(const std::string& name, const Outcome& outcome, Time now);

  // When the next idle account becomes due; none if nothing is scheduled.
  std::optional<Time> NextDue() const;

  // The state of `name`, or null. Valid until the next non-const call.
  const AccountState* Find(const std::string& name) const;

  // The delay a failure count earns, before jitter.
  static std::chrono::milliseconds Backoff(std::chrono::seconds interval, int failures);

 private:
  std::chrono::milliseconds Jitter(std::chrono::milliseconds delay);

  std::function<double()> uniform01_;
  std::map<std::string, AccountState> accounts_;
};

}  // namespace popvault
