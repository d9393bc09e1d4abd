// The aggregates on values that break naive code: NaN, infinities, numbers near the largest
// double, denormals, zero and negatives. Each result is computed along every path a window
// takes (row by row, merged partial states at every split, blocks through add_plain, a
// snapshot round trip) and in every order of the inputs, and must be the same on all.
#include "pel/operators/aggregates.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

using namespace pel;
using core::value;
using operators::aggregate_set;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
const double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double big = std::numeric_limits<double>::max();
constexpr double denorm = std::numeric_limits<double>::denorm_min();

core::schema_ptr one_column() {
  return std::make_shared<core::schema>(std::vector<core::field>{{"x", std::nullopt}});
}

/// The first result of `set` over `xs` added in `order`, one state per split part: rows
/// [0, split) into one state, the rest into another, then merged.
value by_split(aggregate_set& set, const std::vector<double>& xs,
               const std::vector<std::size_t>& order, std::size_t split) {
  operators::accumulator a(set), b(set);
  std::string err;
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::vector<value> row{xs[order[i]]};
    REQUIRE(set.prepare(row.data(), static_cast<std::int64_t>(i), err));
    set.add(i < split ? a.data() : b.data(), static_cast<std::int64_t>(i));
  }
  set.merge(a.data(), b.data());
  std::vector<value> out(set.outputs().size());
  set.result(a.data(), out.data());
  return out[0];
}

/// The same through add_plain, two rows per block (plain sets only).
value by_blocks(aggregate_set& set, const std::vector<double>& xs) {
  operators::accumulator a(set);
  std::vector<std::vector<value>> rows;
  for (double x : xs) rows.push_back({x});
  std::vector<const value*> ptrs;
  std::vector<std::byte*> states;
  std::vector<std::int64_t> times;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ptrs.push_back(rows[i].data());
    states.push_back(a.data());
    times.push_back(static_cast<std::int64_t>(i));
  }
  for (std::size_t b = 0; b < rows.size(); b += 2)
    set.add_plain(ptrs.data() + b, states.data() + b, times.data() + b,
                  std::min<std::size_t>(2, rows.size() - b));
  std::vector<value> out(set.outputs().size());
  set.result(a.data(), out.data());
  return out[0];
}

/// The same after a snapshot round trip of the state.
value by_snapshot(aggregate_set& set, const std::vector<double>& xs) {
  operators::accumulator a(set), back(set);
  std::string err;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    std::vector<value> row{xs[i]};
    REQUIRE(set.prepare(row.data(), static_cast<std::int64_t>(i), err));
    set.add(a.data(), static_cast<std::int64_t>(i));
  }
  core::state_writer w;
  set.write(a.data(), w);
  core::state_reader r(w.bytes());
  set.read(back.data(), r);
  REQUIRE(r.at_end());
  std::vector<value> out(set.outputs().size());
  set.result(back.data(), out.data());
  return out[0];
}

/// Equal, both NaN, or both doubles within `rel` of each other.
bool same(const value& a, const value& b, double rel) {
  if (core::is_null(a) || core::is_null(b)) return core::is_null(a) && core::is_null(b);
  double x = 0, y = 0;
  if (!core::as_number(a, x) || !core::as_number(b, y)) return a == b;
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  if (x == y) return true;
  return std::fabs(x - y) <= rel * std::max(std::fabs(x), std::fabs(y));
}

std::string show(const value& v) {
  double d = 0;
  if (core::as_number(v, d)) {
    std::ostringstream o;
    o.precision(17);
    o << d;
    return o.str();
  }
  return core::is_null(v) ? "null" : core::to_text(v);
}

/// `text` over `xs` by every path and in every order (every split of each order): all agree
/// (within `rel` for rounding), and the answer is returned.
value every_path(const std::string& text, const std::vector<double>& xs, double rel = 1e-12) {
  auto schema = one_column();
  auto set = aggregate_set::compile_text({{"r", text}}, *schema);
  std::vector<std::size_t> order(xs.size());
  std::iota(order.begin(), order.end(), 0);
  const value first = by_split(set, xs, order, xs.size());
  INFO(text << " row by row: " << show(first));
  do {
    for (std::size_t split = 0; split <= xs.size(); ++split) {
      const value got = by_split(set, xs, order, split);
      INFO("split " << split << ": " << show(got));
      CHECK(same(got, first, rel));
    }
  } while (xs.size() <= 5 && std::next_permutation(order.begin(), order.end()));
  if (set.plain_states()) {
    const value got = by_blocks(set, xs);
    INFO("add_plain: " << show(got));
    CHECK(same(got, first, rel));
  }
  const value snap = by_snapshot(set, xs);
  INFO("snapshot: " << show(snap));
  CHECK(same(snap, first, 0));
  return first;
}

double number(const value& v) {
  double d = 0;
  REQUIRE(core::as_number(v, d));
  return d;
}

bool is_nan(const value& v) {
  double d = 0;
  return core::as_number(v, d) && std::isnan(d);
}

}  // namespace

TEST_CASE("NaN makes every numeric aggregate NaN, in any order and by every path",
          "[windows][aggregates][nan]") {
  for (const char* f : {"sum(x)", "avg(x)", "min(x)", "max(x)", "stddev(x)", "variance(x)",
                        "percentile(x, 0.5)", "percentile(x, 1)", "vwap(x, x)"}) {
    INFO(f);
    CHECK(is_nan(every_path(f, {1, qnan, 3})));
    CHECK(is_nan(every_path(f, {qnan, qnan})));
  }
  auto schema = one_column();
  auto bar = aggregate_set::compile_text({{"b", "ohlc(x, 1)"}}, *schema);
  for (const auto& xs : {std::vector<double>{qnan, 1, 3}, {1, qnan, 3}, {1, 3, qnan}}) {
    operators::accumulator a(bar);
    std::string err;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      std::vector<value> row{xs[i]};
      REQUIRE(bar.prepare(row.data(), static_cast<std::int64_t>(i), err));
      bar.add(a.data(), static_cast<std::int64_t>(i));
    }
    std::vector<value> out(6);
    bar.result(a.data(), out.data());
    CHECK(is_nan(out[1]));  // high
    CHECK(is_nan(out[2]));  // low
  }
  // count(x) counts a NaN: it is a value, not a null.
  CHECK(every_path("count(x)", {1, qnan, 3}) == value(std::int64_t{3}));
}

TEST_CASE("stddev and variance never overflow to 0", "[windows][aggregates][stddev]") {
  // Population sigma 1e308, sample stddev sqrt(2) * 1e308.
  const value sd = every_path("stddev(x)", {1e308, -1e308});
  CHECK(number(sd) == Approx(std::sqrt(2.0) * 1e308).epsilon(1e-12));
  CHECK(number(every_path("variance(x)", {1e308, -1e308})) == inf);
  CHECK(number(every_path("stddev(x)", {1e308, -1e308, 1e308})) ==
        Approx(1e308 / std::sqrt(3.0) * 2).epsilon(1e-12));
  CHECK(number(every_path("stddev(x)", {big, -big, 0})) == Approx(big).epsilon(1e-12));
  CHECK(number(every_path("stddev(x)", {big, big})) == 0);
  CHECK(number(every_path("variance(x)", {1e153, -1e153})) == Approx(2e306).epsilon(1e-12));
  // Many huge values of both signs: sample stddev = 1e308 * sqrt(n / (n - 1)).
  std::vector<double> many;
  for (int i = 0; i < 1000; ++i) many.push_back(i % 2 ? 1e308 : -1e308);
  CHECK(number(every_path("stddev(x)", many, 1e-9)) ==
        Approx(1e308 * std::sqrt(1000.0 / 999.0)).epsilon(1e-9));
}

TEST_CASE("stddev of tiny and denormal values keeps their size", "[windows][aggregates][stddev]") {
  CHECK(number(every_path("stddev(x)", {1e-200, 2e-200, 3e-200})) == Approx(1e-200).epsilon(1e-12));
  CHECK(number(every_path("variance(x)", {1e-100, 3e-100})) == Approx(2e-200).epsilon(1e-12));
  // Denormals carry few digits: the right size, not zero.
  const double d = number(every_path("stddev(x)", {denorm * 1000, denorm * 3000}, 1e-2));
  CHECK(d == Approx(std::sqrt(2.0) * 1000 * denorm).epsilon(1e-2));
}

TEST_CASE("stddev of ordinary values, zero and negatives", "[windows][aggregates][stddev]") {
  CHECK(number(every_path("stddev(x)", {1, 2, 3, 4})) == Approx(std::sqrt(5.0 / 3)).epsilon(1e-12));
  CHECK(number(every_path("stddev(x)", {-1, 0, 1})) == Approx(1).epsilon(1e-12));
  CHECK(number(every_path("stddev(x)", {0, 0, 0})) == 0);
  CHECK(number(every_path("stddev(x)", {1e9 + 1, 1e9 + 2, 1e9 + 3})) == Approx(1).epsilon(1e-9));
  CHECK(core::is_null(every_path("stddev(x)", {5})));
}

TEST_CASE("stddev and variance of a set with an infinity are NaN",
          "[windows][aggregates][stddev]") {
  CHECK(is_nan(every_path("stddev(x)", {1, inf, 3})));
  CHECK(is_nan(every_path("variance(x)", {-inf, 1})));
  CHECK(is_nan(every_path("stddev(x)", {inf, inf})));
}

TEST_CASE("min, max, sum and avg with infinities", "[windows][aggregates]") {
  CHECK(number(every_path("max(x)", {1, inf, 3})) == inf);
  CHECK(number(every_path("min(x)", {1, -inf, 3})) == -inf);
  CHECK(number(every_path("sum(x)", {1, inf, 3})) == inf);
  CHECK(is_nan(every_path("sum(x)", {inf, -inf})));
}

TEST_CASE("percentile ranks infinities and stays exact at its ends",
          "[windows][aggregates][percentile]") {
  CHECK(number(every_path("percentile(x, 1)", {1, 2, inf})) == inf);
  CHECK(number(every_path("percentile(x, 100)", {inf})) == inf);
  CHECK(number(every_path("percentile(x, 0)", {1, 2, inf})) == 1);
  CHECK(number(every_path("percentile(x, 0.5)", {1, 2, inf})) == Approx(2).epsilon(0.01));
  CHECK(number(every_path("percentile(x, 0.5)", {1, inf, inf})) == inf);
  CHECK(number(every_path("percentile(x, 0)", {-inf, 1, 2})) == -inf);
  CHECK(number(every_path("percentile(x, 0.5)", {-inf, -inf, 2})) == -inf);
  CHECK(number(every_path("percentile(x, 0.5)", {-inf, 7, inf})) == Approx(7).epsilon(0.01));
  // Zero, negatives, denormals (counted as 0 but exact at the ends), the largest doubles.
  CHECK(number(every_path("percentile(x, 0.5)", {-5, 0, 5})) == 0);
  CHECK(number(every_path("percentile(x, 0)", {-5, 0, 5})) == -5);
  CHECK(number(every_path("percentile(x, 0.5)", {-5, -4, 5})) == Approx(-4).epsilon(0.01));
  CHECK(number(every_path("percentile(x, 1)", {denorm, 0})) == denorm);
  // The middle one is in the zero bucket, reported as the nearest value seen.
  CHECK(number(every_path("percentile(x, 0.5)", {denorm, 2 * denorm, 3 * denorm})) == denorm);
  CHECK(number(every_path("percentile(x, 1)", {big, -big, 1})) == big);
  CHECK(number(every_path("percentile(x, 0)", {big, -big, 1})) == -big);
  CHECK(number(every_path("percentile(x, 0.5)", {big, big, 1})) == Approx(big).epsilon(0.01));
  CHECK(number(every_path("percentile(x, 0.5)", {-big, -big, 1})) == Approx(-big).epsilon(0.01));
}

TEST_CASE("percentile memory stays bounded over any spread of values, high ranks stay accurate",
          "[windows][aggregates][percentile]") {
  auto schema = one_column();
  auto set = aggregate_set::compile_text(
      {{"p99", "percentile(x, 0.99)"}, {"p50", "percentile(x, 0.5)"}}, *schema);
  // Log-uniform over 1e-9 .. 1e308 for both signs: about 36,000 buckets per sign unbounded.
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> exponent(-9, 308);
  std::vector<double> xs;
  operators::accumulator a(set), b(set);
  std::string err;
  for (int i = 0; i < 50000; ++i) {
    double x = std::pow(10.0, exponent(rng));
    if (i % 3 == 0) x = -x;
    xs.push_back(x);
    std::vector<value> row{x};
    REQUIRE(set.prepare(row.data(), i, err));
    set.add(i % 2 ? a.data() : b.data(), i);
  }
  set.merge(a.data(), b.data());
  // Two sketches of at most 2 x 2048 buckets each (vector capacity may double that).
  CHECK(set.heap_bytes(a.data()) <= 2 * (2 * 2 * 2048 * 8 + 256));
  std::vector<value> out(2);
  set.result(a.data(), out.data());
  std::sort(xs.begin(), xs.end());
  const double exact99 = xs[static_cast<std::size_t>(std::floor(0.99 * (xs.size() - 1)))];
  CHECK(number(out[0]) == Approx(exact99).epsilon(0.01));
  // The median (a positive value near 1e70) is among the lowest values, whose buckets were
  // merged upwards: too high, but a value the set holds the range of.
  const double exact50 = xs[static_cast<std::size_t>(std::floor(0.5 * (xs.size() - 1)))];
  CHECK(number(out[1]) >= exact50);
  CHECK(number(out[1]) <= xs.back());
}

TEST_CASE("the stddev state stays 24 bytes, small enough for the window's combiner cells",
          "[windows][aggregates][stddev]") {
  auto schema = one_column();
  auto set = aggregate_set::compile_text({{"sd", "stddev(x)"}}, *schema);
  CHECK(set.state_size() == 24);
  CHECK(set.plain_states());
}
