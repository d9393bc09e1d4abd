#pragma once
/// \file
/// The one way tests wait for something: poll a condition with a deadline, never sleep a
/// fixed time.

#include <chrono>
#include <thread>

namespace pel::testing {

/// Calls `done` until it returns true or `timeout` passes, pausing `pause` between calls (0:
/// only yield), and once more at the deadline; returns whether it held.
template <class F>
bool poll_until(F&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds pause = std::chrono::milliseconds(1)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    else std::this_thread::yield();
  }
  return done();
}

} // namespace pel::testing
