#include "pel/core/value.hpp"

#include "pel/core/state_io.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace pel::core {

std::string_view to_string(value_type t) noexcept {
  switch (t) {
    case value_type::null: return "null";
    case value_type::boolean: return "bool";
    case value_type::integer: return "int";
    case value_type::number: return "double";
    case value_type::string: return "string";
  }
  return "?";
}

bool parse_value_type(std::string_view name, value_type& out) noexcept {
  if (name == "null") out = value_type::null;
  else if (name == "bool" || name == "boolean") out = value_type::boolean;
  else if (name == "int" || name == "integer") out = value_type::integer;
  else if (name == "double" || name == "number" || name == "float") out = value_type::number;
  else if (name == "string") out = value_type::string;
  else return false;
  return true;
}

namespace {

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

/// Length of the well-formed UTF-8 sequence at `p[0..n)`, or 0 when it is not one; then
/// `bad` is the length of its maximal subpart (the bytes that start a valid sequence but do
/// not complete it, at least 1), which becomes one U+FFFD.
std::size_t utf8_sequence(const unsigned char* p, std::size_t n, std::size_t& bad) noexcept {
  const unsigned char b = p[0];
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte (Unicode table 3-7)
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    bad = 1;  // a continuation byte, C0, C1 or F5..FF: never valid here
    return 0;
  }
  std::size_t i = 1;
  for (; i < len && i < n; ++i) {
    unsigned char c = p[i];
    if (c < lo || c > hi) break;
    lo = 0x80;
    hi = 0xBF;
  }
  if (i == len) return len;
  bad = i;
  return 0;
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out += '"';
  std::size_t i = 0;
  while (i < n) {
    // Copy the run of bytes that need nothing in one append.
    std::size_t j = i;
    while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\') ++j;
    out.append(s.data() + i, j - i);
    i = j;
    if (i == n) break;
    const unsigned char c = p[i];
    if (c >= 0x80) {
      std::size_t bad = 0;
      std::size_t len = utf8_sequence(p + i, n - i, bad);
      if (len > 0) {
        out.append(s.data() + i, len);
        i += len;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
        i += bad;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
    ++i;
  }
  out += '"';
}

std::string to_text(const value& v) {
  std::string out;
  switch (type_of(v)) {
    case value_type::null: break;
    case value_type::boolean: out = std::get<bool>(v) ? "true" : "false"; break;
    case value_type::integer: out = std::to_string(std::get<std::int64_t>(v)); break;
    case value_type::number: append_double(out, std::get<double>(v)); break;
    case value_type::string: out = std::get<std::string>(v); break;
  }
  return out;
}

void append_json(std::string& out, const value& v) {
  switch (type_of(v)) {
    case value_type::null: out += "null"; break;
    case value_type::boolean: out += std::get<bool>(v) ? "true" : "false"; break;
    case value_type::integer: out += std::to_string(std::get<std::int64_t>(v)); break;
    case value_type::number: {
      double d = std::get<double>(v);
      if (std::isfinite(d)) append_double(out, d);
      else out += "null";  // JSON has no NaN or infinity
      break;
    }
    case value_type::string:
      append_json_string(out, std::get<std::string>(v));
      break;
  }
}

namespace hash_detail {

std::uint64_t stable_hash_other(const value& v) noexcept {
  switch (type_of(v)) {
    case value_type::null: return 0x5bd1e995ULL;
    case value_type::boolean: return std::get<bool>(v) ? mix64(1) : mix64(2);
    case value_type::integer: return mix64(static_cast<std::uint64_t>(std::get<std::int64_t>(v)));
    case value_type::number: {
      double d = std::get<double>(v);
      // Integral doubles hash like the equal integer, so 3 and 3.0 meet in one key group.
      if (d == std::floor(d) && std::fabs(d) < 9.2e18)
        return mix64(static_cast<std::uint64_t>(static_cast<std::int64_t>(d)));
      std::uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      return mix64(bits);
    }
    case value_type::string: {
      const auto& s = std::get<std::string>(v);
      return stable_hash_bytes(s.data(), s.size());
    }
  }
  return 0;
}

} // namespace hash_detail

int compare(const value& a, const value& b) noexcept {
  double x, y;
  bool na = as_number(a, x), nb = as_number(b, y);
  if (na && nb) {
    if (a.index() == 2 && b.index() == 2) {
      auto i = std::get<std::int64_t>(a), j = std::get<std::int64_t>(b);
      return i < j ? -1 : (i > j ? 1 : 0);
    }
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  auto rank = [](const value& v) {
    switch (type_of(v)) {
      case value_type::null: return 0;
      case value_type::boolean: return 1;
      case value_type::integer:
      case value_type::number: return 2;
      case value_type::string: return 3;
    }
    return 4;
  };
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 1) return static_cast<int>(std::get<bool>(a)) - static_cast<int>(std::get<bool>(b));
  if (ra == 3) {
    int c = std::get<std::string>(a).compare(std::get<std::string>(b));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return 0;
}

void state_writer::put_value(const value& v) {
  put<std::uint8_t>(static_cast<std::uint8_t>(v.index()));
  switch (type_of(v)) {
    case value_type::null: break;
    case value_type::boolean: put<std::uint8_t>(std::get<bool>(v)); break;
    case value_type::integer: put(std::get<std::int64_t>(v)); break;
    case value_type::number: put(std::get<double>(v)); break;
    case value_type::string: put_string(std::get<std::string>(v)); break;
  }
}

value state_reader::get_value() {
  switch (static_cast<value_type>(get<std::uint8_t>())) {
    case value_type::null: return {};
    case value_type::boolean: return get<std::uint8_t>() != 0;
    case value_type::integer: return get<std::int64_t>();
    case value_type::number: return get<double>();
    case value_type::string: return get_string();
  }
  throw std::runtime_error("state snapshot holds an unknown value type");
}

} // namespace pel::core
