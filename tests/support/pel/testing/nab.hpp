#pragma once
/// \file
/// The labelled anomaly windows of NAB's machine temperature series, which the sensors
/// example's tests check its alerts against. Needs PEL_SOURCE_DIR (set for every test target).

#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace pel::testing {

/// (start, end) as text, from the data file that ships beside the example.
inline std::vector<std::pair<std::string, std::string>> nab_anomaly_windows() {
  std::ifstream f(PEL_SOURCE_DIR "/examples/sensors/data/machine_temperature_anomaly_windows.csv");
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    auto comma = line.find(',');
    if (comma != std::string::npos) out.emplace_back(line.substr(0, comma), line.substr(comma + 1));
  }
  return out;
}

} // namespace pel::testing
