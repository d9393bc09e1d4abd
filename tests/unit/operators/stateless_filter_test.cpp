// filter: keeps true rows, moves them, dead-letters failures, reports config errors located.

#include "stateless_test_support.hpp"

using namespace pel;
using namespace pel::test;
using Catch::Matchers::Contains;

namespace {

core::schema_ptr ticks() {
  return schema_of({{"symbol", value_type::string}, {"qty", value_type::integer}, {"note", std::nullopt}});
}

spec::node_ptr where(const std::string& text, bool quoted = false) {
  return map({{"where", scalar(text, 4, 12, quoted)}}, 2, 3);
}

} // namespace

TEST_CASE("filter keeps rows where the condition is true", "[operators][filter]") {
  stateless_fixture f;
  auto op = f.make("filter", where("qty >= 100"), {ticks()});
  CHECK(*op->output_schema() == *ticks());
  auto in = batch_of(3, {{S("a"), I(50), N}, {S("b"), I(100), N}, {S("c"), N, N}, {S("d"), I(300), S("x")}});
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 2);
  CHECK(row_of(out.main, 0) == std::vector<value>{S("b"), I(100), N});
  CHECK(row_of(out.main, 1) == std::vector<value>{S("d"), I(300), S("x")});
  CHECK(out.main.times == std::vector<std::int64_t>{2000, 4000});
  CHECK(out.dead_letter.empty());  // null is dropped, not an error
}

TEST_CASE("filter moves kept values instead of copying them", "[operators][filter][perf]") {
  stateless_fixture f;
  auto op = f.make("filter", where("qty > 1"), {ticks()});
  auto in = batch_of(3, {{S(long_text("a")), I(1), N}, {S(long_text("b")), I(2), N},
                         {S(long_text("c")), I(3), N}});
  const char* b_data = std::get<std::string>(in.row(1)[0]).data();
  const char* c_data = std::get<std::string>(in.row(2)[0]).data();
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::string>(out.main.row(0)[0]).data() == b_data);
  CHECK(std::get<std::string>(out.main.row(1)[0]).data() == c_data);

  // Appending behind rows already in the output moves too.
  auto in2 = batch_of(3, {{S(long_text("d")), I(9), N}});
  const char* d_data = std::get<std::string>(in2.row(0)[0]).data();
  op->process(in2, 0, out);
  REQUIRE(out.main.size() == 3);
  CHECK(std::get<std::string>(out.main.row(2)[0]) == long_text("d"));
  CHECK(std::get<std::string>(out.main.row(2)[0]).data() == d_data);
}

TEST_CASE("filter sends records it cannot evaluate to the dead letter output", "[operators][filter][dead_letter]") {
  stateless_fixture f;
  auto op = f.make("filter", where("note > 5"), {ticks()});
  auto in = batch_of(3, {{S("a"), I(1), I(9)}, {S("b"), I(2), S("text")}, {S("c"), I(3), I(1)}});
  in.times = {1'000'000, 2'000'000, 3'000'000};  // whole milliseconds: a dead letter's unit
  auto out = outputs_for(*op);
  op->process(in, 0, out);
  REQUIRE(out.main.size() == 1);
  CHECK(row_of(out.main, 0)[0] == S("a"));
  REQUIRE(out.dead_letter.size() == 1);
  const value* d = out.dead_letter.row(0);
  CHECK(d[0] == S("cannot compare string \"text\" with int 5 using '>' in 'note > 5'"));
  CHECK(d[1] == S("op"));
  CHECK(d[4] == S(R"({"symbol":"b","qty":2,"note":"text"})"));
  CHECK(d[5] == I(2));
  CHECK(out.dead_letter.times == std::vector<std::int64_t>{2'000'000});
}

TEST_CASE("filter config errors are located inside the expression", "[operators][filter][config]") {
  stateless_fixture f;
  auto e = f.error("filter", where("qty > 1 && symbl == 'x'"), {ticks()});
  CHECK(e.at().line == 4);
  CHECK(e.at().column == 12 + 11);
  CHECK(e.path() == "operators.op.where");
  CHECK_THAT(e.what(), Contains("unknown field 'symbl'; did you mean 'symbol'?"));

  auto q = f.error("filter", where("qty > 1 && symbl == 'x'", true), {ticks()});
  CHECK(q.at().column == 12 + 1 + 11);

  auto t = f.error("filter", where("qty * 2"), {ticks()});
  CHECK_THAT(t.what(), Contains("gives int, not bool"));
  CHECK(t.at().column == 12);
}
