// plan::check_file: what `pel lint` reports — both validation passes at once, with the real
// built-in components.
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace pel;

namespace {

spec::registry builtins() {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  return reg;
}

/// Writes `yaml` to a fresh file and returns what check_file says about it.
plan::checked_plan check(const std::string& yaml, std::string& path) {
  path = (std::filesystem::temp_directory_path() /
          ("pel-check-" + std::to_string(getpid()) + ".yaml")).string();
  std::ofstream(path) << yaml;
  auto reg = builtins();
  auto r = plan::check_file(path, reg);
  std::remove(path.c_str());
  return r;
}

const std::string clean =
    "sources:\n"
    "  trades: {type: generator, profile: trades, count: 10}\n"
    "operators:\n"
    "  large: {type: filter, input: trades, where: qty > 10}\n"
    "  notional: {type: map, input: trades, fields: {notional: price * qty}}\n"
    "sinks:\n"
    "  a: {type: stdout, input: large, format: json}\n"
    "  b: {type: stdout, input: notional, format: json}\n";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto i = s.find(from);
  REQUIRE(i != std::string::npos);
  return s.replace(i, from.size(), to);
}

} // namespace

TEST_CASE("a clean file gives a plan and no diagnostics", "[plan][lint]") {
  std::string path;
  auto r = check(clean, path);
  CHECK(r.diags.empty());
  REQUIRE(r.plan);
  CHECK(r.plan->nodes.size() == 5);
}

TEST_CASE("errors of both passes are reported together", "[plan][lint]") {
  // A schema error (spec pass) in sink `a`, and an unknown field (planner pass) in `notional`.
  std::string yaml = replace(replace(clean, "format: json}\n  b", "format: jsn}\n  b"),
                             "price * qty", "prize * qty");
  std::string path;
  auto r = check(yaml, path);
  CHECK_FALSE(r.plan);
  REQUIRE(r.diags.size() == 2);
  CHECK(r.diags.items()[0].format() ==
        path + ":5:59: operators.notional.fields.notional: unknown field 'prize'; did you mean "
               "'price'? (fields: ts, symbol, price, qty, side, trade_id)");
  CHECK(r.diags.items()[1].format() ==
        path + ":7:43: sinks.a.format: 'jsn' is not allowed here; did you mean 'json'? allowed "
               "values: json, csv, raw");
}

TEST_CASE("consumers of a component with errors get no second error", "[plan][lint]") {
  std::string yaml = replace(clean, "where: qty > 10", "wher: qty > 10");
  std::string path;
  auto r = check(yaml, path);
  CHECK_FALSE(r.plan);
  // Only `large`'s own two problems: the missing `where` and the unknown `wher`; its sink `a`
  // is not blamed for an input whose schema is unknown.
  REQUIRE(r.diags.size() == 2);
  for (const auto& d : r.diags.items()) CHECK(d.path.rfind("operators.large.", 0) == 0);
}

TEST_CASE("errors outside component blocks stop before planning", "[plan][lint]") {
  std::string yaml = "pipline: {name: x}\n" + replace(clean, "price * qty", "prize * qty");
  std::string path;
  auto r = check(yaml, path);
  CHECK_FALSE(r.plan);
  REQUIRE(r.diags.size() == 1);
  CHECK(r.diags.items()[0].message.rfind("unknown section 'pipline'", 0) == 0);
}
