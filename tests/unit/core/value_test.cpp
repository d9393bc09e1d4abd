#include "pel/core/value.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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
  out.dead("parse", "qty is negative", row, in, 1'700'000'000'123'456'789, "ticks", "ticks/0@12");
  REQUIRE(out.dead_letter.size() == 1);
  const value* r = out.dead_letter.row(0);
  CHECK(std::get<std::string>(r[0]) == "qty is negative");
  CHECK(std::get<std::string>(r[1]) == "parse");
  CHECK(std::get<std::string>(r[2]) == "ticks");
  CHECK(std::get<std::string>(r[3]) == "ticks/0@12");
  CHECK(std::get<std::string>(r[4]) == R"({"symbol":"AAPL","qty":5})");
  CHECK(std::get<std::int64_t>(r[5]) == 1'700'000'000'123);  // epoch ms, like window_start
  CHECK(out.dead_letter.times[0] == 1'700'000'000'123'456'789);
  CHECK(dead_letter_schema()->size() == 6);
}

// ---------------------------------------------------------------------------------------------
// JSON output is valid JSON whatever the bytes

namespace {

/// A strict RFC 8259 checker, written independently of `append_json`: strings must be
/// well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) without raw
/// control characters. True when `text` is exactly one JSON value.
class json_checker {
public:
  explicit json_checker(std::string_view text) : t_(text) {}

  bool valid() {
    skip_ws();
    if (!value()) return false;
    skip_ws();
    return i_ == t_.size();
  }

private:
  bool value() {
    if (i_ >= t_.size()) return false;
    char c = t_[i_];
    if (c == '"') return string();
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    return literal("true") || literal("false") || literal("null");
  }
  bool literal(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool object() {
    ++i_;
    skip_ws();
    if (peek('}')) return ++i_, true;
    for (;;) {
      skip_ws();
      if (!peek('"') || !string()) return false;
      skip_ws();
      if (!peek(':')) return false;
      ++i_;
      skip_ws();
      if (!value()) return false;
      skip_ws();
      if (peek('}')) return ++i_, true;
      if (!peek(',')) return false;
      ++i_;
    }
  }
  bool array() {
    ++i_;
    skip_ws();
    if (peek(']')) return ++i_, true;
    for (;;) {
      skip_ws();
      if (!value()) return false;
      skip_ws();
      if (peek(']')) return ++i_, true;
      if (!peek(',')) return false;
      ++i_;
    }
  }
  bool number() {
    std::size_t s = i_;
    if (peek('-')) ++i_;
    if (peek('0')) {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (peek('.')) {
      ++i_;
      if (!digits()) return false;
    }
    if (peek('e') || peek('E')) {
      ++i_;
      if (peek('+') || peek('-')) ++i_;
      if (!digits()) return false;
    }
    return i_ > s;
  }
  bool digits() {
    std::size_t s = i_;
    while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    return i_ > s;
  }
  bool string() {
    ++i_;
    while (i_ < t_.size()) {
      auto c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') return ++i_, true;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= t_.size()) return false;
        char e = t_[i_++];
        if (e == 'u') {
          for (int k = 0; k < 4; ++k, ++i_)
            if (i_ >= t_.size() || !std::isxdigit(static_cast<unsigned char>(t_[i_]))) return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      // Decode one code point and check that its encoding is the shortest one.
      int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      if (len == 0 || c >= 0xF8 || i_ + len > t_.size()) return false;
      std::uint32_t cp = c & (0xFF >> (len + 1));
      for (int k = 1; k < len; ++k) {
        auto d = static_cast<unsigned char>(t_[i_ + k]);
        if ((d & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (d & 0x3F);
      }
      static const std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i_ += len;
    }
    return false;
  }
  bool peek(char c) const { return i_ < t_.size() && t_[i_] == c; }
  void skip_ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }

  std::string_view t_;
  std::size_t i_ = 0;
};

bool valid_json(std::string_view text) {
  return json_checker(text).valid();
}

std::string json_of(const std::string& s) {
  std::string out;
  append_json(out, value{s});
  return out;
}

const std::string fffd = "\xEF\xBF\xBD";

}  // namespace

TEST_CASE("the JSON checker used below rejects what it must", "[core][value][json]") {
  CHECK(valid_json(R"({"a":[1,-2.5e3,true,null,"x\u00e9"]})"));
  CHECK_FALSE(valid_json("\"\x80\""));
  CHECK_FALSE(valid_json("\"\xC0\x80\""));          // overlong
  CHECK_FALSE(valid_json("\"\xED\xA0\x80\""));      // surrogate
  CHECK_FALSE(valid_json("\"\xF4\x90\x80\x80\""));  // above U+10FFFF
  CHECK_FALSE(valid_json("\"a\nb\""));
  CHECK_FALSE(valid_json("nan"));
  CHECK_FALSE(valid_json("[1,]"));
}

TEST_CASE("invalid UTF-8 becomes U+FFFD in JSON, one per maximal subpart", "[core][value][json]") {
  CHECK(json_of("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");  // valid text is kept as it is
  CHECK(json_of("a\x80z") == "\"a" + fffd + "z\"");
  CHECK(json_of("\xFF\xFE") == "\"" + fffd + fffd + "\"");
  CHECK(json_of("\xC0\x80") == "\"" + fffd + fffd + "\"");             // overlong NUL
  CHECK(json_of("\xE0\x80\x80") == "\"" + fffd + fffd + fffd + "\"");  // overlong
  CHECK(json_of("\xED\xA0\x80") == "\"" + fffd + fffd + fffd + "\"");  // surrogate half
  CHECK(json_of("\xF4\x90\x80\x80") == "\"" + fffd + fffd + fffd + fffd + "\"");
  CHECK(json_of("\xE2\x82z") == "\"" + fffd + "z\"");      // a truncated sequence is one U+FFFD
  CHECK(json_of("x\xF0\x9F\x98") == "\"x" + fffd + "\"");  // cut off at the end
}

TEST_CASE("JSON output is valid for any bytes, control characters and non-finite numbers",
          "[core][value][json]") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  auto j = json_of(all);
  CHECK(valid_json(j));
  CHECK(j.find("\\u0000") != std::string::npos);
  CHECK(j.find("\\u001f") != std::string::npos);
  CHECK(j.find("\\b\\t\\n\\u000b\\f\\r") != std::string::npos);

  std::mt19937 rng(42);
  for (int round = 0; round < 5000; ++round) {
    std::string s(rng() % 24, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    auto out = json_of(s);
    INFO(round);
    REQUIRE(valid_json(out));
  }

  for (double d :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    std::string n;
    append_json(n, value{d});
    CHECK(n == "null");
  }
}

TEST_CASE("dead-letter records are valid JSON whatever the row holds",
          "[core][dead_letter][json]") {
  schema in({{"bytes", value_type::string}, {"x", value_type::number}});
  value row[2] = {std::string("\xFF\x01\"\\"), std::numeric_limits<double>::infinity()};
  outputs out;
  out.dead("parse", "bad", row, in, 1, "src", "p");
  const auto& rec = std::get<std::string>(out.dead_letter.row(0)[4]);
  CHECK(valid_json(rec));
  CHECK(rec == "{\"bytes\":\"" + fffd + "\\u0001\\\"\\\\\",\"x\":null}");
}
