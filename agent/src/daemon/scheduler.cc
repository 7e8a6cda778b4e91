#include "daemon/scheduler.h"

#include <algorithm>

namespace popvault {

using std::chrono::milliseconds;
using std::chrono::seconds;

Scheduler::Scheduler(std::function<double()> uniform01) : uniform01_(std::move(uniform01)) {}

void Scheduler::SetAccounts(const std::vector<AccountSpec>& accounts, Time now) {
  std::map<std::string, seconds> wanted;
  for (const AccountSpec& a : accounts) wanted[a.name] = a.interval;
  for (auto it = accounts_.begin(); it != accounts_.end();) {
    AccountState& state = it->second;
    if (wanted.count(it->first)) {
      ++it;
    } else if (state.running) {
      state.removed = true;  // Finish drops it
      ++it;
    } else {
      it = accounts_.erase(it);
    }
  }
  for (const auto& [name, interval] : wanted) {
    auto [it, added] = accounts_.try_emplace(name);
    AccountState& state = it->second;
    if (added) state.due = now;
    if (!added && interval < state.interval) state.due = std::min(state.due, now + interval);
    if (state.stopped) {
      state.stopped = false;
      state.stop_reason.clear();
      state.failures = 0;
      state.due = now;
    }
    state.interval = interval;
    state.removed = false;
  }
}

std::optional<std::string> Scheduler::TakeDue(Time now) {
  const std::string* best = nullptr;
  Time best_due{};
  for (const auto& [name, state] : accounts_) {
    if (state.running || state.stopped || state.removed) continue;
    Time due = std::max(state.due, state.not_before);
    if (due <= now && (best == nullptr || due < best_due)) {
      best = &name;
      best_due = due;
    }
  }
  if (best == nullptr) return std::nullopt;
  accounts_[*best].running = true;
  return *best;
}

void Scheduler::Finish(const std::string& name, const Outcome& outcome, Time now) {
  auto it = accounts_.find(name);
  if (it == accounts_.end()) return;
  AccountState& state = it->second;
  state.running = false;
  if (state.removed) {
    accounts_.erase(it);
    return;
  }
  if (outcome.login_delay > seconds(0)) {
    state.login_delay = outcome.login_delay;
    state.not_before = outcome.logged_in + outcome.login_delay;
  }
  switch (outcome.status.code()) {
    case Status::Code::kOk:
    case Status::Code::kAborted:  // shutdown: no failure of the account's
      state.failures = 0;
      state.due = now + Jitter(state.interval);
      return;
    case Status::Code::kAuthFailed:
    case Status::Code::kSysPerm:
      state.stopped = true;
      state.stop_reason = outcome.status.ToString();
      return;
    case Status::Code::kLoginDelay:
      ++state.failures;
      state.due = now + std::max<milliseconds>(Jitter(Backoff(state.interval, state.failures)),
                                               state.login_delay);
      return;
    default:  // [IN-USE], [SYS/TEMP], network, storage: try again later
      ++state.failures;
      state.due = now + Jitter(Backoff(state.interval, state.failures));
      return;
  }
}

std::optional<Scheduler::Time> Scheduler::NextDue() const {
  std::optional<Time> next;
  for (const auto& [name, state] : accounts_) {
    if (state.running || state.stopped || state.removed) continue;
    Time due = std::max(state.due, state.not_before);
    if (!next || due < *next) next = due;
  }
  return next;
}

const Scheduler::AccountState* Scheduler::Find(const std::string& name) const {
  auto it = accounts_.find(name);
  return it == accounts_.end() ? nullptr : &it->second;
}

milliseconds Scheduler::Backoff(seconds interval, int failures) {
  seconds cap = std::max(kMaxBackoff, interval);
  seconds delay = interval;
  // Doubling stops at the cap, so no overflow however long it keeps failing.
  for (int i = 0; i < failures && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

milliseconds Scheduler::Jitter(milliseconds delay) {
  double factor = 0.9 + 0.2 * uniform01_();
  return milliseconds(static_cast<int64_t>(static_cast<double>(delay.count()) * factor));
}

}  // namespace popvault
