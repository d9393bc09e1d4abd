#include "../runtime/test_components.hpp"

#include "pel/plan/plan.hpp"

#include <catch2/catch.hpp>

using namespace pel;
using namespace pel::test;

namespace {

struct fixture {
  spec::registry reg;
  pipeline_builder b;

  fixture() {
    add_test_operators(reg);
    reg.add_source(schema_of("vec", 0, 0), [](const spec::config&) {
      return std::make_unique<vector_source>(std::make_shared<const std::vector<row>>(), 1, true, nullptr);
    });
    reg.add_sink(schema_of("collect", 0, -1), [](const spec::config&) {
      return std::make_unique<collect_sink>(std::make_shared<collected>());
    });
    reg.add_operator(schema_of("windowed", 1, 1, {"late"}),
                     [](const spec::config&, const std::vector<schema_ptr>& in) {
                       return std::make_unique<keyed_check_op>(in.at(0));
                     });
    reg.add_operator(schema_of("bad"), [](const spec::config&, const std::vector<schema_ptr>&) -> core::operator_ptr {
      throw spec::config_error({3, 7}, "operators.bad.where", "unknown field 'prize'; fields are: key, seq, ts");
    });
    reg.add_operator(schema_of("throws"), [](const spec::config&, const std::vector<schema_ptr>&) -> core::operator_ptr {
      throw std::runtime_error("cannot open model file");
    });
  }
  const plan::edge& edge_into(const plan::physical_plan& p, const std::string& to, int input = 0) {
    return p.edges[p.nodes[p.find(to)].in_edges[input]];
  }
};

std::string error_of(const spec::pipeline& p, const spec::registry& reg) {
  try {
    plan::build(p, reg);
  } catch (const spec::spec_error& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

TEST_CASE("equal parallelism and forward edges fuse into one chain", "[plan]") {
  fixture f;
  f.b.source("src", "vec", 2);
  f.b.op("a", "pass", {"src"}, 2);
  f.b.op("b", "pass", {"a"}, 2);
  f.b.sink("out", "collect", {"b"}, 2);
  auto p = plan::build(f.b.p, f.reg);
  REQUIRE(p.chains.size() == 1);
  CHECK(p.chains[0].nodes.size() == 4);
  CHECK(p.chains[0].parallelism == 2);
  for (const auto& e : p.edges) {
    CHECK(e.part == plan::partitioning::forward);
    CHECK(e.fused);
  }
  CHECK(p.nodes[p.find("out")].input_schemas[0]->names() == "key, seq, ts");
}

TEST_CASE("keyed operators get hash edges, and parallelism changes rebalance", "[plan]") {
  fixture f;
  f.b.source("src", "vec", 1);
  f.b.op("k", "keyed", {"src"}, 2);
  f.b.op("p", "pass", {"k"}, 2);
  f.b.sink("out", "collect", {"p"}, 1);
  auto p = plan::build(f.b.p, f.reg);
  const auto& into_k = f.edge_into(p, "k");
  CHECK(into_k.part == plan::partitioning::hash);
  CHECK(into_k.key_columns == std::vector<int>{0});
  CHECK_FALSE(into_k.fused);
  CHECK(f.edge_into(p, "p").fused);
  CHECK(f.edge_into(p, "out").part == plan::partitioning::rebalance);
  CHECK(p.chains.size() == 3);

  auto text = plan::explain(p);
  CHECK_THAT(text, Catch::Contains("src -> k[0]: hash by key (channel)"));
  CHECK_THAT(text, Catch::Contains("k -> p[0]: forward (fused)"));
  CHECK_THAT(text, Catch::Contains("p -> out[0]: rebalance (channel)"));
  CHECK_THAT(text, Catch::Contains("chain 1 x2: k -> p"));
  CHECK_THAT(text, Catch::Contains("out: [key, seq, ts]"));
}

TEST_CASE("a keyed operator at parallelism 1 after a source at 1 stays fused", "[plan]") {
  fixture f;
  f.b.source("src", "vec");
  f.b.op("k", "keyed", {"src"});
  f.b.sink("out", "collect", {"k"});
  auto p = plan::build(f.b.p, f.reg);
  CHECK(p.chains.size() == 1);
  CHECK(f.edge_into(p, "k").part == plan::partitioning::forward);
}

TEST_CASE("an explicit partition wins, and two consumers of one port prevent fusion", "[plan]") {
  fixture f;
  f.b.source("src", "vec", 2);
  f.b.op("a", "pass", {"src"}, 2).partition = spec::partitioning::broadcast;
  f.b.op("b", "pass", {"src"}, 2);
  f.b.sink("out", "collect", {"a", "b"}, 2);
  auto p = plan::build(f.b.p, f.reg);
  CHECK(f.edge_into(p, "a").part == plan::partitioning::broadcast);
  CHECK(f.edge_into(p, "b").part == plan::partitioning::forward);
  CHECK_FALSE(f.edge_into(p, "b").fused);  // src's main port has two consumers
  CHECK_FALSE(f.edge_into(p, "out", 1).fused);  // out has two inputs
  CHECK(p.chains.size() == 4);
}

TEST_CASE("unread dead-letter ports go to the named sink over implicit edges", "[plan]") {
  fixture f;
  f.b.p.settings.dead_letter = "dlq";
  f.b.source("src", "vec");
  f.b.op("w", "windowed", {"src"});
  f.b.sink("out", "collect", {"w", "w.late"});
  f.b.sink("dlq", "collect", {});
  auto p = plan::build(f.b.p, f.reg);
  CHECK(p.dead_letters == plan::dead_letter_mode::sink);
  const auto& dlq = p.nodes[p.find("dlq")];
  REQUIRE(dlq.in_edges.size() == 2);  // from src and from w
  for (int ei : dlq.in_edges) {
    CHECK(p.edges[ei].implicit);
    CHECK(p.edges[ei].port == plan::port_kind::dead_letter);
    CHECK(*p.edges[ei].schema == *core::dead_letter_schema());
  }
  CHECK(f.edge_into(p, "out", 1).port == plan::port_kind::late);
  CHECK(*f.edge_into(p, "out", 1).schema == *p.nodes[p.find("src")].output_schema);
  CHECK_THAT(plan::explain(p), Catch::Contains("src.dead_letter -> dlq[0]: forward (channel) (dead letters)"));
}

TEST_CASE("factory errors become located diagnostics, all of them", "[plan][errors]") {
  fixture f;
  f.b.source("src", "vec");
  f.b.op("bad", "bad", {"src"});
  f.b.op("after", "pass", {"bad"});  // depends on a failed one: no second error
  f.b.op("other", "throws", {"src"});
  f.b.sink("out", "collect", {"after", "other"});
  auto text = error_of(f.b.p, f.reg);
  CHECK_THAT(text, Catch::Contains("test.yaml:3:7: operators.bad.where: unknown field 'prize'; fields are: key, seq, ts"));
  CHECK_THAT(text, Catch::Contains("test.yaml:13:3: operators.other: cannot open model file"));
  CHECK_THAT(text, !Catch::Contains("operators.after"));
}

TEST_CASE("planner rejects impossible partitioning and unknown event-time fields", "[plan][errors]") {
  fixture f;
  spec::event_time_spec et;
  et.field = "timestamp";
  f.b.source("src", "vec", 1).event_time = et;
  f.b.op("a", "pass", {"src"}, 2).partition = spec::partitioning::forward;
  f.b.op("h", "pass", {"src"}, 2).partition = spec::partitioning::hash;
  f.b.sink("out", "collect", {"a", "h", "a.late"});
  auto text = error_of(f.b.p, f.reg);
  CHECK_THAT(text, Catch::Contains("sources.src.event_time.field: unknown field 'timestamp' (the source's fields: key, seq, ts)"));
  CHECK_THAT(text, Catch::Contains("operators.a.partition: partition: forward needs equal parallelism"));
  CHECK_THAT(text, Catch::Contains("operators.h.partition: partition: hash needs key fields"));
  CHECK_THAT(text, Catch::Contains("'a' has no output port 'late'"));
}
