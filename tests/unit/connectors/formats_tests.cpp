#include "pel/connectors/format.hpp"

#include "connector_test_util.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace pel;
using namespace pel::connectors;
using pel::testing::list;
using pel::testing::map;
using pel::testing::scalar;
using pel::testing::test_config;

namespace {

test_config source_cfg(std::vector<std::pair<std::string, spec::node_ptr>> entries) {
  return test_config(map(std::move(entries)), format_params(true));
}

core::schema_ptr trade_schema() {
  return std::make_shared<core::schema>(
      std::vector<core::field>{{"symbol", core::value_type::string},
                               {"qty", core::value_type::integer},
                               {"price", core::value_type::number},
                               {"ok", core::value_type::boolean}});
}

std::vector<core::value> decode_ok(decoder& d, std::string_view msg) {
  std::vector<core::value> row(d.schema()->size());
  std::string err;
  INFO(msg);
  bool ok = d.decode(msg, row.data(), err);
  INFO(err);
  REQUIRE(ok);
  return row;
}

std::string decode_error(decoder& d, std::string_view msg) {
  std::vector<core::value> row(d.schema()->size());
  std::string err;
  REQUIRE_FALSE(d.decode(msg, row.data(), err));
  return err;
}

}  // namespace

TEST_CASE("format params declare format, schema and csv", "[formats]") {
  auto src = format_params(true);
  auto names = [](const std::vector<spec::param>& ps) {
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(p.key);
    return out;
  };
  CHECK(names(src) == std::vector<std::string>{"format", "schema", "csv"});
  CHECK(src[0].allowed == std::vector<std::string>{"json", "csv", "raw"});
  auto sink = format_params(false);
  CHECK(names(sink) == std::vector<std::string>{"format", "csv"});
}

TEST_CASE("declared schema keeps order and types", "[formats]") {
  auto t = source_cfg({{"schema", map({{"ts", scalar("int")},
                                       {"sym", scalar("string")},
                                       {"px", scalar("double")},
                                       {"x", scalar("any")}})}});
  auto s = declared_schema(t.cfg);
  REQUIRE(s);
  REQUIRE(s->size() == 4);
  CHECK((*s)[0].name == "ts");
  CHECK((*s)[0].type == core::value_type::integer);
  CHECK((*s)[2].type == core::value_type::number);
  CHECK_FALSE((*s)[3].type.has_value());

  auto bad = source_cfg({{"schema", map({{"ts", scalar("integr")}})}});
  REQUIRE_THROWS_WITH(declared_schema(bad.cfg),
                      "field 'ts': unknown type 'integr'; use bool, int, double, string or any");
  auto none = source_cfg({});
  CHECK(declared_schema(none.cfg) == nullptr);
}

TEST_CASE("JSON decoding follows the declared schema", "[formats][json]") {
  auto t = source_cfg({{"format", scalar("json")}});
  auto d = make_decoder(t.cfg, trade_schema());

  auto row = decode_ok(*d, R"({"symbol":"AAPL","qty":100,"price":189.5,"ok":true})");
  CHECK(std::get<std::string>(row[0]) == "AAPL");
  CHECK(std::get<std::int64_t>(row[1]) == 100);
  CHECK(std::get<double>(row[2]) == 189.5);
  CHECK(std::get<bool>(row[3]) == true);

  SECTION("fields in any order, unknown fields ignored, missing fields null") {
    auto r = decode_ok(*d, R"({"extra":[1,2],"price":3,"symbol":"X"})");
    CHECK(std::get<double>(r[2]) == 3.0);  // an int read into a double field
    CHECK(std::get<std::string>(r[0]) == "X");
    CHECK(core::is_null(r[1]));
    CHECK(core::is_null(r[3]));
  }
  SECTION("declared types coerce") {
    auto r = decode_ok(*d, R"({"symbol":12,"qty":"12","price":"1.25","ok":"false"})");
    CHECK(std::get<std::string>(r[0]) == "12");
    CHECK(std::get<std::int64_t>(r[1]) == 12);
    CHECK(std::get<double>(r[2]) == 1.25);
    CHECK(std::get<bool>(r[3]) == false);
    auto s = decode_ok(*d, R"({"symbol":"12","qty":7.0})");
    CHECK(std::get<std::string>(s[0]) == "12");
    CHECK(std::get<std::int64_t>(s[1]) == 7);
  }
  SECTION("wrong types make the record malformed with a clear reason") {
    CHECK(decode_error(*d, R"({"qty":"abc"})") ==
          "field 'qty': expected int, found string \"abc\"");
    CHECK(decode_error(*d, R"({"qty":1.5})") == "field 'qty': expected int, found double 1.5");
    CHECK(decode_error(*d, R"({"price":true})") ==
          "field 'price': expected double, found bool true");
    CHECK(decode_error(*d, R"({"ok":{"a":1}})") == "field 'ok': expected bool, found object");
  }
  SECTION("not JSON, not an object") {
    CHECK(decode_error(*d, R"({"qty":1)").rfind("invalid JSON: ", 0) == 0);
    CHECK(decode_error(*d, "[1,2]") == "expected a JSON object, found an array");
    CHECK(decode_error(*d, "").rfind("invalid JSON", 0) == 0);
  }
  SECTION("nulls and nested values") {
    auto any =
        std::make_shared<core::schema>(std::vector<core::field>{{"a", {}}, {"b", {}}, {"c", {}}});
    auto da = make_decoder(t.cfg, any);
    auto r = decode_ok(*da, R"({"a":null,"b":{"x":[1, 2]},"c":-3})");
    CHECK(core::is_null(r[0]));
    CHECK(std::get<std::string>(r[1]) == R"({"x":[1,2]})");
    CHECK(std::get<std::int64_t>(r[2]) == -3);
  }
  SECTION("the decoder is reusable and escapes are decoded") {
    for (int i = 0; i < 3; ++i) {
      auto r = decode_ok(*d, R"({"symbol":"a\"b\u00e9","qty":1})");
      CHECK(std::get<std::string>(r[0]) == "a\"b\xc3\xa9");
    }
  }
}

TEST_CASE("CSV splitting follows RFC 4180", "[formats][csv]") {
  csv_options o;
  std::vector<csv_field> f;
  std::string scratch, err;
  REQUIRE(split_csv(R"(a,"b,c","say ""hi""",,"")", o, f, scratch, err));
  REQUIRE(f.size() == 5);
  CHECK(f[0].text == "a");
  CHECK(f[1].text == "b,c");
  CHECK(f[1].quoted);
  CHECK(f[2].text == R"(say "hi")");
  CHECK(f[3].text.empty());
  CHECK_FALSE(f[3].quoted);
  CHECK(f[4].text.empty());
  CHECK(f[4].quoted);

  REQUIRE(split_csv("x,\"line1\nline2\"", o, f, scratch, err));
  CHECK(f[1].text == "line1\nline2");

  CHECK_FALSE(split_csv(R"(a,"open)", o, f, scratch, err));
  CHECK(err == "field 2: the quote is not closed");
  CHECK_FALSE(split_csv(R"("a"b,c)", o, f, scratch, err));
  CHECK(err == "field 1: unexpected text after the closing quote");

  CHECK(csv_open_quote(R"(a,"b)", '"'));
  CHECK_FALSE(csv_open_quote(R"(a,"b""c")", '"'));
}

TEST_CASE("CSV decoding converts by schema with null values", "[formats][csv]") {
  auto t = source_cfg({{"format", scalar("csv")}, {"csv", map({{"delimiter", scalar(";")}})}});
  auto d = make_decoder(t.cfg, trade_schema());
  auto r = decode_ok(*d, "AAPL;100;189.25;true");
  CHECK(std::get<std::string>(r[0]) == "AAPL");
  CHECK(std::get<std::int64_t>(r[1]) == 100);
  CHECK(std::get<double>(r[2]) == 189.25);
  CHECK(std::get<bool>(r[3]));

  auto n = decode_ok(*d, "NA;;null;");
  CHECK(core::is_null(n[0]));
  CHECK(core::is_null(n[1]));
  CHECK(core::is_null(n[2]));
  CHECK(core::is_null(n[3]));
  // A quoted empty field is not null; for a bool it does not parse.
  CHECK(decode_error(*d, "x;1;2;\"\"") == "field 'ok': expected bool, found \"\"");
  auto q = decode_ok(*d, "\"NA\";1;2;false");
  CHECK(std::get<std::string>(q[0]) == "NA");

  CHECK(decode_error(*d, "AAPL;ten;1;true") == "field 'qty': expected int, found \"ten\"");
  CHECK(decode_error(*d, "AAPL;1;1") == "expected 4 fields, found 3");

  SECTION("custom null values and tab delimiter") {
    auto t2 = source_cfg(
        {{"format", scalar("csv")},
         {"csv", map({{"delimiter", scalar("\\t")}, {"null_values", list({scalar("-")})}})}});
    auto d2 = make_decoder(t2.cfg, trade_schema());
    auto r2 = decode_ok(*d2, "NA\t-\t1.5\t-");
    CHECK(std::get<std::string>(r2[0]) == "NA");
    CHECK(core::is_null(r2[1]));
  }
  SECTION("a delimiter must be one character") {
    auto t3 = source_cfg({{"format", scalar("csv")}, {"csv", map({{"delimiter", scalar(";;")}})}});
    REQUIRE_THROWS_WITH(make_decoder(t3.cfg, trade_schema()), "expected one character, found ';;'");
  }
}

TEST_CASE("raw decoding gives one string field", "[formats][raw]") {
  auto t = source_cfg({{"format", scalar("raw")}});
  auto d = make_decoder(t.cfg, nullptr);
  REQUIRE(d->schema()->size() == 1);
  CHECK((*d->schema())[0].name == "value");
  auto r = decode_ok(*d, "not json, {at all");
  CHECK(std::get<std::string>(r[0]) == "not json, {at all");
}

TEST_CASE("JSON encoding: schema order, shortest doubles, NaN as null", "[formats][json]") {
  auto t = test_config(map({{"format", scalar("json")}}), format_params(false));
  auto s =
      std::make_shared<core::schema>(std::vector<core::field>{{"b", {}}, {"a", {}}, {"q\"", {}}});
  auto e = make_encoder(t.cfg, s);
  std::vector<core::value> row{0.1, std::numeric_limits<double>::quiet_NaN(), std::string("x\ny")};
  std::string out;
  e->encode(row.data(), out);
  CHECK(out == R"({"b":0.1,"a":null,"q\"":"x\ny"})");
  out.clear();
  std::vector<core::value> row2{std::int64_t{-7}, core::value{}, true};
  e->encode(row2.data(), out);
  CHECK(out == R"({"b":-7,"a":null,"q\"":true})");
  CHECK(e->header().empty());
}

TEST_CASE("CSV encoding quotes where needed and round-trips", "[formats][csv]") {
  auto sink = test_config(map({{"format", scalar("csv")}}), format_params(false));
  auto e = make_encoder(sink.cfg, trade_schema());
  CHECK(e->header() == "symbol,qty,price,ok");
  std::vector<core::value> row{std::string("a,\"b\""), std::int64_t{3}, 2.5, false};
  std::string out;
  e->encode(row.data(), out);
  CHECK(out == R"("a,""b""",3,2.5,false)");
  std::vector<core::value> row2{std::string(""), core::value{}, 1e300, true};
  std::string out2;
  e->encode(row2.data(), out2);
  CHECK(out2 == R"("",,1e+300,true)");

  auto src = source_cfg({{"format", scalar("csv")}});
  auto d = make_decoder(src.cfg, trade_schema());
  auto back = decode_ok(*d, out);
  CHECK(back == row);
  auto back2 = decode_ok(*d, out2);
  CHECK(back2 == row2);

  auto noheader =
      test_config(map({{"format", scalar("csv")}, {"csv", map({{"header", scalar("false")}})}}),
                  format_params(false));
  CHECK(make_encoder(noheader.cfg, trade_schema())->header().empty());
}

TEST_CASE("schema inference from CSV samples", "[formats][csv][infer]") {
  auto t = source_cfg({{"format", scalar("csv")}});
  auto s = infer_schema(
      t.cfg, {"id,price,name,flag,empty", "1,2,x,true,", "2,2.5,\"3\",false,NA", "3,NA,y,TRUE,"});
  REQUIRE(s);
  REQUIRE(s->size() == 5);
  CHECK((*s)[0].name == "id");
  CHECK((*s)[0].type == core::value_type::integer);
  CHECK((*s)[1].type == core::value_type::number);
  CHECK((*s)[2].type == core::value_type::string);
  CHECK((*s)[3].type == core::value_type::boolean);
  CHECK((*s)[4].type == core::value_type::string);

  auto nh = source_cfg({{"format", scalar("csv")}, {"csv", map({{"header", scalar("false")}})}});
  auto s2 = infer_schema(nh.cfg, {"1,a", "2,b"});
  REQUIRE(s2);
  CHECK(s2->names() == "c1, c2");
  CHECK((*s2)[0].type == core::value_type::integer);
  CHECK(infer_schema(t.cfg, {}) == nullptr);
}

TEST_CASE("schema inference from JSON samples", "[formats][json][infer]") {
  auto t = source_cfg({});
  auto s = infer_schema(t.cfg, {R"({"b":1,"a":"x"})", "garbage", R"({"c":null,"b":2.5,"d":true})",
                                R"({"a":3,"c":null})"});
  REQUIRE(s);
  CHECK(s->names() == "b, a, c, d");
  CHECK((*s)[0].type == core::value_type::number);  // int widened to double
  CHECK_FALSE((*s)[1].type.has_value());            // string and int: no declared type
  CHECK_FALSE((*s)[2].type.has_value());            // always null
  CHECK((*s)[3].type == core::value_type::boolean);
  CHECK(infer_schema(t.cfg, {"nope"}) == nullptr);

  auto raw = source_cfg({{"format", scalar("raw")}});
  CHECK(infer_schema(raw.cfg, {}) == raw_schema());
}

TEST_CASE("dead letters from a message keep the text and the position", "[formats]") {
  core::outputs out;
  dead_letter_message(out, "src", "bad", "{oops", 42, "f.json:3");
  REQUIRE(out.dead_letter.size() == 1);
  CHECK(out.dead_letter.width == core::dead_letter_schema()->size());
  auto r = out.dead_letter.row(0);
  CHECK(std::get<std::string>(r[0]) == "bad");
  CHECK(std::get<std::string>(r[3]) == "f.json:3");
  CHECK(std::get<std::string>(r[4]) == "{oops");
  CHECK(std::get<std::int64_t>(r[5]) == 42);
}
