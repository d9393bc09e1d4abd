// Each per-record operator against a direct computation on the same seeded, out-of-order input.
#include "stateful_test_support.hpp"

#include <map>

using namespace pel;
using namespace pel::test;

namespace {

const auto trades_schema = schema_of({"symbol", "price", "qty", "trade_id"});

recs sorted_by_time(recs r) {
  std::stable_sort(r.begin(), r.end(), [](const rec& a, const rec& b) { return a.t < b.t; });
  return r;
}

recs run_one(const std::string& type, const std::string& yaml, const recs& input,
             std::int64_t delay = 200'000'000, core::outputs* keep = nullptr) {
  driver d;
  d.start(1, [&] { return make(type, yaml, {trades_schema}); });
  d.feed({input}, 37, delay);
  auto res = d.results();
  if (keep) *keep = std::move(d.out);
  return res;
}

/// The trades, time-ordered, and an arrival order out of order by up to 150 ms.
struct fixture {
  recs ordered = make_trades(3000, 7);
  recs arrival = shuffle_bounded(ordered, 150'000'000, 11);
};

} // namespace

TEST_CASE("zscore alerts match a direct computation, out-of-order input", "[stateful][zscore]") {
  fixture f;
  REQUIRE(canonical(f.arrival)[0].t == f.ordered[0].t);
  const std::size_t n = 40;
  const double k = 2.5;
  const std::int64_t min_samples = 10;
  recs want;
  std::map<std::string, std::vector<double>> hist;
  for (auto& r : f.ordered) {
    auto& h = hist[std::get<std::string>(r.v[0])];
    double x = num(r.v[1]);
    std::size_t from = h.size() > n ? h.size() - n : 0;
    double m = 0, ss = 0, cnt = static_cast<double>(h.size() - from);
    for (auto i = from; i < h.size(); ++i) m += h[i];
    if (cnt > 0) m /= cnt;
    for (auto i = from; i < h.size(); ++i) ss += (h[i] - m) * (h[i] - m);
    double sd = cnt > 1 ? std::sqrt(ss / (cnt - 1)) : std::nan("");
    if (cnt >= min_samples && sd > 0 && std::fabs((x - m) / sd) > k)
      want.push_back({{r.v[0], x, m, sd, (x - m) / sd, std::string("zscore"), r.t / 1'000'000}, r.t});
    h.push_back(x);
  }
  REQUIRE(want.size() > 5);  // the input has jumps
  auto got = run_one("zscore", "key: symbol\nvalue: price\nrows: 40\nk: 2.5\nmin_samples: 10\n", f.arrival);
  require_same(got, want);
  // `time` is the event time in epoch milliseconds, as a window's window_start.
  for (const auto& r : got) REQUIRE(r.v[6] == value(r.t / 1'000'000));

  SECTION("mode all annotates every record") {
    auto all = run_one("zscore", "key: symbol\nvalue: price\nrows: 40\nk: 2.5\nmin_samples: 10\nmode: all\n",
                       f.arrival);
    REQUIRE(all.size() == f.ordered.size());
    std::size_t alerts = 0;
    for (auto& r : all) alerts += r.v[7] == value(std::string("zscore"));
    REQUIRE(alerts == want.size());
  }
  SECTION("thresholds alert without history") {
    auto got2 = run_one("zscore", "key: symbol\nvalue: price\nabove: 1000\nbelow: 99\nmin_samples: 100000\n",
                        f.arrival);
    std::size_t below = 0;
    for (auto& r : f.ordered) below += num(r.v[1]) < 99;
    REQUIRE(got2.size() == below);
    REQUIRE(below > 0);
  }
}

TEST_CASE("zscore alerts on every jump from a flat baseline", "[stateful][zscore]") {
  // A flat-zero series with ten one-record jumps, each 150 records after the last, so that
  // the 100-record window is flat again before the next one. Jumps of any size or sign.
  const double jumps[10] = {5, -3, 1e-9, 250, -1e-6, 0.5, 1e12, -7, 42, 1e-300};
  recs in;
  std::int64_t t = 1'700'000'000'000'000'000;
  std::vector<std::int64_t> jump_times;
  for (int i = 0; i < 1600; ++i) {
    double x = 0;
    if (i >= 100 && (i - 100) % 150 == 0 && (i - 100) / 150 < 10) {
      x = jumps[(i - 100) / 150];
      jump_times.push_back(t);
    }
    in.push_back({{value(std::string("S")), value(x), value(std::int64_t{1}), value(std::int64_t{i})}, t});
    t += 1'000'000;
  }
  REQUIRE(jump_times.size() == 10);
  const std::string yaml = "key: symbol\nvalue: price\nrows: 100\nk: 3\nmin_samples: 30\n";
  auto got = run_one("zscore", yaml, in);
  REQUIRE(got.size() == 10);
  for (std::size_t j = 0; j < got.size(); ++j) {
    INFO("jump " << j);
    const auto& r = got[j];
    REQUIRE(r.t == jump_times[j]);
    CHECK(r.v[1] == value(jumps[j]));
    CHECK(r.v[2] == value(0.0));  // mean
    CHECK(r.v[3] == value(0.0));  // stddev
    CHECK(r.v[4] == value(std::copysign(INFINITY, jumps[j])));
    CHECK(r.v[5] == value(std::string("zscore")));
    CHECK(r.v[6] == value(jump_times[j] / 1'000'000));
    // JSON has no infinity: the z of an alert is written as null.
    std::string json;
    core::append_json(json, r.v[4]);
    CHECK(json == "null");
  }

  SECTION("an equal value on a flat baseline has z 0 and no alert") {
    auto all = run_one("zscore", yaml + "mode: all\n", in);
    REQUIRE(all.size() == in.size());
    std::size_t alerts = 0, zero_z = 0;
    for (const auto& r : all) {
      alerts += !core::is_null(r.v[7]);
      zero_z += r.v[6] == value(0.0);
    }
    CHECK(alerts == 10);
    CHECK(zero_z > 500);
  }
  SECTION("a flat baseline that the running sums do not hold exactly") {
    // Starts at 7.3 (the running sums' shift), then 0.1 for good: once the 7.3s have left the
    // window, 0.1 again is no alert, and 0.1 + 1e-12 is.
    recs s;
    std::int64_t u = 1'700'000'000'000'000'000;
    for (int i = 0; i < 400; ++i) {
      double x = i < 50 ? 7.3 : (i == 300 ? 0.1 + 1e-12 : 0.1);
      s.push_back({{value(std::string("S")), value(x), value(std::int64_t{1}), value(std::int64_t{i})}, u});
      u += 1'000'000;
    }
    recs late;  // alerts once the window holds only 0.1s (the step down alerts before)
    for (auto& r : run_one("zscore", yaml, s))
      if (r.t >= s[150].t) late.push_back(r);
    REQUIRE(late.size() == 1);
    CHECK(late[0].t == s[300].t);
    CHECK(late[0].v[1] == value(0.1 + 1e-12));
    CHECK(late[0].v[2] == value(0.1));
    CHECK(late[0].v[4] == value(INFINITY));
  }
}

TEST_CASE("zscore: an infinite value crosses thresholds but stays out of the window, NaN is "
          "passed over", "[stateful][zscore]") {
  recs in;
  std::int64_t t = 1'700'000'000'000'000'000;
  const double xs[] = {1, 2, INFINITY, std::nan(""), -INFINITY, 3, 4};
  for (std::size_t i = 0; i < std::size(xs); ++i) {
    in.push_back({{value(std::string("S")), value(xs[i]), value(std::int64_t{1}),
                   value(static_cast<std::int64_t>(i))},
                  t});
    t += 1'000'000;
  }
  auto got = run_one("zscore", "key: symbol\nvalue: price\nabove: 100\nbelow: -100\nmode: all\nmin_samples: 2\n", in);
  REQUIRE(got.size() == in.size());
  CHECK(got[2].v[7] == value(std::string("above")));
  CHECK(core::is_null(got[3].v[7]));
  CHECK(got[4].v[7] == value(std::string("below")));
  // The window held 1 and 2 only when 3 came: mean 1.5, stddev sqrt(1/2).
  CHECK(got[5].v[4] == value(1.5));
  CHECK(std::get<double>(got[5].v[5]) == Approx(std::sqrt(0.5)));
}

TEST_CASE("rolling rows and range match a direct computation", "[stateful][rolling]") {
  fixture f;
  for (bool by_rows : {true, false}) {
    DYNAMIC_SECTION((by_rows ? "rows" : "range")) {
      const std::size_t n = 25;
      const std::int64_t range = 2'000'000'000;
      recs want;
      std::map<std::string, recs> hist;
      for (auto& r : f.ordered) {
        auto& h = hist[std::get<std::string>(r.v[0])];
        h.push_back(r);
        std::size_t from = 0;
        if (by_rows) from = h.size() > n ? h.size() - n : 0;
        else
          while (h[from].t <= r.t - range) ++from;
        double sum = 0, mn = INFINITY, mx = -INFINITY, qty = 0;
        for (auto i = from; i < h.size(); ++i) {
          double p = num(h[i].v[1]);
          sum += p;
          mn = std::min(mn, p);
          mx = std::max(mx, p);
          qty += num(h[i].v[2]);
        }
        double cnt = static_cast<double>(h.size() - from), m = sum / cnt, ss = 0;
        for (auto i = from; i < h.size(); ++i) ss += (num(h[i].v[1]) - m) * (num(h[i].v[1]) - m);
        auto out = r.v;
        out.insert(out.end(), {value(m), value(mn), value(mx), value(qty), value(static_cast<std::int64_t>(cnt)),
                               opt(cnt > 1 ? std::sqrt(ss / (cnt - 1)) : std::nan("")), h[from].v[1]});
        want.push_back({out, r.t});
      }
      std::string yaml = std::string("key: symbol\n") + (by_rows ? "rows: 25\n" : "range: 2s\n") +
                         "aggregates:\n  avg_price: avg(price)\n  low: min(price)\n  high: max(price)\n"
                         "  volume: sum(qty)\n  n: count()\n  sd: stddev(price)\n  oldest: first(price)\n";
      require_same(run_one("rolling", yaml, f.arrival), want);
    }
  }
}

TEST_CASE("ema of huge values of both signs stays finite, and NaN and inf keep the average",
          "[stateful][ema]") {
  recs in;
  std::int64_t t = 1'700'000'000'000'000'000;
  const double xs[] = {-1e308, 1e308, INFINITY, std::nan(""), 1e308};
  for (std::size_t i = 0; i < std::size(xs); ++i) {
    in.push_back({{value(std::string("S")), value(xs[i]), value(std::int64_t{1}),
                   value(static_cast<std::int64_t>(i))},
                  t});
    t += 1'000'000;
  }
  auto got = run_one("ema", "key: symbol\nvalue: price\nalpha: 0.5\n", in);
  REQUIRE(got.size() == in.size());
  CHECK(std::get<double>(got[0].v[4]) == -1e308);
  CHECK(std::get<double>(got[1].v[4]) == 0);
  CHECK(std::get<double>(got[2].v[4]) == 0);  // inf kept out
  CHECK(std::get<double>(got[3].v[4]) == 0);  // NaN kept out
  CHECK(std::get<double>(got[4].v[4]) == 5e307);
}

TEST_CASE("ema by alpha and by half-life match a direct computation", "[stateful][ema]") {
  fixture f;
  for (bool half : {false, true}) {
    DYNAMIC_SECTION((half ? "half_life" : "alpha")) {
      recs want;
      std::map<std::string, std::pair<double, std::int64_t>> st;
      for (auto& r : f.ordered) {
        auto key = std::get<std::string>(r.v[0]);
        double x = num(r.v[1]);
        auto it = st.find(key);
        if (it == st.end()) {
          st[key] = {x, r.t};
        } else {
          double a = half ? 1 - std::pow(2.0, -static_cast<double>(r.t - it->second.second) / 1e9) : 0.2;
          it->second.first += a * (x - it->second.first);
          it->second.second = r.t;
        }
        auto out = r.v;
        out.push_back(st[key].first);
        want.push_back({out, r.t});
      }
      auto yaml = std::string("key: symbol\nvalue: price\noutput: smooth\n") + (half ? "half_life: 1s\n" : "alpha: 0.2\n");
      require_same(run_one("ema", yaml, f.arrival), want);
    }
  }
}

TEST_CASE("dedupe drops repeats within the horizon and expires state", "[stateful][dedupe]") {
  // Records keyed by qty (1..100) repeat often; horizon 500 ms.
  fixture f;
  recs want;
  std::map<std::int64_t, std::int64_t> first;
  for (auto& r : f.ordered) {
    auto q = std::get<std::int64_t>(r.v[2]);
    auto it = first.find(q);
    if (it != first.end() && r.t - it->second <= 500'000'000) continue;
    first[q] = r.t;
    want.push_back(r);
  }
  REQUIRE(want.size() < f.ordered.size());
  REQUIRE(want.size() > 100);
  require_same(run_one("dedupe", "key: qty\nhorizon: 500ms\n", f.arrival), want);
}

TEST_CASE("throttle limits the rate per key and samples deterministically", "[stateful][throttle]") {
  fixture f;
  SECTION("rate") {
    recs want;
    std::map<std::string, std::vector<std::int64_t>> acc;
    for (auto& r : f.ordered) {
      auto& a = acc[std::get<std::string>(r.v[0])];
      std::size_t in_window = 0;
      for (auto t : a) in_window += t > r.t - 1'000'000'000;
      if (in_window < 3) {
        a.push_back(r.t);
        want.push_back(r);
      }
    }
    REQUIRE(want.size() < f.ordered.size());
    require_same(run_one("throttle", "key: symbol\nrate: 3\nper: 1s\n", f.arrival), want);
  }
  SECTION("dropped records can go to the dead-letter port") {
    core::outputs out;
    auto kept = run_one("throttle", "key: symbol\nrate: 3\nper: 1s\ndropped: dead_letter\n", f.arrival, 200'000'000, &out);
    REQUIRE(kept.size() + out.dead_letter.size() == f.ordered.size());
    REQUIRE(out.dead_letter.size() > 0);
  }
  SECTION("sample every") {
    recs want;
    std::map<std::string, int> seen;
    for (auto& r : f.ordered)
      if (seen[std::get<std::string>(r.v[0])]++ % 4 == 0) want.push_back(r);
    require_same(run_one("throttle", "key: symbol\nmode: sample\nevery: 4\n", f.arrival), want);
  }
  SECTION("sample fraction is repeatable and near the fraction") {
    auto a = run_one("throttle", "key: symbol\nmode: sample\nfraction: 0.3\nseed: 5\n", f.arrival);
    auto b = run_one("throttle", "key: symbol\nmode: sample\nfraction: 0.3\nseed: 5\n", f.ordered);
    auto c = run_one("throttle", "key: symbol\nmode: sample\nfraction: 0.3\nseed: 6\n", f.ordered);
    require_same(a, b);
    REQUIRE(canonical(a).size() > 700);
    REQUIRE(canonical(a).size() < 1100);
    bool differs = a.size() != c.size();
    for (std::size_t i = 0; !differs && i < a.size(); ++i) differs = canonical(a)[i].t != canonical(c)[i].t;
    REQUIRE(differs);
  }
}

TEST_CASE("top_k ranks keys per tumbling window", "[stateful][top_k]") {
  fixture f;
  const std::int64_t w = 5'000'000'000;
  std::map<std::int64_t, std::map<std::string, double>> sums;
  for (auto& r : f.ordered) {
    auto start = r.t - r.t % w;
    sums[start][std::get<std::string>(r.v[0])] += num(r.v[2]);
  }
  recs want;
  for (auto& [start, m] : sums) {
    std::vector<std::pair<double, std::string>> v;
    for (auto& [k, s] : m) v.emplace_back(-s, k);
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < std::min<std::size_t>(2, v.size()); ++i)
      want.push_back(
          {{value(start / 1'000'000), value((start + w) / 1'000'000),
            value(static_cast<std::int64_t>(i + 1)), value(v[i].second), value(-v[i].first)},
           start + w - 1});
  }
  require_same(run_one("top_k", "key: symbol\nby: sum(qty)\nk: 2\nwindow: 5s\noutput: volume\n", f.arrival), want);
}

TEST_CASE("change_detect reports each jump once", "[stateful][change_detect]") {
  fixture f;
  const std::int64_t within = 3'000'000'000;
  recs want;
  std::map<std::string, recs> hist;
  for (auto& r : f.ordered) {
    auto& h = hist[std::get<std::string>(r.v[0])];
    double x = num(r.v[1]), lo = INFINITY, hi = -INFINITY;
    bool any = false;
    for (auto& p : h)
      if (p.t >= r.t - within) {
        lo = std::min(lo, num(p.v[1]));
        hi = std::max(hi, num(p.v[1]));
        any = true;
      }
    if (any) {
      double ref = (x - lo >= hi - x) ? lo : hi;
      double pct = (x - ref) / std::fabs(ref) * 100;
      if (std::fabs(pct) > 2.0) {
        want.push_back(
            {{r.v[0], x, ref, x - ref, pct, std::string(x > ref ? "up" : "down"), r.t / 1'000'000}, r.t});
        h.clear();
      }
    }
    h.push_back(r);
  }
  REQUIRE(want.size() > 3);
  auto got = run_one("change_detect", "key: symbol\nvalue: price\nwithin: 3s\npercent: 2\n", f.arrival);
  require_same(got, want);
  // `time` is the event time in epoch milliseconds, as a window's window_start.
  for (const auto& r : got) REQUIRE(r.v[6] == value(r.t / 1'000'000));
}

TEST_CASE("late records go to the late port", "[stateful][late]") {
  fixture f;
  // Arrival out of order by up to 150 ms but a watermark delay of only 10 ms: some are late.
  core::outputs out;
  auto got = run_one("ema", "key: symbol\nvalue: price\nalpha: 0.5\n", f.arrival, 10'000'000, &out);
  REQUIRE(out.late.size() > 0);
  REQUIRE(got.size() + out.late.size() == f.ordered.size());
}

TEST_CASE("config errors are located and say what to do", "[stateful][config]") {
  spec::node_ptr root;
  auto cfg = config_of("ema", "key: symbol\nvalue: prize\nalpha: 0.5\n", root);
  REQUIRE_THROWS_AS(stateful_registry().find_operator("ema")->make(cfg, {trades_schema}), spec::config_error);
  auto cfg2 = config_of("rolling", "key: symbol\nrows: 5\naggregates:\n  a: median(price)\n", root);
  REQUIRE_THROWS_WITH(stateful_registry().find_operator("rolling")->make(cfg2, {trades_schema}),
                      Catch::Contains("unknown aggregate function 'median'"));
  auto cfg3 = config_of("ema", "key: symbol\nvalue: price\n", root);
  REQUIRE_THROWS_WITH(stateful_registry().find_operator("ema")->make(cfg3, {trades_schema}),
                      Catch::Contains("exactly one of `alpha` and `half_life`"));
  auto cfg4 = config_of("zscore", "key: symbl\nvalue: price\n", root);
  REQUIRE_THROWS_WITH(stateful_registry().find_operator("zscore")->make(cfg4, {trades_schema}),
                      "unknown field 'symbl'; did you mean 'symbol'? (fields: symbol, price, qty, "
                      "trade_id)");
}

namespace {

/// What building `type` from `yaml` gathers, one "line:column path: message" each.
std::vector<std::string> gathered(const std::string& type, const std::string& yaml,
                                  std::vector<core::schema_ptr> inputs) {
  spec::node_ptr root;
  auto errors = std::make_shared<spec::config::error_list>();
  auto cfg = config_of(type, yaml, root).gathering(errors);
  stateful_registry().find_operator(type)->make(cfg, inputs);
  std::vector<std::string> out;
  for (const auto& e : *errors)
    out.push_back(std::to_string(e.at().line) + ":" + std::to_string(e.at().column) + " " +
                  e.path() + ": " + e.what());
  return out;
}

}  // namespace

TEST_CASE("a gathering config gets every unknown key field and bad aggregate of a block",
          "[stateful][config]") {
  const std::string yaml =
      "key: [symbl, price, tid]\n"
      "rows: 5\n"
      "aggregates:\n"
      "  a: avg(prize)\n"
      "  b: max(price)\n"
      "  c: percentile(price, 0.5)\n"
      "  d: count(qtty)\n";
  // In the order found: every entry compiles first, then rolling checks what it can compute.
  CHECK(gathered("rolling", yaml, {trades_schema}) ==
        std::vector<std::string>{
            "1:7 operators.test.key[0]: unknown field 'symbl'; did you mean 'symbol'? (fields: "
            "symbol, price, qty, trade_id)",
            "1:21 operators.test.key[2]: unknown field 'tid' (fields: symbol, price, qty, "
            "trade_id)",
            "4:10 operators.test.aggregates.a: aggregate 'a': unknown field 'prize'; did you mean "
            "'price'? (fields: symbol, price, qty, trade_id)",
            "7:12 operators.test.aggregates.d: aggregate 'd': unknown field 'qtty'; did you mean "
            "'qty'? (fields: symbol, price, qty, trade_id)",
            "6:6 operators.test.aggregates.c: aggregate 'c': rolling computes count, sum, avg, "
            "min, max, stddev, variance, first and last over its sliding window; percentile "
            "needs a `window` operator",
        });
  // Without gathering, the first one throws, located at its item.
  spec::node_ptr root;
  try {
    stateful_registry().find_operator("rolling")->make(config_of("rolling", yaml, root),
                                                       {trades_schema});
    FAIL("expected a config_error");
  } catch (const spec::config_error& e) {
    CHECK(e.path() == "operators.test.key[0]");
    CHECK(e.at().column == 7);
  }
}

TEST_CASE("join keys: each unknown name at its item, saying which input lacks it",
          "[stateful][join][config]") {
  const auto quotes = schema_of({"symbol", "bid", "ask"});
  CHECK(gathered("window_join", "key: [symbol, price]\nwindow: 1s\n", {trades_schema, quotes}) ==
        std::vector<std::string>{"1:15 operators.test.key[1]: unknown field 'price' (fields of "
                                 "the right input: symbol, bid, ask)"});
  CHECK(gathered("interval_join", "left_key: [symbl, qty]\nright_key: [symbol, bd]\n",
                 {trades_schema, quotes}) ==
        std::vector<std::string>{
            "1:12 operators.test.left_key[0]: unknown field 'symbl'; did you mean 'symbol'? "
            "(fields: symbol, price, qty, trade_id)",
            "2:21 operators.test.right_key[1]: unknown field 'bd'; did you mean 'bid'? (fields: "
            "symbol, bid, ask)",
        });
  // Counts are compared as written, not as found.
  CHECK(gathered("interval_join", "left_key: [symbol, qty]\nright_key: [symbol]\n",
                 {trades_schema, quotes}) ==
        std::vector<std::string>{
            "2:12 operators.test.right_key: needs as many fields as `left_key`"});
}
