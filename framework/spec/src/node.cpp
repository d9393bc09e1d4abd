#include "pel/spec/node.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace pel::spec {

const node::entry* node::find(std::string_view key) const noexcept {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

const char* node::kind_name() const noexcept {
  switch (type) {
    case kind::null: return "null";
    case kind::scalar: return "scalar";
    case kind::sequence: return "list";
    case kind::map: return "map";
  }
  return "?";
}

namespace {

/// Splits "1.5s" into 1.5 and "s". False when there is no leading number.
bool split_number(std::string_view text, double& number, std::string_view& unit) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) return false;
  std::string num(text.substr(0, i));
  char* end = nullptr;
  number = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !std::isfinite(number)) return false;
  unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return true;
}

} // namespace

bool parse_duration(std::string_view text, std::int64_t& ns) noexcept {
  double n;
  std::string_view unit;
  if (!split_number(text, n, unit)) return false;
  double scale;
  if (unit == "ns") scale = 1;
  else if (unit == "us" || unit == "µs") scale = 1e3;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "s") scale = 1e9;
  else if (unit == "m" || unit == "min") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else if (unit == "d") scale = 86400e9;
  else return false;
  double v = n * scale;
  if (v > 9.2e18) return false;
  ns = static_cast<std::int64_t>(std::llround(v));
  return true;
}

bool parse_bytes(std::string_view text, std::int64_t& bytes) noexcept {
  double n;
  std::string_view unit;
  if (!split_number(text, n, unit)) return false;
  double scale;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else return false;
  double v = n * scale;
  if (v > 9.2e18) return false;
  bytes = static_cast<std::int64_t>(std::llround(v));
  return true;
}

} // namespace pel::spec
