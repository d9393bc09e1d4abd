// compile_config / compile_named: parse errors become config errors at the exact line:column.

#include "expr_test_util.hpp"

#include "pel/spec/diagnostics.hpp"

#include <memory>

using namespace pel;
using namespace pel::expr;
using namespace pel::expr::test;

namespace {

/// A map node with one scalar entry `key: text` whose value starts at line:column.
spec::node_ptr block(const std::string& key, const std::string& text, int line, int column,
                     bool quoted) {
  auto value = std::make_shared<spec::node>();
  value->type = spec::node::kind::scalar;
  value->text = text;
  value->quoted = quoted;
  value->at = {line, column};
  auto map = std::make_shared<spec::node>();
  map->type = spec::node::kind::map;
  map->at = {line, 5};
  map->entries.push_back({key, {line, column - static_cast<int>(key.size()) - 2}, value});
  return map;
}

} // namespace

TEST_CASE("compile_config compiles a param", "[expr][config]") {
  std::vector<spec::param> params{spec::param::expression("where").req()};
  spec::config cfg(block("where", "qty > 2", 7, 12, false), "operators.big", &params);
  auto e = compile_config(cfg, "where", sample_schema());
  auto row = sample_row();
  CHECK(e.eval_bool(row.data(), 0));
}

TEST_CASE("compile_config locates errors in plain scalars", "[expr][config]") {
  //          where: qty > 2 && prce < 5      (value at column 12, 'prce' at offset 11)
  std::vector<spec::param> params{spec::param::expression("where").req()};
  spec::config cfg(block("where", "qty > 2 && prce < 5", 7, 12, false), "operators.big", &params);
  try {
    compile_config(cfg, "where", sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.at().line == 7);
    CHECK(e.at().column == 23);
    CHECK(e.path() == "operators.big.where");
    CHECK(std::string(e.what()).find("unknown field 'prce'; did you mean 'price'?") == 0);
  }
}

TEST_CASE("compile_config locates errors in quoted scalars", "[expr][config]") {
  //          where: "qty > 2 && prce < 5"    (quote at column 12, 'prce' at column 12+1+11)
  std::vector<spec::param> params{spec::param::expression("where").req()};
  spec::config cfg(block("where", "qty > 2 && prce < 5", 3, 12, true), "operators.big", &params);
  try {
    compile_config(cfg, "where", sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.at().line == 3);
    CHECK(e.at().column == 24);
  }
}

TEST_CASE("compile_named locates errors in an expression map entry", "[expr][config]") {
  spec::config::named_text plain{"notional", "price * qtty", {9, 17}, "operators.m.fields.notional"};
  try {
    compile_named(plain, sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.at().line == 9);
    CHECK(e.at().column == 25);
    CHECK(e.path() == "operators.m.fields.notional");
    CHECK(std::string(e.what()).find("did you mean 'qty'?") != std::string::npos);
  }
  auto quoted = plain;
  quoted.quoted = true;
  try {
    compile_named(quoted, sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.at().column == 26);
  }
  spec::config::named_text good{"n", "price * qty", {1, 1}, "p"};
  auto row = sample_row();
  CHECK(compile_named(good, sample_schema()).eval(row.data(), 0) == D(301.5));
}

TEST_CASE("closest_name suggests near misses only", "[expr][suggest]") {
  std::vector<std::string> names{"symbol", "price", "qty"};
  CHECK(closest_name("prise", names) == "price");
  CHECK(closest_name("Symbol", names) == "symbol");
  CHECK(closest_name("qt", names) == "qty");
  CHECK(closest_name("volume", names).empty());
  CHECK(closest_name("x", {}).empty());
  // Transpositions count as one edit, as in the spec's suggestions for keys.
  CHECK(closest_name("pirce", names) == "price");
  CHECK(closest_name("qyt", names) == "qty");
  // The start of a name, the shortest first; not below three characters.
  CHECK(closest_name("sym", names) == "symbol");
  CHECK(closest_name("sym", {"symbol_name", "symbol"}) == "symbol");
  CHECK(closest_name("sy", {"symbol_name"}).empty());
}

TEST_CASE("unknown functions get the same suggestions", "[expr][suggest]") {
  REQUIRE_THROWS_WITH(compile("lenght(symbol)", sample_schema()),
                      "unknown function 'lenght'; did you mean length()?");
  REQUIRE_THROWS_WITH(compile("upepr(symbol)", sample_schema()),
                      "unknown function 'upepr'; did you mean upper()?");
  REQUIRE_THROWS_WITH(compile("starts(symbol, 'B')", sample_schema()),
                      "unknown function 'starts'; did you mean starts_with()?");
  REQUIRE_THROWS_WITH(compile("frobnicate(symbol)", sample_schema()),
                      "unknown function 'frobnicate' (see the expression reference for the list)");
}

TEST_CASE("errors in multi-line scalars point at the value", "[expr][config]") {
  spec::config::named_text block{"x", "qty +\n  prce\n", {4, 8}, "p", true};
  try {
    compile_named(block, sample_schema());
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.at().line == 4);
    CHECK(e.at().column == 8);
    CHECK(std::string(e.what()).find("unknown field 'prce'") == 0);
  }
}
