// The operators of examples/sensors/nab_anomalies.yaml over the NAB machine temperature
// series: alerts inside each of NAB's labelled anomaly windows, few outside.
#include "stateful_test_support.hpp"
#include "pel/testing/nab.hpp"

#include <ctime>
#include <fstream>

using namespace pel;
using namespace pel::test;

namespace {

using pel::testing::nab_anomaly_windows;

/// `YYYY-MM-DD HH:MM:SS` (UTC) → ns since the epoch.
std::int64_t datetime_ns(const std::string& s) {
  std::tm tm{};
  REQUIRE(std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec) == 6);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000'000;
}

} // namespace

TEST_CASE("nab_anomalies.yaml finds the machine temperature failures", "[stateful][examples]") {
  // The operator exactly as the example configures it.
  auto root = spec::parse_yaml_file(PEL_SOURCE_DIR "/examples/sensors/nab_anomalies.yaml");
  auto ops = root->find("operators");
  REQUIRE(ops);
  auto block = ops->value->find("anomalies");
  REQUIRE(block);
  auto type = block->value->find("type");
  REQUIRE(type->value->text == "zscore");
  auto entry = stateful_registry().find_operator("zscore");
  spec::config cfg(block->value, "operators.anomalies", &entry->schema.params);
  auto in = schema_of({"timestamp", "value"});

  recs input;
  std::ifstream f(PEL_SOURCE_DIR "/examples/sensors/data/machine_temperature_system_failure.csv");
  REQUIRE(f);
  std::string line;
  std::getline(f, line);
  REQUIRE(line == "timestamp,value");
  while (std::getline(f, line) && input.size() < 100000) {
    auto comma = line.find(',');
    auto ts = line.substr(0, comma);
    input.push_back({{ts, std::stod(line.substr(comma + 1))}, datetime_ns(ts)});
  }
  REQUIRE(input.size() == 22695);

  driver d;
  d.start(1, [&] { return entry->make(cfg, {in}); });
  d.feed({input}, 512, 0);
  auto alerts = d.results();

  // NAB labels/combined_windows.json, kept beside the example.
  const auto windows = nab_anomaly_windows();
  REQUIRE(windows.size() == 4);
  std::size_t inside = 0;
  std::int64_t window_span = 0;
  for (const auto& [from, to] : windows) {
    auto a = datetime_ns(from), b = datetime_ns(to);
    window_span += b - a;
    std::size_t n = 0;
    for (auto& r : alerts) n += r.t >= a && r.t <= b;
    INFO("window " << from << " .. " << to);
    REQUIRE(n >= 1);
    inside += n;
  }
  auto outside = alerts.size() - inside;
  // The windows cover about 10 % of the series; alerts are at least 3 times as dense inside.
  double span = static_cast<double>(input.back().t - input.front().t);
  double density_in = static_cast<double>(inside) / static_cast<double>(window_span);
  double density_out = static_cast<double>(outside) / (span - static_cast<double>(window_span));
  INFO("alerts inside: " << inside << ", outside: " << outside);
  REQUIRE(outside <= 40);
  REQUIRE(density_in >= 3 * density_out);
  // Every alert carries the documented fields.
  REQUIRE(d.ops[0]->output_schema()->names() == "value, mean, stddev, z, reason, time");
}
