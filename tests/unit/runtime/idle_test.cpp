// An idle job sleeps: a source with a record now and then costs the process a small share of
// a core, and the records still arrive promptly.

#include "test_components.hpp"

#include "pel/core/time.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/testing/poll.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

using namespace pel;
using namespace pel::test;
using namespace std::chrono_literals;

namespace {

/// CPU time of the whole process (all threads), in seconds.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// The steady-clock times at which rows reached the sink, and their latencies.
struct arrivals {
  std::mutex mu;
  std::vector<std::int64_t> latency_ns;
  std::size_t count() {
    std::lock_guard<std::mutex> g(mu);
    return latency_ns.size();
  }
};

/// `per_second` rows a second, forever: key, seq, and the steady clock at emission (ns).
class paced_source final : public core::source_base {
public:
  explicit paced_source(double per_second) : per_second_(per_second) {}
  schema_ptr output_schema() const override { return make_schema({"key", "seq", "t0"}); }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    const std::int64_t now = core::steady_ns();
    if (start_ == 0) start_ = now;
    const auto due =
        static_cast<std::int64_t>(static_cast<double>(now - start_) * per_second_ / 1e9) + 1;
    if (due <= seq_) return core::poll_status::idle;
    for (; seq_ < due && out.main.size() < max_rows; ++seq_) {
      core::value* r = out.main.append(now);
      r[0] = seq_ % 4;
      r[1] = seq_;
      r[2] = now;
    }
    return core::poll_status::data;
  }

private:
  double per_second_;
  std::int64_t start_ = 0;
  std::int64_t seq_ = 0;
};

/// Records each row's latency from its `t0`.
class latency_sink final : public core::sink_base {
public:
  explicit latency_sink(std::shared_ptr<arrivals> a) : a_(std::move(a)) {}
  void open(const core::operator_context&, const schema_ptr&) override {}
  void write(const core::batch& b) override {
    const std::int64_t now = core::steady_ns();
    std::lock_guard<std::mutex> g(a_->mu);
    for (std::size_t i = 0; i < b.size(); ++i)
      a_->latency_ns.push_back(now - std::get<std::int64_t>(b.row(i)[2]));
  }

private:
  std::shared_ptr<arrivals> a_;
};

}  // namespace

TEST_CASE("an idle job uses a small share of a core and still delivers each record promptly",
          "[runtime][idle]") {
  spec::registry reg;
  add_test_operators(reg);
  reg.add_source(schema_of("paced", 0, 0),
                 [](const spec::config&) { return std::make_unique<paced_source>(4.0); });
  auto got = std::make_shared<arrivals>();
  reg.add_sink(schema_of("latency", 1, 1),
               [got](const spec::config&) { return std::make_unique<latency_sink>(got); });
  pipeline_builder b;
  b.source("src", "paced", 1);
  b.op("relay", "keyed", {"src"}, 2);  // channels: every record crosses actors twice
  b.sink("out", "latency", {"relay"}, 1);
  runtime::options o;  // two scheduler threads, as `pel run` has them
  runtime::job j(plan::build(b.p, reg), o);
  j.start();

  // Start-up is not idle: measure from the first record on.
  REQUIRE(pel::testing::poll_until([&] { return got->count() >= 1; }, 15s, 20ms));
  const std::size_t first = got->count();
  const double c0 = process_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  // About 3 s at 4 records a second; the test thread checks 5 times a second.
  const bool arrived =
      pel::testing::poll_until([&] { return got->count() >= first + 12; }, 30s, 200ms);
  const double cpu = process_cpu_seconds() - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j.stop();
  auto r = j.wait();
  REQUIRE(r.ok);
  REQUIRE(arrived);
  const double share = cpu / wall;
  INFO("CPU " << cpu << " s over " << wall << " s: " << 100 * share << " % of one core");
  // CAF's default polling costs such a job 10-20 % of a core; sleeping threads well under 1 %.
  CHECK(share < 0.05);

  std::vector<std::int64_t> lat;
  {
    std::lock_guard<std::mutex> g(got->mu);
    lat = got->latency_ns;
  }
  std::sort(lat.begin(), lat.end());
  INFO("latency of " << lat.size() << " records: median " << lat[lat.size() / 2] / 1e6
                     << " ms, max " << lat.back() / 1e6 << " ms");
  // Each record wakes a sleeping thread (source to relay to sink): milliseconds at most.
  CHECK(lat[lat.size() / 2] < 50'000'000);
  CHECK(lat.back() < 1'000'000'000);
}
