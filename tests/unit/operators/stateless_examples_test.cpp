// The YAML example of every stateless operator parses and builds against a matching input.

#include "stateless_test_support.hpp"

#include "pel/spec/yaml.hpp"

using namespace pel;
using namespace pel::test;

namespace {

/// Parses `example`, takes its one operator block and builds it for `inputs`.
core::operator_ptr build_example(const stateless_fixture& f, const std::string& type,
                                 std::vector<core::schema_ptr> inputs) {
  const auto* e = f.reg.find_operator(type);
  REQUIRE(e != nullptr);
  auto root = spec::parse_yaml(e->schema.example, type + " example");
  const auto* ops = root->find("operators");
  REQUIRE(ops != nullptr);
  REQUIRE(ops->value->entries.size() == 1);
  const auto& block = ops->value->entries[0];
  CHECK(block.value->find("type")->value->text == type);
  for (const auto& entry : block.value->entries) {
    if (entry.key == "type" || entry.key == "input") continue;
    INFO(entry.key);
    CHECK(e->schema.find(entry.key) != nullptr);  // every key is a declared param
  }
  spec::config cfg(block.value, "operators." + block.key, &e->schema.params);
  return e->make(cfg, inputs);
}

} // namespace

TEST_CASE("the stateless operators' examples build", "[operators][schema][examples]") {
  stateless_fixture f;
  auto ticks = schema_of({{"symbol", value_type::string}, {"price", value_type::number},
                          {"qty", value_type::integer}, {"side", value_type::string},
                          {"exchange", value_type::string}});
  CHECK(build_example(f, "filter", {ticks}) != nullptr);
  auto m = build_example(f, "map", {ticks});
  CHECK(names(*m->output_schema()) == std::vector<std::string>{"symbol", "price", "quantity", "side", "notional"});
  auto fm = build_example(f, "flat_map", {schema_of({{"id", std::nullopt}, {"tags", value_type::string}})});
  CHECK(names(*fm->output_schema()) == std::vector<std::string>{"id", "tags", "tag"});
  CHECK(build_example(f, "union", {ticks, ticks}) != nullptr);
}
