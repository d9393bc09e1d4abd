// The closed loop: the built-in generator's rate steps up 4x and later back down, into an
// operator whose instances each handle a bounded rate (it waits per record, as an enrichment
// call to another service does, so that instances add capacity even on a small machine). The
// DS2 policy must reach a parallelism that keeps up within at most two decisions of each
// step, and decide nothing while the rate is steady.
#include "test_components.hpp"

#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace pel;
using namespace pel::test;

namespace {

/// Passes rows on after waiting `ns_per_row` per row: an instance handles at most
/// 1e9 / ns_per_row rows a second, however many cores there are. Keeps no state.
class latency_op final : public core::operator_base {
public:
  latency_op(schema_ptr in, std::int64_t ns_per_row) : in_(std::move(in)), ns_(ns_per_row) {}
  schema_ptr output_schema() const override { return in_; }
  bool rescalable() const override { return true; }
  void process(core::batch& in, int, core::outputs& out) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns_ * static_cast<std::int64_t>(in.size())));
    for (std::size_t r = 0; r < in.size(); ++r) out.main.append_move(in.row(r), in.times[r]);
  }

private:
  schema_ptr in_;
  std::int64_t ns_;
};

/// Counts what it receives.
class counting_sink final : public core::sink_base {
public:
  explicit counting_sink(std::shared_ptr<std::atomic<std::uint64_t>> n) : n_(std::move(n)) {}
  void open(const core::operator_context&, const schema_ptr&) override {}
  void write(const core::batch& b) override { n_->fetch_add(b.size()); }

private:
  std::shared_ptr<std::atomic<std::uint64_t>> n_;
};

} // namespace

TEST_CASE("ds2 follows a 4x load step up and back down in at most two decisions each and is still when steady",
          "[autoscale]") {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_generator_connectors(reg);
  auto n = std::make_shared<std::atomic<std::uint64_t>>(0);
  reg.add_operator(schema_of("enrich"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<latency_op>(in.at(0), 25'000);  // at most 40,000 rows/s per instance
  });
  reg.add_sink(schema_of("count", 0, -1), [n](const spec::config&) { return std::make_unique<counting_sink>(n); });
  // 20,000/s (one instance at 0.5), then 80,000/s (three at 0.67), then 20,000/s again.
  const std::string yaml =
      "pipeline:\n"
      "  name: closed_loop\n"
      "  batch: {size: 256, linger: 2ms}\n"
      "  scaling: {policy: ds2, interval: 500ms, target_utilisation: 0.7, stabilisation: 2s, "
      "scale_in_delay: 3s}\n"
      "sources:\n"
      "  ticks:\n"
      "    type: generator\n"
      "    profile: trades\n"
      "    rate: [{for: 6s, per_second: 20000}, {for: 12s, per_second: 80000}, {for: 14s, per_second: 20000}]\n"
      "    count: 1360000\n"
      "operators:\n"
      "  enriched:\n"
      "    type: enrich\n"
      "    input: ticks\n"
      "    parallelism: {initial: 1, min: 1, max: 6}\n"
      "sinks:\n"
      "  out:\n"
      "    type: count\n"
      "    input: enriched\n";
  auto p = spec::load_text(yaml, "closed_loop.yaml", reg);
  auto plan = plan::build(p, reg);
  runtime::options o;
  o.threads = 8;  // the instances wait rather than compute: enough workers for all of them
  runtime::job j(plan, o);
  j.start();
  REQUIRE(j.wait_for(std::chrono::seconds(120)));
  const auto r = j.wait();
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(n->load() == 1'360'000);
  REQUIRE(r.scaling_policy == "ds2");
  const double up = 6, down = 18;  // seconds since the start at which the rate steps
  std::vector<runtime::scaling_event> after_up, after_down, steady;
  for (const auto& e : r.scaling) {
    const double at = static_cast<double>(e.at_ns) / 1e9;
    UNSCOPED_INFO("at " << at << " s: " << e.from << " -> " << e.to << ": " << e.reason << " [" << e.inputs << "] "
                        << e.outcome);
    if (at >= up && at < up + 6) after_up.push_back(e);
    else if (at >= down && at < down + 12) after_down.push_back(e);
    else steady.push_back(e);
  }
  CHECK(steady.empty());
  REQUIRE(!after_up.empty());
  CHECK(after_up.size() <= 2);
  // Keeps up: 80,000 / (40,000 x 0.7) = 2.9 -> 3 instances after the step up.
  CHECK(after_up.back().to >= 3);
  for (const auto& e : after_up) CHECK(e.done);
  REQUIRE(!after_down.empty());
  CHECK(after_down.size() <= 2);
  CHECK(after_down.back().to <= 2);
  for (const auto& e : after_down) CHECK(e.to < e.from);
}
