// Every built-in function.

#include "expr_test_util.hpp"

#include "pel/core/time.hpp"
#include "pel/core/time_format.hpp"

#include <cmath>
#include <cstdio>

using namespace pel::expr;
using namespace pel::expr::test;
using Catch::Matchers::Contains;

TEST_CASE("coalesce and if", "[expr][functions]") {
  CHECK(ev("coalesce(note, qty, 9)") == I(3));
  CHECK(ev("coalesce(1)") == I(1));
  CHECK(ev("coalesce(null, null, 'x')") == S("x"));
  CHECK(ev("if(qty > 2, 'a', 'b')") == S("a"));
  CHECK(ev("if(qty > 5, 'a', 'b')") == S("b"));
  CHECK(ev("IF(true, 1, 2)") == I(1));  // names are case-insensitive
}

TEST_CASE("math functions", "[expr][functions]") {
  CHECK(ev("abs(-3)") == I(3));
  CHECK(ev("abs(-2.5)") == D(2.5));
  CHECK(ev("abs(-9223372036854775808)") == N);
  CHECK(ev("round(2.5)") == D(3.0));
  CHECK(ev("round(-2.5)") == D(-3.0));
  CHECK(ev("round(7)") == I(7));
  CHECK(ev("round(3.14159, 2)") == D(3.14));
  CHECK(ev("round(1234, -2)") == D(1200.0));
  CHECK(ev("floor(2.7)") == D(2.0));
  CHECK(ev("floor(-2.2)") == D(-3.0));
  CHECK(ev("floor(4)") == I(4));
  CHECK(ev("ceil(2.2)") == D(3.0));
  CHECK(ev("ceil(4)") == I(4));
  CHECK(ev("sqrt(16)") == D(4.0));
  CHECK(ev("sqrt(-1)") == N);
  CHECK(ev("ln(1)") == D(0.0));
  CHECK(ev("log(0)") == N);
  CHECK(ev("log10(1000)") == D(3.0));
  CHECK(ev("log10(-1)") == N);
  CHECK(ev("exp(0)") == D(1.0));
  CHECK(ev("exp(100000)") == N);
  CHECK(ev("pow(2, 10)") == D(1024.0));
  CHECK(ev("min(3, 1, 2)") == I(1));
  CHECK(ev("max(3, 1.5, 2)") == I(3));
  CHECK(ev("min(2, 1.5)") == D(1.5));
  CHECK(ev("max('apple', 'pear')") == S("pear"));
  CHECK(ev("max(qty)") == I(3));
  REQUIRE_THROWS_WITH(ev("sqrt(symbol)"), Contains("sqrt: needs a number, got string"));
  REQUIRE_THROWS_WITH(ev("min(1, 'a')"), Contains("min: cannot compare int 1 with string"));
  REQUIRE_THROWS_WITH(ev("round(1.5, 0.5)"), Contains("round: needs a whole number for digits"));
}

TEST_CASE("string functions", "[expr][functions]") {
  CHECK(ev("lower(symbol)") == S("btc-usd"));
  CHECK(ev("upper('aBc')") == S("ABC"));
  CHECK(ev("trim('  a b \\t')") == S("a b"));
  CHECK(ev("length(symbol)") == I(7));
  CHECK(ev("length('')") == I(0));
  CHECK(ev("substr(symbol, 4)") == S("USD"));
  CHECK(ev("substr(symbol, 0, 3)") == S("BTC"));
  CHECK(ev("substr(symbol, -3)") == S("USD"));
  CHECK(ev("substr(symbol, 5, 100)") == S("SD"));
  CHECK(ev("substr(symbol, 100)") == S(""));
  CHECK(ev("substr(symbol, 1, -1)") == S(""));
  CHECK(ev("contains(symbol, '-')") == B(true));
  CHECK(ev("contains(symbol, 'x')") == B(false));
  CHECK(ev("starts_with(symbol, 'BTC')") == B(true));
  CHECK(ev("starts_with('a', 'abc')") == B(false));
  CHECK(ev("ends_with(symbol, 'USD')") == B(true));
  CHECK(ev("ends_with(symbol, 'EUR')") == B(false));
  CHECK(ev("replace(symbol, '-', '/')") == S("BTC/USD"));
  CHECK(ev("replace('aaa', 'a', 'bb')") == S("bbbbbb"));
  CHECK(ev("replace('abc', '', 'x')") == S("abc"));
  CHECK(ev("concat(symbol, ':', qty, ':', price, ':', flag)") == S("BTC-USD:3:100.5:true"));
  CHECK(ev("concat('a')") == S("a"));
  CHECK(ev("concat('a', 'b', 'c', 'd', 'e', 'f')") == S("abcdef"));  // more than 4 arguments
  REQUIRE_THROWS_WITH(ev("lower(qty)"), "lower: needs a string, got int 3 (convert it with string()) in 'lower(qty)'");
  REQUIRE_THROWS_WITH(ev("length(qty)"), Contains("needs a string"));
}

TEST_CASE("conversions", "[expr][functions]") {
  CHECK(ev("int(3.9)") == I(3));
  CHECK(ev("int(-3.9)") == I(-3));
  CHECK(ev("int('42')") == I(42));
  CHECK(ev("int(' 42 ')") == I(42));
  CHECK(ev("int('4.5')") == I(4));
  CHECK(ev("int(true)") == I(1));
  CHECK(ev("int(1e300)") == N);
  REQUIRE_THROWS_WITH(ev("int('abc')"), Contains("cannot convert string \"abc\" to int"));
  CHECK(ev("double(3)") == D(3.0));
  CHECK(ev("double('2.5')") == D(2.5));
  CHECK(ev("double(false)") == D(0.0));
  REQUIRE_THROWS_AS(ev("double('x')"), eval_error);
  CHECK(ev("string(qty)") == S("3"));
  CHECK(ev("string(price)") == S("100.5"));
  CHECK(ev("string(flag)") == S("true"));
  CHECK(ev("string('s')") == S("s"));
  CHECK(ev("bool(1)") == B(true));
  CHECK(ev("bool(0.0)") == B(false));
  CHECK(ev("bool('TRUE')") == B(true));
  CHECK(ev("bool('no')") == B(false));
  REQUIRE_THROWS_AS(ev("bool('maybe')"), eval_error);
  CHECK(ev("parse_int('17')") == I(17));
  CHECK(ev("parse_int('-17')") == I(-17));
  CHECK(ev("parse_int('17x')") == N);
  CHECK(ev("parse_int('')") == N);
  CHECK(ev("parse_int(5)") == I(5));
  CHECK(ev("parse_double('1.25')") == D(1.25));
  CHECK(ev("parse_double('1e2')") == D(100.0));
  CHECK(ev("parse_double('abc')") == N);
  CHECK(ev("parse_double(2)") == D(2.0));
}

TEST_CASE("event_time and now_ns", "[expr][functions]") {
  CHECK(ev("event_time()", 123456789) == I(123456789));
  CHECK(ev("event_time() / 1000", 5000) == I(5));
  auto before = pel::core::processing_time::now().ns;
  auto v = ev("now_ns()");
  auto after = pel::core::processing_time::now().ns;
  REQUIRE(std::holds_alternative<std::int64_t>(v));
  CHECK(std::get<std::int64_t>(v) >= before);
  CHECK(std::get<std::int64_t>(v) <= after);
  REQUIRE_THROWS_WITH(compile("event_time(1)", sample_schema()), Contains("takes 0 arguments"));
}

TEST_CASE("datetime builds epoch milliseconds from civil UTC parts", "[expr][functions][datetime]") {
  CHECK(ev("datetime(1970, 1, 1)") == I(0));
  CHECK(ev("datetime(2013, 3, 1)") == I(1'362'096'000'000));
  CHECK(ev("datetime(2000, 2, 29, 12, 34, 56)") == I(951'827'696'000));
  CHECK(ev("datetime(1969, 12, 31, 23, 59, 59)") == I(-1'000));
  CHECK(ev("datetime(1, 1, 1)") == I(-62'135'596'800'000));
  CHECK(ev("datetime(9999, 12, 31, 23, 59, 59)") == I(253'402'300'799'000));
  CHECK(ev("datetime(2013, 3, 1, 8) - 8 * 3600 * 1000") == I(1'362'096'000'000));
  CHECK(ev("datetime(2013.0, 3, qty)") == I(1'362'096'000'000 + 2 * 86'400'000));
  CHECK(compile("datetime(2013, 3, qty)", sample_schema()).result_type() == value_type::integer);

  // Null in, null out; out-of-range parts give null.
  CHECK(ev("datetime(2013, 3, note)") == N);
  CHECK(ev("datetime(2013, 2, 29)") == N);  // not a leap year
  CHECK(ev("datetime(2012, 2, 29)") == I(1'330'473'600'000));
  CHECK(ev("datetime(1900, 2, 29)") == N);
  CHECK(ev("datetime(2013, 4, 31)") == N);
  CHECK(ev("datetime(2013, 13, 1)") == N);
  CHECK(ev("datetime(2013, 0, 1)") == N);
  CHECK(ev("datetime(2013, 1, 0)") == N);
  CHECK(ev("datetime(2013, 1, 1, 24)") == N);
  CHECK(ev("datetime(2013, 1, 1, 0, 60)") == N);
  CHECK(ev("datetime(2013, 1, 1, 0, 0, -1)") == N);
  CHECK(ev("datetime(0, 1, 1)") == N);
  CHECK(ev("datetime(10000, 1, 1)") == N);

  // Not whole numbers: an error, as for the other functions taking whole numbers.
  REQUIRE_THROWS_WITH(ev("datetime(symbol, 1, 1)"), Contains("datetime: needs a whole number for year"));
  REQUIRE_THROWS_WITH(ev("datetime(2013, 1, 1.5)"), Contains("needs a whole number for day"));
  // Arity is checked at compile time.
  CHECK(error_offset("datetime(2013, 3)") != std::string::npos);
  CHECK(error_offset("datetime(2013, 3, 1, 0, 0, 0, 0)") != std::string::npos);
}

TEST_CASE("datetime agrees with the event-time parser of core on every day of 1999-2025",
          "[expr][functions][datetime]") {
  const pel::core::schema s({{"y", value_type::integer}, {"m", value_type::integer},
                        {"d", value_type::integer}, {"h", value_type::integer}});
  const auto e = compile("datetime(y, m, d, h, 7, 30)", s);
  int checked = 0;
  for (int y = 1999; y <= 2025; ++y)
    for (int m = 1; m <= 12; ++m)
      for (int d = 1; d <= 31; ++d) {
        char text[32];
        std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:07:30", y, m, d, d % 24);
        std::int64_t ns = 0;
        const bool valid = pel::core::parse_datetime(text, 0, ns);
        std::vector<value> row{I(y), I(m), I(d), I(d % 24)};
        const value got = e.eval(row.data(), 0);
        INFO(text);
        if (valid) {
          REQUIRE(got == I(ns / 1'000'000));
          ++checked;
        } else {
          REQUIRE(got == N);
        }
      }
  CHECK(checked == 9862);  // the days of 27 years (7 of them leap years)
}
