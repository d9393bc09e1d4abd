#include "pel/spec/suggest.hpp"

#include <catch2/catch.hpp>

using namespace pel::spec;

TEST_CASE("edit distance counts transpositions as one edit", "[spec][suggest]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("paralelism", "parallelism") == 1);
  CHECK(edit_distance("mpa", "map") == 1);
  CHECK(edit_distance("Type", "type") == 0);
}

TEST_CASE("suggest picks the closest likely typo, or nothing", "[spec][suggest]") {
  const std::vector<std::string> keys{"type", "description", "parallelism", "input", "partition"};
  CHECK(suggest("paralelism", keys) == std::optional<std::string>("parallelism"));
  CHECK(suggest("inptu", keys) == std::optional<std::string>("input"));
  CHECK(suggest("tpye", keys) == std::optional<std::string>("type"));
  CHECK(suggest("Type", keys) == std::optional<std::string>("type"));
  CHECK_FALSE(suggest("colour", keys).has_value());
  CHECK_FALSE(suggest("", keys).has_value());
  CHECK_FALSE(suggest("x", {"y"}).has_value());
  CHECK_FALSE(suggest(std::string(100, 'a'), {std::string(99, 'a')}).has_value());
  CHECK(did_you_mean("partiton", keys) == "; did you mean 'partition'?");
  CHECK(did_you_mean("zzz", keys).empty());
  CHECK(join({"a", "b", "c"}) == "a, b, c");
}
