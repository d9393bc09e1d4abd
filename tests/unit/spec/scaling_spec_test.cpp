// A component's `parallelism: {initial, min, max}` range and the `pipeline.scaling` block,
// with their defaults and their checks (exact, located messages).
#include "pel/spec/pipeline.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

using namespace pel::spec;
using pel::spec::test::test_registry;

namespace {

/// A clean file: `pipeline` as given, a source, an operator `large` with `parallelism`
/// written as given (nothing when empty), and a sink.
std::string file(const std::string& pipeline, const std::string& parallelism = "") {
  return (pipeline.empty() ? std::string() : "pipeline:\n" + pipeline) +
         "sources:\n"
         "  ticks:\n"
         "    type: gen\n"
         "operators:\n"
         "  large:\n"
         "    type: filter\n"
         "    input: ticks\n"
         "    where: qty > 1\n" +
         (parallelism.empty() ? std::string() : "    parallelism: " + parallelism + "\n") +
         "sinks:\n"
         "  out:\n"
         "    type: print\n"
         "    input: large\n";
}

pipeline load(const std::string& text) { return load_text(text, "p.yaml", test_registry()); }

/// The diagnostics of `text`, one per line.
std::vector<std::string> errors_of(const std::string& text) {
  std::vector<std::string> out;
  const std::string all = pel::spec::test::errors_of(text);
  std::size_t start = 0;
  while (start < all.size()) {
    const std::size_t end = all.find('\n', start);
    out.push_back(all.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

} // namespace

TEST_CASE("a fixed parallelism is its own range", "[spec][scaling]") {
  const pipeline p = load(file("  parallelism: 3\n", "2"));
  CHECK(p.operators[0].parallelism == 2);
  CHECK(p.operators[0].parallelism_min == 2);
  CHECK(p.operators[0].parallelism_max == 2);
  CHECK(p.sources[0].parallelism == 3);
  CHECK(p.sources[0].parallelism_min == 3);
  CHECK(p.sources[0].parallelism_max == 3);
}

TEST_CASE("a parallelism range gives initial, min and max", "[spec][scaling]") {
  SECTION("all three") {
    const pipeline p = load(file("", "{initial: 2, min: 1, max: 8}"));
    CHECK(p.operators[0].parallelism == 2);
    CHECK(p.operators[0].parallelism_min == 1);
    CHECK(p.operators[0].parallelism_max == 8);
  }
  SECTION("initial defaults to min, min to 1") {
    const pipeline a = load(file("", "{min: 3, max: 8}"));
    CHECK(a.operators[0].parallelism == 3);
    CHECK(a.operators[0].parallelism_min == 3);
    const pipeline b = load(file("", "{max: 4}"));
    CHECK(b.operators[0].parallelism == 1);
    CHECK(b.operators[0].parallelism_min == 1);
    CHECK(b.operators[0].parallelism_max == 4);
  }
}

TEST_CASE("a bad parallelism range is reported at each bad value", "[spec][scaling]") {
  CHECK(errors_of(file("", "{initial: 2, min: 1}")) ==
        std::vector<std::string>{"p.yaml:9:18: operators.large.parallelism.max: missing required "
                                 "key 'max' (integer): Most instances autoscaling may start; at "
                                 "most `pipeline.max_parallelism`."});
  CHECK(errors_of(file("", "{min: 5, max: 4}")) ==
        std::vector<std::string>{"p.yaml:9:24: operators.large.parallelism.min: min (5) is above "
                                 "max (4); autoscaling needs min <= initial <= max"});
  CHECK(errors_of(file("", "{initial: 9, min: 2, max: 4}")) ==
        std::vector<std::string>{"p.yaml:9:28: operators.large.parallelism.initial: initial (9) "
                                 "is outside min..max (2..4); use a value from 2 to 4"});
  CHECK(errors_of(file("  max_parallelism: 16\n", "{max: 32}")) ==
        std::vector<std::string>{"p.yaml:11:24: operators.large.parallelism.max: max 32 is above "
                                 "pipeline.max_parallelism (16); lower it or raise max_parallelism"});
  CHECK(errors_of(file("", "{mx: 4, min: 0}")) ==
        std::vector<std::string>{
            "p.yaml:9:18: operators.large.parallelism.max: missing required key 'max' (integer): "
            "Most instances autoscaling may start; at most `pipeline.max_parallelism`.",
            "p.yaml:9:19: operators.large.parallelism.mx: unknown key 'mx'; did you mean 'max'? "
            "allowed keys: initial, max, min",
            "p.yaml:9:31: operators.large.parallelism.min: 0 is out of range; use a value from 1 "
            "to 1024"});
  CHECK(errors_of(file("", "[1, 4]")) ==
        std::vector<std::string>{"p.yaml:9:18: operators.large.parallelism: expected an integer "
                                 "or a map of initial, max, min, found a list"});
}

TEST_CASE("pipeline.scaling has documented defaults", "[spec][scaling]") {
  const scaling_spec s = load(file("")).settings.scaling;
  CHECK(s.policy == "ds2");
  CHECK(s.interval_ns == 5'000'000'000);
  CHECK(s.target_utilisation == 0.7);
  CHECK(s.stabilisation_ns == 30'000'000'000);
  CHECK(s.scale_in_delay_ns == 120'000'000'000);
  CHECK(s.max_scale_in == 0.5);
  CHECK(s.schedule.empty());
}

TEST_CASE("pipeline.scaling is read whole", "[spec][scaling]") {
  const pipeline p = load(file("  scaling:\n"
                               "    policy: schedule\n"
                               "    interval: 500ms\n"
                               "    target_utilisation: 0.8\n"
                               "    stabilisation: 10s\n"
                               "    scale_in_delay: 0s\n"
                               "    max_scale_in: 1\n"
                               "    schedule:\n"
                               "      - {at: 0s, component: large, parallelism: 2}\n"
                               "      - {at: 1m, component: large, parallelism: 4}\n",
                               "{min: 1, max: 4}"));
  const scaling_spec& s = p.settings.scaling;
  CHECK(s.policy == "schedule");
  CHECK(s.interval_ns == 500'000'000);
  CHECK(s.target_utilisation == 0.8);
  CHECK(s.stabilisation_ns == 10'000'000'000);
  CHECK(s.scale_in_delay_ns == 0);
  CHECK(s.max_scale_in == 1.0);
  REQUIRE(s.schedule.size() == 2);
  CHECK(s.schedule[0].at_ns == 0);
  CHECK(s.schedule[0].component == "large");
  CHECK(s.schedule[0].parallelism == 2);
  CHECK(s.schedule[0].at.line == 10);
  CHECK(s.schedule[1].at_ns == 60'000'000'000);
  CHECK(s.schedule[1].parallelism == 4);
  CHECK(s.at.line == 3);
}

TEST_CASE("bad pipeline.scaling values are all reported, located", "[spec][scaling]") {
  CHECK(errors_of(file("  scaling:\n"
                       "    policy: dss2\n"
                       "    interval: 50ms\n"
                       "    target_utilisation: 0\n"
                       "    stabilisation: -1s\n"
                       "    max_scale_in: 1.5\n"
                       "    cooldown: 1s\n")) ==
        std::vector<std::string>{
            "p.yaml:3:13: pipeline.scaling.policy: 'dss2' is not allowed here; did you mean "
            "'ds2'? allowed values: ds2, schedule",
            "p.yaml:4:15: pipeline.scaling.interval: 50ms is out of range; use a value of at "
            "least 100ms",
            "p.yaml:5:25: pipeline.scaling.target_utilisation: target_utilisation must be above "
            "0; use a value above 0 and at most 1",
            "p.yaml:6:20: pipeline.scaling.stabilisation: must not be negative, found '-1s'; use "
            "a duration such as 250ms, 1s or 5m",
            "p.yaml:7:19: pipeline.scaling.max_scale_in: 1.5 is out of range; use a value from 0 "
            "to 1",
            "p.yaml:8:5: pipeline.scaling.cooldown: unknown key 'cooldown'; allowed keys: "
            "interval, max_scale_in, policy, scale_in_delay, schedule, stabilisation, "
            "target_utilisation"});
}

TEST_CASE("a schedule goes with policy: schedule and names ranges", "[spec][scaling]") {
  SECTION("policy: schedule without steps") {
    CHECK(errors_of(file("  scaling:\n    policy: schedule\n", "{max: 4}")) ==
          std::vector<std::string>{
              "p.yaml:3:13: pipeline.scaling.schedule: policy: schedule needs steps; add "
              "`schedule: [{at: 10s, component: <operator>, parallelism: 4}]`"});
  }
  SECTION("steps with policy: ds2") {
    CHECK(errors_of(file("  scaling:\n    schedule:\n      - {at: 1s, component: large, "
                         "parallelism: 2}\n",
                         "{max: 4}")) ==
          std::vector<std::string>{
              "p.yaml:3:5: pipeline.scaling.schedule: a schedule is only read with `policy: "
              "schedule`; set `policy: schedule` or remove `schedule`"});
  }
  SECTION("steps naming a fixed or unknown component, or outside the range") {
    CHECK(errors_of(file("  scaling:\n"
                         "    policy: schedule\n"
                         "    schedule:\n"
                         "      - {at: 1s, component: ticks, parallelism: 2}\n"
                         "      - {at: 2s, component: larg, parallelism: 2}\n"
                         "      - {at: 3s, component: large, parallelism: 9}\n"
                         "      - {at: -3s, component: large}\n",
                         "{min: 2, max: 4}")) ==
          std::vector<std::string>{
              "p.yaml:5:29: pipeline.scaling.schedule[0].component: 'ticks' has a fixed "
              "parallelism; components with a parallelism range: large",
              "p.yaml:6:29: pipeline.scaling.schedule[1].component: unknown component 'larg'; "
              "did you mean 'large'? components with a parallelism range: large",
              "p.yaml:7:49: pipeline.scaling.schedule[2].parallelism: parallelism 9 is outside "
              "the range of 'large' (2..4); use a value from 2 to 4",
              "p.yaml:8:9: pipeline.scaling.schedule[3].parallelism: missing required key "
              "'parallelism' (integer): Instances from then on, within the component's range.",
              "p.yaml:8:14: pipeline.scaling.schedule[3].at: must not be negative, found '-3s'; "
              "use a duration such as 250ms, 1s or 5m"});
  }
}
