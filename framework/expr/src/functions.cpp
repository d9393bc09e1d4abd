// The built-in functions. Each gets its arguments already evaluated; null arguments have
// already produced a null result for the functions marked null_in_null_out.

#include "nodes.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace pel::expr {

using core::value;
using core::value_type;

namespace {

using args_t = const value* const*;
using type_t = std::optional<value_type>;

double need_number(const value& v, const char* what = "a number") {
  double d;
  if (!core::as_number(v, d)) throw eval_error(std::string("needs ") + what + ", got " + describe(v));
  return d;
}

std::int64_t need_int(const value& v, const char* what) {
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  if (auto d = std::get_if<double>(&v); d && std::floor(*d) == *d && std::fabs(*d) < 9.2e18)
    return static_cast<std::int64_t>(*d);
  throw eval_error(std::string("needs a whole number for ") + what + ", got " + describe(v));
}

const std::string& need_string(const value& v) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  throw eval_error("needs a string, got " + describe(v) + " (convert it with string())");
}

void put_double(double d, value& out) {
  if (std::isfinite(d)) out = d;
  else out = std::monostate{};
}

// --- result types ---------------------------------------------------------------------------

type_t t_bool(const std::vector<node_ptr>&) { return value_type::boolean; }
type_t t_int(const std::vector<node_ptr>&) { return value_type::integer; }
type_t t_double(const std::vector<node_ptr>&) { return value_type::number; }
type_t t_string(const std::vector<node_ptr>&) { return value_type::string; }
type_t t_first(const std::vector<node_ptr>& a) {
  const auto t = a[0]->type;
  return t == value_type::integer || t == value_type::number ? t : std::nullopt;
}
type_t t_same(const std::vector<node_ptr>& a) {
  type_t t;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i == 0) t = a[i]->type;
    else if (a[i]->type != t) return std::nullopt;
  }
  return t;
}
type_t t_round(const std::vector<node_ptr>& a) {
  if (a.size() == 1 && a[0]->type == value_type::integer) return value_type::integer;
  if (a[0]->type == value_type::integer || a[0]->type == value_type::number) return value_type::number;
  return std::nullopt;
}

// --- math ---------------------------------------------------------------------------------

void f_abs(args_t a, std::size_t, value& out) {
  if (auto i = std::get_if<std::int64_t>(a[0])) {
    if (*i == std::numeric_limits<std::int64_t>::min()) out = std::monostate{};
    else out = *i < 0 ? -*i : *i;
    return;
  }
  out = std::fabs(need_number(*a[0]));
}

void f_round(args_t a, std::size_t n, value& out) {
  if (n == 1) {
    if (auto i = std::get_if<std::int64_t>(a[0])) {
      out = *i;
      return;
    }
    put_double(std::round(need_number(*a[0])), out);
    return;
  }
  double x = need_number(*a[0]);
  std::int64_t digits = need_int(*a[1], "digits");
  if (digits > 15 || digits < -15) throw eval_error("digits must be between -15 and 15");
  double scale = std::pow(10.0, static_cast<double>(digits));
  put_double(std::round(x * scale) / scale, out);
}

void f_floor(args_t a, std::size_t, value& out) {
  if (auto i = std::get_if<std::int64_t>(a[0])) out = *i;
  else put_double(std::floor(need_number(*a[0])), out);
}

void f_ceil(args_t a, std::size_t, value& out) {
  if (auto i = std::get_if<std::int64_t>(a[0])) out = *i;
  else put_double(std::ceil(need_number(*a[0])), out);
}

void f_sqrt(args_t a, std::size_t, value& out) { put_double(std::sqrt(need_number(*a[0])), out); }

void f_ln(args_t a, std::size_t, value& out) {
  double x = need_number(*a[0]);
  if (x <= 0) out = std::monostate{};
  else put_double(std::log(x), out);
}

void f_log10(args_t a, std::size_t, value& out) {
  double x = need_number(*a[0]);
  if (x <= 0) out = std::monostate{};
  else put_double(std::log10(x), out);
}

void f_exp(args_t a, std::size_t, value& out) { put_double(std::exp(need_number(*a[0])), out); }

void f_pow(args_t a, std::size_t, value& out) {
  put_double(std::pow(need_number(*a[0]), need_number(*a[1])), out);
}

template <bool is_max>
void f_minmax(args_t a, std::size_t n, value& out) {
  const value* best = a[0];
  for (std::size_t i = 0; i < n; ++i) {
    const auto t = core::type_of(*a[i]);
    if (t != value_type::integer && t != value_type::number && t != value_type::string)
      throw eval_error("needs numbers or strings, got " + describe(*a[i]));
    if (i == 0) continue;
    const bool num_a = t != value_type::string;
    const bool num_b = core::type_of(*best) != value_type::string;
    if (num_a != num_b)
      throw eval_error("cannot compare " + describe(*best) + " with " + describe(*a[i]));
    int c = core::compare(*a[i], *best);
    if (is_max ? c > 0 : c < 0) best = a[i];
  }
  out = *best;
}

// --- strings ------------------------------------------------------------------------------

void f_lower(args_t a, std::size_t, value& out) {
  std::string s = need_string(*a[0]);
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  out = std::move(s);
}

void f_upper(args_t a, std::size_t, value& out) {
  std::string s = need_string(*a[0]);
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  out = std::move(s);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trimmed(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

void f_trim(args_t a, std::size_t, value& out) {
  out = std::string(trimmed(need_string(*a[0])));
}

void f_length(args_t a, std::size_t, value& out) {
  out = static_cast<std::int64_t>(need_string(*a[0]).size());
}

void f_substr(args_t a, std::size_t n, value& out) {
  const std::string& s = need_string(*a[0]);
  const auto size = static_cast<std::int64_t>(s.size());
  std::int64_t start = need_int(*a[1], "start");
  if (start < 0) start = std::max<std::int64_t>(0, size + start);
  if (start > size) start = size;
  std::int64_t len = size - start;
  if (n == 3) len = std::clamp<std::int64_t>(need_int(*a[2], "length"), 0, size - start);
  out = s.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(len));
}

void f_contains(args_t a, std::size_t, value& out) {
  out = need_string(*a[0]).find(need_string(*a[1])) != std::string::npos;
}

void f_starts_with(args_t a, std::size_t, value& out) {
  const auto& s = need_string(*a[0]);
  const auto& p = need_string(*a[1]);
  out = s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

void f_ends_with(args_t a, std::size_t, value& out) {
  const auto& s = need_string(*a[0]);
  const auto& p = need_string(*a[1]);
  out = s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

void f_replace(args_t a, std::size_t, value& out) {
  const auto& s = need_string(*a[0]);
  const auto& from = need_string(*a[1]);
  const auto& to = need_string(*a[2]);
  if (from.empty()) {
    out = s;
    return;
  }
  std::size_t hits = 0;
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + from.size())) ++hits;
  if (to.size() > from.size()) {
    std::size_t grow = 0;
    if (__builtin_mul_overflow(hits, to.size() - from.size(), &grow) ||
        __builtin_add_overflow(grow, s.size(), &grow))
      grow = std::numeric_limits<std::size_t>::max();
    check_string_size(grow);
  }
  std::string r;
  r.reserve(s.size());
  std::size_t pos = 0;
  while (true) {
    auto hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    r.append(s, pos, hit - pos);
    r += to;
    pos = hit + from.size();
  }
  r.append(s, pos, std::string::npos);
  out = std::move(r);
}

void append_text(std::string& out, const value& v) {
  if (auto s = std::get_if<std::string>(&v)) out += *s;
  else out += core::to_text(v);
}

void f_concat(args_t a, std::size_t n, value& out) {
  std::string r;
  for (std::size_t i = 0; i < n; ++i) {
    append_text(r, *a[i]);
    check_string_size(r.size());
  }
  out = std::move(r);
}

// --- conversions --------------------------------------------------------------------------

bool parse_int_text(std::string_view s, std::int64_t& v) {
  s = trimmed(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_double_text(std::string_view s, double& v) {
  s = trimmed(s);
  if (s.empty()) return false;
  std::string tmp(s);  // strtod needs a terminated string
  char* end = nullptr;
  v = std::strtod(tmp.c_str(), &end);
  return end == tmp.c_str() + tmp.size() && std::isfinite(v);
}

bool double_to_int(double d, std::int64_t& v) {
  if (!std::isfinite(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18) return false;
  v = static_cast<std::int64_t>(d);  // truncates toward zero
  return true;
}

void f_int(args_t a, std::size_t, value& out) {
  const value& x = *a[0];
  switch (core::type_of(x)) {
    case value_type::integer: out = x; return;
    case value_type::boolean: out = static_cast<std::int64_t>(std::get<bool>(x)); return;
    case value_type::number: {
      std::int64_t v;
      if (double_to_int(std::get<double>(x), v)) out = v;
      else out = std::monostate{};
      return;
    }
    case value_type::string: {
      std::int64_t v;
      double d;
      if (parse_int_text(std::get<std::string>(x), v)) out = v;
      else if (parse_double_text(std::get<std::string>(x), d) && double_to_int(d, v)) out = v;
      else throw eval_error("cannot convert " + describe(x) + " to int (parse_int() gives null instead)");
      return;
    }
    case value_type::null: out = std::monostate{}; return;
  }
}

void f_double(args_t a, std::size_t, value& out) {
  const value& x = *a[0];
  switch (core::type_of(x)) {
    case value_type::integer: out = static_cast<double>(std::get<std::int64_t>(x)); return;
    case value_type::number: out = x; return;
    case value_type::boolean: out = std::get<bool>(x) ? 1.0 : 0.0; return;
    case value_type::string: {
      double d;
      if (!parse_double_text(std::get<std::string>(x), d))
        throw eval_error("cannot convert " + describe(x) + " to double (parse_double() gives null instead)");
      out = d;
      return;
    }
    case value_type::null: out = std::monostate{}; return;
  }
}

void f_string(args_t a, std::size_t, value& out) {
  if (std::holds_alternative<std::string>(*a[0])) out = *a[0];
  else out = core::to_text(*a[0]);
}

void f_bool(args_t a, std::size_t, value& out) {
  const value& x = *a[0];
  switch (core::type_of(x)) {
    case value_type::boolean: out = x; return;
    case value_type::integer: out = std::get<std::int64_t>(x) != 0; return;
    case value_type::number: out = std::get<double>(x) != 0.0; return;
    case value_type::string: {
      std::string s(trimmed(std::get<std::string>(x)));
      for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (s == "true" || s == "1" || s == "yes") out = true;
      else if (s == "false" || s == "0" || s == "no") out = false;
      else throw eval_error("cannot convert " + describe(x) + " to bool");
      return;
    }
    case value_type::null: out = std::monostate{}; return;
  }
}

void f_parse_int(args_t a, std::size_t, value& out) {
  const value& x = *a[0];
  std::int64_t v;
  if (std::holds_alternative<std::int64_t>(x)) out = x;
  else if (auto s = std::get_if<std::string>(&x); s && parse_int_text(*s, v)) out = v;
  else out = std::monostate{};
}

void f_parse_double(args_t a, std::size_t, value& out) {
  const value& x = *a[0];
  double d;
  if (auto i = std::get_if<std::int64_t>(&x)) out = static_cast<double>(*i);
  else if (std::holds_alternative<double>(x)) out = x;
  else if (auto s = std::get_if<std::string>(&x); s && parse_double_text(*s, d)) out = d;
  else out = std::monostate{};
}

// --- time ---------------------------------------------------------------------------------

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12, d 1..31), counting
/// whole 400-year eras from 0000-03-01 so that leap days fall at the end of each year.
std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;                                  // 0..399
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // 0..365
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          // 0..146096
  return era * 146097 + doe - 719468;
}

bool is_leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/// datetime(year, month, day[, hour[, minute[, second]]]): epoch milliseconds of that UTC
/// civil time; null when a part is out of range (year 1..9999, real calendar days).
void f_datetime(args_t a, std::size_t n, value& out) {
  static const char* const names[] = {"year", "month", "day", "hour", "minute", "second"};
  std::int64_t part[6] = {0, 1, 1, 0, 0, 0};
  for (std::size_t i = 0; i < n; ++i) part[i] = need_int(*a[i], names[i]);
  static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const auto [y, mo, d, h, mi, s] = part;
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
      s < 0 || s > 59) {
    out = std::monostate{};
    return;
  }
  const std::int64_t last = month_days[mo - 1] + (mo == 2 && is_leap(y) ? 1 : 0);
  if (d > last) {
    out = std::monostate{};
    return;
  }
  out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60'000 + s * 1000;
}

} // namespace

const std::vector<function_def>& functions() {
  static const std::vector<function_def> table = {
      {"abs", 1, 1, "abs(x)", true, f_abs, t_first},
      {"round", 1, 2, "round(x[, digits])", true, f_round, t_round},
      {"floor", 1, 1, "floor(x)", true, f_floor, t_first},
      {"ceil", 1, 1, "ceil(x)", true, f_ceil, t_first},
      {"sqrt", 1, 1, "sqrt(x)", true, f_sqrt, t_double},
      {"ln", 1, 1, "ln(x)", true, f_ln, t_double},
      {"log", 1, 1, "log(x)", true, f_ln, t_double},
      {"log10", 1, 1, "log10(x)", true, f_log10, t_double},
      {"exp", 1, 1, "exp(x)", true, f_exp, t_double},
      {"pow", 2, 2, "pow(x, y)", true, f_pow, t_double},
      {"min", 1, -1, "min(x, ...)", true, f_minmax<false>, t_same},
      {"max", 1, -1, "max(x, ...)", true, f_minmax<true>, t_same},
      {"lower", 1, 1, "lower(s)", true, f_lower, t_string},
      {"upper", 1, 1, "upper(s)", true, f_upper, t_string},
      {"trim", 1, 1, "trim(s)", true, f_trim, t_string},
      {"length", 1, 1, "length(s)", true, f_length, t_int},
      {"substr", 2, 3, "substr(s, start[, length])", true, f_substr, t_string},
      {"contains", 2, 2, "contains(s, part)", true, f_contains, t_bool},
      {"starts_with", 2, 2, "starts_with(s, prefix)", true, f_starts_with, t_bool},
      {"ends_with", 2, 2, "ends_with(s, suffix)", true, f_ends_with, t_bool},
      {"replace", 3, 3, "replace(s, from, to)", true, f_replace, t_string},
      {"concat", 1, -1, "concat(x, ...)", true, f_concat, t_string},
      {"int", 1, 1, "int(x)", true, f_int, t_int},
      {"double", 1, 1, "double(x)", true, f_double, t_double},
      {"string", 1, 1, "string(x)", true, f_string, t_string},
      {"bool", 1, 1, "bool(x)", true, f_bool, t_bool},
      {"parse_int", 1, 1, "parse_int(s)", true, f_parse_int, t_int},
      {"parse_double", 1, 1, "parse_double(s)", true, f_parse_double, t_double},
      {"datetime", 3, 6, "datetime(year, month, day[, hour[, minute[, second]]])", true, f_datetime,
       t_int},
  };
  return table;
}

} // namespace pel::expr
