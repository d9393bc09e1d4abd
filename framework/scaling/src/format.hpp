#pragma once
/// \file
/// Number formatting for the decisions' `reason` and `inputs` (private to pel::scaling).

#include <cmath>
#include <cstdio>
#include <string>

namespace pel::scaling {

/// `v` with `decimals` digits after the point ("0.70", "4.6").
inline std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// For `key=value` pairs: whole numbers from 100 up ("41213"), else three significant digits
/// ("0.5", "12.9"); "unknown" for a negative value (the samples' mark for unknown).
inline std::string plain(double v) {
  if (v < 0) return "unknown";
  if (v >= 100) return fixed(std::round(v), 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// For people: rates rounded to three significant digits with thousands separators
/// ("41,200", "12,900", "950", "2.5").
inline std::string grouped(double v) {
  if (!(v >= 100)) return plain(v < 0 ? 0 : v);
  const double magnitude = std::pow(10.0, std::floor(std::log10(v)) - 2);
  const auto whole = static_cast<long long>(std::round(v / magnitude) * magnitude);
  std::string digits = std::to_string(whole);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace pel::scaling
