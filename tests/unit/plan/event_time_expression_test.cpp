// A source's `event_time.expression`: compiled by the planner against the source's schema,
// with located errors, and exclusive with `event_time.field`.
#include "../runtime/test_components.hpp"

#include "pel/plan/plan.hpp"

#include <catch2/catch.hpp>

using namespace pel;
using namespace pel::test;

namespace {

spec::registry test_registry() {
  spec::registry reg;
  reg.add_source(schema_of("vec", 0, 0), [](const spec::config&) {
    return std::make_unique<vector_source>(std::make_shared<const std::vector<row>>(), 1, true, nullptr);
  });
  reg.add_sink(schema_of("collect", 0, -1), [](const spec::config&) {
    return std::make_unique<collect_sink>(std::make_shared<collected>());
  });
  return reg;
}

/// The diagnostics of loading and planning `yaml`, or "no error".
std::string problems(const std::string& yaml, const spec::registry& reg) {
  try {
    auto p = spec::load_text(yaml, "t.yaml", reg);
    plan::build(p, reg);
  } catch (const spec::spec_error& e) {
    return e.diags().format();
  }
  return "no error";
}

} // namespace

TEST_CASE("an event-time expression is compiled against the source's schema", "[plan][event_time]") {
  auto reg = test_registry();
  pipeline_builder b;
  spec::event_time_spec et;
  et.expression = "ts * 1000 + seq";
  et.format = "epoch_us";
  b.source("src", "vec").event_time = et;
  b.sink("out", "collect", {"src"});
  auto p = plan::build(b.p, reg);
  const auto& n = p.nodes[p.find("src")];
  CHECK(n.event_time_column == -1);
  REQUIRE(n.event_time_expression.valid());
  CHECK(n.event_time_expression.fields_used() == std::vector<int>{1, 2});
  std::vector<core::value> row{std::int64_t{4}, std::int64_t{7}, std::int64_t{1500}};
  CHECK(n.event_time_expression.eval(row.data(), 0) == core::value{std::int64_t{1'500'007}});
  CHECK_THAT(plan::explain(p), Catch::Contains("event time: expression ts * 1000 + seq (epoch_us"));
}

TEST_CASE("event-time expression errors are located inside the YAML value", "[plan][event_time][errors]") {
  auto reg = test_registry();
  const std::string yaml =
      "sources:\n"
      "  src:\n"
      "    type: vec\n"
      "    event_time: {expression: \"datetime(year, 1, 1)\", format: epoch_ms}\n"
      "sinks:\n"
      "  out: {type: collect, input: src}\n";
  // `year` starts at column 40: the quoted value opens at 30, its text at 31.
  CHECK(problems(yaml, reg) ==
        "t.yaml:4:40: sources.src.event_time.expression: unknown field 'year' (fields: key, seq, ts)\n");
  const std::string arity =
      "sources:\n"
      "  src:\n"
      "    type: vec\n"
      "    event_time:\n"
      "      expression: datetime(ts)\n"
      "sinks:\n"
      "  out: {type: collect, input: src}\n";
  CHECK_THAT(problems(arity, reg),
             Catch::StartsWith("t.yaml:5:19: sources.src.event_time.expression: datetime() takes"));
  const std::string good =
      "sources:\n"
      "  src:\n"
      "    type: vec\n"
      "    event_time: {expression: ts * 1000000, format: epoch_ns}\n"
      "sinks:\n"
      "  out: {type: collect, input: src}\n";
  CHECK(problems(good, reg) == "no error");
}

TEST_CASE("event_time takes a field or an expression, not both", "[plan][event_time][errors]") {
  auto reg = test_registry();
  const std::string yaml =
      "sources:\n"
      "  src:\n"
      "    type: vec\n"
      "    event_time: {field: ts, expression: ts * 1000}\n"
      "sinks:\n"
      "  out: {type: collect, input: src}\n";
  CHECK(problems(yaml, reg) ==
        "t.yaml:4:29: sources.src.event_time.expression: give either `field` or `expression`, "
        "not both; remove `field: ts` to take the time from the expression\n");
  // Built in code, the planner says the same.
  pipeline_builder b;
  spec::event_time_spec et;
  et.field = "ts";
  et.expression = "ts";
  b.source("src", "vec").event_time = et;
  b.sink("out", "collect", {"src"});
  try {
    plan::build(b.p, reg);
    FAIL("no error");
  } catch (const spec::spec_error& e) {
    CHECK_THAT(std::string(e.what()),
               Catch::Contains("sources.src.event_time.expression: give either `field` or `expression`, not both"));
  }
}
