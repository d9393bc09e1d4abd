// The `pipeline.supervision` and `pipeline.checkpoints` blocks, a component's own
// `supervision:` block over the pipeline's, and their checks with exact messages.
#include "pel/spec/pipeline.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

using namespace pel::spec;
using pel::spec::test::errors_of;
using pel::spec::test::test_registry;

namespace {

/// A clean file: `pipeline` as given, then a source, an operator and a sink, each with the
/// extra lines given (indented as keys of its block).
std::string file(const std::string& pipeline, const std::string& source_extra = "",
                 const std::string& operator_extra = "", const std::string& sink_extra = "") {
  return (pipeline.empty() ? std::string() : "pipeline:\n" + pipeline) +
         "sources:\n"
         "  ticks:\n"
         "    type: gen\n" +
         source_extra +
         "operators:\n"
         "  large:\n"
         "    type: filter\n"
         "    input: ticks\n"
         "    where: qty > 1\n" +
         operator_extra +
         "sinks:\n"
         "  out:\n"
         "    type: print\n"
         "    input: large\n" +
         sink_extra;
}

pipeline load(const std::string& text) { return load_text(text, "p.yaml", test_registry()); }

} // namespace

TEST_CASE("supervision and checkpoints have documented defaults", "[spec][supervision]") {
  const pipeline p = load(file(""));
  const supervision_spec& s = p.settings.supervision;
  CHECK(s.strategy == supervision_strategy::one_for_one);
  CHECK(s.intensity == 5);
  CHECK(s.period_ns == 60'000'000'000);
  CHECK(s.restart == restart_type::permanent);
  CHECK(s.backoff.initial_ns == 100'000'000);
  CHECK(s.backoff.max_ns == 10'000'000'000);
  CHECK(s.backoff.multiplier == 2.0);
  CHECK(s.backoff.jitter == 0.2);
  CHECK(s.quarantine_after == 3);
  CHECK(s.shutdown_timeout_ns == 10'000'000'000);
  const checkpoint_spec& c = p.settings.checkpoints;
  CHECK(c.interval_ns == 1'000'000'000);
  CHECK(c.dir.empty());
  CHECK(c.keep == 3);
  CHECK(c.timeout_ns == 60'000'000'000);
  CHECK(p.settings.checkpoint_interval_ns == 1'000'000'000);
  CHECK(p.operators[0].supervision.intensity == 5);
  CHECK(p.operators[0].supervision.restart == restart_type::permanent);
}

TEST_CASE("pipeline.supervision and pipeline.checkpoints are read whole", "[spec][supervision]") {
  const pipeline p = load(file(
      "  supervision:\n"
      "    strategy: rest_for_one\n"
      "    intensity: 0\n"
      "    period: 30s\n"
      "    restart: transient\n"
      "    backoff: {initial: 50ms, max: 2s, multiplier: 1.5, jitter: 0}\n"
      "    quarantine_after: 0\n"
      "    shutdown_timeout: 3s\n"
      "  checkpoints: {interval: 250ms, dir: /var/lib/pel, keep: 5, timeout: 20s}\n"));
  const supervision_spec& s = p.settings.supervision;
  CHECK(s.strategy == supervision_strategy::rest_for_one);
  CHECK(s.intensity == 0);
  CHECK(s.period_ns == 30'000'000'000);
  CHECK(s.restart == restart_type::transient);
  CHECK(s.backoff.initial_ns == 50'000'000);
  CHECK(s.backoff.max_ns == 2'000'000'000);
  CHECK(s.backoff.multiplier == 1.5);
  CHECK(s.backoff.jitter == 0.0);
  CHECK(s.quarantine_after == 0);
  CHECK(s.shutdown_timeout_ns == 3'000'000'000);
  const checkpoint_spec& c = p.settings.checkpoints;
  CHECK(c.interval_ns == 250'000'000);
  CHECK(c.dir == "/var/lib/pel");
  CHECK(c.keep == 5);
  CHECK(c.timeout_ns == 20'000'000'000);
  CHECK(p.settings.checkpoint_interval_ns == 250'000'000);
  // Components without a block take the pipeline's settings.
  for (const auto* c : {&p.sources[0], &p.operators[0], &p.sinks[0]}) {
    CHECK(c->supervision.strategy == supervision_strategy::rest_for_one);
    CHECK(c->supervision.restart == restart_type::transient);
    CHECK(c->supervision.backoff.max_ns == 2'000'000'000);
  }
}

TEST_CASE("checkpoint_interval is the older name of checkpoints.interval", "[spec][supervision]") {
  const pipeline p = load(file("  checkpoint_interval: 5s\n  checkpoints: {keep: 2}\n"));
  CHECK(p.settings.checkpoints.interval_ns == 5'000'000'000);
  CHECK(p.settings.checkpoint_interval_ns == 5'000'000'000);
  CHECK(p.settings.checkpoints.keep == 2);
  CHECK(errors_of(file("  checkpoint_interval: 5s\n  checkpoints: {interval: 2s}\n")) ==
        "p.yaml:2:3: pipeline.checkpoint_interval: give either `checkpoint_interval` or "
        "`checkpoints.interval`, not both; `checkpoint_interval` is the older name of "
        "`checkpoints.interval`\n");
}

TEST_CASE("a component's supervision block overrides the pipeline's key by key", "[spec][supervision]") {
  const pipeline p = load(file(
      "  supervision: {strategy: one_for_all, intensity: 2, backoff: {initial: 1s, max: 4s}}\n",
      "    supervision: {restart: temporary}\n",
      "    supervision:\n"
      "      intensity: 10\n"
      "      period: 5m\n"
      "      backoff: {max: 8s, jitter: 0.5}\n"
      "      quarantine_after: 7\n",
      "    supervision: {restart: transient, backoff: {multiplier: 3}}\n"));
  const supervision_spec& src = p.sources[0].supervision;
  CHECK(src.restart == restart_type::temporary);
  CHECK(src.intensity == 2);
  CHECK(src.strategy == supervision_strategy::one_for_all);

  const supervision_spec& op = p.operators[0].supervision;
  CHECK(op.restart == restart_type::permanent);
  CHECK(op.intensity == 10);
  CHECK(op.period_ns == 300'000'000'000);
  CHECK(op.backoff.initial_ns == 1'000'000'000);  // the pipeline's
  CHECK(op.backoff.max_ns == 8'000'000'000);
  CHECK(op.backoff.multiplier == 2.0);
  CHECK(op.backoff.jitter == 0.5);
  CHECK(op.quarantine_after == 7);
  CHECK(op.strategy == supervision_strategy::one_for_all);

  const supervision_spec& snk = p.sinks[0].supervision;
  CHECK(snk.restart == restart_type::transient);
  CHECK(snk.backoff.multiplier == 3.0);
  CHECK(snk.backoff.max_ns == 4'000'000'000);

  // The pipeline's own values are untouched by the overrides.
  CHECK(p.settings.supervision.intensity == 2);
  CHECK(p.settings.supervision.restart == restart_type::permanent);
}

TEST_CASE("strategy and shutdown_timeout are set for the whole pipeline only", "[spec][supervision]") {
  CHECK(errors_of(file("", "", "    supervision: {strategy: one_for_all, shutdown_timeout: 1s}\n")) ==
        "p.yaml:9:19: operators.large.supervision.strategy: 'strategy' is set for the whole "
        "pipeline only; move it to `pipeline.supervision.strategy`\n"
        "p.yaml:9:42: operators.large.supervision.shutdown_timeout: 'shutdown_timeout' is set for "
        "the whole pipeline only; move it to `pipeline.supervision.shutdown_timeout`\n");
  // Other unknown keys of the block still list what is allowed.
  CHECK(errors_of(file("", "    supervision: {restrat: transient}\n")) ==
        "p.yaml:4:19: sources.ticks.supervision.restrat: unknown key 'restrat'; did you mean "
        "'restart'? allowed keys: backoff, intensity, period, quarantine_after, restart\n");
}

TEST_CASE("supervision values are bounded with located messages", "[spec][supervision]") {
  CHECK(errors_of(file("  supervision:\n"
                       "    strategy: one_for_many\n"
                       "    intensity: -1\n"
                       "    period: 0s\n"
                       "    restart: always\n"
                       "    backoff: {multiplier: 0.5, jitter: 1.5}\n"
                       "    quarantine_after: 2000000\n"
                       "    shutdown_timeout: 10us\n"
                       "  checkpoints: {interval: 10us, keep: 0, timeout: 1us}\n")) ==
        "p.yaml:3:15: pipeline.supervision.strategy: 'one_for_many' is not allowed here; did you "
        "mean 'one_for_one'? allowed values: one_for_one, one_for_all, rest_for_one\n"
        "p.yaml:4:16: pipeline.supervision.intensity: must not be negative, found '-1'; use a value "
        "from 0 to 1000000\n"
        "p.yaml:5:13: pipeline.supervision.period: 0s is out of range; use a value of at least 1ms\n"
        "p.yaml:6:14: pipeline.supervision.restart: 'always' is not allowed here; allowed values: "
        "permanent, transient, temporary\n"
        "p.yaml:7:27: pipeline.supervision.backoff.multiplier: 0.5 is out of range; use a value "
        "from 1 to 1000\n"
        "p.yaml:7:40: pipeline.supervision.backoff.jitter: 1.5 is out of range; use a value from 0 "
        "to 1\n"
        "p.yaml:8:23: pipeline.supervision.quarantine_after: 2000000 is out of range; use a value "
        "from 0 to 1000000\n"
        "p.yaml:9:23: pipeline.supervision.shutdown_timeout: 10us is out of range; use a value of "
        "at least 1ms\n"
        "p.yaml:10:27: pipeline.checkpoints.interval: 10us is out of range; use a value of at "
        "least 1ms\n"
        "p.yaml:10:39: pipeline.checkpoints.keep: 0 is out of range; use a value from 1 to 1000\n"
        "p.yaml:10:51: pipeline.checkpoints.timeout: 1us is out of range; use a value of at least "
        "1ms\n");
}

TEST_CASE("the initial backoff must not be longer than the maximum", "[spec][supervision]") {
  CHECK(errors_of(file("  supervision: {backoff: {initial: 20s}}\n")) ==
        "p.yaml:2:36: pipeline.supervision.backoff.initial: the initial backoff (20s) is longer "
        "than the maximum (10s); lower `initial` or raise `max`\n");
  // A component's key is checked against the pipeline's other one.
  CHECK(errors_of(file("  supervision: {backoff: {initial: 2s}}\n", "",
                       "    supervision: {backoff: {max: 1s}}\n")) ==
        "p.yaml:11:34: operators.large.supervision.backoff.max: the initial backoff (2s) is longer "
        "than the maximum (1s); lower `initial` or raise `max`\n");
  CHECK(errors_of(file("", "", "", "    supervision: {backoff: {initial: 1m, max: 30s}}\n")) ==
        "p.yaml:13:38: sinks.out.supervision.backoff.initial: the initial backoff (1m) is longer "
        "than the maximum (30s); lower `initial` or raise `max`\n");
  // Equal is fine: every restart waits the same.
  CHECK(errors_of(file("  supervision: {backoff: {initial: 1s, max: 1s}}\n")).empty());
}
