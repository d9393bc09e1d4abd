// Expected records against captured ones, and the diff that names the record and the field.
#include "pel/testing/compare.hpp"
#include "pel/spec/yaml.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using namespace pel;
using namespace pel::testing;

namespace {

core::schema_ptr bars_schema() {
  auto s = std::make_shared<core::schema>();
  s->add("symbol", core::value_type::string);
  int ws = s->add("window_start", core::value_type::integer);
  s->set_time_unit(static_cast<std::size_t>(ws), 1'000'000);
  s->add("vwap", core::value_type::number);
  s->add("n", core::value_type::integer);
  s->add("up", core::value_type::boolean);
  return s;
}

/// An expectation of `target` from the YAML list `records`.
expectation expect(const std::string& records, compare_options o = {}) {
  expectation ex;
  ex.target = "bars_out";
  auto root = spec::parse_yaml("records: " + records + "\n", "t.test.yaml");
  for (const auto& r : root->find("records")->value->items) ex.records.push_back(r);
  ex.options = o;
  return ex;
}

captured rows(std::vector<std::vector<core::value>> r) {
  captured c;
  c.schema = bars_schema();
  c.rows = std::move(r);
  return c;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

const std::vector<std::string> keys{"symbol", "window_start"};

}  // namespace

TEST_CASE("values match by type, numbers within the tolerance, times also as ISO 8601",
          "[testing]") {
  auto n = [](const std::string& yaml) {
    return spec::parse_yaml("v: " + yaml + "\n", "t")->find("v")->value;
  };
  CHECK(value_matches(*n("185.0975"), core::value{185.0975 + 1e-12}, 0, 1e-9));
  CHECK_FALSE(value_matches(*n("185.0975"), core::value{185.0976}, 0, 1e-9));
  CHECK(value_matches(*n("185.0975"), core::value{185.0976}, 0, 1e-6));
  CHECK(value_matches(*n("3"), core::value{std::int64_t{3}}, 0, 1e-9));
  CHECK(value_matches(*n("3"), core::value{3.0}, 0, 1e-9));
  CHECK(value_matches(*n("1704205800000"), core::value{std::int64_t{1704205800000}}, 0, 0));
  CHECK_FALSE(value_matches(*n("1704205800001"), core::value{std::int64_t{1704205800000}}, 0, 0));
  CHECK(value_matches(*n("AAPL"), core::value{std::string("AAPL")}, 0, 1e-9));
  CHECK(value_matches(*n("'007'"), core::value{std::string("007")}, 0, 1e-9));
  CHECK_FALSE(value_matches(*n("'3'"), core::value{std::int64_t{3}}, 0, 1e-9));
  CHECK(value_matches(*n("true"), core::value{true}, 0, 1e-9));
  CHECK_FALSE(value_matches(*n("true"), core::value{false}, 0, 1e-9));
  CHECK(value_matches(*n("null"), core::value{}, 0, 1e-9));
  CHECK_FALSE(value_matches(*n("null"), core::value{0.0}, 0, 1e-9));
  CHECK_FALSE(value_matches(*n("0"), core::value{}, 0, 1e-9));
  // On a time field (epoch milliseconds) an ISO 8601 text stands for its number.
  CHECK(value_matches(*n("\"2024-01-02T14:30:00Z\""), core::value{std::int64_t{1704205800000}},
                      1'000'000, 1e-9));
  CHECK_FALSE(value_matches(*n("\"2024-01-02T14:30:01Z\""),
                            core::value{std::int64_t{1704205800000}}, 1'000'000, 1e-9));
}

TEST_CASE("records match in any order, each on the fields it names", "[testing]") {
  auto ex = expect("[{symbol: MSFT, n: 2}, {symbol: AAPL, vwap: 185.1, n: 3}]");
  auto actual = rows({{std::string("AAPL"), std::int64_t{0}, 185.1, std::int64_t{3}, true},
                      {std::string("MSFT"), std::int64_t{0}, 370.0, std::int64_t{2}, false}});
  CHECK(compare(ex, actual, keys, "t.test.yaml").empty());
  ex.options.ordered = true;
  CHECK_FALSE(compare(ex, actual, keys, "t.test.yaml").empty());
}

TEST_CASE("an unordered match finds the pairing that fits all records", "[testing]") {
  // The first expected record fits both rows; a greedy match would take the one the second needs.
  auto ex = expect("[{symbol: A}, {symbol: A, n: 1}]");
  auto actual = rows({{std::string("A"), std::int64_t{0}, 1.0, std::int64_t{1}, true},
                      {std::string("A"), std::int64_t{0}, 1.0, std::int64_t{2}, true}});
  CHECK(compare(ex, actual, keys, "t.test.yaml").empty());
}

TEST_CASE("the diff names the target, the record with its key fields and place, and the field",
          "[testing]") {
  auto ex =
      expect("\n  - {symbol: AAPL, window_start: 0, vwap: 185.1, n: 3}\n  - {symbol: NVDA, n: 1}");
  auto actual = rows({{std::string("AAPL"), std::int64_t{0}, 185.12, std::int64_t{3}, true},
                      {std::string("MSFT"), std::int64_t{0}, 370.0, std::int64_t{2}, false}});
  const std::string d = joined(compare(ex, actual, keys, "t.test.yaml"));
  INFO(d);
  CHECK(d.find("bars_out: record 0 (symbol=AAPL, window_start=0) at t.test.yaml:2:5: field vwap: "
               "expected 185.1, "
               "actual 185.12\n") != std::string::npos);
  CHECK(
      d.find(
          "bars_out: missing record 1 (symbol=NVDA) at t.test.yaml:3:5: {symbol: NVDA, n: 1}\n") !=
      std::string::npos);
  CHECK(d.find("bars_out: unexpected record 1 (symbol=MSFT, window_start=0): "
               "{\"symbol\":\"MSFT\",\"window_start\":0,\"vwap\":370,\"n\":2,\"up\":false}\n") !=
        std::string::npos);
  // The field that matched is not listed.
  CHECK(d.find("field n") == std::string::npos);
}

TEST_CASE("contains allows other records, exact does not", "[testing]") {
  auto actual = rows({{std::string("AAPL"), std::int64_t{0}, 1.0, std::int64_t{3}, true},
                      {std::string("MSFT"), std::int64_t{0}, 2.0, std::int64_t{2}, false}});
  compare_options o;
  o.contains = true;
  CHECK(compare(expect("[{symbol: MSFT}]", o), actual, keys, "t").empty());
  CHECK(joined(compare(expect("[{symbol: MSFT}]"), actual, keys, "t"))
            .find("unexpected record 0 (symbol=AAPL") != std::string::npos);
  o.ordered = true;
  CHECK(compare(expect("[{symbol: AAPL}, {symbol: MSFT}]", o), actual, keys, "t").empty());
  CHECK(joined(compare(expect("[{symbol: MSFT}, {symbol: AAPL}]", o), actual, keys, "t"))
            .find("bars_out: missing record 1 (symbol=AAPL)") != std::string::npos);
}

TEST_CASE("ordered records are compared position by position", "[testing]") {
  compare_options o;
  o.ordered = true;
  auto actual = rows({{std::string("AAPL"), std::int64_t{0}, 1.0, std::int64_t{3}, true},
                      {std::string("AAPL"), std::int64_t{1000}, 2.0, std::int64_t{2}, false}});
  const std::string d = joined(
      compare(expect("[{window_start: 1000}, {window_start: 0}, {n: 9}]", o), actual, keys, "t"));
  INFO(d);
  CHECK(
      d.find(
          "record 0 (window_start=1000) at t:1:11: field window_start: expected 1000, actual 0") !=
      std::string::npos);
  CHECK(
      d.find("record 1 (window_start=0) at t:1:33: field window_start: expected 0, actual 1000") !=
      std::string::npos);
  CHECK(d.find("missing record 2") != std::string::npos);
}
