// Live rescaling inside a real job: a paced trade source with skewed symbols → a keyed
// tumbling window (VWAP and count per symbol) whose parallelism the `schedule` policy changes
// while it runs → one collecting sink. The output must equal a fixed-parallelism run's, row
// for row; each symbol's windows must reach the sink in order; nothing may be late. Prices
// are multiples of 1/4 and quantities small integers, so sums are exact in any order.
#include "test_components.hpp"
#include "pel/testing/random.hpp"
#include "pel/testing/poll.hpp"
#include "pel/testing/temp_dir.hpp"

#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

using namespace pel;
using namespace pel::test;

namespace {

constexpr std::int64_t t0_ms = 1'700'000'000'000;

struct trade {
  std::string symbol;
  double price;
  std::int64_t qty;
  std::int64_t ts_ms;
};

/// 8 trades per ms of event time, each up to 20 ms behind its place; symbols skewed (the
/// first few take most trades, as on a real exchange).
std::vector<trade> make_trades(std::size_t n, std::uint64_t seed) {
  pel::testing::xorshift rnd(seed);
  std::vector<trade> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t a = rnd() % 40, b = rnd() % 40;
    trade t;
    t.symbol = "S" + std::to_string(std::min(a, b) * std::min(a, b) / 40);  // skewed towards S0
    t.price = static_cast<double>(400 + rnd() % 400) / 4.0;
    t.qty = static_cast<std::int64_t>(1 + rnd() % 50);
    t.ts_ms = t0_ms + static_cast<std::int64_t>(i / 8) - static_cast<std::int64_t>(rnd() % 21);
    out.push_back(std::move(t));
  }
  return out;
}

/// Emits the trades in order at `rate` per second of wall clock (0: as fast as it can), 200
/// per poll at most; replayable (its position is the index of the next trade).
class paced_trades final : public core::source_base {
public:
  paced_trades(std::shared_ptr<const std::vector<trade>> trades, double rate)
    : trades_(std::move(trades)), rate_(rate) {}
  schema_ptr output_schema() const override { return make_schema({"symbol", "price", "qty", "ts"}); }
  void open(const core::operator_context&) override { start_ = std::chrono::steady_clock::now(); }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    std::size_t due = trades_->size();
    if (rate_ > 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      due = std::min(due, first_ + static_cast<std::size_t>(s * rate_));
    }
    std::size_t n = 0;
    while (n < std::min<std::size_t>(max_rows, 200) && next_ < due) {
      const trade& t = (*trades_)[next_++];
      core::value* r = out.main.append(t.ts_ms * 1'000'000);
      r[0] = t.symbol;
      r[1] = t.price;
      r[2] = t.qty;
      r[3] = t.ts_ms;
      ++n;
    }
    if (next_ >= trades_->size()) return core::poll_status::end;
    return n > 0 ? core::poll_status::data : core::poll_status::idle;
  }
  bool replayable() const override { return true; }
  void snapshot(core::state_writer& w) override { w.put<std::uint64_t>(next_); }
  void restore(core::state_reader& r) override {
    next_ = r.get<std::uint64_t>();
    first_ = next_;  // pacing starts again from here
  }

private:
  std::shared_ptr<const std::vector<trade>> trades_;
  double rate_;
  std::chrono::steady_clock::time_point start_;
  std::size_t next_ = 0, first_ = 0;
};

/// Epochs a committing sink prepared and not yet committed, shared by its incarnations (a
/// restarted instance commits what its predecessor prepared for the checkpoint it resumes at).
struct epochs {
  std::mutex mu;
  std::map<std::uint64_t, std::vector<std::vector<core::value>>> prepared;
};

/// A sink whose output becomes visible only when a checkpoint completes (or at the end of
/// its input), so that a restart does not show rows twice: the test's exactly-once sink.
class committing_sink final : public core::sink_base {
public:
  committing_sink(std::shared_ptr<collected> c, std::shared_ptr<epochs> e) : c_(std::move(c)), e_(std::move(e)) {}
  void open(const core::operator_context&, const schema_ptr& in) override { c_->schema = in; }
  void write(const core::batch& b) override {
    for (std::size_t i = 0; i < b.size(); ++i) open_.emplace_back(b.row(i), b.row(i) + b.width);
  }
  bool exactly_once() const override { return true; }
  void prepare(std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(e_->mu);
    auto& p = e_->prepared[id];
    for (auto& r : open_) p.push_back(std::move(r));
    open_.clear();
  }
  void commit(std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(e_->mu);
    std::lock_guard<std::mutex> lock2(c_->mu);
    auto& ep = e_->prepared;
    for (auto it = ep.begin(); it != ep.end() && it->first <= id; it = ep.erase(it))
      for (auto& r : it->second) c_->rows.push_back(std::move(r));
  }
  void restore(std::uint64_t id, core::state_reader&) override {
    commit(id);  // the checkpoint completed: what was prepared for it is output
    std::lock_guard<std::mutex> lock(e_->mu);
    e_->prepared.erase(e_->prepared.upper_bound(id), e_->prepared.end());  // replayed
  }
  void abort() override { open_.clear(); }
  void close() override {
    // The end of the input: everything is final.
    prepare(UINT64_MAX);
    commit(UINT64_MAX);
  }

private:
  std::shared_ptr<collected> c_;
  std::shared_ptr<epochs> e_;
  std::vector<std::vector<core::value>> open_;
};

/// Wraps an operator and fails its first `restore` after `armed` is set: a crash in the
/// middle of a rescale (restore runs only when an instance takes over state).
class fragile_op final : public core::operator_base {
public:
  fragile_op(core::operator_ptr inner, std::shared_ptr<std::atomic<int>> armed)
    : in_(std::move(inner)), armed_(std::move(armed)) {}
  schema_ptr output_schema() const override { return in_->output_schema(); }
  std::vector<int> key_columns(int i) const override { return in_->key_columns(i); }
  bool rescalable() const override { return in_->rescalable(); }
  void open(const core::operator_context& c) override { in_->open(c); }
  void process(core::batch& b, int i, core::outputs& o) override { in_->process(b, i, o); }
  void on_watermark(core::event_time wm, core::outputs& o) override { in_->on_watermark(wm, o); }
  void on_idle(core::outputs& o) override { in_->on_idle(o); }
  void on_timer(core::processing_time t, core::outputs& o) override { in_->on_timer(t, o); }
  std::int64_t timer_interval_ns() const override { return in_->timer_interval_ns(); }
  void finish(core::outputs& o) override { in_->finish(o); }
  void snapshot(core::state_writer& w) override { in_->snapshot(w); }
  void restore(core::state_reader& r) override {
    int one = 1;
    if (armed_->compare_exchange_strong(one, 2)) throw std::runtime_error("injected failure while taking over state");
    in_->restore(r);
  }

private:
  core::operator_ptr in_;
  std::shared_ptr<std::atomic<int>> armed_;
};

using result_row = std::tuple<std::string, std::int64_t, std::int64_t, double, double>;

struct env {
  spec::registry reg;
  std::shared_ptr<const std::vector<trade>> trades;
  std::shared_ptr<collected> out = std::make_shared<collected>();
  std::shared_ptr<epochs> prepared = std::make_shared<epochs>();
  std::shared_ptr<std::atomic<int>> armed = std::make_shared<std::atomic<int>>(0);
  double rate = 0;

  explicit env(std::vector<trade> t, double r) : trades(std::make_shared<const std::vector<trade>>(std::move(t))), rate(r) {
    operators::register_builtin_operators(reg);
    auto tr = trades;
    const double pace = rate;
    reg.add_source(schema_of("paced_trades", 0, 0),
                   [tr, pace](const spec::config&) { return std::make_unique<paced_trades>(tr, pace); });
    auto c = out;
    auto ep = prepared;
    reg.add_sink(schema_of("collect", 0, -1),
                 [c, ep](const spec::config&) { return std::make_unique<committing_sink>(c, ep); });
    // A window that can be made to fail while it takes over state.
    const auto* window = reg.find_operator("window");
    REQUIRE(window != nullptr);
    auto fragile = window->schema;
    fragile.type = "fragile_window";
    auto make = window->make;
    auto arm = armed;
    reg.add_operator(fragile, [make, arm](const spec::config& cfg, const std::vector<schema_ptr>& in) {
      return std::make_unique<fragile_op>(make(cfg, in), arm);
    });
  }

  runtime::result run(const std::string& yaml, std::function<void(runtime::job&)> during = {},
                      const std::string& state_dir = {}) {
    auto p = spec::load_text(yaml, "rescale.yaml", reg);
    auto plan = plan::build(p, reg);
    runtime::options o;
    o.state_dir = state_dir;
    runtime::job j(plan, o);
    j.start();
    if (during) during(j);
    if (!j.wait_for(std::chrono::seconds(120))) {
      for (const auto& m : j.metrics())
        UNSCOPED_INFO(m.component << "[" << m.instance << "] in " << m.rows_in << " out " << m.rows_out << " queued "
                                  << m.queued_batches << " batches_in " << m.batches_in << " out " << m.batches_out);
      FAIL("the job did not end");
    }
    return j.wait();
  }

  /// The collected rows as (symbol, start, end, vwap, trades), in arrival order.
  std::vector<result_row> rows() {
    std::lock_guard<std::mutex> lock(out->mu);
    std::vector<result_row> r;
    if (out->rows.empty()) return r;
    const auto& s = *out->schema;
    const int sym = s.index_of("symbol"), st = s.index_of("window_start"), en = s.index_of("window_end"),
              vw = s.index_of("vwap"), n = s.index_of("trades");
    REQUIRE(std::min({sym, st, en, vw, n}) >= 0);
    for (const auto& x : out->rows) {
      double v = 0, c = 0;
      REQUIRE(core::as_number(x[vw], v));
      REQUIRE(core::as_number(x[n], c));
      r.emplace_back(std::get<std::string>(x[sym]), std::get<std::int64_t>(x[st]), std::get<std::int64_t>(x[en]), v, c);
    }
    return r;
  }
};

std::string yaml(const std::string& window_type, const std::string& parallelism, const std::string& scaling,
                 const std::string& pre_aggregate = "auto", const std::string& checkpoint = "50ms") {
  return "pipeline:\n"
         "  name: rescale\n"
         "  batch: {size: 128, linger: 1ms}\n"
         "  checkpoints: {interval: " + checkpoint + "}\n" + scaling +
         "sources:\n"
         "  trades:\n"
         "    type: paced_trades\n"
         "    event_time: {expression: ts * 1000, format: epoch_us, max_out_of_orderness: 30ms}\n"
         "operators:\n"
         "  bars:\n"
         "    type: " + window_type + "\n"
         "    input: trades\n"
         "    key: symbol\n"
         "    parallelism: " + parallelism + "\n"
         "    window: {type: tumbling, size: 100ms}\n"
         "    pre_aggregate: " + pre_aggregate + "\n"
         "    aggregates: {vwap: \"vwap(price, qty)\", trades: count()}\n"
         "sinks:\n"
         "  out:\n"
         "    type: collect\n"
         "    input: bars\n";
}

const std::string schedule_1_4_2_3 =
    "  scaling:\n"
    "    policy: schedule\n"
    "    schedule:\n"
    "      - {at: 300ms, component: bars, parallelism: 4}\n"
    "      - {at: 800ms, component: bars, parallelism: 2}\n"
    "      - {at: 1300ms, component: bars, parallelism: 3}\n";

/// Every symbol's windows arrive in the order of their starts.
void require_per_key_order(const std::vector<result_row>& rows) {
  std::map<std::string, std::int64_t> last;
  std::size_t bad = 0;
  for (const auto& r : rows) {
    auto [it, fresh] = last.try_emplace(std::get<0>(r), std::get<1>(r));
    if (!fresh) {
      if (std::get<1>(r) <= it->second) ++bad;
      it->second = std::get<1>(r);
    }
  }
  CHECK(bad == 0);
}

void require_same(std::vector<result_row> got, std::vector<result_row> want) {
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  REQUIRE(got.size() == want.size());
  std::size_t diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& a = got[i];
    const auto& b = want[i];
    if (std::get<0>(a) != std::get<0>(b) || std::get<1>(a) != std::get<1>(b) || std::get<2>(a) != std::get<2>(b) ||
        std::get<4>(a) != std::get<4>(b) || std::abs(std::get<3>(a) - std::get<3>(b)) > 1e-12)
      ++diff;
  }
  CHECK(diff == 0);
}

std::vector<std::uint32_t> steps_done(const runtime::result& r) {
  std::vector<std::uint32_t> to;
  for (const auto& e : r.scaling)
    if (e.done) to.push_back(e.to);
  return to;
}

} // namespace

TEST_CASE("a keyed window rescaled 1 to 4 to 2 to 3 while it runs gives the fixed run's output", "[rescale]") {
  const auto trades = make_trades(160'000, 7);
  std::vector<result_row> fixed;
  {
    env e(trades, 0);
    auto r = e.run(yaml("window", "1", ""));
    REQUIRE(r.ok);
    fixed = e.rows();
    REQUIRE(fixed.size() > 1000);
  }
  for (const std::string pre : {"auto", "never"}) {
    DYNAMIC_SECTION("pre_aggregate " << pre) {
      // 160,000 trades at 80,000 a second: two seconds, over which the schedule runs.
      env e(trades, 80'000);
      auto r = e.run(yaml("window", "{initial: 1, min: 1, max: 4}", schedule_1_4_2_3, pre));
      INFO(r.error);
      REQUIRE(r.ok);
      CHECK(steps_done(r) == std::vector<std::uint32_t>{4, 2, 3});
      const auto* bars = r.find("bars");
      REQUIRE(bars != nullptr);
      CHECK(bars->parallelism == 3);
      CHECK(bars->max_parallelism == 4);
      CHECK(bars->late == 0);
      CHECK(r.restarts == 0);
      const auto got = e.rows();
      require_per_key_order(got);
      require_same(got, fixed);
    }
  }
}

TEST_CASE("a rescale waits for a running checkpoint and checkpoints go on after it", "[rescale]") {
  const auto trades = make_trades(120'000, 11);
  std::vector<result_row> fixed;
  {
    env e(trades, 0);
    REQUIRE(e.run(yaml("window", "2", "")).ok);
    fixed = e.rows();
  }
  // Checkpoints every 5 ms: most rescales find one running.
  env e(trades, 80'000);
  auto r = e.run(yaml("window", "{initial: 2, min: 1, max: 4}",
                      "  scaling:\n    policy: schedule\n    schedule:\n"
                      "      - {at: 200ms, component: bars, parallelism: 4}\n"
                      "      - {at: 700ms, component: bars, parallelism: 1}\n",
                      "auto", "5ms"));
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(steps_done(r) == std::vector<std::uint32_t>{4, 1});
  CHECK(r.checkpoints > 20);
  CHECK(r.checkpoints_abandoned == 0);
  const auto got = e.rows();
  require_per_key_order(got);
  require_same(got, fixed);
}

TEST_CASE("a crash while a rescale hands state over restarts the region at the new parallelism and loses nothing",
          "[rescale]") {
  const auto trades = make_trades(120'000, 13);
  std::vector<result_row> fixed;
  {
    env e(trades, 0);
    REQUIRE(e.run(yaml("window", "1", "")).ok);
    fixed = e.rows();
  }
  env e(trades, 80'000);
  e.armed->store(1);  // the first restore fails: a new instance taking over state
  auto r = e.run(yaml("fragile_window", "{initial: 1, min: 1, max: 4}",
                      "  scaling:\n    policy: schedule\n    schedule:\n"
                      "      - {at: 300ms, component: bars, parallelism: 3}\n",
                      "never", "20ms"));
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(e.armed->load() == 2);  // the failure happened
  CHECK(r.restarts == 1);
  REQUIRE(r.scaling.size() == 1);
  CHECK_FALSE(r.scaling[0].done);
  CHECK(r.scaling[0].outcome.find("abandoned") != std::string::npos);
  const auto* bars = r.find("bars");
  REQUIRE(bars != nullptr);
  CHECK(bars->parallelism == 3);  // restarted at the new parallelism
  const auto got = e.rows();
  require_per_key_order(got);
  require_same(got, fixed);
}

TEST_CASE("a run resumed from a state directory goes on at the parallelism its checkpoint was taken at",
          "[rescale]") {
  const auto trades = make_trades(120'000, 17);
  std::vector<result_row> fixed;
  {
    env e(trades, 0);
    REQUIRE(e.run(yaml("window", "1", "")).ok);
    fixed = e.rows();
  }
  pel::testing::temp_dir dir;
  env e(trades, 60'000);
  const std::string y = yaml("window", "{initial: 1, min: 1, max: 4}",
                             "  scaling:\n    policy: schedule\n    schedule:\n"
                             "      - {at: 200ms, component: bars, parallelism: 3}\n",
                             "never", "20ms");
  // The first run stops (with a final checkpoint) once it runs at 3 and a checkpoint at 3 is
  // complete.
  auto first = e.run(
      y,
      [&](runtime::job& j) {
        std::uint64_t after = 0;
        REQUIRE(pel::testing::poll_until(
            [&] {
              if (after == 0 && j.parallelism("bars") == 3) after = j.committed_checkpoint();
              return after != 0 && j.committed_checkpoint() > after;
            },
            std::chrono::seconds(30), std::chrono::milliseconds(5)));
        j.stop();
      },
      dir.path());
  INFO(first.error);
  REQUIRE(first.ok);
  REQUIRE(first.stopped_at > 0);
  // The second run starts with 3 instances, not the initial 1, and finishes the input.
  std::uint32_t at_start = 0;
  auto second = e.run(y, [&](runtime::job& j) { at_start = j.parallelism("bars"); }, dir.path());
  INFO(second.error);
  REQUIRE(second.ok);
  CHECK(at_start == 3);
  CHECK(second.restored_from == first.stopped_at);
  const auto got = e.rows();
  require_per_key_order(got);
  require_same(got, fixed);
}
