// The schedule policy: each step once, when due, only when it changes something; of several
// due steps for one unit, the latest wins.
#include "pel/scaling/policy.hpp"

#include <catch2/catch.hpp>

using namespace pel::scaling;

namespace {

constexpr std::int64_t s_ns = 1'000'000'000;
constexpr std::int64_t start = 5'000 * s_ns;  // the job's clock does not start at zero

sample at(double seconds, std::uint32_t p0, std::uint32_t p1) {
  sample s;
  s.at_ns = start + static_cast<std::int64_t>(seconds * s_ns);
  unit_sample a;
  a.unit = 0;
  a.name = "gen";
  a.parallelism = p0;
  unit_sample b;
  b.unit = 1;
  b.name = "map+sink";
  b.parallelism = p1;
  s.units = {a, b};
  return s;
}

}  // namespace

TEST_CASE("schedule steps fire once at their times", "[scaling][schedule]") {
  auto p = make_schedule({{20 * s_ns, 1, 2}, {10 * s_ns, 1, 4}, {5 * s_ns, 0, 1}}, start);
  CHECK(p->name() == "schedule");
  std::uint32_t p1 = 1;
  std::vector<std::pair<double, decision>> seen;
  for (int t = 0; t <= 40; ++t) {
    for (const decision& d : p->decide(at(t, 1, p1))) {
      seen.emplace_back(t, d);
      p1 = d.to;
    }
  }
  // The step for unit 0 asks for the parallelism it has: no decision.
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].first == 10);
  CHECK(seen[0].second.unit == 1);
  CHECK(seen[0].second.name == "map+sink");
  CHECK(seen[0].second.from == 1);
  CHECK(seen[0].second.to == 4);
  CHECK(seen[0].second.reason == "schedule: at 10 s");
  CHECK(seen[1].first == 20);
  CHECK(seen[1].second.from == 4);
  CHECK(seen[1].second.to == 2);
  CHECK(seen[1].second.reason == "schedule: at 20 s");
}

TEST_CASE("schedule gives the latest of several due steps for a unit", "[scaling][schedule]") {
  auto p = make_schedule({{10 * s_ns, 1, 4}, {20 * s_ns, 1, 6}, {20 * s_ns, 1, 3}}, start);
  CHECK(p->decide(at(8, 1, 1)).empty());
  // The samples skip from 8 s to 25 s: three steps are due, the last listed at 20 s wins.
  const auto d = p->decide(at(25, 1, 1));
  REQUIRE(d.size() == 1);
  CHECK(d[0].to == 3);
  CHECK(d[0].reason == "schedule: at 20 s");
  CHECK(p->decide(at(26, 1, 3)).empty());
  CHECK(p->decide(at(60, 1, 3)).empty());
}

TEST_CASE("schedule keeps a due step until its unit is sampled", "[scaling][schedule]") {
  auto p = make_schedule({{2 * s_ns + s_ns / 2, 1, 3}}, start);
  sample only_first = at(3, 1, 1);
  only_first.units.pop_back();
  CHECK(p->decide(only_first).empty());
  const auto d = p->decide(at(4, 1, 1));
  REQUIRE(d.size() == 1);
  CHECK(d[0].to == 3);
  CHECK(d[0].reason == "schedule: at 2.5 s");
}
