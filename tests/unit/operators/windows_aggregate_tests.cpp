#include "pel/operators/aggregates.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

using namespace pel;
using operators::aggregate_set;
using core::value;

namespace {

core::schema_ptr trade_schema() {
  return std::make_shared<core::schema>(std::vector<core::field>{
      {"symbol", core::value_type::string}, {"price", std::nullopt}, {"qty", std::nullopt}});
}

struct rows {
  std::vector<std::vector<value>> r;
  std::vector<std::int64_t> t;
};

/// Random trades; a few null prices and quantities.
rows make_rows(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> price(50, 150);
  rows out;
  for (std::size_t i = 0; i < n; ++i) {
    value p = rng() % 20 == 0 ? value() : value(price(rng));
    value q = rng() % 25 == 0 ? value() : value(std::int64_t(1 + rng() % 100));
    out.r.push_back({std::string("S"), p, q});
    out.t.push_back(static_cast<std::int64_t>(rng() % 1'000'000));
  }
  return out;
}

/// Runs `set` over `data`, adding rows [0, split) into one block and the rest into another,
/// then merging: the result must not depend on the split.
std::vector<value> run(aggregate_set& set, const rows& data, std::size_t split) {
  operators::accumulator a(set), b(set);
  std::string err;
  for (std::size_t i = 0; i < data.r.size(); ++i) {
    REQUIRE(set.prepare(data.r[i].data(), data.t[i], err));
    set.add(i < split ? a.data() : b.data(), data.t[i]);
  }
  set.merge(a.data(), b.data());
  std::vector<value> out(set.outputs().size());
  set.result(a.data(), out.data());
  return out;
}

double num(const value& v) {
  double d = 0;
  REQUIRE(core::as_number(v, d));
  return d;
}

} // namespace

TEST_CASE("aggregates match a straightforward computation, whatever the merge split", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text(
      {{"n", "count()"}, {"np", "count(price)"}, {"s", "sum(qty)"}, {"lo", "min(price)"},
       {"hi", "max(price)"}, {"a", "avg(price)"}, {"sd", "stddev(price)"},
       {"var", "variance(price)"}, {"f", "first(price)"}, {"l", "last(price)"},
       {"v", "vwap(price, qty)"}, {"bar", "ohlc(price, qty)"}, {"r", "returns(price)"},
       {"notional", "sum(price * qty)"}},
      *schema);
  REQUIRE(set.outputs().size() == 19);
  CHECK(set.outputs()[11].name == "bar_open");
  CHECK(set.outputs()[16].name == "bar_trades");

  auto data = make_rows(5000, 7);
  // Independent reference.
  std::int64_t n = 0, np = 0;
  double s = 0, lo = 1e300, hi = -1e300, sum = 0, pq = 0, q = 0, vol = 0, notional = 0;
  std::vector<double> ps;
  std::int64_t ft = INT64_MAX, lt = INT64_MIN, trades = 0;
  double first = 0, last = 0, bar_first = 0, bar_last = 0;
  std::int64_t bft = INT64_MAX, blt = INT64_MIN;
  for (std::size_t i = 0; i < data.r.size(); ++i) {
    ++n;
    const auto& r = data.r[i];
    double p, qq;
    bool hp = core::as_number(r[1], p), hq = core::as_number(r[2], qq);
    if (hq) s += qq;
    if (hp) {
      ++np;
      lo = std::min(lo, p);
      hi = std::max(hi, p);
      sum += p;
      ps.push_back(p);
      if (data.t[i] < ft) ft = data.t[i], first = p;
      if (data.t[i] >= lt) lt = data.t[i], last = p;
      ++trades;
      if (hq) vol += qq;
      if (data.t[i] < bft) bft = data.t[i], bar_first = p;
      if (data.t[i] >= blt) blt = data.t[i], bar_last = p;
    }
    if (hp && hq) pq += p * qq, q += qq, notional += p * qq;
  }
  double mean = sum / np, m2 = 0;
  for (double p : ps) m2 += (p - mean) * (p - mean);
  double var = m2 / (np - 1);

  for (std::size_t split : {std::size_t(0), std::size_t(1), std::size_t(1234), data.r.size()}) {
    auto out = run(set, data, split);
    CHECK(std::get<std::int64_t>(out[0]) == n);
    CHECK(std::get<std::int64_t>(out[1]) == np);
    CHECK(num(out[2]) == Approx(s));
    CHECK(num(out[3]) == lo);
    CHECK(num(out[4]) == hi);
    CHECK(num(out[5]) == Approx(mean).epsilon(1e-12));
    CHECK(num(out[6]) == Approx(std::sqrt(var)).epsilon(1e-9));
    CHECK(num(out[7]) == Approx(var).epsilon(1e-9));
    CHECK(num(out[8]) == first);
    CHECK(num(out[9]) == last);
    CHECK(num(out[10]) == Approx(pq / q).epsilon(1e-12));
    CHECK(num(out[11]) == bar_first);
    CHECK(num(out[12]) == hi);
    CHECK(num(out[13]) == lo);
    CHECK(num(out[14]) == bar_last);
    CHECK(num(out[15]) == Approx(vol));
    CHECK(std::get<std::int64_t>(out[16]) == trades);
    CHECK(num(out[17]) == Approx(last / first - 1).epsilon(1e-12));
    CHECK(num(out[18]) == Approx(notional).epsilon(1e-12));
  }
}

TEST_CASE("aggregates of only nulls are null, counts are zero", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text(
      {{"n", "count()"}, {"np", "count(price)"}, {"s", "sum(price)"}, {"a", "avg(price)"},
       {"sd", "stddev(price)"}, {"v", "vwap(price, qty)"}, {"f", "first(price)"}},
      *schema);
  operators::accumulator a(set);
  std::vector<value> row = {std::string("S"), value(), value()};
  std::string err;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(set.prepare(row.data(), i, err));
    set.add(a.data(), i);
  }
  std::vector<value> out(set.outputs().size());
  set.result(a.data(), out.data());
  CHECK(std::get<std::int64_t>(out[0]) == 3);
  CHECK(std::get<std::int64_t>(out[1]) == 0);
  for (std::size_t i = 2; i < out.size(); ++i) CHECK(core::is_null(out[i]));
}

TEST_CASE("a non-numeric argument rejects the record with the reason", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text({{"n", "count()"}, {"v", "vwap(price, qty)"}}, *schema);
  std::vector<value> row = {std::string("S"), std::string("abc"), std::int64_t{5}};
  std::string err;
  REQUIRE_FALSE(set.prepare(row.data(), 0, err));
  CHECK(err == "v: expected a number for price, got string \"abc\"");
  auto expr_set = aggregate_set::compile_text({{"x", "sum(price * 2)"}}, *schema);
  REQUIRE_FALSE(expr_set.prepare(row.data(), 0, err));
  CHECK(err.rfind("x: ", 0) == 0);
}

TEST_CASE("aggregate parse errors say what is wrong and where", "[windows][aggregates]") {
  auto schema = trade_schema();
  std::size_t off = 0;
  REQUIRE_THROWS_WITH(operators::compile_aggregate("x", "summ(qty)", *schema, &off),
                      Catch::Contains("unknown aggregate function 'summ'; did you mean 'sum'?"));
  CHECK(off == 0);
  REQUIRE_THROWS_WITH(operators::compile_aggregate("x", "vwap(price)", *schema),
                      "vwap takes two arguments: vwap(price, qty), got 1 argument");
  REQUIRE_THROWS_WITH(operators::compile_aggregate("x", "sum(qty", *schema),
                      "missing ')' at the end of sum(...)");
  REQUIRE_THROWS(operators::compile_aggregate("x", "sum(prise)", *schema, &off));
  CHECK(off == 4);
  REQUIRE_THROWS_WITH(operators::compile_aggregate("x", "percentile(price, qty)", *schema),
                      Catch::Contains("must be a constant number"));
  REQUIRE_THROWS_WITH(operators::compile_aggregate("x", "percentile(price, 150)", *schema),
                      Catch::Contains("[0, 1]"));
}

TEST_CASE("an unknown aggregate gets a suggestion: a typo, or our name for another system's",
          "[windows][aggregates][suggest]") {
  auto schema = trade_schema();
  auto hint = [&](const std::string& text) {
    try {
      operators::compile_aggregate("x", text, *schema);
    } catch (const std::invalid_argument& e) {
      std::string m = e.what();
      auto at = m.find("; did you mean ");
      return at == std::string::npos ? std::string("none") : m.substr(at + 15, m.find('?', at) - at - 15);
    }
    return std::string("compiled");
  };
  CHECK(hint("summ(qty)") == "'sum'");
  CHECK(hint("SUM(qty)") == "'sum'");
  CHECK(hint("agv(price)") == "'avg'");  // a transposition
  CHECK(hint("stdev(price)") == "'stddev'");
  CHECK(hint("varience(price)") == "'variance'");
  CHECK(hint("distinct(qty)") == "'distinct_count'");  // the start of a name
  CHECK(hint("mean(price)") == "'avg'");
  CHECK(hint("median(price)") == "'percentile(x, 0.5)'");
  CHECK(hint("count_distinct(qty)") == "'distinct_count'");
  CHECK(hint("frobnicate(qty)") == "none");
  CHECK(hint("sum(qty)") == "compiled");
}

TEST_CASE("percentile stays within its documented 1% relative error", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text({{"p50", "percentile(price, 0.5)"}, {"p99", "percentile(price, 99)"},
                                     {"p0", "percentile(price, 0)"}, {"p100", "percentile(price, 1)"}},
                                    *schema);
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(0, 2);
  std::vector<double> xs;
  operators::accumulator a(set), b(set);
  std::string err;
  for (int i = 0; i < 20000; ++i) {
    double x = dist(rng) * (i % 10 == 0 ? -1 : 1);  // some negatives
    xs.push_back(x);
    std::vector<value> row = {std::string("S"), x, std::int64_t{1}};
    REQUIRE(set.prepare(row.data(), i, err));
    set.add(i % 2 ? a.data() : b.data(), i);
  }
  set.merge(a.data(), b.data());
  std::sort(xs.begin(), xs.end());
  std::vector<value> out(4);
  set.result(a.data(), out.data());
  auto exact = [&](double q) { return xs[static_cast<std::size_t>(std::floor(q * (xs.size() - 1)))]; };
  double qs[4] = {0.5, 0.99, 0, 1};
  for (int i = 0; i < 4; ++i) {
    double e = exact(qs[i]);
    INFO("q=" << qs[i] << " exact=" << e << " got=" << num(out[i]));
    CHECK(std::fabs(num(out[i]) - e) <= 0.01 * std::fabs(e) + 1e-12);
  }
}

TEST_CASE("distinct_count is exact below 64 values and within 5% above", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text({{"d", "distinct_count(symbol)"}}, *schema);
  for (int distinct : {1, 10, 64, 1000, 50000}) {
    operators::accumulator a(set), b(set);
    std::string err;
    for (int i = 0; i < distinct * 3; ++i) {
      std::vector<value> row = {std::string("K") + std::to_string(i % distinct), 1.0, std::int64_t{1}};
      REQUIRE(set.prepare(row.data(), i, err));
      set.add(i % 3 ? a.data() : b.data(), i);
    }
    set.merge(a.data(), b.data());
    value out;
    set.result(a.data(), &out);
    auto got = std::get<std::int64_t>(out);
    INFO("distinct=" << distinct << " got=" << got);
    if (distinct <= 64) CHECK(got == distinct);
    else CHECK(std::fabs(double(got) - distinct) <= 0.05 * distinct);
  }
}

TEST_CASE("aggregate states survive a snapshot round trip", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text(
      {{"n", "count()"}, {"sd", "stddev(price)"}, {"f", "first(symbol)"}, {"l", "last(price)"},
       {"d", "distinct_count(qty)"}, {"p", "percentile(price, 0.9)"}, {"bar", "ohlc(price, qty)"}},
      *schema);
  auto data = make_rows(3000, 11);
  operators::accumulator a(set), back(set);
  std::string err;
  for (std::size_t i = 0; i < data.r.size(); ++i) {
    REQUIRE(set.prepare(data.r[i].data(), data.t[i], err));
    set.add(a.data(), data.t[i]);
  }
  core::state_writer w;
  set.write(a.data(), w);
  core::state_reader r(w.bytes());
  set.read(back.data(), r);
  REQUIRE(r.at_end());
  std::vector<value> x(set.outputs().size()), y(set.outputs().size());
  set.result(a.data(), x.data());
  set.result(back.data(), y.data());
  REQUIRE(x == y);
  CHECK(std::abs(std::get<std::int64_t>(x[4]) - 100) <= 5);  // 100 distinct qty: HLL
}

TEST_CASE("the VWAP accumulator is 16 bytes", "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text({{"vwap", "vwap(price, qty)"}}, *schema);
  CHECK(set.state_size() == 16);
}

TEST_CASE("add_plain over blocks of rows gives what prepare and add give row by row",
          "[windows][aggregates]") {
  auto schema = trade_schema();
  auto set = aggregate_set::compile_text(
      {{"n", "count()"}, {"np", "count(price)"}, {"ns", "count(symbol)"}, {"s", "sum(qty)"},
       {"a", "avg(price)"}, {"lo", "min(price)"}, {"hi", "max(price)"}, {"sd", "stddev(price)"},
       {"var", "variance(qty)"}, {"v", "vwap(price, qty)"}, {"bar", "ohlc(price, qty)"},
       {"r", "returns(price)"}},
      *schema);
  REQUIRE(set.plain_states());
  // Rows of four keys with nulls, integers and numbers; blocks share states, so one state
  // gets several rows of a block, in order.
  auto data = make_rows(2000, 5);
  for (std::size_t i = 0; i < data.r.size(); i += 7) data.r[i][1] = std::int64_t(100 + i % 13);
  constexpr int keys = 4;
  std::vector<operators::accumulator> by_row, by_block;
  for (int k = 0; k < keys; ++k) {
    by_row.emplace_back(set);
    by_block.emplace_back(set);
  }
  std::string err;
  for (std::size_t i = 0; i < data.r.size(); ++i) {
    REQUIRE(set.plain_row(data.r[i].data()));
    REQUIRE(set.prepare(data.r[i].data(), data.t[i], err));
    set.add(by_row[i % keys].data(), data.t[i]);
  }
  std::vector<const value*> rows;
  std::vector<std::byte*> states;
  for (std::size_t i = 0; i < data.r.size(); ++i) {
    rows.push_back(data.r[i].data());
    states.push_back(by_block[i % keys].data());
  }
  for (std::size_t b = 0; b < rows.size(); b += 61)  // uneven blocks
    set.add_plain(rows.data() + b, states.data() + b, data.t.data() + b,
                  std::min<std::size_t>(61, rows.size() - b));
  for (int k = 0; k < keys; ++k) {
    std::vector<value> x(set.outputs().size()), y(set.outputs().size());
    set.result(by_row[k].data(), x.data());
    set.result(by_block[k].data(), y.data());
    CHECK(x == y);
    CHECK(std::get<std::int64_t>(y[0]) == 500);
    CHECK(std::get<std::int64_t>(y[1]) < 500);  // nulls are not counted
  }
  // A string where a number is needed is not for add_plain (prepare says why); a string a
  // count of values takes is.
  std::vector<value> bad = {std::string("S"), std::string("abc"), std::int64_t{5}};
  CHECK_FALSE(set.plain_row(bad.data()));
  auto counts = aggregate_set::compile_text({{"ns", "count(symbol)"}, {"s", "sum(qty)"}}, *schema);
  REQUIRE(counts.plain_states());
  CHECK(counts.plain_row(bad.data()));
}
