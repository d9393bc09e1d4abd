#include "pel/core/time_format.hpp"

#include <charconv>
#include <cstdio>
#include <cmath>
#include <limits>
#include <string>

namespace pel::core {

namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) noexcept {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool leap(int y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) noexcept {
  static constexpr int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil algorithm).
std::int64_t days_from_civil(int y, int m, int d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Parses `±hh:mm`, `±hhmm` or `±hh` at `s`; the whole of `s` must be consumed.
bool parse_offset_tail(std::string_view s, std::int64_t& off) noexcept {
  if (s.empty() || (s[0] != '+' && s[0] != '-')) return false;
  int sign = s[0] == '-' ? -1 : 1;
  int h = 0, m = 0;
  if (!digits(s, 1, 2, h)) return false;
  if (s.size() == 3) {
  } else if (s.size() == 6 && s[3] == ':') {
    if (!digits(s, 4, 2, m)) return false;
  } else if (s.size() == 5) {
    if (!digits(s, 3, 2, m)) return false;
  } else {
    return false;
  }
  if (h > 23 || m > 59) return false;
  off = sign * (static_cast<std::int64_t>(h) * 3600 + m * 60) * ns_per_s;
  return true;
}

// Parses the date and time part `YYYY-MM-DD?HH:MM:SS[.f{1,9}]` where ? is one of `seps`.
// Returns the position after it in `end` and the UTC-naive ns in `ns`.
bool parse_civil(std::string_view s, std::string_view seps, std::size_t& end,
                 std::int64_t& ns) noexcept {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) ||
      s[7] != '-' || !digits(s, 8, 2, d) || seps.find(s[10]) == std::string_view::npos ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
    return false;
  std::size_t pos = 19;
  std::int64_t frac = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    std::size_t start = pos;
    std::int64_t scale = 100'000'000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (scale > 0) {
        frac += (s[pos] - '0') * scale;
        scale /= 10;
      }
      ++pos;
    }
    if (pos == start) return false;
  }
  std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  ns = secs * ns_per_s + frac;
  end = pos;
  return true;
}

bool scale_int(std::int64_t v, std::int64_t mul, std::int64_t& ns) noexcept {
  if (mul == 1) {
    ns = v;
    return true;
  }
  if (v > std::numeric_limits<std::int64_t>::max() / mul ||
      v < std::numeric_limits<std::int64_t>::min() / mul)
    return false;
  ns = v * mul;
  return true;
}

// Whole and fractional parts apart, so that large epochs keep their sub-unit digits.
bool scale_double(double v, double mul, std::int64_t& ns) noexcept {
  if (!std::isfinite(v) || std::fabs(v * mul) >= 9.2e18) return false;
  double whole = std::trunc(v);
  std::int64_t frac = static_cast<std::int64_t>(std::llround((v - whole) * mul));
  ns = static_cast<std::int64_t>(whole) * static_cast<std::int64_t>(mul) + frac;
  return true;
}

std::int64_t multiplier(time_format f) noexcept {
  switch (f) {
    case time_format::epoch_s: return ns_per_s;
    case time_format::epoch_ms: return 1'000'000;
    case time_format::epoch_us: return 1'000;
    default: return 1;
  }
}

time_format guess_epoch(double magnitude) noexcept {
  if (magnitude < 1e11) return time_format::epoch_s;
  if (magnitude < 1e14) return time_format::epoch_ms;
  if (magnitude < 1e17) return time_format::epoch_us;
  return time_format::epoch_ns;
}

bool epoch_from_int(std::int64_t v, time_format f, std::int64_t& ns) noexcept {
  if (f == time_format::automatic)
    f = guess_epoch(std::fabs(static_cast<double>(v)));
  return scale_int(v, multiplier(f), ns);
}

bool epoch_from_double(double v, time_format f, std::int64_t& ns) noexcept {
  if (!std::isfinite(v)) return false;
  if (f == time_format::automatic) f = guess_epoch(std::fabs(v));
  return scale_double(v, static_cast<double>(multiplier(f)), ns);
}

// A numeric string: an integer or a decimal number. False when not entirely numeric.
bool epoch_from_text(std::string_view s, time_format f, std::int64_t& ns) noexcept {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  std::int64_t i = 0;
  auto r = std::from_chars(b, e, i);
  if (r.ec == std::errc() && r.ptr == e) return epoch_from_int(i, f, ns);
  // from_chars for doubles accepts "inf"/"nan"; epoch_from_double rejects them.
  double d = 0;
  auto rd = std::from_chars(b, e, d);
  if (rd.ec == std::errc() && rd.ptr == e) return epoch_from_double(d, f, ns);
  return false;
}

bool is_epoch(time_format f) noexcept {
  return f == time_format::epoch_s || f == time_format::epoch_ms ||
         f == time_format::epoch_us || f == time_format::epoch_ns;
}

} // namespace

bool parse_time_format(std::string_view name, time_format& out) noexcept {
  if (name == "auto") out = time_format::automatic;
  else if (name == "epoch_s") out = time_format::epoch_s;
  else if (name == "epoch_ms") out = time_format::epoch_ms;
  else if (name == "epoch_us") out = time_format::epoch_us;
  else if (name == "epoch_ns") out = time_format::epoch_ns;
  else if (name == "iso8601") out = time_format::iso8601;
  else if (name == "datetime") out = time_format::datetime;
  else return false;
  return true;
}

std::string_view to_string(time_format f) noexcept {
  switch (f) {
    case time_format::automatic: return "auto";
    case time_format::epoch_s: return "epoch_s";
    case time_format::epoch_ms: return "epoch_ms";
    case time_format::epoch_us: return "epoch_us";
    case time_format::epoch_ns: return "epoch_ns";
    case time_format::iso8601: return "iso8601";
    case time_format::datetime: return "datetime";
  }
  return "?";
}

bool parse_utc_offset(std::string_view tz, std::int64_t& offset_ns) noexcept {
  if (tz == "UTC" || tz == "Z" || tz == "utc" || tz == "GMT") {
    offset_ns = 0;
    return true;
  }
  if (tz.size() > 3 && (tz.substr(0, 3) == "UTC" || tz.substr(0, 3) == "GMT")) tz.remove_prefix(3);
  return parse_offset_tail(tz, offset_ns);
}

bool parse_iso8601(std::string_view text, std::int64_t default_offset_ns,
                   std::int64_t& ns) noexcept {
  std::size_t end = 0;
  std::int64_t local = 0;
  if (!parse_civil(text, "Tt ", end, local)) return false;
  std::string_view zone = text.substr(end);
  std::int64_t off = default_offset_ns;
  if (zone == "Z" || zone == "z") off = 0;
  else if (!zone.empty() && !parse_offset_tail(zone, off)) return false;
  ns = local - off;
  return true;
}

bool parse_datetime(std::string_view text, std::int64_t offset_ns, std::int64_t& ns) noexcept {
  std::size_t end = 0;
  std::int64_t local = 0;
  if (!parse_civil(text, " ", end, local) || end != text.size()) return false;
  ns = local - offset_ns;
  return true;
}

bool parse_event_time(const value& v, time_format f, std::int64_t tz_offset_ns,
                      std::int64_t& ns) noexcept {
  switch (type_of(v)) {
    case value_type::integer:
      if (!is_epoch(f) && f != time_format::automatic) return false;
      return epoch_from_int(std::get<std::int64_t>(v), f, ns);
    case value_type::number:
      if (!is_epoch(f) && f != time_format::automatic) return false;
      return epoch_from_double(std::get<double>(v), f, ns);
    case value_type::string: {
      std::string_view s = std::get<std::string>(v);
      if (is_epoch(f)) return epoch_from_text(s, f, ns);
      if (f == time_format::iso8601) return parse_iso8601(s, tz_offset_ns, ns);
      if (f == time_format::datetime) return parse_datetime(s, tz_offset_ns, ns);
      // automatic
      if (s.size() >= 19 && s[4] == '-') return parse_iso8601(s, tz_offset_ns, ns);
      return epoch_from_text(s, f, ns);
    }
    default: return false;
  }
}

} // namespace pel::core

namespace pel::core {

std::string format_iso8601(std::int64_t ns) {
  // Every int64 of ns lies within the years 1677-2262: no range to check.
  // Floor divisions (no negation, which would overflow at INT64_MIN).
  std::int64_t ms = ns / 1'000'000;
  if (ns % 1'000'000 < 0) --ms;
  std::int64_t days = ms / 86'400'000;
  if (ms % 86'400'000 < 0) --days;
  std::int64_t rest = ms - days * 86'400'000;
  // H. Hinnant's civil_from_days.
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = yoe + era * 400;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[128];  // room for any long long in each field, so the compiler sees no truncation
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(rest / 3'600'000),
                static_cast<long long>(rest / 60'000 % 60), static_cast<long long>(rest / 1000 % 60),
                static_cast<long long>(rest % 1000));
  return buf;
}

} // namespace pel::core
