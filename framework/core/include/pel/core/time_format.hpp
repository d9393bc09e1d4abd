#pragma once
/// \file
/// Parsing of event-time values (epoch numbers, ISO 8601, `YYYY-MM-DD HH:MM:SS`) into
/// nanoseconds since the Unix epoch. Pure functions: no locale, no time-zone database.

#include "pel/core/value.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace pel::core {

/// How an event-time field is written (`event_time.format` in YAML).
enum class time_format : std::uint8_t {
  automatic,  ///< `auto`: by value type and shape (number magnitude, text layout)
  epoch_s,    ///< seconds since the epoch (int, double or numeric string)
  epoch_ms,   ///< milliseconds
  epoch_us,   ///< microseconds
  epoch_ns,   ///< nanoseconds
  iso8601,    ///< `2024-05-01T12:00:00.123Z`, `...+02:00`; no zone means the configured one
  datetime,   ///< `2024-05-01 12:00:00[.fff]` in the configured time zone
};

/// Parses a format name (`auto`, `epoch_s`, ..., `iso8601`, `datetime`); false if unknown.
bool parse_time_format(std::string_view name, time_format& out) noexcept;

/// Name of a format as written in YAML.
std::string_view to_string(time_format f) noexcept;

/// Parses a fixed time zone: `UTC`, `Z`, `+08:00`, `-05:30`, `+0800`, `+08` (also with a
/// `UTC` prefix such as `UTC+02:00`). Stores the offset east of UTC in ns; false otherwise.
bool parse_utc_offset(std::string_view tz, std::int64_t& offset_ns) noexcept;

/// Parses ISO 8601 (`T` or a space between date and time, optional fraction of up to 9
/// digits, `Z` or `±hh:mm`/`±hhmm`; without a zone `default_offset_ns` applies).
bool parse_iso8601(std::string_view text, std::int64_t default_offset_ns,
                   std::int64_t& ns) noexcept;

/// Parses `YYYY-MM-DD HH:MM:SS[.fff]` taken to be in the zone `offset_ns` east of UTC.
bool parse_datetime(std::string_view text, std::int64_t offset_ns, std::int64_t& ns) noexcept;

/// Converts an event-time value to ns since the epoch. False for null, bools, values of the
/// wrong shape for the format, out-of-range dates or numbers that overflow.
bool parse_event_time(const value& v, time_format f, std::int64_t tz_offset_ns,
                      std::int64_t& ns) noexcept;

/// Writes `ns` since the epoch as ISO 8601 UTC with milliseconds: `2024-05-01T12:00:00.123Z`
/// (any int64 of ns falls within the years 1677-2262).
std::string format_iso8601(std::int64_t ns);

/// A compiled event-time setting: format plus time-zone offset, ready for the hot path.
struct time_parser {
  time_format format = time_format::automatic;
  std::int64_t tz_offset_ns = 0;

  /// See `parse_event_time`.
  bool operator()(const value& v, std::int64_t& ns) const noexcept {
    return parse_event_time(v, format, tz_offset_ns, ns);
  }
};

} // namespace pel::core
