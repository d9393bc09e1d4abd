#include "pel/core/time_format.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

using pel::core::format_iso8601;
using pel::core::parse_iso8601;

TEST_CASE("format_iso8601 writes UTC with milliseconds", "[core][time]") {
  CHECK(format_iso8601(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_iso8601(1704205800000LL * 1'000'000) == "2024-01-02T14:30:00.000Z");
  CHECK(format_iso8601(1709164799999LL * 1'000'000) == "2024-02-28T23:59:59.999Z");
  CHECK(format_iso8601(1709164800000LL * 1'000'000) == "2024-02-29T00:00:00.000Z");  // leap day
  CHECK(format_iso8601(951782400000LL * 1'000'000) == "2000-02-29T00:00:00.000Z");
  // Before the epoch: floors to the millisecond below.
  CHECK(format_iso8601(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_iso8601(-86'400'000'000'000LL) == "1969-12-31T00:00:00.000Z");
  CHECK(format_iso8601(INT64_MAX) == "2262-04-11T23:47:16.854Z");
  CHECK(format_iso8601(INT64_MIN) == "1677-09-21T00:12:43.145Z");
}

TEST_CASE("format_iso8601 and parse_iso8601 agree on random times", "[core][time]") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> ms(-5'000'000'000'000LL, 7'000'000'000'000LL);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t ns = ms(rng) * 1'000'000;
    std::int64_t back = 0;
    REQUIRE(parse_iso8601(format_iso8601(ns), 0, back));
    REQUIRE(back == ns);
  }
}
