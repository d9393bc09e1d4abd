// Stateless operators keep nothing between records, so instances can be added and removed
// while the pipeline runs (autoscaling); an operator says so through `rescalable()`, which
// is false by default for an operator that is not keyed.
#include "stateless_test_support.hpp"

using namespace pel;
using namespace pel::test;

TEST_CASE("stateless operators can be rescaled live", "[operators][rescale]") {
  stateless_fixture f;
  auto in = schema_of({{"a", value_type::integer}, {"tags", value_type::string}});
  auto where = map({{"where", scalar("a > 1", 2, 12)}}, 2, 3);
  auto fields = map({{"fields", map({{"c", scalar("a + 1", 3, 8)}}, 3, 5)}}, 2, 3);
  auto split = map({{"field", scalar("tags", 2, 12)}, {"separator", scalar(";", 3, 16)}}, 2, 3);
  CHECK(f.make("filter", where, {in})->rescalable());
  CHECK(f.make("map", fields, {in})->rescalable());
  CHECK(f.make("flat_map", split, {in})->rescalable());
  CHECK(f.make("union", map({}, 2, 3), {in, in})->rescalable());
}
