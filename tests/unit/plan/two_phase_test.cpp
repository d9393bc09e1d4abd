// The planner's two-phase aggregation: a keyed window whose input is shuffled becomes a local
// half fused with the upstream and a global half behind the shuffle; what cannot split (or
// is asked not to) stays one operator.
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/spec/pipeline.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pel;

namespace {

struct env {
  spec::registry reg;
  env() {
    operators::register_builtin_operators(reg);
    connectors::register_builtin_connectors(reg);
  }
  plan::physical_plan build(const std::string& window_extra, int source_par = 2,
                            int window_par = 2, const std::string& window = "{type: tumbling, size: 1s}") {
    const std::string yaml =
        "sources:\n"
        "  trades: {type: generator, parallelism: " + std::to_string(source_par) + "}\n"
        "operators:\n"
        "  bars:\n"
        "    type: window\n"
        "    input: trades\n"
        "    parallelism: " + std::to_string(window_par) + "\n"
        "    key: symbol\n"
        "    window: " + window + "\n"
        "    aggregates: {vwap: \"vwap(price, qty)\", n: count()}\n" + window_extra +
        "sinks:\n"
        "  out: {type: stdout, input: bars, parallelism: " + std::to_string(window_par) + "}\n";
    return plan::build(spec::load_text(yaml, "two_phase.yaml", reg), reg);
  }
};

const plan::edge& edge_into(const plan::physical_plan& p, const std::string& to) {
  return p.edges[p.nodes[p.find(to)].in_edges.at(0)];
}

} // namespace

TEST_CASE("a shuffled keyed window splits into a local half in the upstream's chain and a "
          "global half", "[plan][two_phase]") {
  env e;
  for (int source_par : {1, 2, 3}) {
    INFO("source parallelism " << source_par);
    auto p = e.build("", source_par, 2);
    const int local = p.find("bars/local");
    REQUIRE(local >= 0);
    const auto& ln = p.nodes[local];
    CHECK(ln.parallelism == static_cast<std::uint32_t>(source_par));
    CHECK(ln.key_columns.at(0).empty());
    CHECK(ln.output_schema->names() ==
          "ts, symbol, price, qty, side, trade_id, pane_start, partial");
    // Fused behind the source: no channel before the local half.
    const auto& into_local = edge_into(p, "bars/local");
    CHECK(into_local.part == plan::partitioning::forward);
    CHECK(into_local.fused);
    CHECK(p.nodes[p.find("trades")].chain == ln.chain);
    // The shuffle carries partials and passed-through records, hashed by the key, which
    // stays where the input has it.
    const auto& into_global = edge_into(p, "bars");
    CHECK(into_global.from == local);
    CHECK(into_global.part == plan::partitioning::hash);
    CHECK(into_global.key_columns == std::vector<int>{1});
    const auto& gn = p.nodes[p.find("bars")];
    CHECK(gn.input_schemas.at(0)->names() == ln.output_schema->names());
    CHECK(gn.output_schema->names() == "symbol, window_start, window_end, vwap, n");
    CHECK(p.nodes[p.find("out")].input_schemas.at(0)->names() == "symbol, window_start, window_end, vwap, n");
    // Both halves can be instantiated from the plan, as the runtime does.
    CHECK(ln.make_operator(ln.spec.settings, ln.input_schemas) != nullptr);
    CHECK(gn.make_operator(gn.spec.settings, gn.input_schemas) != nullptr);
    CHECK_THAT(plan::explain(p), Catch::Contains("bars/local -> bars[0]: hash by symbol (channel)"));
  }
}

TEST_CASE("a window whose upstream has other readers stays one operator (its local half "
          "could not fuse)", "[plan][two_phase]") {
  env e;
  const std::string yaml =
      "pipeline: {parallelism: 2}\n"
      "sources:\n"
      "  trades: {type: generator}\n"
      "operators:\n"
      "  bars:\n"
      "    type: window\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    window: {type: tumbling, size: 1s}\n"
      "    aggregates: {n: count()}\n"
      "  big: {type: filter, input: trades, where: qty > 10}\n"
      "sinks:\n"
      "  a: {type: stdout, input: bars}\n"
      "  b: {type: stdout, input: big}\n";
  auto p = plan::build(spec::load_text(yaml, "two_readers.yaml", e.reg), e.reg);
  CHECK(p.find("bars/local") < 0);
  CHECK(edge_into(p, "bars").part == plan::partitioning::hash);
  CHECK(edge_into(p, "bars").from == p.find("trades"));
}

TEST_CASE("windows that cannot split, or need not, stay one operator", "[plan][two_phase]") {
  env e;
  struct variant {
    const char* why;
    std::string extra;
    int source_par, window_par;
    std::string window;
  };
  const std::string tumbling = "{type: tumbling, size: 1s}";
  for (const auto& v : {variant{"pre_aggregate: never", "    pre_aggregate: never\n", 2, 2, tumbling},
                        variant{"session windows", "", 2, 2, "{type: session, gap: 1s}"},
                        variant{"early results", "    emit_every: 1s\n", 2, 2, tumbling},
                        variant{"routed late records", "    late: route\n", 2, 2, tumbling},
                        variant{"an explicit rebalance", "    partition: rebalance\n", 2, 2, tumbling},
                        variant{"no shuffle at parallelism 1", "", 1, 1, tumbling}}) {
    INFO(v.why);
    auto p = e.build(v.extra, v.source_par, v.window_par, v.window);
    CHECK(p.find("bars/local") < 0);
    CHECK(edge_into(p, "bars").from == p.find("trades"));
    CHECK(p.nodes[p.find("bars")].input_schemas.at(0)->index_of("price") >= 0);
  }
}
