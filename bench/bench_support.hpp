#pragma once
/// \file
/// Small helpers shared by the benchmarks: command-line arguments, median/min/max of runs,
/// and the result files (bench/results/<name>.json and <name>.md, which bench/run.sh
/// assembles into docs/benchmarks.md). Every benchmark reports ratios to a baseline measured
/// in the same run, together with the conditions.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <time.h>

namespace bench {

/// `--name=value` arguments.
class args {
public:
  args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) continue;
      auto eq = a.find('=');
      if (eq == std::string::npos) values_[a.substr(2)] = "1";
      else values_[a.substr(2, eq - 2)] = a.substr(eq + 1);
    }
  }
  std::string get_string(const std::string& k, std::string def) const {
    auto i = values_.find(k);
    return i == values_.end() ? def : i->second;
  }
  std::size_t get_size(const std::string& k, std::size_t def) const {
    auto i = values_.find(k);
    return i == values_.end() ? def : std::strtoull(i->second.c_str(), nullptr, 10);
  }
  double get_double(const std::string& k, double def) const {
    auto i = values_.find(k);
    return i == values_.end() ? def : std::strtod(i->second.c_str(), nullptr);
  }

private:
  std::map<std::string, std::string> values_;
};

/// Median, min and max of repeated measurements.
struct stats {
  double median = 0, min = 0, max = 0;
  static stats of(std::vector<double> v) {
    stats s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    s.median = v[v.size() / 2];
    s.min = v.front();
    s.max = v.back();
    return s;
  }
};

/// CPU time of the whole process (all threads), in seconds. CPU time over wall time is how
/// many cores a run actually got: on a shared machine PEL's threads do not always get two.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

inline std::string fmt_rate(double x) {
  char buf[32];
  if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof buf, "%.1f k", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}

inline std::string fmt(double x, const char* f = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

/// Output of the shell command `cmd` (first line), or "unknown".
inline std::string shell(const char* cmd) {
  std::string out;
  if (FILE* p = popen(cmd, "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, p)) out = buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

/// Collects a benchmark's results and writes them as JSON and as a markdown table.
class report {
public:
  report(std::string name, std::string title) : name_(std::move(name)), title_(std::move(title)) {
    condition("nproc", std::to_string(std::thread::hardware_concurrency()));
    condition("compiler", std::string("GCC ") + __VERSION__);
#ifdef PEL_BENCH_FLAGS
    condition("flags", PEL_BENCH_FLAGS);
#endif
    condition("commit", shell("git -C " PEL_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null"));
    condition("date", shell("date -u +%Y-%m-%dT%H:%MZ"));
  }

  void condition(const std::string& k, const std::string& v) { conditions_.emplace_back(k, v); }

  /// A rate measured over runs, with its ratio to the baseline and an optional target ratio.
  void metric(const std::string& what, const stats& s, const std::string& unit, double ratio,
              double target_ratio = 0) {
    row r;
    r.what = what;
    r.value = fmt_rate(s.median) + " " + unit + " (" + fmt_rate(s.min) + "–" + fmt_rate(s.max) + ")";
    r.ratio = fmt(ratio, "%.2f×");
    if (target_ratio > 0) {
      r.target = "≥ " + fmt(target_ratio, "%.2g×");
      r.verdict = ratio >= target_ratio ? "met" : "not met";
    }
    json_.push_back("{\"what\":" + quote(what) + ",\"median\":" + fmt(s.median, "%.6g") +
                    ",\"min\":" + fmt(s.min, "%.6g") + ",\"max\":" + fmt(s.max, "%.6g") +
                    ",\"unit\":" + quote(unit) + ",\"ratio\":" + fmt(ratio, "%.4f") + "}");
    rows_.push_back(std::move(r));
  }

  /// A single figure; `limit` with `lower_is_better` gives a target such as "≤ 2 ms".
  void value(const std::string& what, double v, const std::string& unit, double limit = 0,
             bool lower_is_better = false) {
    row r;
    r.what = what;
    r.value = fmt(v, "%.3g") + " " + unit;
    if (limit > 0) {
      r.target = std::string(lower_is_better ? "≤ " : "≥ ") + fmt(limit, "%.3g") + " " + unit;
      bool ok = lower_is_better ? v <= limit : v >= limit;
      r.verdict = ok ? "met" : "not met";
    }
    json_.push_back("{\"what\":" + quote(what) + ",\"value\":" + fmt(v, "%.6g") +
                    ",\"unit\":" + quote(unit) + "}");
    rows_.push_back(std::move(r));
  }

  /// Writes <dir>/<name>.json and <dir>/<name>.md.
  void write(const std::string& dir) const {
    std::ofstream j(dir + "/" + name_ + ".json");
    j << "{\n  \"benchmark\": " << quote(name_) << ",\n  \"conditions\": {";
    for (std::size_t i = 0; i < conditions_.size(); ++i)
      j << (i ? ", " : "") << quote(conditions_[i].first) << ": " << quote(conditions_[i].second);
    j << "},\n  \"results\": [\n";
    for (std::size_t i = 0; i < json_.size(); ++i) j << "    " << json_[i] << (i + 1 < json_.size() ? ",\n" : "\n");
    j << "  ]\n}\n";

    std::ofstream m(dir + "/" + name_ + ".md");
    m << "## " << title_ << "\n\n| measurement | result | ratio to baseline | target | |\n|---|---|---|---|---|\n";
    for (const auto& r : rows_)
      m << "| " << r.what << " | " << r.value << " | " << r.ratio << " | " << r.target << " | "
        << r.verdict << " |\n";
    m << "\nConditions: ";
    for (std::size_t i = 0; i < conditions_.size(); ++i)
      m << (i ? "; " : "") << conditions_[i].first << " " << conditions_[i].second;
    m << ".\n";
  }

private:
  struct row {
    std::string what, value, ratio, target, verdict;
  };
  static std::string quote(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      o += c;
    }
    return o + "\"";
  }
  std::string name_, title_;
  std::vector<std::pair<std::string, std::string>> conditions_;
  std::vector<row> rows_;
  std::vector<std::string> json_;
};

} // namespace bench
