// union: schema union by name, rows remapped by position, whole batches passed through.

#include "stateless_test_support.hpp"

using namespace pel;
using namespace pel::test;

namespace {
spec::node_ptr empty_block() { return map({}, 2, 3); }
} // namespace

TEST_CASE("union merges schemas by name in first-seen order", "[operators][union]") {
  stateless_fixture f;
  auto a = schema_of({{"symbol", value_type::string}, {"price", value_type::number}});
  auto b = schema_of({{"price", value_type::integer}, {"venue", value_type::string}, {"symbol", value_type::string}});
  auto c = schema_of({{"extra", std::nullopt}});
  auto op = f.make("union", empty_block(), {a, b, c});
  const auto& out = *op->output_schema();
  CHECK(names(out) == std::vector<std::string>{"symbol", "price", "venue", "extra"});
  CHECK(out[0].type == value_type::string);
  CHECK(out[1].type == std::nullopt);  // double in one input, int in another
  CHECK(out[2].type == value_type::string);
}

TEST_CASE("union remaps rows of each input and fills missing fields with null", "[operators][union]") {
  stateless_fixture f;
  auto a = schema_of({{"symbol", std::nullopt}, {"price", std::nullopt}});
  auto b = schema_of({{"price", std::nullopt}, {"venue", std::nullopt}, {"symbol", std::nullopt}});
  auto op = f.make("union", empty_block(), {a, b});
  auto out = outputs_for(*op);
  REQUIRE(out.main.width == 3);

  auto in_a = batch_of(2, {{S("BTC"), D(1.5)}});
  op->process(in_a, 0, out);
  auto in_b = batch_of(3, {{D(2.5), S("x"), S(long_text("ETH"))}, {N, S("y"), S("SOL")}});
  const char* eth = std::get<std::string>(in_b.row(0)[2]).data();
  op->process(in_b, 1, out);

  REQUIRE(out.main.size() == 3);
  CHECK(row_of(out.main, 0) == std::vector<value>{S("BTC"), D(1.5), N});
  CHECK(row_of(out.main, 1) == std::vector<value>{S(long_text("ETH")), D(2.5), S("x")});
  CHECK(row_of(out.main, 2) == std::vector<value>{S("SOL"), N, S("y")});
  CHECK(out.main.times == std::vector<std::int64_t>{1000, 1000, 2000});
  CHECK(std::get<std::string>(out.main.row(1)[0]).data() == eth);  // moved, not copied
}

TEST_CASE("union passes batches of inputs with the output schema through", "[operators][union]") {
  stateless_fixture f;
  auto a = schema_of({{"k", std::nullopt}, {"v", std::nullopt}});
  auto op = f.make("union", empty_block(), {a, a});
  auto out = outputs_for(*op);
  auto in = batch_of(2, {{S(long_text("k")), I(1)}, {S("k2"), I(2)}});
  const char* k = std::get<std::string>(in.row(0)[0]).data();
  op->process(in, 1, out);
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::string>(out.main.row(0)[0]).data() == k);
  auto in2 = batch_of(2, {{S("k3"), I(3)}});
  op->process(in2, 0, out);
  REQUIRE(out.main.size() == 3);
  CHECK(row_of(out.main, 2) == std::vector<value>{S("k3"), I(3)});
}

TEST_CASE("union declares any number of inputs, at least two", "[operators][union]") {
  stateless_fixture f;
  const auto* e = f.reg.find_operator("union");
  REQUIRE(e != nullptr);
  CHECK(e->schema.min_inputs == 2);
  CHECK(e->schema.max_inputs == -1);
  auto err = f.error("union", empty_block(), {schema_of({{"a", std::nullopt}})});
  CHECK(std::string(err.what()) == "union needs at least two inputs");
}

TEST_CASE("every stateless operator documents itself", "[operators][schema]") {
  stateless_fixture f;
  for (const char* type : {"filter", "map", "flat_map", "union"}) {
    INFO(type);
    const auto* e = f.reg.find_operator(type);
    REQUIRE(e != nullptr);
    CHECK(e->schema.type == type);
    CHECK_FALSE(e->schema.summary.empty());
    CHECK_FALSE(e->schema.description.empty());
    CHECK(e->schema.example.find("type: " + std::string(type)) != std::string::npos);
    for (const auto& p : e->schema.params) {
      INFO(p.key);
      CHECK_FALSE(p.description.empty());
    }
  }
}
