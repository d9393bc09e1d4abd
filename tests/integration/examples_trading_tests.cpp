// The trading examples through `pel run`, compared with plain computations over the same
// generated trades: VWAP per symbol and second (at parallelism 1, 2 and 4 too) and final
// OHLC bars.
#include "examples_support.hpp"

#include <map>
#include <set>
#include <tuple>

using namespace pel;
using namespace pel::e2e;

namespace {

/// One generated trade (profile trades: ts, symbol, price, qty, side, trade_id).
struct trade {
  std::int64_t ts;
  std::string symbol;
  double price;
  std::int64_t qty;
  std::int64_t id;
};

std::vector<trade> trades_of(const connectors::generator_options& opt) {
  std::vector<trade> out;
  for (auto& r : generate(opt))
    out.push_back({std::get<std::int64_t>(r[0]), std::get<std::string>(r[1]),
                   std::get<double>(r[2]), std::get<std::int64_t>(r[3]),
                   std::get<std::int64_t>(r[5])});
  return out;
}

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  return (t >= 0 ? t / size : (t - size + 1) / size) * size;
}

/// Per symbol and 1 s window: what vwap.yaml's aggregates should give.
struct vwap_row {
  double pq = 0, volume = 0, high = -1e300, low = 1e300;
  std::int64_t trades = 0;
};
using window_key = std::pair<std::string, std::int64_t>;

std::map<window_key, vwap_row> expected_vwap(const std::vector<trade>& trades) {
  std::map<window_key, vwap_row> m;
  for (const auto& t : trades) {
    auto& w = m[{t.symbol, floor_to(t.ts, 1000)}];
    w.pq += t.price * static_cast<double>(t.qty);
    w.volume += static_cast<double>(t.qty);
    w.trades += 1;
    w.high = std::max(w.high, t.price);
    w.low = std::min(w.low, t.price);
  }
  return m;
}

/// Compares pel's VWAP rows with the expected windows, as a multiset keyed by window.
void check_vwap(const std::vector<json_object>& rows, const std::map<window_key, vwap_row>& want) {
  REQUIRE(rows.size() == want.size());
  std::set<window_key> seen;
  for (const auto& o : rows) {
    window_key k{o.str("symbol"), o.integer("window_start")};
    INFO(k.first << " @ " << k.second);
    REQUIRE(seen.insert(k).second);
    auto it = want.find(k);
    REQUIRE(it != want.end());
    const auto& w = it->second;
    CHECK(o.integer("window_end") == k.second + 1000);
    CHECK(close_to(o.num("vwap"), w.pq / w.volume));
    CHECK(close_to(o.num("volume"), w.volume));
    CHECK(o.integer("trades") == w.trades);
    CHECK(o.num("high") == w.high);
    CHECK(o.num("low") == w.low);
  }
}

}  // namespace

TEST_CASE("examples/trading/vwap.yaml gives each symbol's VWAP per second", "[e2e][examples]") {
  auto opt = generator_options_of(example("trading/vwap.yaml"), "trades");
  REQUIRE(opt.count == 200000);
  auto trades = trades_of(opt);
  REQUIRE(trades.size() == 200000);
  auto want = expected_vwap(trades);
  REQUIRE(want.size() > 150);  // 20 symbols x ~10 s
  check_vwap(run_ok("examples/trading/vwap.yaml"), want);
}

TEST_CASE("vwap.yaml gives the same windows at parallelism 1, 2 and 4",
          "[e2e][examples][parallel]") {
  auto text = read_file(example("trading/vwap.yaml"));
  auto want =
      expected_vwap(trades_of(generator_options_of(example("trading/vwap.yaml"), "trades")));
  temp_dir dir;
  for (int p : {1, 2, 4}) {
    INFO("parallelism " << p);
    auto file = dir / ("vwap_p" + std::to_string(p) + ".yaml");
    // pipeline.parallelism (the window and the sink); the generator keeps its own 1.
    auto variant =
        replace_once(text, "\n  parallelism: 2\n", "\n  parallelism: " + std::to_string(p) + "\n");
    write_file(file, variant);
    auto lint = run_pel({"lint", "--explain", file});
    REQUIRE(lint.exit_code == 0);
    CHECK(lint.out.find("operator vwap (window), parallelism " + std::to_string(p)) !=
          std::string::npos);
    check_vwap(run_ok(file), want);
  }
}

TEST_CASE("examples/trading/ohlc.yaml: final bars match the trades", "[e2e][examples]") {
  // The example paces the generator at 2,000 trades/s of wall clock for 20 s. The same
  // records come unpaced with event_rate: 2000 (the event rate `rate` implies at parallelism
  // 1), so the test runs the example with that one change.
  auto text = read_file(example("trading/ohlc.yaml"));
  REQUIRE(text.find("    parallelism: 1\n") != std::string::npos);  // the source's
  temp_dir dir;
  auto file = dir / "ohlc.yaml";
  write_file(file, replace_once(text, "    rate: 2000 ", "    event_rate: 2000 "));
  auto paced = generator_options_of(example("trading/ohlc.yaml"), "trades");
  auto opt = generator_options_of(file, "trades");
  REQUIRE(paced.rate == 2000);
  REQUIRE(opt.rate == 0);
  auto trades = trades_of(opt);
  REQUIRE(trades.size() == 40000);  // 20 s of event time at 2,000 per second

  auto rows = run_ok(file);
  // Bars have window_start; late trades (bars.late, the same stdout) have trade_id.
  std::set<std::int64_t> late_ids;
  std::map<window_key, json_object> final_bar;  // the last final emission per window
  std::size_t running = 0;
  for (auto& o : rows) {
    if (o.has("trade_id")) {
      late_ids.insert(o.integer("trade_id"));
      continue;
    }
    window_key k{o.str("symbol"), o.integer("window_start")};
    if (!o.boolean("final")) {
      ++running;
      continue;
    }
    final_bar.insert_or_assign(k, o);
  }
  // With max_delay = max_out_of_orderness nothing is beyond the allowed lateness.
  CHECK(late_ids.empty());

  struct bar {
    double open = 0, high = -1e300, low = 1e300, close = 0, volume = 0, pq = 0;
    std::int64_t open_t = INT64_MAX, close_t = INT64_MIN, trades = 0;
  };
  std::map<window_key, bar> want;
  for (const auto& t : trades) {
    if (late_ids.count(t.id)) continue;
    auto& b = want[{t.symbol, floor_to(t.ts, 1000)}];
    // Open: the earliest trade by event time (the first to arrive among equals); close: the
    // latest (the last to arrive among equals).
    if (t.ts < b.open_t) b.open = t.price, b.open_t = t.ts;
    if (t.ts >= b.close_t) b.close = t.price, b.close_t = t.ts;
    b.high = std::max(b.high, t.price);
    b.low = std::min(b.low, t.price);
    b.volume += static_cast<double>(t.qty);
    b.pq += t.price * static_cast<double>(t.qty);
    b.trades += 1;
  }
  REQUIRE(final_bar.size() == want.size());
  for (const auto& [k, w] : want) {
    INFO(k.first << " @ " << k.second);
    auto it = final_bar.find(k);
    REQUIRE(it != final_bar.end());
    const auto& o = it->second;
    CHECK(o.integer("window_end") == k.second + 1000);
    CHECK(o.num("bar_open") == w.open);
    CHECK(o.num("bar_high") == w.high);
    CHECK(o.num("bar_low") == w.low);
    CHECK(o.num("bar_close") == w.close);
    CHECK(close_to(o.num("bar_volume"), w.volume));
    CHECK(o.integer("bar_trades") == w.trades);
    CHECK(close_to(o.num("vwap"), w.pq / w.volume));
  }
  (void)running;  // running bars depend on wall-clock timing; only final bars are compared
}
