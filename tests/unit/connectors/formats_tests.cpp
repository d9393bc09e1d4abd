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
  SECTION("a declared type is exact: no conversion between JSON types") {
    CHECK(decode_error(*d, R"({"symbol":5})") == "field 'symbol': expected string, found int 5");
    CHECK(decode_error(*d, R"({"qty":"29"})") == "field 'qty': expected int, found string \"29\"");
    CHECK(decode_error(*d, R"({"qty":7.0})") == "field 'qty': expected int, found double 7");
    CHECK(decode_error(*d, R"({"price":"1.25"})") ==
          "field 'price': expected double, found string \"1.25\"");
    CHECK(decode_error(*d, R"({"ok":"false"})") ==
          "field 'ok': expected bool, found string \"false\"");
    CHECK(decode_error(*d, R"({"ok":1})") == "field 'ok': expected bool, found int 1");
    CHECK(decode_error(*d, R"({"symbol":true})") ==
          "field 'symbol': expected string, found bool true");
    CHECK(decode_error(*d, R"({"symbol":{"a":1}})") ==
          "field 'symbol': expected string, found object");
    CHECK(decode_error(*d, R"({"symbol":["a"]})") ==
          "field 'symbol': expected string, found array");
    CHECK(decode_error(*d, R"({"qty":[1]})") == "field 'qty': expected int, found array");
    CHECK(decode_error(*d, R"({"price":{}})") == "field 'price': expected double, found object");
  }
  SECTION("an integer widens to a double; out of the int64 range it is no int") {
    auto r = decode_ok(*d, R"({"price":-12,"qty":-9223372036854775808})");
    CHECK(std::get<double>(r[2]) == -12.0);
    CHECK(std::get<std::int64_t>(r[1]) == std::numeric_limits<std::int64_t>::min());
    auto big = decode_ok(*d, R"({"price":18446744073709551615})");
    CHECK(std::get<double>(big[2]) == 18446744073709551615.0);
    CHECK(decode_error(*d, R"({"qty":9223372036854775808})") ==
          "field 'qty': expected int, found int 9223372036854775808 (above the int64 range)");
    // Beyond what a JSON number can hold here: the record is malformed, not clipped.
    CHECK(decode_error(*d, R"({"price":1e400})").rfind("invalid JSON: ", 0) == 0);
    CHECK(decode_error(*d, R"({"qty":123456789012345678901234567890})") ==
          "invalid JSON: Problem while parsing a number");
  }
  SECTION("null fits every declared type") {
    auto r = decode_ok(*d, R"({"symbol":null,"qty":null,"price":null,"ok":null})");
    for (const auto& v : r) CHECK(core::is_null(v));
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

  CHECK(csv_open_quote(R"(a,"b)", o));
  CHECK_FALSE(csv_open_quote(R"(a,"b""c")", o));
  // A quote inside an unquoted field is text: the record does not go on.
  CHECK_FALSE(csv_open_quote(R"(1,6" screen,x)", o));
  CHECK_FALSE(csv_open_quote(R"(a"b"c,d")", o));
  CHECK(csv_open_quote(R"(1,"x""y)", o));
  // From inside a quoted field: a lone quote closes it, a doubled one does not.
  CHECK_FALSE(csv_open_quote(R"(end",2)", o, true));
  CHECK(csv_open_quote(R"(still "" open)", o, true));
  CHECK(csv_open_quote(R"(closed",x,"again)", o, true));
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
  CHECK(decode_error(*d, "x;1;2;\"\"") == "field 'ok': expected bool, found string \"\"");
  auto q = decode_ok(*d, "\"NA\";1;2;false");
  CHECK(std::get<std::string>(q[0]) == "NA");

  CHECK(decode_error(*d, "AAPL;ten;1;true") == "field 'qty': expected int, found string \"ten\"");
  CHECK(decode_error(*d, "AAPL;1.5;1;true") == "field 'qty': expected int, found double \"1.5\"");
  CHECK(decode_error(*d, "AAPL;99999999999999999999;1;true") ==
        "field 'qty': expected int, found int (outside the int64 range) "
        "\"99999999999999999999\"");
  CHECK(decode_error(*d, "AAPL;1;x;true") == "field 'price': expected double, found string \"x\"");
  CHECK(decode_error(*d, "AAPL;1;1e999;true") ==
        "field 'price': expected double, found double (outside the double range) \"1e999\"");
  CHECK(decode_error(*d, "AAPL;1;2;yes") == "field 'ok': expected bool, found string \"yes\"");
  CHECK(decode_error(*d, "AAPL;1;2;1") == "field 'ok': expected bool, found int \"1\"");
  // An int where a double is declared widens, as in JSON; quotes do not change a CSV type.
  auto w = decode_ok(*d, "\"AAPL\";\"7\";3;TRUE");
  CHECK(std::get<double>(w[2]) == 3.0);
  CHECK(std::get<std::int64_t>(w[1]) == 7);
  CHECK(decode_error(*d, "AAPL;1;1;true;extra") == "expected 4 fields, found 5");
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
  dead_letter_message(out, "src", "bad", "{oops", 1'700'000'000'042'999'999, "f.json:3");
  REQUIRE(out.dead_letter.size() == 1);
  CHECK(out.dead_letter.width == core::dead_letter_schema()->size());
  auto r = out.dead_letter.row(0);
  CHECK(std::get<std::string>(r[0]) == "bad");
  CHECK(std::get<std::string>(r[3]) == "f.json:3");
  CHECK(std::get<std::string>(r[4]) == "{oops");
  CHECK(std::get<std::int64_t>(r[5]) == 1'700'000'000'042);  // epoch ms, as every dead letter
}

TEST_CASE("JSON encoding gives valid JSON for any string bytes and any double",
          "[formats][json][hostile]") {
  auto schema = std::make_shared<core::schema>(
      std::vector<core::field>{{"s", core::value_type::string}, {"x", core::value_type::number}});
  auto sink = test_config(map({{"format", scalar("json")}}), format_params(false));
  auto enc = make_encoder(sink.cfg, schema);
  // The JSON decoder (simdjson) checks UTF-8 and rejects NaN, so it serves as the validator.
  auto any = std::make_shared<core::schema>(std::vector<core::field>{{"s", {}}, {"x", {}}});
  auto src = source_cfg({{"format", scalar("json")}});
  auto dec = make_decoder(src.cfg, any);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<std::string, double>> rows{
      {"\xFF\xFE binary \x01\x7F \x80", std::nan("")},
      {std::string("nul \0 inside", 12), inf},
      {"\xC3 truncated", -inf},
      {"\xED\xA0\x80 surrogate \xF4\x90\x80\x80", 1.5},
      {"valid \xC3\xA9\xE2\x82\xAC", -0.0}};  // -0 reads back as the int 0
  for (const auto& [s, x] : rows) {
    core::value row[2] = {s, x};
    std::string line;
    enc->encode(row, line);
    INFO(line);
    auto back = decode_ok(*dec, line);
    double y = 0;
    if (std::isfinite(x))
      CHECK((core::as_number(back[1], y) && y == x));
    else
      CHECK(core::is_null(back[1]));
  }
  core::value valid[2] = {std::string("valid \xC3\xA9\xE2\x82\xAC"), 1.0};
  std::string line;
  enc->encode(valid, line);
  CHECK(line == "{\"s\":\"valid \xC3\xA9\xE2\x82\xAC\",\"x\":1}");
  core::value bad[2] = {std::string("a\xFFz"), core::value{}};
  line.clear();
  enc->encode(bad, line);
  CHECK(line == "{\"s\":\"a\xEF\xBF\xBDz\",\"x\":null}");
}

TEST_CASE("JSON decoding of hostile lines gives reasons, not crashes", "[formats][json][hostile]") {
  auto t = source_cfg({{"format", scalar("json")}});
  auto d = make_decoder(t.cfg, trade_schema());
  CHECK(decode_error(*d, "{\"symbol\":\"\xFF\"}") == "invalid JSON: The input is not valid UTF-8");
  CHECK(decode_error(*d, std::string("{\"symbol\":\"a\0b\"}", 16)).rfind("invalid JSON: ", 0) == 0);
  CHECK(decode_error(*d, "   ").rfind("invalid JSON: ", 0) == 0);
  CHECK(decode_error(*d, "42") == "expected a JSON object, found a number");
  CHECK(decode_error(*d, "\"text\"") == "expected a JSON object, found a string");
  CHECK(decode_error(*d, "null") == "expected a JSON object, found null");
  std::string deep(100000, '[');
  CHECK(decode_error(*d, "{\"symbol\":" + deep).rfind("invalid JSON: ", 0) == 0);
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary += static_cast<char>((i * 7919) & 0xFF);
  CHECK(decode_error(*d, binary).rfind("invalid JSON: ", 0) == 0);
}

TEST_CASE("schema inference refuses more fields than it can sensibly infer",
          "[formats][infer][hostile]") {
  std::string wide_csv;
  for (std::size_t i = 0; i <= max_inferred_fields; ++i) wide_csv += "c" + std::to_string(i) + ",";
  wide_csv.pop_back();  // max_inferred_fields + 1 columns
  const std::string msg = "cannot infer a schema: the first records have more than " +
                          std::to_string(max_inferred_fields) +
                          " fields; declare `schema:` with the fields you need";
  auto csv = source_cfg({{"format", scalar("csv")}});
  REQUIRE_THROWS_WITH(infer_schema(csv.cfg, {wide_csv, "1"}), msg);
  auto nh = source_cfg({{"format", scalar("csv")}, {"csv", map({{"header", scalar("false")}})}});
  REQUIRE_THROWS_WITH(infer_schema(nh.cfg, {wide_csv}), msg);
  // JSON: every sample brings new keys.
  std::vector<std::string> samples;
  for (int s = 0; s < 5; ++s) {
    std::string obj = "{";
    for (int k = 0; k < 1000; ++k)
      obj += "\"k" + std::to_string(s) + "_" + std::to_string(k) + "\":1,";
    obj.back() = '}';
    samples.push_back(obj);
  }
  auto json = source_cfg({});
  REQUIRE_THROWS_WITH(infer_schema(json.cfg, samples), msg);
  samples.resize(4);  // 4000 fields: fine
  auto s = infer_schema(json.cfg, samples);
  REQUIRE(s);
  CHECK(s->size() == 4000);
}

TEST_CASE("CSV words like NaN and inf are numbers only in a declared double field",
          "[formats][csv][hostile]") {
  auto t = source_cfg({{"format", scalar("csv")}, {"csv", map({{"header", scalar("false")}})}});
  auto any = std::make_shared<core::schema>(std::vector<core::field>{{"a", {}}, {"b", {}}});
  auto d = make_decoder(t.cfg, any);
  auto r = decode_ok(*d, "Nan,inf");
  CHECK(std::get<std::string>(r[0]) == "Nan");
  CHECK(std::get<std::string>(r[1]) == "inf");
  auto n = decode_ok(*d, "1e3,-2.5");
  CHECK(std::get<double>(n[0]) == 1000.0);
  auto s = infer_schema(t.cfg, {"Nan,1.5", "Inf,2"});
  REQUIRE(s);
  CHECK((*s)[0].type == core::value_type::string);
  CHECK((*s)[1].type == core::value_type::number);
  auto dbl = std::make_shared<core::schema>(
      std::vector<core::field>{{"a", core::value_type::number}, {"b", core::value_type::number}});
  auto dd = make_decoder(t.cfg, dbl);
  auto x = decode_ok(*dd, "NaN,-inf");
  CHECK(std::isnan(std::get<double>(x[0])));
  CHECK(std::get<double>(x[1]) == -std::numeric_limits<double>::infinity());
}
