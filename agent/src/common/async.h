// Async: std::async that does not throw when no thread can be started.
#pragma once

#include <future>
#include <system_error>

namespace popvault {

// Runs fn on a thread of its own or, if none can be started, when its result
// is asked for. The future's destructor waits for a started thread.
template <typename Fn>
auto Async(Fn fn) -> std::future<decltype(fn())> {
  try {
    return std::async(std::launch::async, fn);
  } catch (const std::system_error&) {
    return std::async(std::launch::deferred, fn);
  }
}

}  // namespace popvault
