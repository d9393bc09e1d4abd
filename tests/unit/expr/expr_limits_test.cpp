// Hostile nesting: every path on which the parser recurses (parentheses, not, !, unary - and
// +, ?:, function arguments, in lists) is bounded, and so is the height of the tree that
// evaluation, folding and destruction recurse over (long chains such as a + a + ...). Both
// are refused with a located parse_error instead of overflowing the stack.

#include "expr_test_util.hpp"

#include "pel/spec/diagnostics.hpp"

#include <string>

using namespace pel;
using namespace pel::expr;
using namespace pel::expr::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

const char* const too_nested = "expression nesting deeper than 256 levels";
const char* const too_tall = "expression deeper than 1024 operations applied one after another";

}  // namespace

TEST_CASE("nesting up to 256 levels compiles and evaluates", "[expr][limits]") {
  // qty is 3; each level adds 1.
  const std::string parens = repeat("(", 256) + "qty" + repeat(" + 1)", 256);
  CHECK(ev(parens) == I(3 + 256));
  CHECK(ev(repeat("not ", 256) + "flag") == B(true));
  CHECK(ev(repeat("!", 255) + "flag") == B(false));
  CHECK(ev(repeat("- ", 256) + "qty") == I(3));
  CHECK(ev(repeat("+ ", 256) + "qty") == I(3));
  CHECK(ev(repeat("abs(", 256) + "qty" + repeat(")", 256)) == I(3));
  CHECK(ev(repeat("flag ? qty : ", 256) + "0") == I(3));
}

TEST_CASE("nesting deeper than 256 levels is refused where it goes too deep",
          "[expr][limits][errors]") {
  SECTION("parentheses") {
    const std::string text = repeat("(", 5000) + "qty" + repeat(")", 5000);
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256);  // the 257th '('
  }
  SECTION("not") {
    const std::string text = repeat("not ", 5000) + "flag";
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256 * 4);
  }
  SECTION("!") {
    const std::string text = repeat("!", 5000) + "flag";
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256);
  }
  SECTION("unary minus and plus") {
    const std::string minus = repeat("- ", 5000) + "qty";
    REQUIRE_THROWS_WITH(compile(minus, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(minus) == 256 * 2);
    CHECK(error_offset(repeat("-(", 300) + "qty" + repeat(")", 300)) == 128 * 2);
    CHECK(error_offset(repeat("+", 5000) + "qty") == 256);
  }
  SECTION("function arguments") {
    const std::string text = repeat("abs(", 5000) + "qty" + repeat(")", 5000);
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256 * 4);
    CHECK(error_offset(repeat("coalesce(null, ", 300) + "qty" + repeat(")", 300)) == 256 * 15);
    CHECK(error_offset(repeat("if(flag, 1, ", 300) + "2" + repeat(")", 300)) == 256 * 12);
  }
  SECTION("in lists") {
    const std::string text = repeat("flag in (", 300) + "flag" + repeat(")", 300);
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256 * 9 + 5);  // the 257th 'in'
  }
  SECTION("?: in the else branch") {
    const std::string text = repeat("flag ? 1 : ", 5000) + "0";
    REQUIRE_THROWS_WITH(compile(text, sample_schema()), StartsWith(too_nested));
    CHECK(error_offset(text) == 256 * 11 + 5);  // the 257th '?'
  }
  SECTION("the message says how to fix it") {
    REQUIRE_THROWS_WITH(compile(repeat("(", 300) + "1" + repeat(")", 300), sample_schema()),
                        Contains("flatten it"));
  }
}

TEST_CASE("a chain of more than 1024 operations is refused at the operator that makes it",
          "[expr][limits][errors]") {
  // 1023 additions: a tree 1024 high, the most there may be.
  CHECK(ev("qty" + repeat(" + qty", 1023)) == I(3 * 1024));
  const std::string sum = "qty" + repeat(" + qty", 5000);
  REQUIRE_THROWS_WITH(compile(sum, sample_schema()), StartsWith(too_tall));
  CHECK(error_offset(sum) == 1023 * 6 + 4);  // the 1024th '+'
  CHECK(error_offset("flag" + repeat(" or flag", 5000)) == 1023 * 8 + 5);
  CHECK(error_offset("flag" + repeat(" && flag", 5000)) == 1023 * 8 + 5);
  CHECK(error_offset("qty" + repeat(" * qty", 5000)) == 1023 * 6 + 4);
  CHECK(error_offset("qty" + repeat(" < qty", 5000)) == 1023 * 6 + 4);
  CHECK(error_offset("qty" + repeat(" is null", 5000)) == 1023 * 8 + 4);
  REQUIRE_THROWS_WITH(compile(sum, sample_schema()), Contains("x in (a, b, c)"));
  // Nesting and chains together: 200 levels of parentheses, each adding 6 to the height.
  const std::string mixed = repeat("(", 200) + "qty" + repeat(" + 1 + 1 + 1 + 1 + 1 + qty)", 200);
  REQUIRE_THROWS_WITH(compile(mixed, sample_schema()), StartsWith(too_tall));
}

TEST_CASE("a constant chain folds as it is read and has no height limit", "[expr][limits]") {
  CHECK(ev("1" + repeat(" + 1", 5000)) == I(5001));
  CHECK(ev("true" + repeat(" and true", 5000)) == B(true));
}

TEST_CASE("a nesting error is located inside the YAML scalar", "[expr][limits][config]") {
  spec::config::named_text e{"x", repeat("-", 300) + "qty", {6, 10}, "operators.m.fields.x"};
  try {
    compile_named(e, sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& err) {
    CHECK(err.at().line == 6);
    CHECK(err.at().column == 10 + 256);
    CHECK(err.path() == "operators.m.fields.x");
    CHECK_THAT(std::string(err.what()), StartsWith(too_nested));
  }
}

TEST_CASE("string results are bounded: an eval_error, not an allocation the values choose",
          "[expr][limits][eval]") {
  core::schema s({{"a", value_type::string}, {"b", value_type::string}});
  std::vector<value> row{std::string(1 << 20, 'a'), std::string(1 << 20, 'b')};
  // 2^20 replacements by 2^20 bytes each: a terabyte.
  REQUIRE_THROWS_WITH(compile("replace(a, 'a', b)", s).eval(row.data(), 0),
                      StartsWith("replace: the result would be a string of 1099511627776 bytes, "
                                 "more than the 64 MiB a value may hold"));
  REQUIRE_THROWS_WITH(compile("a" + repeat(" + a", 70), s).eval(row.data(), 0),
                      Contains("'+': the result would be a string of 68157440 bytes"));
  REQUIRE_THROWS_WITH(compile("concat(a" + repeat(", a", 70) + ")", s).eval(row.data(), 0),
                      Contains("more than the 64 MiB a value may hold"));
  // Up to the bound, the same operations work.
  CHECK(std::get<std::string>(compile("replace(a, 'a', 'cc')", s).eval(row.data(), 0)).size() ==
        std::size_t(2) << 20);
  CHECK(std::get<std::string>(compile("a" + repeat(" + a", 60), s).eval(row.data(), 0)).size() ==
        std::size_t(61) << 20);
  CHECK(std::get<std::string>(compile("concat(a, b, 1)", s).eval(row.data(), 0)).size() ==
        (std::size_t(2) << 20) + 1);
}
