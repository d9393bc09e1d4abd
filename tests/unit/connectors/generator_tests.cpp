#include "pel/connectors/generator.hpp"

#include "connector_test_util.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <tuple>

using namespace pel;
using namespace pel::connectors;
using pel::testing::list;
using pel::testing::map;
using pel::testing::scalar;
using pel::testing::test_config;

namespace {

/// Polls a source until it ends (bounded), returning all rows.
core::batch drain(core::source_base& src, std::size_t max_rows = 1000) {
  core::batch all(static_cast<std::uint32_t>(src.output_schema()->size()));
  for (int i = 0; i < 1'000'000; ++i) {
    core::outputs out;
    out.main = core::batch(all.width);
    auto st = src.poll(out, max_rows);
    for (std::size_t r = 0; r < out.main.size(); ++r)
      all.append_move(out.main.row(r), out.main.times[r]);
    if (st == core::poll_status::end) return all;
  }
  FAIL("the source did not end");
  return all;
}

core::batch run(generator_options o, std::uint32_t instance = 0, std::uint32_t parallelism = 1) {
  auto src = make_generator(o);
  core::operator_context ctx;
  ctx.name = "gen";
  ctx.instance = instance;
  ctx.parallelism = parallelism;
  src->open(ctx);
  return drain(*src);
}

std::vector<std::vector<core::value>> rows_of(const core::batch& b) {
  std::vector<std::vector<core::value>> out;
  for (std::size_t i = 0; i < b.size(); ++i) out.emplace_back(b.row(i), b.row(i) + b.width);
  return out;
}

bool bad_temperature(const core::value& v) {
  if (core::is_null(v) || std::holds_alternative<std::string>(v)) return true;
  double d = std::get<double>(v);
  return std::isnan(d) || d < -100 || d > 200;
}

}  // namespace

TEST_CASE("generator schemas per profile", "[generator]") {
  CHECK(generator_schema(generator_profile::trades)->names() ==
        "ts, symbol, price, qty, side, trade_id");
  CHECK(generator_schema(generator_profile::quotes)->names() ==
        "ts, symbol, bid, ask, bid_size, ask_size");
  CHECK(generator_schema(generator_profile::sensors)->names() ==
        "ts, device, temperature, humidity, status");
  CHECK((*generator_schema(generator_profile::trades))[2].type == core::value_type::number);
  generator_options o;
  o.profile = generator_profile::sensors;
  CHECK(make_generator(o)->output_schema()->names() == "ts, device, temperature, humidity, status");
  CHECK(generator_symbol_name(0) == "AAPL");
  CHECK(generator_symbol_name(1) == "MSFT");
  CHECK(generator_symbol_name(50) == "SYM0050");
}

TEST_CASE("generator is deterministic and bounded by count", "[generator]") {
  generator_options o;
  o.count = 2000;
  o.out_of_order = 0.05;
  auto a = run(o), b = run(o);
  REQUIRE(a.size() == 2000);
  CHECK(rows_of(a) == rows_of(b));
  CHECK(a.times == b.times);
  o.seed = 7;
  auto c = run(o);
  CHECK(rows_of(a) != rows_of(c));

  // Event time equals ts (ms) × 1e6; trade ids count up; prices are positive cents.
  std::int64_t prev = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto r = a.row(i);
    CHECK(a.times[i] == std::get<std::int64_t>(r[0]) * 1'000'000);
    CHECK(std::get<std::int64_t>(r[5]) == static_cast<std::int64_t>(i + 1));
    double p = std::get<double>(r[2]);
    CHECK(p > 0);
    CHECK(std::fabs(p * 100 - std::round(p * 100)) < 1e-6);
    CHECK(std::get<std::int64_t>(r[3]) > 0);
    auto side = std::get<std::string>(r[4]);
    CHECK((side == "buy" || side == "sell"));
    prev = std::get<std::int64_t>(r[0]);
  }
  (void)prev;
}

TEST_CASE("generator output is the same at any parallelism", "[generator]") {
  generator_options o;
  o.count = 3001;
  o.burstiness = 0.8;
  auto one = run(o);
  std::map<std::int64_t, std::vector<core::value>> by_id;
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto part = run(o, i, 3);
    total += part.size();
    for (std::size_t r = 0; r < part.size(); ++r)
      by_id[std::get<std::int64_t>(part.row(r)[5])] =
          std::vector<core::value>(part.row(r), part.row(r) + part.width);
  }
  REQUIRE(total == 3001);
  REQUIRE(by_id.size() == 3001);
  std::size_t i = 0;
  for (const auto& [id, row] : by_id) {
    REQUIRE(row == std::vector<core::value>(one.row(i), one.row(i) + one.width));
    ++i;
  }
}

TEST_CASE("generator timestamps follow the event rate, with bursts", "[generator]") {
  generator_options o;
  o.count = 6400;
  o.event_rate = 1000;  // 1 record per ms on average
  o.burstiness = 0;
  auto even = run(o);
  std::int64_t first = std::get<std::int64_t>(even.row(0)[0]);
  CHECK(first == o.start_ms);
  for (std::size_t i = 1; i < even.size(); ++i)
    REQUIRE(std::get<std::int64_t>(even.row(i)[0]) - first == static_cast<std::int64_t>(i));

  o.burstiness = 1;
  auto bursty = run(o);
  std::int64_t last = std::get<std::int64_t>(bursty.row(bursty.size() - 1)[0]);
  CHECK(std::llabs(last - first - 6399) <= 64);  // same mean rate
  std::map<std::int64_t, int> per_ms;
  std::int64_t prev = first;
  for (std::size_t i = 0; i < bursty.size(); ++i) {
    auto ts = std::get<std::int64_t>(bursty.row(i)[0]);
    REQUIRE(ts >= prev);  // in order without out_of_order
    prev = ts;
    ++per_ms[ts];
  }
  int busiest = 0;
  for (auto& [ms, n] : per_ms) busiest = std::max(busiest, n);
  CHECK(busiest > 5);                    // clusters
  CHECK(per_ms.size() < 6400u * 3 / 4);  // and gaps
}

TEST_CASE("generator out-of-order records stay within max_delay", "[generator]") {
  generator_options o;
  o.count = 20000;
  o.event_rate = 10000;
  o.out_of_order = 0.2;
  o.max_delay_ns = 100'000'000;
  auto b = run(o);
  std::int64_t max_seen = INT64_MIN;
  int late = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    auto ts = std::get<std::int64_t>(b.row(i)[0]);
    if (ts < max_seen) ++late;
    if (max_seen != INT64_MIN) REQUIRE(ts >= max_seen - 100);
    max_seen = std::max(max_seen, ts);
  }
  CHECK(late > 1000);
  o.out_of_order = 0;
  auto in_order = run(o);
  for (std::size_t i = 1; i < in_order.size(); ++i)
    REQUIRE(in_order.times[i] >= in_order.times[i - 1]);
}

TEST_CASE("generator duration ends the stream in event time", "[generator]") {
  generator_options o;
  o.event_rate = 500;
  o.duration_ns = 2'000'000'000;
  o.burstiness = 0;
  auto b = run(o);
  CHECK(b.size() == 1000);
  auto last = std::get<std::int64_t>(b.row(b.size() - 1)[0]);
  CHECK(last < o.start_ms + 2000);
}

TEST_CASE("generator rate pacing returns idle when ahead of schedule", "[generator]") {
  generator_options o;
  o.rate = 1;  // one record per second
  auto src = make_generator(o);
  src->open({});
  auto t0 = std::chrono::steady_clock::now();
  core::outputs out;
  out.main = core::batch(6);
  CHECK(src->poll(out, 100) == core::poll_status::data);
  CHECK(out.main.size() == 1);
  int idle = 0;
  for (int i = 0; i < 100; ++i)
    if (src->poll(out, 100) == core::poll_status::idle) ++idle;
  auto elapsed = std::chrono::steady_clock::now() - t0;
  // Unless the machine stalled for a second, every further poll was early.
  if (elapsed < std::chrono::milliseconds(900)) {
    CHECK(idle == 100);
    CHECK(out.main.size() == 1);
  }

  // At a high rate the budget follows the clock: polls emit records, never a burst of
  // max_rows right away.
  o.rate = 1000;
  auto fast = make_generator(o);
  fast->open({});
  core::outputs o2;
  o2.main = core::batch(6);
  auto start = std::chrono::steady_clock::now();
  fast->poll(o2, 100000);
  CHECK(o2.main.size() < 100);
  bool reached = pel::testing::poll_until([&] {
    fast->poll(o2, 100000);
    return o2.main.size() >= 50;
  });
  REQUIRE(reached);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(45));
}

TEST_CASE("generator bad sensor records come at the configured fraction", "[generator]") {
  generator_options o;
  o.profile = generator_profile::sensors;
  o.devices = 10;
  o.count = 20000;
  o.bad_records = 0.1;
  auto b = run(o);
  int bad = 0, kinds_null = 0, kinds_nan = 0, kinds_err = 0, kinds_spike = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto& t = b.row(i)[2];
    if (!bad_temperature(t)) {
      double d = std::get<double>(t);
      REQUIRE(d > -20);
      REQUIRE(d < 60);
      continue;
    }
    ++bad;
    if (core::is_null(t))
      ++kinds_null;
    else if (std::holds_alternative<std::string>(t))
      ++kinds_err;
    else if (std::isnan(std::get<double>(t)))
      ++kinds_nan;
    else
      ++kinds_spike;
  }
  CHECK(bad > 1700);
  CHECK(bad < 2300);
  CHECK(kinds_null > 0);
  CHECK(kinds_nan > 0);
  CHECK(kinds_err > 0);
  CHECK(kinds_spike > 0);
  CHECK(std::get<std::string>(b.row(3)[1]) == "sensor-0003");

  o.bad_records = 0;
  auto good = run(o);
  for (std::size_t i = 0; i < good.size(); ++i) REQUIRE_FALSE(bad_temperature(good.row(i)[2]));
}

TEST_CASE("trades and quotes with the same seed agree on the mid price", "[generator]") {
  generator_options o;
  o.symbols = 3;
  o.count = 30000;
  o.event_rate = 20000;
  o.seed = 99;
  o.profile = generator_profile::trades;
  auto trades = run(o);
  o.profile = generator_profile::quotes;
  auto quotes = run(o);

  std::map<std::pair<std::string, std::int64_t>, std::pair<double, double>> book;
  for (std::size_t i = 0; i < quotes.size(); ++i) {
    auto r = quotes.row(i);
    auto sym = std::get<std::string>(r[1]);
    auto ts = std::get<std::int64_t>(r[0]);
    double bid = std::get<double>(r[2]), ask = std::get<double>(r[3]);
    REQUIRE(bid < ask);
    int s = sym == "AAPL" ? 0 : (sym == "MSFT" ? 1 : 2);
    double mid = generator_mid_price(99, s, o.start_ms, ts);
    REQUIRE(bid <= mid);
    REQUIRE(mid <= ask);
    CHECK((ask - bid) / mid < 0.002);
    book[{sym, ts}] = {bid, ask};
  }
  int matched = 0;
  for (std::size_t i = 0; i < trades.size(); ++i) {
    auto r = trades.row(i);
    auto it = book.find({std::get<std::string>(r[1]), std::get<std::int64_t>(r[0])});
    if (it == book.end()) continue;
    ++matched;
    double px = std::get<double>(r[2]);
    REQUIRE(px >= it->second.first - 1e-9);
    REQUIRE(px <= it->second.second + 1e-9);
  }
  CHECK(matched > 1000);

  // The walk moves: prices an hour apart differ, but realistically (well under 20%).
  double a = generator_mid_price(99, 0, o.start_ms, o.start_ms);
  double b = generator_mid_price(99, 0, o.start_ms, o.start_ms + 3'600'000);
  CHECK(a == 185.0);
  CHECK(a != b);
  CHECK(std::fabs(b / a - 1) < 0.2);
}

TEST_CASE("generator preload replays the same records", "[generator]") {
  generator_options o;
  o.count = 1500;
  o.profile = generator_profile::quotes;
  auto live = run(o, 1, 2);
  o.preload = true;
  auto pre = run(o, 1, 2);
  REQUIRE(pre.size() == 750);
  CHECK(rows_of(pre) == rows_of(live));
  CHECK(pre.times == live.times);
}

TEST_CASE("generator config is read and checked", "[generator]") {
  test_config t(map({{"profile", scalar("sensors")},
                     {"devices", scalar("7")},
                     {"count", scalar("10")},
                     {"start_time", scalar("2024-03-01T00:00:00Z")},
                     {"max_delay", scalar("1s")},
                     {"preload", scalar("true")}}),
                generator_params());
  auto o = read_generator_options(t.cfg);
  CHECK(o.profile == generator_profile::sensors);
  CHECK(o.devices == 7);
  CHECK(o.count == 10);
  CHECK(o.start_ms == 1709251200000);
  CHECK(o.max_delay_ns == 1'000'000'000);
  CHECK(o.preload);

  test_config p(map({{"preload", scalar("true")}}), generator_params());
  REQUIRE_THROWS_WITH(read_generator_options(p.cfg),
                      "preload needs a bounded generator: set `count`");
  test_config s(map({{"start_time", scalar("yesterday")}}), generator_params());
  REQUIRE_THROWS_WITH(read_generator_options(s.cfg),
                      "expected an ISO-8601 time such as 2024-01-02T14:30:00Z, found 'yesterday'");
  test_config d(map({}), generator_params());
  auto def = read_generator_options(d.cfg);
  CHECK(def.start_ms == 1704205800000);
  CHECK(def.symbols == 100);
}

TEST_CASE("generator refuses times and rates outside 64-bit nanoseconds", "[generator][hostile]") {
  auto error = [](std::vector<std::pair<std::string, spec::node_ptr>> e) -> std::string {
    test_config t(map(std::move(e)), generator_params());
    try {
      read_generator_options(t.cfg);
    } catch (const spec::config_error& err) {
      return err.what();
    }
    return "ok";
  };
  CHECK(error({{"start_time", scalar("9999-01-01T00:00:00Z")}}) ==
        "must lie between 1677-09-22 and 2262-04-11: event times are nanoseconds since 1970 in "
        "64 bits; found '9999-01-01T00:00:00Z'");
  CHECK(error({{"start_time", scalar("1600-01-01")}}).rfind("must lie between", 0) == 0);
  CHECK(error({{"start_time", scalar("2262-04-01T00:00:00Z")}}) == "ok");
  CHECK(error({{"start_time", scalar("1677-10-01T00:00:00Z")}, {"max_delay", scalar("100d")}}) ==
        "reaches before 1677-09-22 from `start_time`, where event times (64-bit nanoseconds) "
        "end; make it shorter");
  CHECK(error({{"event_rate", scalar("0.0000001")}}) ==
        "must be 0 (the default) or at least 0.001 (one record per 1000 s)");
  CHECK(error({{"rate", scalar("1e-9")}}).rfind("must be 0 (the default)", 0) == 0);
  CHECK(error({{"event_rate", scalar("0.001")}}) == "ok");
}

TEST_CASE("generator ends its stream where event times run out (year 2262)",
          "[generator][hostile]") {
  generator_options o;
  o.start_ms = 9223372036854 - 10LL * 86'400'000;  // ten days before the end of int64 ns
  o.event_rate = 0.001;                            // one record per 1000 s
  o.burstiness = 0;
  auto b = run(o);
  CHECK(b.size() > 800);
  CHECK(b.size() < 900);
  std::int64_t prev = o.start_ms;
  for (std::size_t i = 0; i < b.size(); ++i) {
    auto ts = std::get<std::int64_t>(b.row(i)[0]);
    REQUIRE(ts >= prev);
    REQUIRE(ts <= 9223372036854);
    prev = ts;
  }
}

TEST_CASE("ISO-8601 parsing", "[generator]") {
  std::int64_t ms = 0;
  REQUIRE(parse_iso8601_ms("1970-01-01T00:00:00Z", ms));
  CHECK(ms == 0);
  REQUIRE(parse_iso8601_ms("2024-01-02T14:30:00.250Z", ms));
  CHECK(ms == 1704205800250);
  REQUIRE(parse_iso8601_ms("2024-01-02T15:30:00+01:00", ms));
  CHECK(ms == 1704205800000);
  REQUIRE(parse_iso8601_ms("2024-01-02", ms));
  CHECK(ms == 1704153600000);
  CHECK_FALSE(parse_iso8601_ms("2024-13-02", ms));
  CHECK_FALSE(parse_iso8601_ms("2024-01-02T14:30:00Zjunk", ms));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

namespace {

/// `first` polls of `step` rows from a generator, a snapshot, then a new generator restored
/// from it that runs to the end: all the rows, in order.
core::batch resumed_run(const generator_options& o, std::uint32_t instance,
                        std::uint32_t parallelism, std::size_t step, std::size_t first) {
  core::operator_context ctx;
  ctx.name = "gen";
  ctx.instance = instance;
  ctx.parallelism = parallelism;
  auto a = make_generator(o);
  a->open(ctx);
  core::batch all(static_cast<std::uint32_t>(a->output_schema()->size()));
  for (std::size_t i = 0; i < first; ++i) {
    core::outputs out;
    out.main = core::batch(all.width);
    a->poll(out, step);
    for (std::size_t r = 0; r < out.main.size(); ++r)
      all.append_move(out.main.row(r), out.main.times[r]);
  }
  core::state_writer w;
  a->on_barrier(1);
  a->snapshot(w);
  a.reset();
  auto b = make_generator(o);
  REQUIRE(b->replayable());
  b->open(ctx);
  auto bytes = w.take();
  core::state_reader r(bytes);
  b->restore(r);
  auto rest = drain(*b);
  for (std::size_t i = 0; i < rest.size(); ++i) all.append_move(rest.row(i), rest.times[i]);
  return all;
}

/// Rows as text, so that NaN readings compare equal to themselves.
std::vector<std::string> texts_of(const core::batch& b) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::string s;
    for (std::size_t c = 0; c < b.width; ++c) s += core::to_text(b.row(i)[c]) + "|";
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("generator restored from a snapshot continues as an uninterrupted run",
          "[generator][checkpoint]") {
  generator_options o;
  o.count = 3001;
  o.out_of_order = 0.1;
  o.burstiness = 0.9;
  for (auto profile :
       {generator_profile::trades, generator_profile::quotes, generator_profile::sensors}) {
    o.profile = profile;
    o.bad_records = profile == generator_profile::sensors ? 0.1 : 0;
    for (bool preload : {false, true}) {
      o.preload = preload;
      for (auto [instance, parallelism] : {std::pair<std::uint32_t, std::uint32_t>{0, 1},
                                           std::pair<std::uint32_t, std::uint32_t>{2, 3}}) {
        auto whole = run(o, instance, parallelism);
        for (auto [step, first] : {std::pair<std::size_t, std::size_t>{7, 1},
                                   std::pair<std::size_t, std::size_t>{333, 3},
                                   std::pair<std::size_t, std::size_t>{1000, 2}}) {
          INFO("profile " << static_cast<int>(profile) << ", preload " << preload << ", instance "
                          << instance << " of " << parallelism << ", " << first << " polls of "
                          << step);
          auto resumed = resumed_run(o, instance, parallelism, step, first);
          REQUIRE(resumed.size() == whole.size());
          CHECK(texts_of(resumed) == texts_of(whole));
          CHECK(resumed.times == whole.times);
        }
      }
    }
  }
}

TEST_CASE("generator restored with a rate paces from the restore, without a burst",
          "[generator][checkpoint]") {
  generator_options o;
  o.event_rate = 1000;  // the same event times with and without pacing
  core::operator_context ctx;
  ctx.name = "gen";
  auto a = make_generator(o);
  a->open(ctx);
  core::outputs out;
  a->poll(out, 500);
  REQUIRE(out.main.size() == 500);
  core::state_writer w;
  a->snapshot(w);
  auto bytes = w.take();

  o.rate = 10;  // one record per 100 ms
  auto b = make_generator(o);
  b->open(ctx);
  core::state_reader r(bytes);
  b->restore(r);
  core::outputs first;
  REQUIRE(b->poll(first, 1000) == core::poll_status::data);
  REQUIRE(first.main.size() == 1);  // not the 500 "owed" since the original start
  CHECK(first.main.row(0)[5] == core::value(std::int64_t{501}));
  core::outputs next;
  b->poll(next, 1000);
  CHECK(next.main.size() <= 1);
}

TEST_CASE("generator refuses a snapshot of another instance or seed", "[generator][checkpoint]") {
  generator_options o;
  core::operator_context ctx;
  ctx.name = "gen";
  ctx.instance = 1;
  ctx.parallelism = 2;
  auto a = make_generator(o);
  a->open(ctx);
  core::state_writer w;
  a->snapshot(w);
  auto bytes = w.take();
  {
    auto b = make_generator(o);
    ctx.parallelism = 3;
    b->open(ctx);
    core::state_reader r(bytes);
    REQUIRE_THROWS_WITH(b->restore(r),
                        "generator: the checkpoint was taken by instance 1 of 2, not 1 of 3; "
                        "restore with the parallelism it was taken at");
  }
  ctx.parallelism = 2;
  o.seed = 9;
  auto c = make_generator(o);
  c->open(ctx);
  core::state_reader r(bytes);
  REQUIRE_THROWS_WITH(c->restore(r),
                      "generator: `seed` or `start_time` changed since the checkpoint, so its "
                      "position would continue other records; put them back or start without "
                      "the checkpoint");
}

// -- rate schedules ---------------------------------------------------------------------------

namespace {

/// 1000 records at 1e6/s (1 ms), 1000 at 5e5/s (2 ms), then 2e6/s: fast enough for a test to
/// run through in milliseconds of pacing.
generator_options scheduled() {
  generator_options o;
  o.burstiness = 0;
  o.count = 5000;
  o.rate_schedule = {{1'000'000, 1e6}, {2'000'000, 5e5}, {0, 2e6}};
  return o;
}

}  // namespace

TEST_CASE("generator rate schedule: the step of a record follows from its index, and event "
          "time advances at the step's rate", "[generator][schedule]") {
  auto o = scheduled();
  auto b = run(o);
  REQUIRE(b.size() == 5000);
  const std::int64_t start = o.start_ms * 1'000'000;
  auto ms = [&](std::size_t n) { return (b.times[n] - start) / 1'000'000; };
  // Step 0: 1 us apart; step 1: 2 us apart from 1 ms; step 2: 0.5 us apart from 3 ms.
  CHECK(ms(999) == 0);
  CHECK(ms(1000) == 1);
  CHECK(ms(1499) == 1);
  CHECK(ms(1500) == 2);
  CHECK(ms(1999) == 2);
  CHECK(ms(2000) == 3);
  CHECK(ms(3999) == 3);
  CHECK(ms(4000) == 4);
  // `event_rate` still wins over the schedule.
  o.event_rate = 1000;
  auto e = run(o);
  CHECK((e.times[1500] - start) / 1'000'000 == 1500);
}

TEST_CASE("generator rate schedule: the same rows at any parallelism and after a restore",
          "[generator][schedule][checkpoint]") {
  auto o = scheduled();
  o.burstiness = 0.7;
  auto one = run(o);
  std::map<std::int64_t, std::pair<std::vector<core::value>, std::int64_t>> by_id;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto part = run(o, i, 3);
    for (std::size_t r = 0; r < part.size(); ++r)
      by_id[std::get<std::int64_t>(part.row(r)[5])] = {
          std::vector<core::value>(part.row(r), part.row(r) + part.width), part.times[r]};
  }
  REQUIRE(by_id.size() == one.size());
  std::size_t i = 0;
  for (const auto& [id, row] : by_id) {
    REQUIRE(row.first == std::vector<core::value>(one.row(i), one.row(i) + one.width));
    REQUIRE(row.second == one.times[i]);
    ++i;
  }
  auto whole = run(o, 1, 2);
  auto resumed = resumed_run(o, 1, 2, 700, 2);
  REQUIRE(resumed.size() == whole.size());
  CHECK(texts_of(resumed) == texts_of(whole));
  CHECK(resumed.times == whole.times);
}

TEST_CASE("generator offered(): the paced rate of the current step and the records due but "
          "not emitted", "[generator][schedule]") {
  core::operator_context ctx;
  ctx.name = "gen";
  SECTION("unpaced: unknown") {
    auto g = make_generator(generator_options{});
    g->open(ctx);
    CHECK(g->offered().rate == -1);
    CHECK(g->offered().backlog == -1);
  }
  SECTION("a fixed rate is per instance") {
    generator_options o;
    o.rate = 250;
    auto g = make_generator(o);
    g->open(ctx);
    CHECK(g->offered().rate == 250);
    CHECK(g->offered().backlog == 0);
  }
  SECTION("a schedule is over all instances, by the step the pace is in") {
    generator_options o;
    o.rate_schedule = {{1'000'000'000, 3000}, {0, 6e8}};
    ctx.instance = 1;
    ctx.parallelism = 3;
    auto g = make_generator(o);
    g->open(ctx);
    CHECK(g->offered().rate == 1000);
    // Restored past the first step's 3000 records, it paces the second step.
    core::state_writer w;
    auto a = make_generator(generator_options{});
    a->open(ctx);
    core::outputs skip;
    a->poll(skip, 1100);  // this instance's indices 1, 4, ..., up to 3298
    a->snapshot(w);
    auto bytes = w.take();
    core::state_reader r(bytes);
    g->restore(r);
    CHECK(g->offered().rate == 2e8);
    CHECK(g->offered().backlog == 0);
    // Polled one record at a time, it falls behind at 2e8 per second: a backlog builds up.
    core::outputs out;
    REQUIRE(g->poll(out, 1) == core::poll_status::data);
    REQUIRE(pel::testing::poll_until([&] { return g->offered().backlog > 1000; }));
    // What was due is what the next poll may emit (at least that much, as more fell due).
    const double before = g->offered().backlog;
    core::outputs more;
    g->poll(more, 1'000'000);
    CHECK(static_cast<double>(more.main.size()) >= before);
  }
}

TEST_CASE("generator rate schedule is read and checked", "[generator][schedule]") {
  auto step = [](std::vector<std::pair<std::string, spec::node_ptr>> e) { return map(std::move(e)); };
  test_config t(map({{"rate", list({step({{"for", scalar("20s")}, {"per_second", scalar("200000")}}),
                                    step({{"per_second", scalar("50000")}})})}}),
                generator_params());
  auto o = read_generator_options(t.cfg);
  REQUIRE(o.rate_schedule.size() == 2);
  CHECK(o.rate_schedule[0].for_ns == 20'000'000'000);
  CHECK(o.rate_schedule[0].per_second == 200000);
  CHECK(o.rate_schedule[1].for_ns == 0);
  CHECK(o.rate_schedule[1].per_second == 50000);
  CHECK(o.rate == 0);

  test_config n(map({{"rate", scalar("300")}}), generator_params());
  CHECK(read_generator_options(n.cfg).rate == 300);
  CHECK(read_generator_options(n.cfg).rate_schedule.empty());

  test_config missing(map({{"rate", list({step({{"per_second", scalar("10")}}),
                                          step({{"per_second", scalar("20")}})})}}),
                      generator_params());
  REQUIRE_THROWS_WITH(read_generator_options(missing.cfg),
                      "missing `for`: every step but the last says how long it lasts, e.g. "
                      "`for: 20s`");
  test_config slow(map({{"rate", list({step({{"per_second", scalar("0")}})})}}),
                   generator_params());
  REQUIRE_THROWS_WITH(read_generator_options(slow.cfg), "must be between 0.001 and 1000000000000");
  test_config none(map({{"rate", list({})}}), generator_params());
  REQUIRE_THROWS_WITH(read_generator_options(none.cfg),
                      "the schedule has no steps; add `- {per_second: 1000}`");
}
