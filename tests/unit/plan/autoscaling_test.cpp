// What the planner does with `parallelism: {initial, min, max}`: ranges on nodes and chains,
// edges into or out of an autoscaling operator are never forward (so it is a chain of its
// own), ranges refused where state is not kept by key group, two-phase windows behind an
// autoscaling upstream, and `explain`.
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
  plan::physical_plan build(const std::string& yaml) {
    return plan::build(spec::load_text(yaml, "scale.yaml", reg), reg);
  }
  /// Every diagnostic of both passes, one per line.
  std::string lint(const std::string& yaml) {
    return plan::check_text(yaml, "scale.yaml", reg).diags.format();
  }
};

const plan::edge& edge_into(const plan::physical_plan& p, const std::string& to) {
  return p.edges[p.nodes[p.find(to)].in_edges.at(0)];
}

/// generator (2) -> `first` -> `second` -> stdout, each operator with the parallelism given.
std::string two_filters(const std::string& first, const std::string& second) {
  return "sources:\n"
         "  ticks: {type: generator, parallelism: 2}\n"
         "operators:\n"
         "  a: {type: filter, input: ticks, where: qty > 1, parallelism: " + first + "}\n"
         "  b: {type: map, input: a, fields: {q: qty}, parallelism: " + second + "}\n"
         "sinks:\n"
         "  out: {type: stdout, input: b, parallelism: 2}\n";
}

} // namespace

TEST_CASE("a range reaches the node and its chain, and fixed nodes have min = max", "[plan][autoscaling]") {
  env e;
  const auto p = e.build(two_filters("{initial: 2, min: 1, max: 4}", "2"));
  const auto& a = p.nodes[p.find("a")];
  CHECK(a.parallelism == 2);
  CHECK(a.parallelism_min == 1);
  CHECK(a.parallelism_max == 4);
  CHECK(a.autoscales());
  const auto& chain = p.chains[a.chain];
  CHECK(chain.nodes == std::vector<int>{p.find("a")});
  CHECK(chain.parallelism == 2);
  CHECK(chain.parallelism_min == 1);
  CHECK(chain.parallelism_max == 4);
  const auto& b = p.nodes[p.find("b")];
  CHECK(b.parallelism_min == 2);
  CHECK(b.parallelism_max == 2);
  CHECK_FALSE(b.autoscales());
}

TEST_CASE("edges into and out of an autoscaling operator are never forward, and do not fuse",
          "[plan][autoscaling]") {
  env e;
  SECTION("equal parallelism, fixed: forward and fused (the rule it changes)") {
    const auto p = e.build(two_filters("2", "2"));
    CHECK(edge_into(p, "a").part == plan::partitioning::forward);
    CHECK(edge_into(p, "a").fused);
    CHECK(edge_into(p, "b").fused);
  }
  SECTION("a range: rebalance on both sides, a chain of its own") {
    const auto p = e.build(two_filters("{initial: 2, max: 4}", "2"));
    CHECK(edge_into(p, "a").part == plan::partitioning::rebalance);
    CHECK_FALSE(edge_into(p, "a").fused);
    CHECK(edge_into(p, "b").part == plan::partitioning::rebalance);
    CHECK_FALSE(edge_into(p, "b").fused);
    CHECK(edge_into(p, "out").fused);  // b -> out still fuses
  }
  SECTION("equal ranges do not make a forward edge either") {
    const auto p = e.build(two_filters("{initial: 2, max: 4}", "{initial: 2, max: 4}"));
    CHECK(edge_into(p, "b").part == plan::partitioning::rebalance);
    CHECK(p.nodes[p.find("a")].chain != p.nodes[p.find("b")].chain);
  }
  SECTION("one instance now is not one instance for good: a keyed downstream is hashed") {
    const auto p = e.build(
        "sources:\n  ticks: {type: generator}\n"
        "operators:\n"
        "  d: {type: dedupe, input: ticks, key: trade_id, horizon: 1s, parallelism: {max: 4}}\n"
        "sinks:\n  out: {type: stdout, input: d}\n");
    CHECK(edge_into(p, "d").part == plan::partitioning::hash);
    CHECK(edge_into(p, "out").part == plan::partitioning::rebalance);
  }
}

TEST_CASE("ranges are refused on sources, sinks, operators not kept by key group, and with "
          "partition: forward", "[plan][autoscaling]") {
  env e;
  CHECK(e.lint("sources:\n"
               "  ticks: {type: generator, parallelism: {max: 4}}\n"
               "operators:\n"
               "  limit: {type: throttle, input: ticks, rate: 10, parallelism: {max: 4}}\n"
               "  keyed: {type: throttle, input: ticks, rate: 10, key: symbol, parallelism: {max: 4}}\n"
               "  wide: {type: filter, input: ticks, where: qty > 1, parallelism: {initial: 2, max: 4}, "
               "partition: forward}\n"
               "sinks:\n"
               "  out: {type: stdout, input: limit, parallelism: {max: 2}}\n"
               "  k: {type: stdout, input: keyed}\n"
               "  w: {type: stdout, input: wide}\n") ==
        "scale.yaml:2:41: sources.ticks.parallelism: source 'ticks' (generator) cannot autoscale: "
        "only a source that assigns its own splits can (kafka with `assign: true` or `partitions`); "
        "give it a number\n"
        "scale.yaml:4:64: operators.limit.parallelism: 'limit' (throttle) cannot autoscale: its "
        "state is not kept by key group; give it a fixed parallelism\n"
        "scale.yaml:6:100: operators.wide.partition: the edge from 'ticks' to 'wide' cannot be "
        "forward: 'wide' autoscales; use rebalance or hash, or a fixed parallelism\n"
        "scale.yaml:8:50: sinks.out.parallelism: sinks have a fixed parallelism; autoscaling "
        "applies to operators and split sources: give 'out' a number\n");
}

TEST_CASE("a window behind an autoscaling upstream runs in one phase, and a window with a range "
          "gives it to its global half", "[plan][autoscaling][two_phase]") {
  env e;
  auto yaml = [](const std::string& upstream, const std::string& window) {
    return "sources:\n  trades: {type: generator, parallelism: 2}\n"
           "operators:\n"
           "  f: {type: filter, input: trades, where: qty > 0, parallelism: " + upstream + "}\n"
           "  bars:\n"
           "    type: window\n    input: f\n    key: symbol\n    parallelism: " + window + "\n"
           "    window: {type: tumbling, size: 1s}\n"
           "    aggregates: {vwap: \"vwap(price, qty)\"}\n"
           "sinks:\n  out: {type: stdout, input: bars}\n";
  };
  SECTION("fixed upstream, window with a range: split, the global half autoscales") {
    const auto p = e.build(yaml("2", "{initial: 2, max: 8}"));
    const int local = p.find("bars/local");
    REQUIRE(local >= 0);
    CHECK_FALSE(p.nodes[local].autoscales());
    CHECK(p.nodes[local].chain == p.nodes[p.find("f")].chain);
    const auto& global = p.nodes[p.find("bars")];
    CHECK(global.parallelism_min == 1);
    CHECK(global.parallelism_max == 8);
    CHECK(edge_into(p, "bars").part == plan::partitioning::hash);
  }
  SECTION("autoscaling upstream: no local half, and explain says why") {
    const auto p = e.build(yaml("{initial: 2, max: 4}", "2"));
    CHECK(p.find("bars/local") < 0);
    CHECK(edge_into(p, "bars").part == plan::partitioning::hash);
    const std::string text = plan::explain(p);
    CHECK(text.find("operator f (filter), parallelism 2 (1..4)\n") != std::string::npos);
    CHECK(text.find("single phase: its input 'f' autoscales, and a local half (state per "
                    "instance) cannot follow it") != std::string::npos);
    CHECK(text.find("chain 1 x2 (1..4): f\n") != std::string::npos);
    CHECK(text.find("  scaling: ds2, every 5s, target utilisation 0.7, stabilisation 30s, "
                    "scale-in delay 120s, scale-in keeps at least 0.5\n") != std::string::npos);
  }
}
