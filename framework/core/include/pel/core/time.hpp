#pragma once
/// \file
/// Event time and processing time as distinct types so they cannot be mixed up.

#include <chrono>
#include <cstdint>
#include <limits>

namespace pel::core {

/// Event time: nanoseconds since the Unix epoch, as carried by records and watermarks.
struct event_time {
  std::int64_t ns = 0;

  static constexpr event_time min() noexcept { return {std::numeric_limits<std::int64_t>::min()}; }
  static constexpr event_time max() noexcept { return {std::numeric_limits<std::int64_t>::max()}; }

  friend constexpr bool operator==(event_time a, event_time b) noexcept { return a.ns == b.ns; }
  friend constexpr bool operator!=(event_time a, event_time b) noexcept { return a.ns != b.ns; }
  friend constexpr bool operator<(event_time a, event_time b) noexcept { return a.ns < b.ns; }
  friend constexpr bool operator<=(event_time a, event_time b) noexcept { return a.ns <= b.ns; }
  friend constexpr bool operator>(event_time a, event_time b) noexcept { return a.ns > b.ns; }
  friend constexpr bool operator>=(event_time a, event_time b) noexcept { return a.ns >= b.ns; }
};

/// Processing time: the wall clock of the machine, nanoseconds since the Unix epoch.
struct processing_time {
  std::int64_t ns = 0;
  static processing_time now() noexcept {
    using namespace std::chrono;
    return {duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count()};
  }
};

/// Steady-clock nanoseconds, for latency measurement inside one process.
inline std::int64_t steady_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace pel::core
