// Parsing, precedence, operators, null semantics, type errors and parse errors.

#include "expr_test_util.hpp"

#include <limits>

using namespace pel;
using namespace pel::expr;
using namespace pel::expr::test;
using Catch::Matchers::Contains;

TEST_CASE("literals", "[expr][parse]") {
  CHECK(ev("42") == I(42));
  CHECK(ev("-7") == I(-7));
  CHECK(ev("2.5") == D(2.5));
  CHECK(ev(".5") == D(0.5));
  CHECK(ev("1e3") == D(1000.0));
  CHECK(ev("'single'") == S("single"));
  CHECK(ev("\"double\"") == S("double"));
  CHECK(ev(R"('it\'s \"q\"\n\t\\')") == S("it's \"q\"\n\t\\"));
  CHECK(ev(R"("\u00e9")") == S("\xc3\xa9"));
  CHECK(ev("true") == B(true));
  CHECK(ev("FALSE") == B(false));
  CHECK(ev("null") == N);
  CHECK(ev("-9223372036854775808") == I(std::numeric_limits<std::int64_t>::min()));
}

TEST_CASE("field references by name and in backticks", "[expr][parse]") {
  CHECK(ev("symbol") == S("BTC-USD"));
  CHECK(ev("qty") == I(3));
  CHECK(ev("`PM2.5`") == D(12.25));
  CHECK(ev("`price` * 2") == D(201.0));
  auto e = compile("price * qty + `PM2.5`", sample_schema());
  CHECK(e.fields_used() == std::vector<int>{1, 2, 4});
  CHECK(e.text() == "price * qty + `PM2.5`");
}

TEST_CASE("evaluation reads fields by position, never by name", "[expr][eval]") {
  expression e;
  {
    core::schema s({{"a", std::nullopt}, {"b", std::nullopt}});
    e = compile("b + 1", s);
  }  // the schema is gone: evaluation cannot look names up
  REQUIRE(e.fields_used() == std::vector<int>{1});
  std::vector<value> row1{S("ignored"), I(41)};
  std::vector<value> row2{I(1000), D(0.5)};
  CHECK(e.eval(row1.data(), 0) == I(42));
  CHECK(e.eval(row2.data(), 0) == D(1.5));
  // A copy shares the compiled tree and gives the same answers.
  expression copy = e;
  CHECK(copy.eval(row1.data(), 0) == I(42));
}

TEST_CASE("arithmetic and int/double promotion", "[expr][eval]") {
  CHECK(ev("1 + 2") == I(3));
  CHECK(ev("qty * 2") == I(6));
  CHECK(ev("qty * 2.0") == D(6.0));
  CHECK(ev("price - 0.5") == D(100.0));
  CHECK(ev("7 / 2") == I(3));
  CHECK(ev("-7 / 2") == I(-3));
  CHECK(ev("7 / 2.0") == D(3.5));
  CHECK(ev("7 % 3") == I(1));
  CHECK(ev("7.5 % 2") == D(1.5));
  CHECK(ev("-qty") == I(-3));
  CHECK(ev("-(price)") == D(-100.5));
  CHECK(ev("'ab' + 'cd'") == S("abcd"));
  CHECK(ev("symbol + '/' + symbol") == S("BTC-USD/BTC-USD"));
}

TEST_CASE("int overflow and division by zero give null", "[expr][eval][null]") {
  CHECK(ev("9223372036854775807 + 1") == N);
  CHECK(ev("-9223372036854775808 - 1") == N);
  CHECK(ev("4611686018427387904 * 2") == N);
  CHECK(ev("-(-9223372036854775808)") == N);
  CHECK(ev("-9223372036854775808 / -1") == N);
  CHECK(ev("qty / 0") == N);
  CHECK(ev("qty % 0") == N);
  CHECK(ev("price / 0") == N);
  CHECK(ev("price / 0.0") == N);
  CHECK(ev("1e308 * 10") == N);  // not finite
}

TEST_CASE("precedence follows C and SQL", "[expr][precedence]") {
  CHECK(ev("1 + 2 * 3") == I(7));
  CHECK(ev("(1 + 2) * 3") == I(9));
  CHECK(ev("10 - 4 - 3") == I(3));        // left associative
  CHECK(ev("100 / 10 / 5") == I(2));
  CHECK(ev("2 * 3 % 4") == I(2));         // (2*3)%4
  CHECK(ev("-2 * 3") == I(-6));
  CHECK(ev("1 + 2 < 4") == B(true));      // arithmetic before comparison
  CHECK(ev("1 < 2 == 2 < 3") == B(true)); // relational before equality
  CHECK(ev("true || false && false") == B(true));  // and before or
  CHECK(ev("(true || false) && false") == B(false));
  CHECK(ev("not 1 == 2") == B(true));     // SQL: not binds looser than comparison
  CHECK(ev("not true and false") == B(false));  // (not true) and false
  CHECK(ev("!false && false") == B(false));     // C: ! binds tightest
  CHECK(ev("qty + 1 is null") == B(false));     // is null applies to qty + 1
  CHECK(ev("qty == 3 is not null") == B(true)); // is after comparison
  CHECK(ev("qty + 1 in (4, 5)") == B(true));
  CHECK(ev("false ? 1 : true ? 2 : 3") == I(2));  // right associative
  CHECK(ev("qty > 2 ? 'big' : 'small'") == S("big"));
  CHECK(ev("1 + 2 == 3 && 'a' < 'b' || false") == B(true));
}

TEST_CASE("comparisons", "[expr][eval]") {
  CHECK(ev("qty == 3") == B(true));
  CHECK(ev("qty == 3.0") == B(true));
  CHECK(ev("qty != 3") == B(false));
  CHECK(ev("qty <> 4") == B(true));
  CHECK(ev("price > qty") == B(true));
  CHECK(ev("price >= 100.5") == B(true));
  CHECK(ev("price < 100.5") == B(false));
  CHECK(ev("price <= 100") == B(false));
  CHECK(ev("'abc' < 'abd'") == B(true));
  CHECK(ev("'B' < 'a'") == B(true));  // byte order
  CHECK(ev("symbol == 'BTC-USD'") == B(true));
  CHECK(ev("flag == true") == B(true));
  CHECK(ev("note == 1") == N);
  CHECK(ev("null == null") == N);
}

TEST_CASE("comparing a number with a string is an eval_error", "[expr][eval][errors]") {
  auto row = sample_row();
  auto e = compile("symbol > 5", sample_schema());
  REQUIRE_THROWS_AS(e.eval(row.data(), 0), eval_error);
  REQUIRE_THROWS_WITH(e.eval(row.data(), 0),
                      "cannot compare string \"BTC-USD\" with int 5 using '>' in 'symbol > 5'");
  REQUIRE_THROWS_WITH(ev("'abc' * 2"), "cannot apply '*' to string \"abc\" and int 2 in ''abc' * 2'");
  REQUIRE_THROWS_WITH(ev("qty + 'x'"), Contains("use concat()"));
  REQUIRE_THROWS_WITH(ev("-symbol"), Contains("unary '-' needs a number"));
  REQUIRE_THROWS_WITH(ev("qty && true"), Contains("'and' needs a bool, got int 3"));
  REQUIRE_THROWS_WITH(ev("1 + (symbol * 2)"), Contains("in '(symbol * 2)'"));
  REQUIRE_THROWS_WITH(ev("flag < 1"), Contains("cannot compare bool true with int 1"));
}

TEST_CASE("three-valued logic", "[expr][eval][null]") {
  CHECK(ev("null and false") == B(false));
  CHECK(ev("false and null") == B(false));
  CHECK(ev("null and true") == N);
  CHECK(ev("true and null") == N);
  CHECK(ev("null or true") == B(true));
  CHECK(ev("true or null") == B(true));
  CHECK(ev("null or false") == N);
  CHECK(ev("not null") == N);
  CHECK(ev("!null") == N);
  CHECK(ev("!true") == B(false));
  CHECK(ev("true AND true") == B(true));
  CHECK(ev("false OR true") == B(true));
  // Short circuit: the right side is not evaluated (it would be an error).
  CHECK(ev("false && symbol > 1") == B(false));
  CHECK(ev("true || symbol > 1") == B(true));
}

TEST_CASE("is null, in, conditional", "[expr][eval][null]") {
  CHECK(ev("note is null") == B(true));
  CHECK(ev("note IS NOT NULL") == B(false));
  CHECK(ev("qty is null") == B(false));
  CHECK(ev("qty in (1, 2, 3)") == B(true));
  CHECK(ev("qty in (1, 2)") == B(false));
  CHECK(ev("qty not in (1, 2)") == B(true));
  CHECK(ev("qty in (1.0, 3.0)") == B(true));
  CHECK(ev("symbol in ('ETH-USD', 'BTC-USD')") == B(true));
  CHECK(ev("qty in (1, null)") == N);  // SQL: unknown when not found and a null is listed
  CHECK(ev("qty in (3, null)") == B(true));
  CHECK(ev("note in (1, 2)") == N);
  CHECK(ev("note ? 1 : 2") == I(2));   // null condition takes the else branch
  CHECK(ev("if(flag, 'y', 'n')") == S("y"));
  CHECK(ev("if(note, 'y', 'n')") == S("n"));
  CHECK(ev("true ? 1 : symbol * 2") == I(1));  // lazy
  REQUIRE_THROWS_WITH(ev("qty ? 1 : 2"), Contains("the condition needs a bool, got int 3"));
  REQUIRE_THROWS_WITH(ev("qty in ('a')"), Contains("cannot compare int 3 with string \"a\""));
}

TEST_CASE("null propagates through arithmetic and functions", "[expr][eval][null]") {
  CHECK(ev("note + 1") == N);
  CHECK(ev("1 * note") == N);
  CHECK(ev("-note") == N);
  CHECK(ev("abs(note)") == N);
  CHECK(ev("lower(note)") == N);
  CHECK(ev("concat('a', note)") == N);
  CHECK(ev("max(1, note, 3)") == N);
  CHECK(ev("note < 5") == N);
  CHECK(ev("coalesce(note, 7)") == I(7));
  CHECK(ev("coalesce(note, null)") == N);
  CHECK(ev("null + 'x'") == N);
}

TEST_CASE("result types known at compile time", "[expr][types]") {
  auto type = [](const char* t) { return compile(t, sample_schema()).result_type(); };
  CHECK(type("qty * 2") == value_type::integer);
  CHECK(type("qty * price") == value_type::number);
  CHECK(type("symbol + 'x'") == value_type::string);
  CHECK(type("qty > 1") == value_type::boolean);
  CHECK(type("note + 1") == std::nullopt);
  CHECK(type("length(symbol)") == value_type::integer);
  CHECK(type("flag ? 1 : 2") == value_type::integer);
  CHECK(type("flag ? 1 : null") == value_type::integer);
  CHECK(type("flag ? 1 : 'a'") == std::nullopt);
  CHECK(type("coalesce(note, 1)") == std::nullopt);
  CHECK(type("coalesce(qty, 1)") == value_type::integer);
  CHECK(type("'x'") == value_type::string);
  CHECK(compile("1 + 2", sample_schema()).is_constant());
  CHECK_FALSE(compile("qty + 2", sample_schema()).is_constant());
  CHECK_FALSE(compile("now_ns()", sample_schema()).is_constant());
}

TEST_CASE("eval_bool and eval_number", "[expr][eval]") {
  auto row = sample_row();
  CHECK(compile("qty > 1", sample_schema()).eval_bool(row.data(), 0));
  CHECK_FALSE(compile("note > 1", sample_schema()).eval_bool(row.data(), 0));  // null → false
  REQUIRE_THROWS_WITH(compile("qty", sample_schema()).eval_bool(row.data(), 0),
                      "'qty' must give true or false, got int 3");
  double d = 0;
  CHECK(compile("qty * 2", sample_schema()).eval_number(row.data(), 0, d));
  CHECK(d == 6.0);
  CHECK_FALSE(compile("note", sample_schema()).eval_number(row.data(), 0, d));
  REQUIRE_THROWS_AS(compile("symbol", sample_schema()).eval_number(row.data(), 0, d), eval_error);
  // eval_ref returns the row's own cell for a field: no copy.
  value scratch;
  const auto& r = compile("symbol", sample_schema()).eval_ref(row.data(), 0, scratch);
  CHECK(&r == &row[0]);
}

TEST_CASE("parse errors carry the offset and a helpful message", "[expr][parse][errors]") {
  REQUIRE_THROWS_WITH(compile("prce * qty", sample_schema()),
                      "unknown field 'prce'; did you mean 'price'? "
                      "(fields: symbol, price, qty, note, PM2.5, flag)");
  CHECK(error_offset("prce * qty") == 0);
  CHECK(error_offset("qty * prce") == 6);
  REQUIRE_THROWS_WITH(compile("zzzzzz", sample_schema()),
                      "unknown field 'zzzzzz' (fields: symbol, price, qty, note, PM2.5, flag)");
  REQUIRE_THROWS_WITH(compile("lenght(symbol)", sample_schema()),
                      "unknown function 'lenght'; did you mean length()?");
  REQUIRE_THROWS_WITH(compile("round(1, 2, 3)", sample_schema()),
                      "round() takes 1 or 2 arguments, got 3: round(x[, digits])");
  REQUIRE_THROWS_WITH(compile("abs()", sample_schema()),
                      "abs() takes 1 argument, got 0: abs(x)");
  REQUIRE_THROWS_WITH(compile("coalesce()", sample_schema()), Contains("at least 1"));
  CHECK(error_offset("qty + abs()") == 6);
  REQUIRE_THROWS_WITH(compile("qty = 3", sample_schema()), "'=' is not an operator: use '==' to compare");
  CHECK(error_offset("qty = 3") == 4);
  REQUIRE_THROWS_WITH(compile("qty & 1", sample_schema()), Contains("use '&&'"));
  REQUIRE_THROWS_WITH(compile("'abc", sample_schema()), "unterminated string: add the closing '");
  CHECK(error_offset("qty + 'abc") == 6);
  REQUIRE_THROWS_WITH(compile("'a\\qb'", sample_schema()), Contains("unknown escape '\\q'"));
  CHECK(error_offset("'a\\qb'") == 2);
  REQUIRE_THROWS_WITH(compile("`PM2.5", sample_schema()), Contains("unterminated `name`"));
  REQUIRE_THROWS_WITH(compile("(qty + 1", sample_schema()),
                      "expected ')' to close '(', found end of expression");
  CHECK(error_offset("(qty + 1") == 8);
  REQUIRE_THROWS_WITH(compile("qty +", sample_schema()), Contains("an operand is missing"));
  REQUIRE_THROWS_WITH(compile("qty qty", sample_schema()),
                      "unexpected 'qty' after a complete expression (missing operator?)");
  CHECK(error_offset("qty qty") == 4);
  REQUIRE_THROWS_WITH(compile("", sample_schema()), "expected an expression, found nothing");
  REQUIRE_THROWS_WITH(compile("12abc", sample_schema()), Contains("invalid number"));
  REQUIRE_THROWS_WITH(compile("99999999999999999999", sample_schema()), Contains("out of range"));
  REQUIRE_THROWS_WITH(compile("qty is 3", sample_schema()), "expected 'null' after 'is', found '3'");
  CHECK(error_offset("qty in ()") == 8);
  REQUIRE_THROWS_WITH(compile("and", sample_schema()), Contains("`and`"));
  REQUIRE_THROWS_WITH(compile("x", core::schema{}), "unknown field 'x' (the input has no fields)");
  REQUIRE_THROWS_WITH(compile("qty # 2", sample_schema()), "unexpected character '#'");
}

TEST_CASE("constant sub-expressions are folded, errors stay per record", "[expr][eval]") {
  auto e = compile("2 * 3 + qty", sample_schema());
  auto row = sample_row();
  CHECK(e.eval(row.data(), 0) == I(9));
  // A constant that fails is not folded: compiling works, evaluating reports the error.
  auto bad = compile("qty > 1 || 'a' * 2 == 1", sample_schema());
  CHECK(bad.eval(row.data(), 0) == B(true));  // short circuit never reaches it
  auto bad2 = compile("qty < 1 || 'a' * 2 == 1", sample_schema());
  REQUIRE_THROWS_AS(bad2.eval(row.data(), 0), eval_error);
}

TEST_CASE("an empty expression evaluates to null", "[expr][eval]") {
  expression e;
  CHECK_FALSE(e.valid());
  CHECK(e.eval(nullptr, 0) == N);
  CHECK_FALSE(e.eval_bool(nullptr, 0));
}
