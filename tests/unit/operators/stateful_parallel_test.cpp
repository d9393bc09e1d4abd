// Key-group partitioning: the same merged result at parallelism 1, 2 and 4, and after a
// snapshot of one instance is restored into two (a rescale) in the middle of the stream.
#include "stateful_test_support.hpp"

using namespace pel;
using namespace pel::test;

namespace {

const auto trades_schema = schema_of({"symbol", "price", "qty", "trade_id"});

struct op_case {
  std::string type, yaml;
};

const std::vector<op_case> cases = {
    {"zscore", "key: symbol\nvalue: price\nrows: 30\nk: 2\nmin_samples: 5\n"},
    {"rolling", "key: symbol\nrange: 1s\naggregates:\n  m: avg(price)\n  hi: max(price)\n"},
    {"ema", "key: symbol\nvalue: price\nhalf_life: 500ms\n"},
    {"dedupe", "key: qty\nhorizon: 300ms\n"},
    {"throttle", "key: symbol\nrate: 2\nper: 500ms\n"},
    {"change_detect", "key: symbol\nvalue: price\nwithin: 2s\ndelta: 1.5\n"},
};

recs run(const op_case& c, const recs& input, std::uint32_t p) {
  driver d;
  d.start(p, [&] { return make(c.type, c.yaml, {trades_schema}); });
  d.feed({input});
  return d.results();
}

} // namespace

TEST_CASE("keyed operators give the same result at parallelism 1, 2 and 4", "[stateful][parallel]") {
  auto input = shuffle_bounded(make_trades(2500, 99, 23), 150'000'000, 3);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.type) {
      auto one = run(c, input, 1);
      REQUIRE(!one.empty());
      require_same(run(c, input, 2), one);
      require_same(run(c, input, 4), one);
    }
  }
}

TEST_CASE("a snapshot restored into more instances continues with the same result", "[stateful][snapshot]") {
  auto input = shuffle_bounded(make_trades(2000, 5, 17), 150'000'000, 4);
  const std::size_t half = 1013;
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.type) {
      auto whole = run(c, input, 1);
      driver before;
      before.start(1, [&] { return make(c.type, c.yaml, {trades_schema}); });
      before.feed({input}, 37, 200'000'000, 0, half, false);
      core::state_writer w;
      before.ops[0]->snapshot(w);
      auto bytes = w.take();
      REQUIRE(!bytes.empty());
      driver after;
      after.start(2, [&] { return make(c.type, c.yaml, {trades_schema}); });
      for (auto& op : after.ops) {
        core::state_reader r(bytes);
        op->restore(r);
        REQUIRE(r.at_end());
      }
      after.feed({input}, 37, 200'000'000, half);
      auto got = before.results();
      auto rest = after.results();
      got.insert(got.end(), rest.begin(), rest.end());
      require_same(got, whole);
    }
  }
}

TEST_CASE("interval_join gives the same result at parallelism 1, 2 and 4 and after a rescale",
          "[stateful][parallel][interval_join]") {
  auto quotes_schema = schema_of({"symbol", "bid", "ask"});
  auto trades = shuffle_bounded(make_trades(1500, 8, 11), 100'000'000, 5);
  recs quotes;
  for (auto& r : make_trades(1500, 9, 11)) quotes.push_back({{r.v[0], num(r.v[1]) - 0.1, num(r.v[1]) + 0.1}, r.t + 7});
  quotes = shuffle_bounded(quotes, 100'000'000, 6);
  auto yaml = "key: symbol\nlatest: true\nhow: left\n";
  auto factory = [&] { return make("interval_join", yaml, {trades_schema, quotes_schema}); };
  auto run_p = [&](std::uint32_t p) {
    driver d;
    d.start(p, factory);
    d.feed({trades, quotes});
    return d.results();
  };
  auto one = run_p(1);
  REQUIRE(one.size() == trades.size());
  require_same(run_p(2), one);
  require_same(run_p(4), one);

  driver before;
  before.start(1, factory);
  before.feed({trades, quotes}, 29, 200'000'000, 0, 696, false);
  core::state_writer w;
  before.ops[0]->snapshot(w);
  auto bytes = w.take();
  driver after;
  after.start(4, factory);
  for (auto& op : after.ops) {
    core::state_reader r(bytes);
    op->restore(r);
  }
  // The first 696 rows fed were 12 batches of 29 of each input.
  after.feed({trades, quotes}, 29, 200'000'000, 348);
  auto got = before.results();
  auto rest = after.results();
  got.insert(got.end(), rest.begin(), rest.end());
  require_same(got, one);
}

namespace {

/// Snapshots of every instance of `from`, each restored in turn into every instance of a new
/// driver of `p` instances (as the runtime rescales: every new instance reads all the old
/// snapshots and keeps the key groups it owns).
template <class F>
driver rescaled(F factory, driver& from, std::uint32_t p) {
  std::vector<std::string> snapshots;
  for (auto& op : from.ops) {
    core::state_writer w;
    op->snapshot(w);
    snapshots.push_back(w.take());
  }
  driver to;
  to.start(p, factory);
  for (auto& op : to.ops)
    for (const auto& bytes : snapshots) {
      core::state_reader r(bytes);
      op->restore(r);
      REQUIRE(r.at_end());
    }
  return to;
}

} // namespace

TEST_CASE("keyed state rescaled 1 -> 3 -> 2 mid-stream gives the unsplit result",
          "[stateful][snapshot][rescale]") {
  // The key-group ranges the runtime gives instance i of p: [ceil(i*m/p), ceil((i+1)*m/p)).
  for (std::uint32_t p : {2u, 3u})
    for (std::uint32_t i = 0; i < p; ++i) {
      const auto r = state::key_group_range_of(i, p, 128);
      CHECK(r.begin == (i * 128 + p - 1) / p);
      CHECK(r.end == ((i + 1) * 128 + p - 1) / p);
    }
  // Many keys, so that every instance of 3 and of 2 owns some.
  auto input = shuffle_bounded(make_trades(3000, 41, 60), 150'000'000, 9);
  const std::size_t a = 900, b = 2100;
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.type) {
      auto whole = run(c, input, 1);
      REQUIRE(!whole.empty());
      driver one;
      one.start(1, [&] { return make(c.type, c.yaml, {trades_schema}); });
      one.feed({input}, 37, 200'000'000, 0, a, false);
      auto factory = [&] { return make(c.type, c.yaml, {trades_schema}); };
      driver three = rescaled(factory, one, 3);
      three.feed({input}, 37, 200'000'000, a, b - a, false);
      // Each of the 3 holds only its own groups: restoring all three into 2 adds them up.
      driver two = rescaled(factory, three, 2);
      two.feed({input}, 37, 200'000'000, b);
      auto got = one.results();
      for (const auto* d : {&three, &two}) {
        auto part = d->results();
        got.insert(got.end(), part.begin(), part.end());
      }
      require_same(got, whole);
    }
  }
}

TEST_CASE("operators say whether their state can be rescaled", "[stateful][rescale]") {
  for (const auto& c : cases) {
    INFO(c.type);
    CHECK(make(c.type, c.yaml, {trades_schema})->rescalable());
  }
  // A throttle without a key limits what reaches its instance; top_k ranks all the keys of
  // a window together: neither is kept by key group.
  CHECK_FALSE(make("throttle", "rate: 2\nper: 500ms\n", {trades_schema})->rescalable());
  CHECK_FALSE(make("top_k", "key: symbol\nk: 3\nwindow: 1s\nby: sum(qty)\n", {trades_schema})->rescalable());
}

TEST_CASE("joins rescaled 1 -> 3 -> 2 mid-stream give the unsplit result",
          "[stateful][snapshot][rescale][interval_join][window_join]") {
  auto quotes_schema = schema_of({"symbol", "bid", "ask"});
  auto trades = shuffle_bounded(make_trades(1500, 8, 40), 100'000'000, 5);
  recs quotes;
  for (auto& r : make_trades(1500, 9, 40)) quotes.push_back({{r.v[0], num(r.v[1]) - 0.1, num(r.v[1]) + 0.1}, r.t + 7});
  quotes = shuffle_bounded(quotes, 100'000'000, 6);
  for (const auto& c : std::vector<op_case>{{"interval_join", "key: symbol\nlatest: true\nhow: left\n"},
                                            {"window_join", "key: symbol\nwindow: 1s\n"}}) {
    DYNAMIC_SECTION(c.type) {
      auto factory = [&] { return make(c.type, c.yaml, {trades_schema, quotes_schema}); };
      driver whole;
      whole.start(1, factory);
      whole.feed({trades, quotes});
      auto want = whole.results();
      REQUIRE(!want.empty());
      // Rows are fed round robin in batches of 29 of each input: 20 and 34 rounds.
      driver one;
      one.start(1, factory);
      one.feed({trades, quotes}, 29, 200'000'000, 0, 1160, false);
      driver three = rescaled(factory, one, 3);
      three.feed({trades, quotes}, 29, 200'000'000, 580, 812, false);
      driver two = rescaled(factory, three, 2);
      two.feed({trades, quotes}, 29, 200'000'000, 986);
      auto got = one.results();
      for (const auto* d : {&three, &two}) {
        auto part = d->results();
        got.insert(got.end(), part.begin(), part.end());
      }
      require_same(got, want);
    }
  }
}
