#include "pel/core/time_format.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <string>

using namespace pel::core;

namespace {

std::int64_t parse_ok(const value& v, time_format f, std::int64_t tz = 0) {
  std::int64_t ns = -1;
  INFO("value " << to_text(v) << " format " << to_string(f));
  REQUIRE(parse_event_time(v, f, tz, ns));
  return ns;
}

bool parse_fails(const value& v, time_format f, std::int64_t tz = 0) {
  std::int64_t ns = 0;
  return !parse_event_time(v, f, tz, ns);
}

constexpr std::int64_t t0 = 1'714'564'800'000'000'000;  // 2024-05-01T12:00:00Z

} // namespace

TEST_CASE("epoch formats scale ints, doubles and numeric strings", "[time_format]") {
  CHECK(parse_ok(std::int64_t{1'714'564'800}, time_format::epoch_s) == t0);
  CHECK(parse_ok(std::int64_t{1'714'564'800'123}, time_format::epoch_ms) == t0 + 123'000'000);
  CHECK(parse_ok(std::int64_t{1'714'564'800'123'456}, time_format::epoch_us) == t0 + 123'456'000);
  CHECK(parse_ok(std::int64_t{t0 + 7}, time_format::epoch_ns) == t0 + 7);
  CHECK(parse_ok(1'714'564'800.5, time_format::epoch_s) == t0 + 500'000'000);
  CHECK(parse_ok(std::string("1714564800123"), time_format::epoch_ms) == t0 + 123'000'000);
  CHECK(parse_ok(std::string("1714564800.25"), time_format::epoch_s) == t0 + 250'000'000);
  CHECK(parse_ok(std::int64_t{-1}, time_format::epoch_s) == -1'000'000'000);
}

TEST_CASE("iso8601 with Z, offsets, fractions and a space", "[time_format]") {
  CHECK(parse_ok(std::string("2024-05-01T12:00:00Z"), time_format::iso8601) == t0);
  CHECK(parse_ok(std::string("2024-05-01T12:00:00.123Z"), time_format::iso8601) == t0 + 123'000'000);
  CHECK(parse_ok(std::string("2024-05-01T12:00:00.123456789Z"), time_format::iso8601) == t0 + 123'456'789);
  CHECK(parse_ok(std::string("2024-05-01T14:00:00+02:00"), time_format::iso8601) == t0);
  CHECK(parse_ok(std::string("2024-05-01T06:30:00-0530"), time_format::iso8601) == t0);
  CHECK(parse_ok(std::string("2024-05-01 12:00:00Z"), time_format::iso8601) == t0);
  // No zone: the configured one.
  CHECK(parse_ok(std::string("2024-05-01T20:00:00"), time_format::iso8601, 8 * 3600'000'000'000LL) == t0);
  CHECK(parse_ok(std::string("1970-01-01T00:00:00Z"), time_format::iso8601) == 0);
  CHECK(parse_ok(std::string("2000-02-29T00:00:00Z"), time_format::iso8601) == 951'782'400'000'000'000);
}

TEST_CASE("datetime in a fixed time zone", "[time_format]") {
  std::int64_t tz = 0;
  REQUIRE(parse_utc_offset("+08:00", tz));
  CHECK(tz == 8 * 3600'000'000'000LL);
  CHECK(parse_ok(std::string("2024-05-01 20:00:00"), time_format::datetime, tz) == t0);
  CHECK(parse_ok(std::string("2024-05-01 20:00:00.5"), time_format::datetime, tz) == t0 + 500'000'000);
  REQUIRE(parse_utc_offset("UTC", tz));
  CHECK(tz == 0);
  REQUIRE(parse_utc_offset("UTC-05:00", tz));
  CHECK(tz == -5 * 3600'000'000'000LL);
  CHECK_FALSE(parse_utc_offset("Asia/Shanghai", tz));
  CHECK_FALSE(parse_utc_offset("+25:00", tz));
}

TEST_CASE("auto picks by type and shape", "[time_format]") {
  CHECK(parse_ok(std::int64_t{1'714'564'800}, time_format::automatic) == t0);
  CHECK(parse_ok(std::int64_t{1'714'564'800'000}, time_format::automatic) == t0);
  CHECK(parse_ok(std::int64_t{1'714'564'800'000'000}, time_format::automatic) == t0);
  CHECK(parse_ok(std::int64_t{t0}, time_format::automatic) == t0);
  CHECK(parse_ok(std::string("1714564800000"), time_format::automatic) == t0);
  CHECK(parse_ok(std::string("2024-05-01T12:00:00Z"), time_format::automatic) == t0);
  CHECK(parse_ok(std::string("2024-05-01 12:00:00"), time_format::automatic) == t0);
}

TEST_CASE("bad values are rejected", "[time_format]") {
  CHECK(parse_fails(value{}, time_format::automatic));
  CHECK(parse_fails(true, time_format::epoch_ms));
  CHECK(parse_fails(std::string("abc"), time_format::epoch_ms));
  CHECK(parse_fails(std::string("12x"), time_format::epoch_ms));
  CHECK(parse_fails(std::string(""), time_format::automatic));
  CHECK(parse_fails(std::string("nan"), time_format::epoch_s));
  CHECK(parse_fails(std::numeric_limits<double>::infinity(), time_format::epoch_s));
  CHECK(parse_fails(std::int64_t{std::numeric_limits<std::int64_t>::max()}, time_format::epoch_s));
  CHECK(parse_fails(std::int64_t{5}, time_format::iso8601));
  CHECK(parse_fails(std::string("2024-13-01T00:00:00Z"), time_format::iso8601));
  CHECK(parse_fails(std::string("2023-02-29T00:00:00Z"), time_format::iso8601));
  CHECK(parse_fails(std::string("2024-05-01T24:00:00Z"), time_format::iso8601));
  CHECK(parse_fails(std::string("2024-05-01T12:00:00+2"), time_format::iso8601));
  CHECK(parse_fails(std::string("2024-05-01T12:00:00.Z"), time_format::iso8601));
  CHECK(parse_fails(std::string("2024-05-01T12:00"), time_format::iso8601));
  CHECK(parse_fails(std::string("2024-05-01T12:00:00Z"), time_format::datetime));
  CHECK(parse_fails(std::string("2024/05/01 12:00:00"), time_format::datetime));
  time_format f;
  CHECK_FALSE(parse_time_format("epoch_minutes", f));
  REQUIRE(parse_time_format("epoch_us", f));
  CHECK(f == time_format::epoch_us);
}
