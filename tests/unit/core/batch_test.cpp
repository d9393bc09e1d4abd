#include "pel/core/batch.hpp"
#include "pel/core/schema.hpp"

#include <catch2/catch.hpp>

using namespace pel::core;

TEST_CASE("batches store rows row-major with one time per row", "[core][batch]") {
  batch b(2);
  value* r = b.append(10);
  r[0] = std::int64_t{1};
  r[1] = std::string("a");
  value src[2] = {std::int64_t{2}, std::string("b")};
  b.append_copy(src, 20);
  b.append_move(src, 30);
  REQUIRE(b.size() == 3);
  CHECK(std::get<std::int64_t>(b.row(1)[0]) == 2);
  CHECK(std::get<std::string>(b.row(2)[1]) == "b");
  CHECK(b.times[2] == 30);
  auto cap = b.cells.capacity();
  b.clear();
  CHECK(b.empty());
  CHECK(b.cells.capacity() == cap);
}

TEST_CASE("schemas find fields by name", "[core][schema]") {
  schema s;
  CHECK(s.add("ts", value_type::integer) == 0);
  CHECK(s.add("symbol") == 1);
  CHECK(s.index_of("symbol") == 1);
  CHECK(s.index_of("nope") == -1);
  CHECK(s.names() == "ts, symbol");
  CHECK(s == schema({{"ts", value_type::integer}, {"symbol", std::nullopt}}));
}
