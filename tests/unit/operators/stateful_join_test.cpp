// Joins against direct computations, including out-of-order and late input.
#include "stateful_test_support.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace pel;
using namespace pel::test;

namespace {

const auto trades_schema = schema_of({"symbol", "price", "qty", "trade_id"});
const auto quotes_schema = schema_of({"symbol", "bid", "ask"});

recs make_quotes(std::size_t n, std::uint32_t seed) {
  auto t = make_trades(n, seed, 5, 120);
  recs q;
  for (auto& r : t) q.push_back({{r.v[0], num(r.v[1]) - 0.05, num(r.v[1]) + 0.05}, r.t + 3});
  return q;
}

recs run_join(const std::string& type, const std::string& yaml, const recs& left, const recs& right,
              std::int64_t delay = 200'000'000, core::outputs* keep = nullptr, std::uint32_t p = 1) {
  driver d;
  d.start(p, [&] { return make(type, yaml, {trades_schema, quotes_schema}); });
  d.feed({left, right}, 29, delay);
  auto res = d.results();
  if (keep) *keep = std::move(d.out);
  return res;
}

struct fixture {
  recs trades = make_trades(1500, 21);
  recs quotes = make_quotes(1200, 22);
  recs trades_arrival = shuffle_bounded(trades, 150'000'000, 1);
  recs quotes_arrival = shuffle_bounded(quotes, 150'000'000, 2);
};

rec joined(const rec& l, const rec* r, std::int64_t t) {
  auto v = l.v;
  if (r) v.insert(v.end(), {r->v[1], r->v[2]});
  else v.insert(v.end(), {value{}, value{}});
  return {v, t};
}

} // namespace

TEST_CASE("interval_join pairs records within [t + lower, t + upper]", "[stateful][interval_join]") {
  fixture f;
  for (bool outer : {false, true}) {
    DYNAMIC_SECTION((outer ? "left outer" : "inner")) {
      recs want;
      for (auto& l : f.trades) {
        bool any = false;
        for (auto& r : f.quotes)
          if (r.v[0] == l.v[0] && r.t >= l.t - 300'000'000 && r.t <= l.t + 100'000'000) {
            want.push_back(joined(l, &r, l.t));
            any = true;
          }
        if (!any && outer) want.push_back(joined(l, nullptr, l.t));
      }
      REQUIRE(want.size() > 100);
      auto yaml = std::string("key: symbol\nlower: -300ms\nupper: 100ms\n") + (outer ? "how: left\n" : "");
      require_same(run_join("interval_join", yaml, f.trades_arrival, f.quotes_arrival), want);
    }
  }
}

TEST_CASE("interval_join latest is an as-of join", "[stateful][interval_join]") {
  fixture f;
  recs want;
  for (auto& l : f.trades) {
    const rec* best = nullptr;
    for (auto& r : f.quotes)
      if (r.v[0] == l.v[0] && r.t <= l.t && r.t >= l.t - 2'000'000'000 && (!best || r.t >= best->t)) best = &r;
    if (best) want.push_back(joined(l, best, l.t));
  }
  REQUIRE(want.size() > 500);
  REQUIRE(want.size() < f.trades.size());
  require_same(run_join("interval_join", "key: symbol\nlatest: true\nlower: -2s\n", f.trades_arrival, f.quotes_arrival),
               want);

  SECTION("late trades go to the late port and are not joined") {
    core::outputs out;
    auto got = run_join("interval_join", "key: symbol\nlatest: true\nlower: -2s\n", f.trades_arrival,
                        f.quotes_arrival, 5'000'000, &out);
    REQUIRE(out.late.size() > 0);
    REQUIRE(got.size() <= want.size() - 0);
    REQUIRE(got.size() < want.size());
  }
}

TEST_CASE("interval_join renames colliding right fields with the prefix", "[stateful][interval_join]") {
  auto q2 = schema_of({"sym", "price", "ask"});
  auto op = make("interval_join", "left_key: symbol\nright_key: sym\nprefix: q_\n", {trades_schema, q2});
  auto s = op->output_schema();
  REQUIRE(s->names() == "symbol, price, qty, trade_id, q_price, ask");
}

TEST_CASE("window_join pairs records of a key in the same tumbling window", "[stateful][window_join]") {
  fixture f;
  const std::int64_t w = 1'000'000'000;
  recs want;
  for (auto& l : f.trades)
    for (auto& r : f.quotes)
      if (r.v[0] == l.v[0] && l.t / w == r.t / w) want.push_back(joined(l, &r, (l.t / w + 1) * w - 1));
  REQUIRE(want.size() > 100);
  require_same(run_join("window_join", "key: symbol\nwindow: 1s\n", f.trades_arrival, f.quotes_arrival), want);
}

TEST_CASE("lookup_join enriches from CSV and JSON tables and reloads", "[stateful][lookup_join]") {
  auto dir = std::filesystem::temp_directory_path() / ("pel_lookup_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto csv = (dir / "symbols.csv").string();
  {
    std::ofstream o(csv);
    o << "symbol,sector,lot\nS0,tech,100\nS1,\"energy, oil\",10\nS2,finance,1\n";
  }
  auto json = (dir / "symbols.jsonl").string();
  {
    std::ofstream o(json);
    o << "{\"symbol\": \"S0\", \"sector\": \"tech\", \"lot\": 100}\n{\"symbol\": \"S3\", \"sector\": \"retail\"}\n";
  }
  recs in = {{{std::string("S0"), 1.0, std::int64_t{5}, std::int64_t{0}}, 1},
             {{std::string("S1"), 2.0, std::int64_t{5}, std::int64_t{1}}, 2},
             {{std::string("S4"), 3.0, std::int64_t{5}, std::int64_t{2}}, 3}};
  auto run = [&](const std::string& yaml, core::operator_ptr* keep = nullptr) {
    auto op = make("lookup_join", yaml, {trades_schema});
    core::batch b(4);
    for (auto& r : in) b.append_copy(r.v.data(), r.t);
    core::outputs out;
    out.main = core::batch(static_cast<std::uint32_t>(op->output_schema()->size()));
    op->process(b, 0, out);
    if (keep) *keep = std::move(op);
    return driver::to_recs(out.main);
  };
  auto left = run("path: " + csv + "\nkey: symbol\n");
  REQUIRE(left.size() == 3);
  REQUIRE(left[0].v[4] == value(std::string("tech")));
  REQUIRE(left[0].v[5] == value(std::int64_t{100}));
  REQUIRE(left[1].v[4] == value(std::string("energy, oil")));
  REQUIRE(core::is_null(left[2].v[4]));
  auto inner = run("path: " + json + "\nkey: symbol\nhow: inner\n");
  REQUIRE(inner.size() == 1);
  REQUIRE(inner[0].v[5] == value(std::int64_t{100}));

  SECTION("reload picks up a changed file") {
    core::operator_ptr op;
    run("path: " + csv + "\nkey: symbol\nreload_interval: 1s\n", &op);
    REQUIRE(op->timer_interval_ns() == 1'000'000'000);
    {
      std::ofstream o(csv);
      o << "symbol,sector,lot\nS4,media,7\n";
    }
    std::filesystem::last_write_time(csv, std::filesystem::last_write_time(csv) + std::chrono::seconds(5));
    core::outputs out;
    out.main = core::batch(static_cast<std::uint32_t>(op->output_schema()->size()));
    op->on_timer(core::processing_time::now(), out);
    core::batch b(4);
    for (auto& r : in) b.append_copy(r.v.data(), r.t);
    op->process(b, 0, out);
    auto got = driver::to_recs(out.main);
    REQUIRE(got.size() == 3);
    REQUIRE(core::is_null(got[0].v[4]));
    REQUIRE(got[2].v[4] == value(std::string("media")));
  }
  SECTION("a table key the table lacks gets a suggestion") {
    REQUIRE_THROWS_WITH(run("path: " + csv + "\nkey: symbol\ntable_key: symbl\n"),
                        Catch::Contains("unknown field 'symbl'; did you mean 'symbol'? (fields of "
                                        "the table: symbol, sector, lot)"));
  }
  SECTION("a gathering config gets every unknown key of the records and of the table") {
    spec::node_ptr root;
    auto errors = std::make_shared<spec::config::error_list>();
    auto cfg = config_of("lookup_join",
                         "path: " + csv + "\nkey: [symbl, qty]\ntable_key: [symbol, lott]\n", root);
    stateful_registry().find_operator("lookup_join")->make(cfg.gathering(errors), {trades_schema});
    REQUIRE(errors->size() == 2);
    CHECK((*errors)[0].path() == "operators.test.key[0]");
    CHECK(std::string((*errors)[0].what()) ==
          "unknown field 'symbl'; did you mean 'symbol'? (fields: symbol, price, qty, trade_id)");
    CHECK((*errors)[1].path() == "operators.test.table_key[1]");
    CHECK(std::string((*errors)[1].what()) ==
          "unknown field 'lott'; did you mean 'lot'? (fields of the table: symbol, sector, lot)");
  }
  SECTION("a missing file is a located config error") {
    REQUIRE_THROWS_WITH(run("path: " + (dir / "nope.csv").string() + "\nkey: symbol\n"), Catch::Contains("cannot open"));
  }
  std::filesystem::remove_all(dir);
}
