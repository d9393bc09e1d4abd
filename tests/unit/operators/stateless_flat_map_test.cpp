// flat_map: split text or explode a JSON array into one record per piece.

#include "stateless_test_support.hpp"

#include "flat_map.hpp"

using namespace pel;
using namespace pel::test;
using Catch::Matchers::Contains;

namespace {

core::schema_ptr readings() {
  return schema_of({{"id", value_type::integer}, {"tags", value_type::string}, {"site", std::nullopt}});
}

spec::node_ptr block(std::vector<std::pair<std::string, std::string>> kv) {
  std::vector<std::pair<std::string, spec::node_ptr>> e;
  int line = 3;
  for (auto& [k, v] : kv) e.emplace_back(k, scalar(v, line++, 5 + static_cast<int>(k.size()) + 2));
  return map(std::move(e), 2, 3);
}

} // namespace

TEST_CASE("flat_map splits a field in place", "[operators][flat_map]") {
  stateless_fixture f;
  auto op = f.make("flat_map", block({{"field", "tags"}, {"separator", ";"}}), {readings()});
  CHECK(*op->output_schema() == *readings());
  auto in = batch_of(3, {{I(1), S("a;b;;c"), S(long_text("site"))}, {I(2), S(""), N}, {I(3), N, N},
                         {I(4), S("z"), S("s4")}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 4);
  CHECK(row_of(out.main, 0) == std::vector<value>{I(1), S("a"), S(long_text("site"))});
  CHECK(row_of(out.main, 1) == std::vector<value>{I(1), S("b"), S(long_text("site"))});
  CHECK(row_of(out.main, 2) == std::vector<value>{I(1), S("c"), S(long_text("site"))});
  CHECK(row_of(out.main, 3) == std::vector<value>{I(4), S("z"), S("s4")});
  CHECK(out.main.times == std::vector<std::int64_t>{1000, 1000, 1000, 4000});
  CHECK(out.dead_letter.empty());
}

TEST_CASE("flat_map keeps empty pieces, writes into a new field and numbers the pieces", "[operators][flat_map]") {
  stateless_fixture f;
  auto op = f.make("flat_map",
                   block({{"field", "tags"}, {"separator", "::"}, {"into", "tag"}, {"keep_empty", "true"},
                          {"index", "n"}}),
                   {readings()});
  const auto& s = *op->output_schema();
  CHECK(names(s) == std::vector<std::string>{"id", "tags", "site", "tag", "n"});
  CHECK(s[3].type == value_type::string);
  CHECK(s[4].type == value_type::integer);
  auto in = batch_of(3, {{I(1), S("x::::y"), N}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 3);
  CHECK(row_of(out.main, 0) == std::vector<value>{I(1), S("x::::y"), N, S("x"), I(0)});
  CHECK(row_of(out.main, 1) == std::vector<value>{I(1), S("x::::y"), N, S(""), I(1)});
  CHECK(row_of(out.main, 2) == std::vector<value>{I(1), S("x::::y"), N, S("y"), I(2)});
}

TEST_CASE("flat_map explodes a JSON array", "[operators][flat_map]") {
  stateless_fixture f;
  auto op = f.make("flat_map", block({{"mode", "explode"}, {"field", "tags"}, {"into", "item"}}), {readings()});
  auto in = batch_of(3, {{I(1), S(R"([1, 2.5, "a\"b", true, null, "", [3, "]"], {"k": 1}])"), N},
                         {I(2), S("[]"), N}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 6);  // null and "" are skipped without keep_empty
  std::vector<value> items;
  for (std::size_t r = 0; r < out.main.size(); ++r) items.push_back(out.main.row(r)[3]);
  CHECK(items == std::vector<value>{I(1), D(2.5), S("a\"b"), B(true), S(R"([3, "]"])"), S(R"({"k": 1})")});
  CHECK(out.main.row(0)[0] == I(1));
}

TEST_CASE("flat_map sends bad records to the dead letter output", "[operators][flat_map][dead_letter]") {
  stateless_fixture f;
  auto op = f.make("flat_map", block({{"mode", "explode"}, {"field", "site"}}), {readings()});
  auto in = batch_of(3, {{I(1), N, S("[1, 2")}, {I(2), N, I(7)}, {I(3), N, S("[5]")}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 1);
  CHECK(row_of(out.main, 0) == std::vector<value>{I(3), N, I(5)});
  REQUIRE(out.dead_letter.size() == 2);
  CHECK_THAT(std::get<std::string>(out.dead_letter.row(0)[0]),
             Contains("field 'site' is not a JSON array: expected ',' or ']'"));
  CHECK(out.dead_letter.row(0)[1] == S("op"));
  CHECK(std::get<std::string>(out.dead_letter.row(1)[0]) == "field 'site' holds int, expected a string");
}

TEST_CASE("flat_map config errors", "[operators][flat_map][config]") {
  stateless_fixture f;
  auto e = f.error("flat_map", block({{"field", "tag"}}), {readings()});
  CHECK(e.at().line == 3);
  CHECK(e.at().column == 12);
  CHECK(e.path() == "operators.op.field");
  CHECK_THAT(e.what(), Contains("unknown field 'tag'; did you mean 'tags'?"));
  auto sep = f.error("flat_map", block({{"field", "tags"}, {"separator", ""}}), {readings()});
  CHECK_THAT(sep.what(), Contains("the separator is empty"));
  auto idx = f.error("flat_map", block({{"field", "tags"}, {"index", "id"}}), {readings()});
  CHECK_THAT(idx.what(), Contains("a field called 'id' exists already"));
}

TEST_CASE("parse_json_array", "[operators][flat_map][json]") {
  std::vector<value> v;
  std::string err;
  REQUIRE(operators::parse_json_array(R"( [ -3, 1e2, "\u00e9\n", false ] )", v, err));
  CHECK(v == std::vector<value>{I(-3), D(100.0), S("\xc3\xa9\n"), B(false)});
  v.clear();
  CHECK_FALSE(operators::parse_json_array("{\"a\": 1}", v, err));
  CHECK_THAT(err, Contains("expected a JSON array"));
  CHECK_FALSE(operators::parse_json_array("[1] x", v, err));
  CHECK_FALSE(operators::parse_json_array("[\"abc", v, err));
  CHECK_FALSE(operators::parse_json_array("[tru]", v, err));
}
