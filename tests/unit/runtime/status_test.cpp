// job::status, job::graph and job::tap: what a monitor (the HTTP API) reads of a running job.

#include "test_components.hpp"

#include "pel/plan/plan.hpp"
#include "pel/core/time.hpp"
#include "pel/runtime/job.hpp"
#include "pel/testing/poll.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

using namespace pel;
using namespace pel::test;
using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = 15s) {
  return pel::testing::poll_until(cond, limit);
}

/// A source of three splits of very different sizes (5,000, 300 and none), read 50 rows a
/// poll from each, that says where each split stands: positions count rows, the end is the
/// split's size. Stays idle once read, so the test sees it at its end.
class positioned_source final : public core::source_base {
public:
  schema_ptr output_schema() const override { return make_schema({"key", "seq", "ts"}); }
  bool has_splits() const override { return true; }
  void splits(std::vector<core::split_report>& out) const override {
    out.clear();
    for (std::uint32_t s = 0; s < 3; ++s) out.push_back({s, "t/" + std::to_string(s), next_[s] >= size_[s]});
  }
  void positions(std::vector<core::split_position>& out) const override {
    out.clear();
    for (std::uint32_t s = 0; s < 3; ++s)
      out.push_back({"t/" + std::to_string(s), static_cast<std::int64_t>(next_[s]), static_cast<std::int64_t>(size_[s])});
  }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    // Split 0 is read slowly, a row per millisecond, so that it has a backlog for seconds.
    const std::int64_t now_ms = core::steady_ns() / 1'000'000;
    if (start_ms_ == 0) start_ms_ = now_ms;
    const auto due0 = static_cast<std::size_t>(now_ms - start_ms_);
    for (std::uint32_t s = 0; s < 3; ++s)
      for (std::size_t n = 0; n < 50u && next_[s] < size_[s] && out.main.size() < max_rows; ++n) {
        if (s == 0 && next_[0] >= due0) break;
        const auto i = static_cast<std::int64_t>(next_[s]++);
        core::value* r = out.main.append(0);
        r[0] = static_cast<std::int64_t>(s);
        r[1] = i;
        r[2] = 1'700'000'000'000 + i;
        out.splits.push_back(s);
      }
    return next_[0] < size_[0] || next_[1] < size_[1] ? core::poll_status::data : core::poll_status::idle;
  }

private:
  std::size_t size_[3] = {5000, 300, 0};
  std::size_t next_[3] = {0, 0, 0};
  std::int64_t start_ms_ = 0;
};

struct env {
  spec::registry reg;
  pipeline_builder b;
  std::shared_ptr<source_probe> probe = std::make_shared<source_probe>();
  std::shared_ptr<collected> out = std::make_shared<collected>();

  explicit env(int sink_delay_us = 0, std::vector<row> r = make_rows(20, 500)) {
    add_test_operators(reg);
    auto rs = std::make_shared<const std::vector<row>>(std::move(r));
    auto pr = probe;
    reg.add_source(schema_of("vec", 0, 0), [rs, pr](const spec::config&) {
      return std::make_unique<vector_source>(rs, 64, true, pr);
    });
    reg.add_source(schema_of("endless", 0, 0), [pr](const spec::config&) {
      return std::make_unique<vector_source>(nullptr, 256, false, pr, true);
    });
    reg.add_source(schema_of("positioned", 0, 0),
                   [](const spec::config&) { return std::make_unique<positioned_source>(); });
    auto o = out;
    reg.add_sink(schema_of("collect", 0, -1), [o, sink_delay_us](const spec::config&) {
      return std::make_unique<collect_sink>(o, sink_delay_us);
    });
  }
  plan::physical_plan plan() { return plan::build(b.p, reg); }
};

const runtime::instance_metrics* find(const runtime::job_status& s, const std::string& component, std::uint32_t i = 0) {
  for (const auto& m : s.instances)
    if (m.component == component && m.instance == i) return &m;
  return nullptr;
}

const runtime::component_stats* totals(const runtime::job_status& s, const std::string& component) {
  for (const auto& c : s.components)
    if (c.name == component) return &c;
  return nullptr;
}

} // namespace

TEST_CASE("job::status shows a slow sink as backpressure upstream, and the figures at the end",
          "[runtime][status]") {
  env e(/*sink_delay_us=*/2000);  // 2 ms a batch: the sink is the bottleneck
  e.b.p.settings.batch_size = 64;
  e.b.p.settings.channel_credits = 4;
  e.b.source("src", "vec", 2);
  e.b.op("relay", "keyed", {"src"}, 2);
  e.b.sink("out", "collect", {"relay"}, 1);
  runtime::job j(e.plan());
  CHECK(j.status().state == "starting");
  j.start();

  // While the sink lags, the relay's instances hold sealed batches without credit.
  REQUIRE(eventually([&] {
    auto s = j.status();
    const auto* r = find(s, "relay");
    return r != nullptr && r->backpressure_ns > 20'000'000 && r->credit_capacity > 0;
  }));
  auto mid = j.status();
  CHECK(mid.state == "running");
  const auto* relay = find(mid, "relay");
  REQUIRE(relay != nullptr);
  CHECK(relay->credit_capacity == 4);  // one channel to the sink, 4 credits
  CHECK(relay->queue_capacity == 4 * 2);  // a channel from each source instance
  CHECK(relay->started_ns > 0);
  CHECK(relay->rows_in > 0);
  const auto* sink = find(mid, "out");
  REQUIRE(sink != nullptr);
  CHECK(sink->busy_ns > 0);
  CHECK(mid.uptime_ns > 0);
  CHECK(mid.at_ns > 1'700'000'000'000'000'000);
  CHECK(mid.progress_total == 2 * 10000);  // each test source instance scans every row
  // The watermark follows the rows' event times (ms 1000..6000 in ns).
  REQUIRE(eventually([&] { return find(j.status(), "relay")->watermark_ns >= 1'000'000'000; }));

  REQUIRE(j.wait_for(60s));
  auto r = j.wait();
  REQUIRE(r.ok);
  auto end = j.status();
  CHECK(end.state == "finished");
  REQUIRE(totals(end, "src") != nullptr);
  CHECK(totals(end, "src")->rows_out == 10000);
  CHECK(totals(end, "out")->rows_in == 10000);
  CHECK(end.progress_done == end.progress_total);
  CHECK(find(end, "out")->watermark_ns == INT64_MAX);  // the streams ended
}

TEST_CASE("job::graph lists components, fused chains, channels and their partitioning", "[runtime][status]") {
  env e;
  e.b.source("src", "vec", 2);
  e.b.op("a", "pass", {"src"}, 2);
  e.b.op("k", "keyed", {"a"}, 3);
  e.b.sink("out", "collect", {"k"}, 1);
  runtime::job j(e.plan());
  auto g = j.graph();
  CHECK(g.file == "test.yaml");
  REQUIRE(g.components.size() == 4);
  CHECK(g.components[0].name == "src");
  CHECK(g.components[0].kind == "source");
  CHECK(g.components[2].kind == "operator");
  CHECK(g.components[2].parallelism == 3);
  CHECK(g.components[3].kind == "sink");
  REQUIRE(g.components[2].inputs.size() == 1);
  CHECK(g.components[2].inputs[0].first == "a");
  CHECK(g.components[2].inputs[0].second == "main");
  // src and a are fused (same parallelism, forward); k has a chain of its own.
  CHECK(g.components[0].chain == g.components[1].chain);
  CHECK(g.components[1].chain != g.components[2].chain);
  bool fused = false, hashed = false;
  for (const auto& ch : g.channels) {
    if (ch.from == "src" && ch.to == "a") fused = ch.fused && ch.partitioning == "fused";
    if (ch.from == "a" && ch.to == "k") hashed = !ch.fused && ch.partitioning == "hash" && ch.port == "main";
  }
  CHECK(fused);
  CHECK(hashed);
  std::size_t instances = 0;
  for (const auto& c : g.chains) instances += c.instances.size();
  CHECK(instances == 2 + 3 + 1);
}

TEST_CASE("a tap samples a component's rows at its rate and stops when untapped", "[runtime][status][tap]") {
  env e;
  e.b.source("src", "endless", 1);
  e.b.op("relay", "pass", {"src"}, 2);
  e.b.sink("out", "collect", {"relay"}, 1);
  runtime::job j(e.plan());
  CHECK(j.tap("nope", "main", 10, [](const std::string&) {}) == 0);
  CHECK(j.tap("out", "main", 10, [](const std::string&) {}) == 0);  // a sink has no output
  CHECK(j.tap("relay", "sideways", 10, [](const std::string&) {}) == 0);
  j.start();
  std::mutex mu;
  std::vector<std::string> lines;
  const auto t0 = std::chrono::steady_clock::now();
  const auto id = j.tap("relay", "main", 40, [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(l);
  });
  REQUIRE(id != 0);
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return lines.size() >= 60;
  }));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t got = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    got = lines.size();
    // Rows are JSON objects with the component's fields.
    CHECK(lines.front().rfind("{\"key\":", 0) == 0);
    CHECK(lines.front().find("\"seq\":") != std::string::npos);
  }
  // Hundreds of thousands of rows a second pass; the tap takes at most its rate, plus the
  // first second's bucket (one token at the start, so at most 40 + 40 * secs + 1).
  CHECK(static_cast<double>(got) <= 40.0 * secs + 41.0);
  j.untap(id);
  std::size_t after = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    after = lines.size();
  }
  const auto emitted = e.probe->emitted.load();
  REQUIRE(eventually([&] { return e.probe->emitted.load() > emitted + 200'000; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(lines.size() == after);
  }
  j.stop(true);
  REQUIRE(j.wait_for(30s));
}

TEST_CASE("the newest dead letters are kept for status, and a tap reads the dead-letter port",
          "[runtime][status][tap]") {
  env e;
  e.b.source("src", "vec", 1);
  e.b.op("check", "dead", {"src"}, 1);
  e.b.sink("out", "collect", {"check"}, 1);
  runtime::options o;
  o.dead_letter_samples = 5;
  runtime::job j(e.plan(), o);
  std::mutex mu;
  std::vector<std::string> tapped;
  REQUIRE(j.tap("check", "dead_letter", 1000, [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(mu);
    tapped.push_back(l);
  }) != 0);
  j.start();
  REQUIRE(j.wait_for(30s));
  REQUIRE(j.wait().ok);
  auto s = j.status();
  CHECK(totals(s, "check")->dead_letters == 1000);  // seq 0, 10, ..., 490 of 20 keys
  REQUIRE(s.dead_letters.size() == 5);
  for (const auto& d : s.dead_letters) {
    CHECK(d.component == "check");
    CHECK(d.json.find("seq is a multiple of 10") != std::string::npos);
    CHECK(d.at_ns > 1'700'000'000'000'000'000);
  }
  // The newest: the last rows have seq 490.
  CHECK(s.dead_letters.back().json.find("490") != std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(!tapped.empty());
  CHECK(tapped.size() <= 1000);
  CHECK(tapped.front().find("seq is a multiple of 10") != std::string::npos);
}

TEST_CASE("job::status gives each split's position, end and lag as the source reports them",
          "[runtime][status][split]") {
  env e;
  spec::event_time_spec et;
  et.field = "ts";
  et.format = "epoch_ms";
  e.b.source("src", "positioned", 1).event_time = et;
  e.b.sink("out", "collect", {"src"}, 1);
  runtime::job j(e.plan());
  j.start();
  // Split 1 is read out quickly, split 0 slowly: it has a lag the while, the empty one none.
  REQUIRE(eventually([&] {
    auto s = j.status();
    if (s.splits.size() != 3) return false;
    std::sort(s.splits.begin(), s.splits.end(), [](const auto& a, const auto& b) { return a.split < b.split; });
    return s.splits[1].position == 300 && s.splits[0].position > 0 && s.splits[0].lag > 0;
  }));
  auto s = j.status();
  for (const auto& x : s.splits) {
    CHECK(x.component == "src");
    if (x.split == "t/0") {
      CHECK(x.end == 5000);
      CHECK(x.lag == x.end - x.position);
      CHECK(x.watermark_ns > 1'700'000'000'000'000'000);
    } else if (x.split == "t/1") {
      CHECK(x.lag == 0);
    } else {
      CHECK(x.split == "t/2");
      CHECK(x.end == 0);
      CHECK(x.lag == 0);
    }
  }
  j.stop(true);
  REQUIRE(j.wait_for(30s));
}
