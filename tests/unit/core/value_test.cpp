#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/value.hpp"
#include "pel/core/operator.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <set>

using namespace pel::core;

TEST_CASE("values print as text and JSON", "[core][value]") {
  CHECK(to_text(value{}) == "");
  CHECK(to_text(value{true}) == "true");
  CHECK(to_text(value{std::int64_t{-42}}) == "-42");
  CHECK(to_text(value{0.1}) == "0.1");
  CHECK(to_text(value{std::string("abc")}) == "abc");

  std::string j;
  append_json(j, value{std::string("a\"b\\c\n\x01")});
  CHECK(j == "\"a\\\"b\\\\c\\n\\u0001\"");
  j.clear();
  append_json(j, value{std::numeric_limits<double>::quiet_NaN()});
  CHECK(j == "null");
}

TEST_CASE("value types parse from their YAML names", "[core][value]") {
  value_type t;
  REQUIRE(parse_value_type("int", t));
  CHECK(t == value_type::integer);
  REQUIRE(parse_value_type("double", t));
  CHECK(t == value_type::number);
  CHECK_FALSE(parse_value_type("decimal", t));
}

TEST_CASE("stable hashes agree for equal numbers and differ for different keys", "[core][value]") {
  CHECK(stable_hash(value{std::int64_t{3}}) == stable_hash(value{3.0}));
  CHECK(stable_hash(value{std::string("AAPL")}) == stable_hash(value{std::string("AAPL")}));
  CHECK(stable_hash(value{std::string("AAPL")}) != stable_hash(value{std::string("MSFT")}));
  // Fixed value: key groups must not move between builds or runs.
  CHECK(stable_hash(value{std::int64_t{0}}) == 0);
  CHECK(stable_hash(value{std::int64_t{1}}) == 0xb456bcfc34c2cb2cULL);
}

TEST_CASE("string hashes are pinned and depend on every byte and the length", "[core][value]") {
  // Fixed values: strings decide key groups, which must not move between builds or runs.
  CHECK(stable_hash(value{std::string("")}) == 0x7acdbb98b1344213ULL);
  CHECK(stable_hash(value{std::string("AAPL")}) == 0x2edb9b0dd9b8a275ULL);
  CHECK(stable_hash(value{std::string("SYM01234")}) == 0x7b229edc12c5da97ULL);
  CHECK(stable_hash(value{std::string("SYM012345")}) == 0xef9e1694c4ace4b0ULL);
  CHECK(stable_hash(value{std::string("a string longer than sixteen")}) == 0x42be43f458221b82ULL);

  // Every length takes its own path through words and tails: each prefix hashes apart, the
  // bytes form gives the same hash as the value, and flipping any one byte changes it.
  const std::string text = "The quick brown fox jumps over the lazy dog 0123456789";
  std::set<std::uint64_t> seen;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string s = text.substr(0, n);
    const std::uint64_t h = stable_hash(value{s});
    CHECK(stable_hash_bytes(s.data(), s.size()) == h);
    CHECK(seen.insert(h).second);
    for (std::size_t i = 0; i < n; ++i) {
      std::string t = s;
      t[i] = static_cast<char>(t[i] ^ 0x20);
      CHECK(stable_hash(value{t}) != h);
    }
  }
  // A zero byte is a byte like any other: "a" and "a\0" differ.
  CHECK(stable_hash(value{std::string("a")}) != stable_hash(value{std::string("a\0", 2)}));
}

TEST_CASE("compare orders numbers across int and double, then strings", "[core][value]") {
  CHECK(compare(value{std::int64_t{2}}, value{2.5}) < 0);
  CHECK(compare(value{3.0}, value{std::int64_t{3}}) == 0);
  CHECK(compare(value{}, value{false}) < 0);
  CHECK(compare(value{std::string("b")}, value{std::string("a")}) > 0);
  CHECK(compare(value{std::int64_t{9}}, value{std::string("1")}) < 0);
}

TEST_CASE("state writer and reader round-trip values", "[core][state]") {
  state_writer w;
  w.put<std::uint32_t>(7);
  w.put_value(value{});
  w.put_value(value{true});
  w.put_value(value{std::int64_t{-5}});
  w.put_value(value{1.5});
  w.put_value(value{std::string("xyz")});
  auto bytes = w.take();
  state_reader r(bytes);
  CHECK(r.get<std::uint32_t>() == 7);
  CHECK(is_null(r.get_value()));
  CHECK(std::get<bool>(r.get_value()));
  CHECK(std::get<std::int64_t>(r.get_value()) == -5);
  CHECK(std::get<double>(r.get_value()) == 1.5);
  CHECK(std::get<std::string>(r.get_value()) == "xyz");
  CHECK(r.at_end());
  state_reader truncated(std::string_view(bytes).substr(0, bytes.size() - 1));
  truncated.get<std::uint32_t>();
  for (int i = 0; i < 4; ++i) truncated.get_value();
  CHECK_THROWS_WITH(truncated.get_value(), "state snapshot is truncated");
}

TEST_CASE("dead letters carry the reason and the record as JSON", "[core][dead_letter]") {
  schema in({{"symbol", value_type::string}, {"qty", value_type::integer}});
  value row[2] = {std::string("AAPL"), std::int64_t{5}};
  outputs out;
  out.dead("parse", "qty is negative", row, in, 1000, "ticks", "ticks/0@12");
  REQUIRE(out.dead_letter.size() == 1);
  const value* r = out.dead_letter.row(0);
  CHECK(std::get<std::string>(r[0]) == "qty is negative");
  CHECK(std::get<std::string>(r[1]) == "parse");
  CHECK(std::get<std::string>(r[2]) == "ticks");
  CHECK(std::get<std::string>(r[3]) == "ticks/0@12");
  CHECK(std::get<std::string>(r[4]) == R"({"symbol":"AAPL","qty":5})");
  CHECK(std::get<std::int64_t>(r[5]) == 1000);
  CHECK(dead_letter_schema()->size() == 6);
}
