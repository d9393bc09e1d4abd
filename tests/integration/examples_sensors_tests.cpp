// The sensor examples through `pel run`, compared with plain computations: device averages
// (bad readings in the dead letter, not in the averages), NAB anomalies (alerts in NAB's
// labelled failure windows), and the Dongsi air-quality daily summary.
#include "examples_support.hpp"
#include "pel/testing/nab.hpp"

#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <set>

using namespace pel;
using namespace pel::e2e;

namespace {

using pel::testing::nab_anomaly_windows;

/// `YYYY-MM-DD HH:MM:SS` (UTC) → ms since the epoch.
std::int64_t datetime_ms(const std::string& s) {
  std::tm tm{};
  REQUIRE(std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::int64_t civil_ms(int y, int mo, int d, int h) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  return (t >= 0 ? t / size : (t - size + 1) / size) * size;
}

/// Running sum, count, min and max of the numbers seen.
struct stats {
  double sum = 0, min = 1e300, max = -1e300;
  std::int64_t n = 0;
  std::vector<double> all;
  void add(double x) {
    sum += x;
    ++n;
    min = std::min(min, x);
    max = std::max(max, x);
    all.push_back(x);
  }
};

/// Checks an aggregate that is null when there were no values.
void check_avg(const json_object& o, const std::string& field, const stats& s) {
  INFO(field);
  if (s.n == 0) {
    CHECK(o.is_null(field));
  } else {
    CHECK(close_to(o.num(field), s.sum / static_cast<double>(s.n)));
  }
}

}  // namespace

TEST_CASE(
    "examples/sensors/device_averages.yaml: averages without the bad readings, which "
    "go to the dead letter",
    "[e2e][examples]") {
  auto opt = generator_options_of(example("sensors/device_averages.yaml"), "sensors");
  REQUIRE(opt.bad_records > 0);
  auto rows = generate(opt);
  REQUIRE(rows.size() == 60000);

  // The filter, then per device and minute. "ERR" passes the filter and is rejected by the
  // window (dead letter): it must count nowhere.
  struct window {
    std::int64_t readings = 0;
    stats temp, humidity;
  };
  std::map<std::pair<std::string, std::int64_t>, window> want;
  std::multiset<std::pair<std::string, std::int64_t>> err_rows;  // device, ts
  std::size_t dropped = 0;
  for (const auto& r : rows) {
    auto ts = std::get<std::int64_t>(r[0]);
    const auto& device = std::get<std::string>(r[1]);
    const auto& t = r[2];
    if (auto s = std::get_if<std::string>(&t)) {
      REQUIRE(*s == "ERR");
      err_rows.insert({device, ts});
      continue;
    }
    double temp = 0;
    bool number = core::as_number(t, temp);
    if (number && !(temp > -100 && temp < 200)) {  // NaN and spikes: filtered out
      ++dropped;
      continue;
    }
    auto& w = want[{device, floor_to(ts, 60000)}];
    ++w.readings;
    if (number) w.temp.add(temp);
    double h = 0;
    if (core::as_number(r[3], h)) w.humidity.add(h);
  }
  REQUIRE(!err_rows.empty());
  REQUIRE(dropped > 0);

  auto out = run_ok("examples/sensors/device_averages.yaml");
  std::vector<json_object> averages, dead;
  for (auto& o : out) (o.has("reason") ? dead : averages).push_back(std::move(o));

  // Every "ERR" reading is in the dead letter with its reason, and nothing else is.
  REQUIRE(dead.size() == err_rows.size());
  std::multiset<std::pair<std::string, std::int64_t>> dead_rows;
  for (const auto& d : dead) {
    CHECK(d.str("operator") == "averages");
    CHECK(d.str("reason") ==
          "avg_temperature: expected a number for temperature, got string \"ERR\"");
    auto rec = parse_json_object(d.str("record"));
    REQUIRE(rec);
    CHECK(rec->str("temperature") == "ERR");
    dead_rows.insert({rec->str("device"), rec->integer("ts")});
  }
  CHECK(dead_rows == err_rows);

  REQUIRE(averages.size() == want.size());
  std::set<std::pair<std::string, std::int64_t>> seen;
  for (const auto& o : averages) {
    std::pair<std::string, std::int64_t> k{o.str("device"), o.integer("window_start")};
    INFO(k.first << " @ " << k.second);
    REQUIRE(seen.insert(k).second);
    auto it = want.find(k);
    REQUIRE(it != want.end());
    const auto& w = it->second;
    CHECK(o.integer("window_end") == k.second + 60000);
    CHECK(o.integer("readings") == w.readings);
    CHECK(o.integer("temperature_readings") == w.temp.n);
    check_avg(o, "avg_temperature", w.temp);
    check_avg(o, "avg_humidity", w.humidity);
    if (w.temp.n > 0) {
      CHECK(o.num("min_temperature") == w.temp.min);
      CHECK(o.num("max_temperature") == w.temp.max);
      CHECK(plausible_quantile(w.temp.all, 0.95, o.num("p95_temperature")));
      CHECK(o.num("p95_temperature") >= w.temp.min - 1e-9);
    }
  }
}

TEST_CASE("examples/sensors/nab_anomalies.yaml: alerts fall in NAB's failure windows",
          "[e2e][examples]") {
  // The series, read here in plain C++.
  std::vector<std::pair<std::int64_t, double>> series;
  {
    auto lines =
        lines_of(read_file(example("sensors/data/machine_temperature_system_failure.csv")));
    REQUIRE(!lines.empty());
    REQUIRE(lines[0] == "timestamp,value");
    for (std::size_t i = 1; i < lines.size(); ++i) {
      auto comma = lines[i].find(',');
      series.push_back(
          {datetime_ms(lines[i].substr(0, comma)), std::stod(lines[i].substr(comma + 1))});
    }
  }
  REQUIRE(series.size() == 22695);
  std::map<std::int64_t, std::size_t> index_at;
  for (std::size_t i = 0; i < series.size(); ++i) index_at[series[i].first] = i;

  auto alerts = run_ok("examples/sensors/nab_anomalies.yaml");
  REQUIRE(!alerts.empty());

  // NAB labels/combined_windows.json, kept beside the example.
  const auto windows = nab_anomaly_windows();
  REQUIRE(windows.size() == 4);
  std::size_t inside = 0;
  std::int64_t window_span = 0;
  for (const auto& [from, to] : windows) {
    auto a = datetime_ms(from), b = datetime_ms(to);
    window_span += b - a;
    std::size_t n = 0;
    for (const auto& o : alerts) {
      auto t = o.integer("time");  // epoch ms
      n += t >= a && t <= b;
    }
    INFO("window " << from << " .. " << to);
    CHECK(n >= 1);
    inside += n;
  }
  auto outside = alerts.size() - inside;
  double span = static_cast<double>(series.back().first - series.front().first);
  double density_in = static_cast<double>(inside) / static_cast<double>(window_span);
  double density_out = static_cast<double>(outside) / (span - static_cast<double>(window_span));
  INFO("alerts inside: " << inside << ", outside: " << outside);
  CHECK(outside <= 40);
  CHECK(density_in >= 3 * density_out);

  // Each alert is a reading of the series, and its mean is the mean of the 48 readings
  // before it (the example's `rows: 48`); z follows from value, mean and stddev.
  for (const auto& o : alerts) {
    auto t = o.integer("time");
    INFO("alert at " << t);
    auto it = index_at.find(t);
    REQUIRE(it != index_at.end());
    auto i = it->second;
    CHECK(o.num("value") == series[i].second);
    REQUIRE(i >= 24);
    std::size_t from = i >= 48 ? i - 48 : 0;
    double sum = 0;
    for (std::size_t j = from; j < i; ++j) sum += series[j].second;
    CHECK(close_to(o.num("mean"), sum / static_cast<double>(i - from), 1e-6));
    CHECK(close_to(o.num("z"), (o.num("value") - o.num("mean")) / o.num("stddev"), 1e-6));
    CHECK(std::fabs(o.num("z")) > 4.5);
  }
}

TEST_CASE("examples/sensors/air_quality.yaml: daily summary per station", "[e2e][examples]") {
  // The CSV read here with NA as null, columns found by header name (quoted or not).
  auto text = read_file(example("sensors/data/beijing_dongsi_2013-2014.csv"));
  auto lines = lines_of(text);
  REQUIRE(lines.size() > 8000);
  auto split = [](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> out(1);
    bool quoted = false;
    for (char c : line) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        out.emplace_back();
      else
        out.back() += c;
    }
    return out;
  };
  auto header = split(lines[0]);
  auto col = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    FAIL("no column " << name);
    return std::size_t{0};
  };
  const auto c_year = col("year"), c_month = col("month"), c_day = col("day"), c_hour = col("hour"),
             c_pm25 = col("PM2.5"), c_pm10 = col("PM10"), c_no2 = col("NO2"), c_temp = col("TEMP"),
             c_rain = col("RAIN"), c_station = col("station");
  struct hour {
    std::int64_t t;  // the recorded hour read as UTC
    std::string station;
    std::optional<double> pm25, pm10, no2, temp, rain;
  };
  auto number = [](const std::string& s) -> std::optional<double> {
    if (s.empty() || s == "NA") return std::nullopt;
    return std::stod(s);
  };
  std::vector<hour> hours;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto f = split(lines[i]);
    if (f.size() != header.size()) continue;
    hours.push_back({civil_ms(std::stoi(f[c_year]), std::stoi(f[c_month]), std::stoi(f[c_day]),
                              std::stoi(f[c_hour])),
                     f[c_station], number(f[c_pm25]), number(f[c_pm10]), number(f[c_no2]),
                     number(f[c_temp]), number(f[c_rain])});
  }
  REQUIRE(hours.size() == 8760);

  auto rows = run_ok("examples/sensors/air_quality.yaml");
  REQUIRE(!rows.empty());

  // The example reads the hours either as UTC or as Beijing time (UTC+8) made true instants;
  // the days follow. Which one the YAML chose shows in the first window's start: the test
  // computes both and holds pel to the one whose days it reports.
  struct day {
    std::int64_t hours = 0;
    stats pm25, pm10, no2, temp, rain;
  };
  auto days_with_shift = [&](std::int64_t shift_ms) {
    std::map<std::pair<std::string, std::int64_t>, day> m;
    for (const auto& h : hours) {
      auto& d = m[{h.station, floor_to(h.t - shift_ms, 86400000)}];
      ++d.hours;
      if (h.pm25) d.pm25.add(*h.pm25);
      if (h.pm10) d.pm10.add(*h.pm10);
      if (h.no2) d.no2.add(*h.no2);
      if (h.temp) d.temp.add(*h.temp);
      if (h.rain) d.rain.add(*h.rain);
    }
    return m;
  };
  std::int64_t first_start = INT64_MAX;
  for (const auto& o : rows) first_start = std::min(first_start, o.integer("window_start"));
  auto utc = days_with_shift(0);
  auto beijing = days_with_shift(8 * 3600 * 1000);
  REQUIRE(
      (first_start == utc.begin()->first.second || first_start == beijing.begin()->first.second));
  const auto& want = first_start == utc.begin()->first.second ? utc : beijing;

  REQUIRE(rows.size() == want.size());
  std::set<std::pair<std::string, std::int64_t>> seen;
  std::int64_t total_hours = 0;
  for (const auto& o : rows) {
    std::pair<std::string, std::int64_t> k{o.str("station"), o.integer("window_start")};
    INFO(k.first << " @ " << k.second);
    REQUIRE(seen.insert(k).second);
    auto it = want.find(k);
    REQUIRE(it != want.end());
    const auto& d = it->second;
    total_hours += o.integer("hours");
    CHECK(o.integer("window_end") == k.second + 86400000);
    CHECK(o.integer("hours") == d.hours);
    CHECK(o.integer("pm25_hours") == d.pm25.n);
    check_avg(o, "pm25_avg", d.pm25);
    check_avg(o, "pm10_avg", d.pm10);
    check_avg(o, "no2_avg", d.no2);
    if (d.pm25.n > 0) {
      CHECK(o.num("pm25_max") == d.pm25.max);
      CHECK(plausible_quantile(d.pm25.all, 0.9, o.num("pm25_p90")));
    } else {
      CHECK(o.is_null("pm25_max"));
    }
    if (d.temp.n > 0) {
      CHECK(o.num("temp_min") == d.temp.min);
      CHECK(o.num("temp_max") == d.temp.max);
    }
    if (d.rain.n > 0) CHECK(close_to(o.num("rain_mm"), d.rain.sum));
  }
  CHECK(total_hours == 8760);
}
