// The specialised nodes (field op constant comparisons, arithmetic on two fields/constants,
// predicates evaluated without building values) give exactly what the general nodes give, for
// every kind of value, including nulls, overflow, division by zero, NaN and type errors.

#include "expr_test_util.hpp"

#include <cmath>
#include <limits>
#include <string>

using namespace pel::expr;
using namespace pel::expr::test;
namespace core = pel::core;

namespace {

/// Type and text of a value: `int 3`, `double 2.5`, `null`.
std::string describe_for_test(const value& v) {
  if (core::is_null(v)) return "null";
  return std::string(core::to_string(core::type_of(v))) + " " + core::to_text(v);
}

/// a, b, k: untyped, so that any value may appear in them.
const core::schema& ab_schema() {
  static const core::schema s({{"a", std::nullopt}, {"b", std::nullopt}, {"k", std::nullopt}});
  return s;
}

std::vector<value> grid() {
  const auto imin = std::numeric_limits<std::int64_t>::min();
  const auto imax = std::numeric_limits<std::int64_t>::max();
  return {value{},      B(true),     I(0),       I(1),    I(-1),
          I(7),         I(imin),     I(imax),    D(2.5),  D(-0.0),
          D(0.0),       D(std::nan("")), D(INFINITY), D(3.0), S("x")};
}

/// The value of `text` on row {a, b, k}, or "error: <message before its location>".
std::string outcome(const expression& e, const value& a, const value& b, const value& k) {
  std::vector<value> row{a, b, k};
  try {
    value v = e.eval(row.data(), 0);
    if (auto d = std::get_if<double>(&v); d && std::isnan(*d)) return "double nan";
    return describe_for_test(v);
  } catch (const eval_error& err) {
    std::string m = err.what();
    return "error: " + m.substr(0, m.find(" in '"));
  }
}

std::string bool_outcome(const expression& e, const value& a, const value& b, const value& k) {
  std::vector<value> row{a, b, k};
  try {
    return e.eval_bool(row.data(), 0) ? "true" : "false";
  } catch (const eval_error& err) {
    std::string m = err.what();
    return "error: " + m.substr(0, m.find(" in '"));
  }
}

} // namespace

TEST_CASE("arithmetic on fields and constants matches the general node", "[expr][fast]") {
  const auto g = grid();
  for (const char* op : {"+", "-", "*", "/", "%"}) {
    // `a op b` and `a op 3` take the specialised node; `if(true, a, a) op ...` the general one.
    const auto fast = compile(std::string("a ") + op + " b", ab_schema());
    const auto general = compile(std::string("if(true, a, a) ") + op + " b", ab_schema());
    const auto fast_k = compile(std::string("a ") + op + " 3", ab_schema());
    const auto general_k = compile(std::string("if(true, a, a) ") + op + " 3", ab_schema());
    for (const auto& x : g)
      for (const auto& y : g) {
        INFO("op " << op << ", a = " << describe_for_test(x) << ", b = " << describe_for_test(y));
        CHECK(outcome(fast, x, y, {}) == outcome(general, x, y, {}));
      }
    for (const auto& x : g) {
      INFO("op " << op << ", a = " << describe_for_test(x));
      CHECK(outcome(fast_k, x, {}, {}) == outcome(general_k, x, {}, {}));
    }
  }
  // A null right side gives null (it used to be returned as a reference to a dead local).
  CHECK(outcome(compile("a + b", ab_schema()), I(1), value{}, {}) == "null");
  CHECK(outcome(compile("a * b", ab_schema()), D(1.5), value{}, {}) == "null");
}

TEST_CASE("comparisons with a constant match the general node", "[expr][fast]") {
  const auto g = grid();
  for (const char* op : {"==", "!=", "<", "<=", ">", ">="}) {
    for (const char* k : {"3", "2.5", "0.0"}) {
      // `a op 3` (field op constant), `a % 1000000 op 3` (expression op constant) and the
      // general comparison of two fields, k holding the constant.
      const auto field_const = compile(std::string("a ") + op + " " + k, ab_schema());
      const auto general = compile(std::string("a ") + op + " k", ab_schema());
      const auto kv = compile(k, ab_schema()).eval(nullptr, 0);
      for (const auto& x : g) {
        INFO("a = " << describe_for_test(x) << " " << op << " " << k);
        CHECK(outcome(field_const, x, {}, kv) == outcome(general, x, {}, kv));
        CHECK(bool_outcome(field_const, x, {}, kv) == bool_outcome(general, x, {}, kv));
      }
      const auto expr_const = compile(std::string("if(true, a, a) ") + op + " " + k, ab_schema());
      for (const auto& x : g) {
        INFO("if(true, a, a) = " << describe_for_test(x) << " " << op << " " << k);
        CHECK(outcome(expr_const, x, {}, kv) == outcome(general, x, {}, kv));
        CHECK(bool_outcome(expr_const, x, {}, kv) == bool_outcome(general, x, {}, kv));
      }
    }
  }
}

TEST_CASE("eval_bool of logic agrees with eval", "[expr][fast]") {
  const auto g = grid();
  for (const char* text : {"a > 1 and b < 3", "a > 1 or b < 3", "not (a > 1)", "a is null",
                           "a is not null", "a in (1, 7, 'x')", "a not in (1, null)"}) {
    const auto e = compile(text, ab_schema());
    for (const auto& x : g)
      for (const auto& y : g) {
        INFO(text << " with a = " << describe_for_test(x) << ", b = " << describe_for_test(y));
        const std::string v = outcome(e, x, y, {});
        const std::string b = bool_outcome(e, x, y, {});
        if (v.rfind("error", 0) == 0) CHECK(b == v);
        else CHECK(b == (v == "bool true" ? "true" : "false"));
      }
  }
}
