// Per-split event time: the tracker on its own (idleness, backpressure, alignment), then real
// jobs whose source has splits of very different sizes read unevenly (one split's backlog far
// ahead of the others), an empty split, and a split that trickles in while another is idle.
// Windows downstream must give exactly the rows a straightforward computation gives, and no
// record may be late: every split is in event-time order on its own.
#include "test_components.hpp"

#include "split_watermarks.hpp"
#include "pel/testing/random.hpp"

#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/testing/poll.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <tuple>

using namespace pel;
using namespace pel::test;
using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ the tracker alone

using sw = runtime::split_watermarks;
constexpr std::int64_t ms = 1'000'000;

std::vector<core::split_report> reports(std::initializer_list<std::pair<std::uint32_t, bool>> s) {
  std::vector<core::split_report> out;
  for (auto [id, at_end] : s) out.push_back({id, "t/" + std::to_string(id), at_end});
  return out;
}

void rows(sw& w, std::uint32_t id, std::int64_t t, std::int64_t clock) {
  w.observe(&id, &t, 1, clock);
}

} // namespace

TEST_CASE("split watermark: the minimum over splits, held back by a split with no data yet",
          "[runtime][watermark][split]") {
  sw w({100 * ms, 0, 0, 30'000 * ms}, 0);
  w.sync(reports({{0, false}, {1, false}}), 0);
  rows(w, 0, 5'000 * ms, 1);
  w.sync(reports({{0, false}, {1, false}}), 1);
  CHECK(w.watermark() == INT64_MIN);  // split 1 has had nothing yet
  rows(w, 1, 2'000 * ms, 2);
  rows(w, 0, 9'000 * ms, 2);
  w.sync(reports({{0, false}, {1, false}}), 2);
  CHECK(w.watermark() == 2'000 * ms - 100 * ms);  // the slower split, less the bound
  // A revoked split leaves the minimum.
  w.sync(reports({{0, false}}), 3);
  CHECK(w.watermark() == 9'000 * ms - 100 * ms);
}

TEST_CASE("split watermark: an instance waiting for its first assignment is not idle however long it "
          "waits, one assigned nothing is after idle_timeout",
          "[runtime][watermark][split]") {
  // A consumer group slow to settle: no splits while the assignment is pending.
  sw w({0, 1'000 * ms, 0, 30'000 * ms}, 0);
  w.sync({}, 0, true);
  w.sync({}, 5'000 * ms, true);
  CHECK_FALSE(w.all_idle());  // the others must not run ahead of partitions nobody reads yet
  CHECK(w.watermark() == INT64_MIN);
  // The group assigned it nothing (more members than partitions): idle after the timeout.
  w.sync({}, 5'100 * ms, false);
  CHECK_FALSE(w.all_idle());
  w.sync({}, 6'100 * ms, false);
  CHECK(w.all_idle());
  // A rebalance takes everything away and has not given anything back: holds again.
  w.sync({}, 6'200 * ms, true);
  CHECK_FALSE(w.all_idle());
}

TEST_CASE("split watermark: a split at its end goes idle after idle_timeout and comes back "
          "with data, time spent backpressured does not count",
          "[runtime][watermark][split]") {
  sw w({0, 1'000 * ms, 0, 30'000 * ms}, 0);
  rows(w, 0, 7'000 * ms, 0);
  w.sync(reports({{0, false}, {1, true}}), 0);
  CHECK(w.watermark() == INT64_MIN);  // the empty split holds time back ...
  w.sync(reports({{0, false}, {1, true}}), 999 * ms);
  CHECK(w.watermark() == INT64_MIN);
  w.sync(reports({{0, false}, {1, true}}), 1'000 * ms);
  CHECK(w.watermark() == 7'000 * ms);  // ... until it has been at its end for idle_timeout
  CHECK_FALSE(w.all_idle());
  auto notes = w.take_notes();
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].text ==
        "partition t/1 has had no data for 1s (event_time.idle_timeout): the watermark goes on "
        "without it until data returns");
  // Data returns: the split holds time again. The watermark never goes back (its older
  // records are late downstream), and does not move on until the split catches up.
  rows(w, 1, 3'000 * ms, 1'100 * ms);
  w.sync(reports({{0, false}, {1, false}}), 1'100 * ms);
  CHECK(w.watermark() == 7'000 * ms);
  rows(w, 0, 12'000 * ms, 1'200 * ms);
  w.sync(reports({{0, false}, {1, false}}), 1'200 * ms);
  CHECK(w.watermark() == 7'000 * ms);
  rows(w, 1, 8'000 * ms, 1'300 * ms);
  w.sync(reports({{0, false}, {1, false}}), 1'300 * ms);
  CHECK(w.watermark() == 8'000 * ms);
  // A split not at its end is never idle, however long it has no data: its data is waiting
  // (behind backpressure, or fetched later).
  w.sync(reports({{0, false}, {1, false}}), 60'000 * ms);
  CHECK(w.watermark() == 8'000 * ms);
  // The clock the runtime passes stops while the instance is backpressured, so the same
  // wall time spent blocked does not make a split idle.
  sw b({0, 1'000 * ms, 0, 30'000 * ms}, 0);
  rows(b, 0, 7'000 * ms, 0);
  rows(b, 1, 1'000 * ms, 0);
  b.sync(reports({{0, false}, {1, true}}), 0);
  b.sync(reports({{0, false}, {1, true}}), 500 * ms);  // clock advanced 500 ms only
  CHECK(b.watermark() == 1'000 * ms);
}

TEST_CASE("split watermark: every split idle makes the instance idle, and a split that holds "
          "time back for long is named with a hint",
          "[runtime][watermark][split]") {
  sw w({0, 0, 0, 30'000 * ms}, 0);
  w.sync(reports({{0, true}, {3, false}}), 0);
  w.sync(reports({{0, true}, {3, false}}), 31'000 * ms);
  auto notes = w.take_notes();
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].warning);
  CHECK(notes[0].text ==
        "partition t/0 has had no data yet for 31s and holds the watermark back, so windows do "
        "not close; set event_time.idle_timeout (e.g. 5s) to let time go on without a partition "
        "that has no data");
  CHECK(notes[1].text.find("partition t/3 has had no data yet") == 0);
  CHECK(w.take_notes().empty());  // once, until it has data

  sw i({0, 100 * ms, 0, 30'000 * ms}, 0);
  rows(i, 0, 4'000 * ms, 0);
  rows(i, 1, 9'000 * ms, 0);
  i.sync(reports({{0, false}, {1, true}}), 0);
  i.sync(reports({{0, true}, {1, true}}), 50 * ms);
  CHECK_FALSE(i.all_idle());
  CHECK(i.watermark() == 4'000 * ms);
  i.sync(reports({{0, true}, {1, true}}), 100 * ms);  // split 1 idle, split 0 not yet
  CHECK_FALSE(i.all_idle());
  CHECK(i.watermark() == 4'000 * ms);
  i.sync(reports({{0, true}, {1, true}}), 150 * ms);
  CHECK(i.all_idle());
  // Every split idle: time goes on to the highest of them, whichever went idle last.
  CHECK(i.watermark() == 9'000 * ms);
  // No split at all (more instances than partitions): idle after idle_timeout too.
  sw none({0, 100 * ms, 0, 30'000 * ms}, 0);
  none.sync({}, 50 * ms);
  CHECK_FALSE(none.all_idle());
  none.sync({}, 100 * ms);
  CHECK(none.all_idle());
}

TEST_CASE("split watermark alignment pauses what runs more than max_drift ahead, never the "
          "slowest split, and a paused split is never idle",
          "[runtime][watermark][split][alignment]") {
  sw w({0, 100 * ms, 2'000 * ms, 30'000 * ms}, 0);
  rows(w, 0, 10'000 * ms, 0);
  rows(w, 1, 7'000 * ms, 0);
  rows(w, 2, 9'000 * ms, 0);
  w.sync(reports({{0, false}, {1, false}, {2, false}}), 0);
  CHECK(w.alignment_floor() == 7'000 * ms);
  std::vector<sw::decision> d;
  w.align(w.alignment_floor(), d);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == 0);
  CHECK(d[0].pause);
  CHECK(w.any_paused());
  // A floor from another instance that is further behind pauses more.
  d.clear();
  w.align(6'500 * ms, d);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == 2);
  // Paused for a long time: not idle, so it still holds the watermark.
  w.sync(reports({{0, false}, {1, false}, {2, false}}), 10'000 * ms);
  CHECK(w.watermark() == 7'000 * ms);
  // The slow split catches up: both resume.
  rows(w, 1, 8'500 * ms, 10'001 * ms);
  w.sync(reports({{0, false}, {1, false}, {2, false}}), 10'001 * ms);
  d.clear();
  w.align(w.alignment_floor(), d);
  REQUIRE(d.size() == 2);
  CHECK_FALSE(d[0].pause);
  CHECK_FALSE(d[1].pause);
  CHECK_FALSE(w.any_paused());
  // A split whose first data is on its way holds every other split, for a grace period
  // after it was assigned (a partition fetched a little later than the others).
  sw f({0, 100 * ms, 2'000 * ms, 30'000 * ms}, 0);
  rows(f, 0, 10'000 * ms, 0);
  rows(f, 1, 1'000 * ms, 0);
  f.sync(reports({{0, false}, {1, false}, {2, false}}), 0);
  CHECK(f.alignment_floor() == INT64_MIN);
  d.clear();
  f.align(f.alignment_floor(), d);
  CHECK(d.size() == 2);  // both splits with data wait
  // After the grace, a split that has had no data, or has nothing left to read, does not
  // set the floor: it would hold the others paused for nothing.
  f.sync(reports({{0, false}, {1, false}, {2, false}}), sw::first_data_grace_ns);
  CHECK(f.alignment_floor() == 1'000 * ms);
  f.sync(reports({{0, false}, {1, true}, {2, false}}), sw::first_data_grace_ns + 1);
  CHECK(f.alignment_floor() == 10'000 * ms);
}

// ------------------------------------------------------------------ in a job

namespace {

constexpr std::int64_t t0_ms = 1'700'000'000'000;

struct trade {
  std::string symbol;
  double price;
  std::int64_t qty;
  std::int64_t ts_ms;
};

/// `n` trades of `symbols` over `span_ms`, in event-time order (prices in quarters and small
/// quantities, so that sums are exact in any order).
std::vector<trade> split_trades(std::size_t n, std::vector<std::string> symbols,
                                std::int64_t span_ms, std::uint64_t seed) {
  pel::testing::xorshift rnd(seed);
  std::vector<trade> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({symbols[rnd() % symbols.size()], static_cast<double>(400 + rnd() % 400) / 4.0,
                   static_cast<std::int64_t>(1 + rnd() % 50),
                   t0_ms + static_cast<std::int64_t>(i) * span_ms / static_cast<std::int64_t>(n)});
  return out;
}

/// What the test source did, for the test to check.
struct split_probe {
  std::atomic<std::size_t> emitted{0};       ///< rows handed to the runtime
  std::mutex mu;
  std::int64_t max_lead_ms = 0;              ///< high-water of (fastest - slowest) split time
  std::map<std::uint32_t, int> pauses;       ///< split → times paused
};

/// A source whose splits (one vector of trades each) are read unevenly: each poll takes up
/// to `chunk[s]` rows (within the batch size, starting at a different split each time) from
/// every split it owns that is not paused (instance i owns splits
/// i, i+p, ...). A split with `trickle_ms[s] > 0` releases one chunk only every that many ms
/// of wall time. Rows carry the trade's time in field `ts` and are tagged with their split.
/// Bounded when `end` is set; otherwise idle once everything is read.
class split_source final : public core::source_base {
public:
  split_source(std::shared_ptr<const std::vector<std::vector<trade>>> splits,
               std::vector<std::size_t> chunk, std::vector<std::int64_t> trickle_ms, bool end,
               std::shared_ptr<split_probe> probe)
    : splits_(std::move(splits)), chunk_(std::move(chunk)), trickle_ms_(std::move(trickle_ms)),
      end_(end), probe_(std::move(probe)) {}

  schema_ptr output_schema() const override { return make_schema({"symbol", "price", "qty", "ts"}); }
  void open(const core::operator_context& ctx) override {
    for (std::uint32_t s = ctx.instance; s < splits_->size(); s += ctx.parallelism) own_.push_back(s);
    next_.assign(splits_->size(), 0);
    last_.assign(splits_->size(), INT64_MIN);
    released_at_.assign(splits_->size(), 0);
    paused_.assign(splits_->size(), false);
  }
  bool has_splits() const override { return true; }
  void splits(std::vector<core::split_report>& out) const override {
    out.clear();
    for (auto s : own_) out.push_back({s, "t/" + std::to_string(s), next_[s] >= (*splits_)[s].size()});
  }
  void pause_split(std::uint32_t id, bool paused) override {
    paused_[id] = paused;
    if (paused && probe_) {
      std::lock_guard<std::mutex> lock(probe_->mu);
      ++probe_->pauses[id];
    }
  }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    const std::int64_t now = core::steady_ns() / ms;
    // Each poll starts at the next split, so that a big chunk cannot starve the others.
    ++turn_;
    for (std::size_t k = 0; k < own_.size(); ++k) {
      const std::uint32_t s = own_[(turn_ + k) % own_.size()];
      const auto& v = (*splits_)[s];
      if (paused_[s] || next_[s] >= v.size()) continue;
      if (trickle_ms_[s] > 0) {
        if (now - released_at_[s] < trickle_ms_[s]) continue;
        released_at_[s] = now;
      }
      for (std::size_t n = 0; n < chunk_[s] && next_[s] < v.size() && out.main.size() < max_rows; ++n) {
        const trade& t = v[next_[s]++];
        core::value* r = out.main.append(0);
        r[0] = t.symbol;
        r[1] = t.price;
        r[2] = t.qty;
        r[3] = t.ts_ms;
        out.splits.push_back(s);
        last_[s] = t.ts_ms;
        if (probe_) ++probe_->emitted;
      }
    }
    measure_lead();
    bool left = false, open = false;
    for (auto s : own_) {
      if (next_[s] < (*splits_)[s].size()) {
        left = true;
        if (!paused_[s]) open = true;
      }
    }
    if (!left) return end_ ? core::poll_status::end : core::poll_status::idle;
    return open ? core::poll_status::data : core::poll_status::idle;
  }

private:
  void measure_lead() {
    if (!probe_) return;
    std::int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (auto s : own_) {
      if (last_[s] == INT64_MIN || next_[s] >= (*splits_)[s].size()) continue;  // done: not behind
      lo = std::min(lo, last_[s]);
      hi = std::max(hi, last_[s]);
    }
    for (auto s : own_)
      if (last_[s] != INT64_MIN) hi = std::max(hi, last_[s]);
    if (lo == INT64_MAX) return;
    std::lock_guard<std::mutex> lock(probe_->mu);
    probe_->max_lead_ms = std::max(probe_->max_lead_ms, hi - lo);
  }

  std::shared_ptr<const std::vector<std::vector<trade>>> splits_;
  std::vector<std::size_t> chunk_;
  std::vector<std::int64_t> trickle_ms_;
  bool end_;
  std::shared_ptr<split_probe> probe_;
  std::vector<std::uint32_t> own_;
  std::vector<std::size_t> next_;
  std::vector<std::int64_t> last_, released_at_;
  std::vector<bool> paused_;
  std::size_t turn_ = 0;
};

using bar = std::tuple<std::string, std::int64_t, double, double, double>;  // symbol, start, n, qty, vwap

double num(const core::value& v) {
  double d = 0;
  REQUIRE(core::as_number(v, d));
  return d;
}

std::vector<bar> bars_of(collected& c) {
  std::lock_guard<std::mutex> lock(c.mu);
  std::vector<bar> out;
  if (c.rows.empty()) return out;
  const int sym = c.schema->index_of("symbol"), start = c.schema->index_of("window_start"),
            n = c.schema->index_of("trades"), q = c.schema->index_of("volume"),
            v = c.schema->index_of("vwap");
  REQUIRE(std::min({sym, start, n, q, v}) >= 0);
  for (const auto& r : c.rows)
    out.emplace_back(std::get<std::string>(r[sym]), std::get<std::int64_t>(r[start]), num(r[n]),
                     num(r[q]), num(r[v]));
  std::sort(out.begin(), out.end());
  return out;
}

/// The rows only one side has, for the failure message.
std::string diff(const std::vector<bar>& got, const std::vector<bar>& want) {
  std::string out;
  auto show = [&](const char* side, const bar& b) {
    out += std::string(side) + " " + std::get<0>(b) + " " + std::to_string(std::get<1>(b) - t0_ms) +
           " n=" + std::to_string(std::get<2>(b)) + " q=" + std::to_string(std::get<3>(b)) +
           " vwap=" + std::to_string(std::get<4>(b)) + "\n";
  };
  std::vector<bar> only_got, only_want;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(only_got));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(only_want));
  for (std::size_t i = 0; i < only_got.size() && i < 10; ++i) show("extra", only_got[i]);
  for (std::size_t i = 0; i < only_want.size() && i < 10; ++i) show("missing", only_want[i]);
  return out;
}

/// A finished job: it succeeded, the window dropped no record as late, and the bars are
/// exactly `want`.
void expect_exact(const runtime::result& r, collected& out, const std::vector<bar>& want) {
  REQUIRE(r.ok);
  CHECK(r.find("bars")->late + (r.find("bars/local") ? r.find("bars/local")->late : 0) == 0);
  const auto got = bars_of(out);
  INFO(diff(got, want));
  CHECK(got == want);
}

std::vector<bar> reference(const std::vector<std::vector<trade>>& splits) {
  std::map<std::pair<std::string, std::int64_t>, std::tuple<double, double, double>> acc;
  for (const auto& s : splits)
    for (const auto& t : s) {
      auto& [n, q, pq] = acc[{t.symbol, t.ts_ms / 1000 * 1000}];
      n += 1;
      q += static_cast<double>(t.qty);
      pq += t.price * static_cast<double>(t.qty);
    }
  std::vector<bar> out;
  for (const auto& [k, v] : acc)
    out.emplace_back(k.first, k.second, std::get<0>(v), std::get<1>(v), std::get<2>(v) / std::get<1>(v));
  return out;
}

struct split_env {
  spec::registry reg;
  std::shared_ptr<collected> out = std::make_shared<collected>();
  std::shared_ptr<split_probe> probe = std::make_shared<split_probe>();

  split_env(std::shared_ptr<const std::vector<std::vector<trade>>> splits,
            std::vector<std::size_t> chunk, std::vector<std::int64_t> trickle, bool end) {
    operators::register_builtin_operators(reg);
    auto p = probe;
    reg.add_source(schema_of("split_trades", 0, 0), [=](const spec::config&) {
      return std::make_unique<split_source>(splits, chunk, trickle, end, p);
    });
    auto c = out;
    reg.add_sink(schema_of("collect", 0, -1),
                 [c](const spec::config&) { return std::make_unique<collect_sink>(c); });
  }

  std::unique_ptr<runtime::job> start(const std::string& yaml) {
    auto p = spec::load_text(yaml, "splits.yaml", reg);
    auto j = std::make_unique<runtime::job>(plan::build(p, reg));
    j->start();
    return j;
  }
};

std::string bars_yaml(int source_par, int window_par, const std::string& event_time,
                      const std::string& pre = "auto") {
  return "pipeline: {batch: {size: 256, linger: 1ms}}\n"
         "sources:\n"
         "  trades:\n"
         "    type: split_trades\n"
         "    parallelism: " + std::to_string(source_par) + "\n"
         "    event_time: " + event_time + "\n"
         "operators:\n"
         "  bars:\n"
         "    type: window\n"
         "    parallelism: " + std::to_string(window_par) + "\n"
         "    input: trades\n"
         "    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    pre_aggregate: " + pre + "\n"
         "    aggregates: {trades: count(), volume: sum(qty), vwap: \"vwap(price, qty)\"}\n"
         "sinks:\n"
         "  out: {type: collect, input: bars}\n";
}

} // namespace

TEST_CASE("skewed splits read unevenly, one of them empty: no late record and every window "
          "exact, at parallelism 1, 2 and 4",
          "[runtime][watermark][split]") {
  // Split 0 has most of the volume, split 2 nothing; each is in event-time order, all over
  // the same 20 s. Split 0 is read 400 rows a poll, the others 3: its backlog runs ahead.
  auto splits = std::make_shared<const std::vector<std::vector<trade>>>(std::vector<std::vector<trade>>{
      split_trades(12'000, {"AAPL", "MSFT"}, 20'000, 1), split_trades(900, {"NVDA"}, 20'000, 2), {},
      split_trades(60, {"TSLA"}, 20'000, 3)});
  const auto want = reference(*splits);
  for (int par : {1, 2, 4}) {
    INFO("parallelism " << par);
    split_env e(splits, {400, 3, 3, 3}, {0, 0, 0, 0}, false);
    auto j = e.start(bars_yaml(par, par, "{field: ts, format: epoch_ms, idle_timeout: 200ms}"));
    // The watermark closes every window but each split's last one while the source is still
    // running (the empty split goes idle); the stop closes the rest.
    const std::size_t all_but_last = want.size() - 4;
    REQUIRE(pel::testing::poll_until([&] { return bars_of(*e.out).size() >= all_but_last; }, 30s));
    j->stop();
    REQUIRE(j->wait_for(30s));
    auto r = j->wait();
    expect_exact(r, *e.out, want);
    std::lock_guard<std::mutex> lock(e.probe->mu);
    INFO("largest lead of a split over the slowest: " << e.probe->max_lead_ms << " ms");
    if (par == 1) CHECK(e.probe->max_lead_ms > 5'000);  // the backlog was read far ahead
  }
}

TEST_CASE("watermark alignment bounds how far a backlog runs ahead without slowing the slowest "
          "split, and loses nothing",
          "[runtime][watermark][split][alignment]") {
  // 100 s of event time: split 0 has 40,000 trades read 500 a poll (1.25 s of its time),
  // split 1 has 2,000 read 5 a poll (0.25 s).
  auto splits = std::make_shared<const std::vector<std::vector<trade>>>(std::vector<std::vector<trade>>{
      split_trades(40'000, {"AAPL", "MSFT", "AMZN"}, 100'000, 4), split_trades(2'000, {"NVDA"}, 100'000, 5)});
  const auto want = reference(*splits);
  std::int64_t unaligned_lead = 0;
  for (std::string drift : {"0s", "2s"}) {
    INFO("max_drift " << drift);
    split_env e(splits, {500, 5}, {0, 0}, true);
    auto j = e.start(bars_yaml(1, 2, "{field: ts, format: epoch_ms, max_drift: " + drift + "}"));
    REQUIRE(j->wait_for(60s));
    auto r = j->wait();
    expect_exact(r, *e.out, want);
    std::lock_guard<std::mutex> lock(e.probe->mu);
    auto pauses = [&](std::uint32_t s) {
      auto it = e.probe->pauses.find(s);
      return it == e.probe->pauses.end() ? 0 : it->second;
    };
    WARN("max_drift " << drift << ": largest lead of a split over the slowest "
                      << e.probe->max_lead_ms << " ms, pauses of split 0: " << pauses(0));
    CHECK(pauses(1) == 0);  // the slowest split is never paused
    // The runtime's own measure of the lead (reported in the run summary) agrees.
    const auto runtime_lead_ms = r.find("trades")->max_split_lead_ns / 1'000'000;
    CHECK(runtime_lead_ms <= e.probe->max_lead_ms);
    CHECK(runtime_lead_ms + 1'500 >= e.probe->max_lead_ms);
    if (drift == "0s") {
      unaligned_lead = e.probe->max_lead_ms;
      CHECK(e.probe->pauses.empty());
      CHECK(unaligned_lead > 30'000);
    } else {
      CHECK(pauses(0) > 0);
      // 2 s of drift, plus what one poll of the fast split adds before the pause applies.
      CHECK(e.probe->max_lead_ms <= 2'000 + 1'250 + 250);
    }
  }
}

TEST_CASE("two-phase windows at parallelism 4: an instance that goes idle sends its partials, "
          "so a window closed by the others has them, and every window arrives once",
          "[runtime][watermark][split][two_phase]") {
  // Instances 0, 2 and 3 read their splits at once (10 s of time) and go idle; instance 1's
  // split trickles in over 20 s of time, so the global halves' watermark passes the idle
  // instances' last panes while those are still open in their local halves.
  auto splits = std::make_shared<const std::vector<std::vector<trade>>>(std::vector<std::vector<trade>>{
      split_trades(3'000, {"AAPL", "MSFT"}, 10'000, 6), split_trades(400, {"NVDA"}, 20'000, 7),
      split_trades(500, {"AMZN"}, 10'000, 8), split_trades(200, {"TSLA"}, 10'000, 9)});
  const auto want = reference(*splits);
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    split_env e(splits, {3'000, 8, 500, 200}, {0, 5, 0, 0}, false);
    auto j = e.start(bars_yaml(4, 4, "{field: ts, format: epoch_ms, idle_timeout: 50ms}", "always"));
    // Everything is read, and everything but NVDA's last window closes by the watermark.
    std::size_t total = 0;
    for (const auto& v : *splits) total += v.size();
    REQUIRE(pel::testing::poll_until(
        [&] { return e.probe->emitted == total && bars_of(*e.out).size() >= want.size() - 1; }, 30s));
    j->stop();
    REQUIRE(j->wait_for(30s));
    auto r = j->wait();
    expect_exact(r, *e.out, want);
  }
}
