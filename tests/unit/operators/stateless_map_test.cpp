// map: computed fields (in order, each seeing the earlier ones), rename, drop, select.

#include "stateless_test_support.hpp"

using namespace pel;
using namespace pel::test;
using Catch::Matchers::Contains;

namespace {

core::schema_ptr ticks() {
  return schema_of({{"symbol", value_type::string},
                    {"price", value_type::number},
                    {"qty", value_type::integer},
                    {"venue", std::nullopt}});
}

/// fields:            (line 3)
///   <name>: <expr>   (lines 4, 5, ...; values at column 15)
spec::node_ptr fields(std::vector<std::pair<std::string, std::string>> entries) {
  std::vector<std::pair<std::string, spec::node_ptr>> e;
  int line = 4;
  for (auto& [k, v] : entries) e.emplace_back(k, scalar(v, line++, 15));
  return map(std::move(e), 4, 7);
}

} // namespace

TEST_CASE("map appends new fields and replaces existing ones in place", "[operators][map]") {
  stateless_fixture f;
  auto op = f.make("map",
                   map({{"fields", fields({{"notional", "price * qty"}, {"symbol", "lower(symbol)"}})}}, 2, 3),
                   {ticks()});
  const auto& s = *op->output_schema();
  CHECK(names(s) == std::vector<std::string>{"symbol", "price", "qty", "venue", "notional"});
  CHECK(s[4].type == value_type::number);
  CHECK(s[0].type == value_type::string);
  auto in = batch_of(4, {{S("BTC"), D(2.5), I(4), S("x")}, {S("ETH"), D(1.0), N, N}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 2);
  CHECK(row_of(out.main, 0) == std::vector<value>{S("btc"), D(2.5), I(4), S("x"), D(10.0)});
  CHECK(row_of(out.main, 1) == std::vector<value>{S("eth"), D(1.0), N, N, N});
  CHECK(out.main.times == std::vector<std::int64_t>{1000, 2000});
}

TEST_CASE("map entries see the results of earlier entries", "[operators][map]") {
  stateless_fixture f;
  auto op = f.make("map",
                   map({{"fields", fields({{"qty", "qty * 10"},
                                           {"notional", "price * qty"},
                                           {"notional_k", "notional / 1000"}})}}, 2, 3),
                   {ticks()});
  auto in = batch_of(4, {{S("BTC"), D(5.0), I(20), N}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 1);
  // qty is replaced first, so notional uses 200, and notional_k uses notional.
  CHECK(row_of(out.main, 0) == std::vector<value>{S("BTC"), D(5.0), I(200), N, D(1000.0), D(1.0)});
  // A later entry may not be seen by an earlier one: compiling fails.
  auto e = f.error("map", map({{"fields", fields({{"a", "b + 1"}, {"b", "qty"}})}}, 2, 3), {ticks()});
  CHECK(e.at().line == 4);
  CHECK(e.at().column == 15);
  CHECK(e.path() == "operators.op.fields.a");
  CHECK_THAT(e.what(), Contains("unknown field 'b'"));
}

TEST_CASE("map renames, drops and selects in that order", "[operators][map]") {
  stateless_fixture f;
  auto block = map({{"fields", fields({{"notional", "price * qty"}})},
                    {"rename", map({{"qty", scalar("quantity", 7, 12)}}, 7, 7)},
                    {"drop", list({scalar("venue", 8, 12)}, 8, 11)},
                    {"select", list({scalar("notional", 9, 14), scalar("symbol", 9, 24),
                                     scalar("quantity", 9, 32)}, 9, 13)}},
                   2, 3);
  auto op = f.make("map", block, {ticks()});
  const auto& s = *op->output_schema();
  CHECK(names(s) == std::vector<std::string>{"notional", "symbol", "quantity"});
  CHECK(s[2].type == value_type::integer);
  auto in = batch_of(4, {{S(long_text("BTC")), D(2.0), I(3), S("v")}});
  const char* sym = std::get<std::string>(in.row(0)[0]).data();
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 1);
  CHECK(row_of(out.main, 0) == std::vector<value>{D(6.0), S(long_text("BTC")), I(3)});
  CHECK(std::get<std::string>(out.main.row(0)[1]).data() == sym);  // moved, not copied
}

TEST_CASE("map with only renames hands the batch over", "[operators][map]") {
  stateless_fixture f;
  auto op = f.make("map", map({{"rename", map({{"venue", scalar("exchange", 3, 12)}}, 3, 5)}}, 2, 3),
                   {ticks()});
  CHECK(names(*op->output_schema()) == std::vector<std::string>{"symbol", "price", "qty", "exchange"});
  auto in = batch_of(4, {{S(long_text("s")), D(1), I(1), S("v")}});
  const char* sym = std::get<std::string>(in.row(0)[0]).data();
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 1);
  CHECK(std::get<std::string>(out.main.row(0)[0]).data() == sym);
  CHECK(row_of(out.main, 0)[3] == S("v"));
}

TEST_CASE("map sends records whose expression fails to the dead letter output", "[operators][map][dead_letter]") {
  stateless_fixture f;
  auto op = f.make("map", map({{"fields", fields({{"double_venue", "venue * 2"}})}}, 2, 3), {ticks()});
  auto in = batch_of(4, {{S("a"), D(1), I(1), I(5)}, {S("b"), D(2), I(2), S("NYSE")}, {S("c"), D(3), I(3), N}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 2);
  CHECK(row_of(out.main, 0)[4] == I(10));
  CHECK(row_of(out.main, 1)[4] == N);
  REQUIRE(out.dead_letter.size() == 1);
  const value* d = out.dead_letter.row(0);
  CHECK(d[0] == S("fields.double_venue: cannot apply '*' to string \"NYSE\" and int 2 in 'venue * 2'"));
  CHECK(d[1] == S("op"));
  CHECK(d[4] == S(R"({"symbol":"b","price":2,"qty":2,"venue":"NYSE"})"));
}

TEST_CASE("map reports unknown names where they are written", "[operators][map][config]") {
  stateless_fixture f;
  auto r = f.error("map", map({{"rename", map({{"qtty", scalar("quantity", 5, 13)}}, 5, 5)}}, 2, 3), {ticks()});
  CHECK(r.at().line == 5);
  CHECK(r.at().column == 13 - 4 - 2);
  CHECK(r.path() == "operators.op.rename.qtty");
  CHECK(std::string(r.what()) == "unknown field 'qtty'; did you mean 'qty'? (fields: symbol, price, qty, venue)");

  auto d = f.error("map", map({{"drop", list({scalar("price", 6, 12), scalar("venu", 6, 19)}, 6, 11)}}, 2, 3), {ticks()});
  CHECK(d.at().line == 6);
  CHECK(d.at().column == 19);
  CHECK_THAT(d.what(), Contains("did you mean 'venue'?"));
  CHECK_THAT(d.what(), Contains("(fields: symbol, qty, venue)"));  // price is already dropped

  auto s = f.error("map", map({{"select", list({scalar("symbol", 7, 14), scalar("prices", 7, 22)}, 7, 13)}}, 2, 3), {ticks()});
  CHECK(s.at().column == 22);
  CHECK(s.path() == "operators.op.select[1]");

  auto twice = f.error("map", map({{"select", list({scalar("qty", 7, 14), scalar("qty", 7, 19)}, 7, 13)}}, 2, 3), {ticks()});
  CHECK(std::string(twice.what()) == "'qty' is selected twice");

  auto clash = f.error("map", map({{"rename", map({{"qty", scalar("price", 5, 12)}}, 5, 5)}}, 2, 3), {ticks()});
  CHECK_THAT(clash.what(), Contains("a field with that name exists"));

  auto none = f.error("map", map({}, 2, 3), {ticks()});
  CHECK(std::string(none.what()) == "map needs at least one of fields, rename, drop or select");
  CHECK(none.at().line == 2);
}

TEST_CASE("map with a gathering config reports every bad expression and name of its block",
          "[operators][map][config]") {
  stateless_fixture f;
  const auto block = spec::parse_yaml(
      "fields:\n"
      "  notional: prize * qty\n"
      "  notional_k: notional / 1000\n"
      "  loud: upper(venu)\n"
      "  n: lenght(symbol)\n"
      "drop: [venue, sym]\n"
      "select: [symbol, notional_k, loud, qtty]\n",
      "t.yaml");
  CHECK(f.gathered("map", block, {ticks()}) ==
        std::vector<std::string>{
            "2:13 operators.op.fields.notional: unknown field 'prize'; did you mean 'price'? "
            "(fields: symbol, price, qty, venue)",
            "4:15 operators.op.fields.loud: unknown field 'venu'; did you mean 'venue'? (fields: "
            "symbol, price, qty, venue, notional, notional_k)",
            "5:6 operators.op.fields.n: unknown function 'lenght'; did you mean length()?",
            "6:15 operators.op.drop[1]: unknown field 'sym'; did you mean 'symbol'? (fields: "
            "symbol, price, qty, notional, notional_k, loud, n)",
            "7:36 operators.op.select[3]: unknown field 'qtty'; did you mean 'qty'? (fields: "
            "symbol, price, qty, notional, notional_k, loud, n)",
        });
  // Without gathering, the first one throws.
  CHECK(f.error("map", block, {ticks()}).path() == "operators.op.fields.notional");
}
