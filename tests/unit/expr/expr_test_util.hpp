#pragma once
// Shared helpers for the expression tests: one schema and a way to evaluate text on one row.

#include "pel/expr/expression.hpp"

#include <catch2/catch.hpp>

#include <vector>

namespace pel::expr::test {

using core::value;
using core::value_type;

/// symbol:string, price:double, qty:int, note (untyped), `PM2.5`:double, flag:bool
inline const core::schema& sample_schema() {
  static const core::schema s({{"symbol", value_type::string},
                               {"price", value_type::number},
                               {"qty", value_type::integer},
                               {"note", std::nullopt},
                               {"PM2.5", value_type::number},
                               {"flag", value_type::boolean}});
  return s;
}

inline std::vector<value> sample_row() {
  return {std::string("BTC-USD"), 100.5, std::int64_t{3}, value{}, 12.25, true};
}

/// Compiles `text` against the sample schema and evaluates it on the sample row.
inline value ev(const std::string& text, std::int64_t t = 1'000) {
  auto row = sample_row();
  return compile(text, sample_schema()).eval(row.data(), t);
}

inline value I(std::int64_t i) { return value{i}; }
inline value D(double d) { return value{d}; }
inline value S(const char* s) { return value{std::string(s)}; }
inline value B(bool b) { return value{b}; }
inline const value N{};

/// The offset of a parse_error thrown by compiling `text`, or npos.
inline std::size_t error_offset(const std::string& text) {
  try {
    compile(text, sample_schema());
  } catch (const parse_error& e) {
    return e.offset;
  }
  return std::string::npos;
}

} // namespace pel::expr::test
