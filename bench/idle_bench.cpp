// What an idle pipeline costs, with its baseline in the same run:
//   1. CPU: a generator at 1 record/s into a per-device 1-minute tumbling window (10 devices),
//      run in this process for `seconds` (20 by default), with the scheduler as PEL sets it
//      (`runtime::options::idle_sleep`, threads that run out of work sleep after a short spin)
//      against CAF's own work-stealing defaults (which poll for ~25 ms after every job). CPU is
//      utime + stime of the process from /proc/self/stat, in % of one core; context switches
//      (voluntary and involuntary, all threads) from getrusage. Runs alternate, `runs` each;
//      the median is reported with min and max.
//   2. Latency of single records on an otherwise idle job (10 records/s through a 3-operator
//      pipeline, 5 actors, rebalanced): each record wakes a sleeping scheduler thread, which
//      is what sleeping costs. Same two settings.
// Writes bench/results/idle.json and bench/results/idle.md.

#include "bench_support.hpp"
#include "paced_source.hpp"

#include "pel/connectors/register.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/core/time.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

using namespace pel;

namespace {

// ---- measuring the process ---------------------------------------------------------------

/// utime + stime of this process (all threads) in seconds, from /proc/self/stat.
double proc_cpu_seconds() {
  std::ifstream f("/proc/self/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::istringstream in(s.substr(s.rfind(')') + 2));
  std::string x;
  unsigned long long utime = 0, stime = 0;
  for (int field = 3; field <= 15 && in >> x; ++field) {
    if (field == 14) utime = std::stoull(x);
    if (field == 15) stime = std::stoull(x);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// Voluntary + involuntary context switches of this process, all threads.
double context_switches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_nvcsw + u.ru_nivcsw);
}

// ---- bench components ----------------------------------------------------------------------

std::atomic<std::uint64_t> g_rows{0};

/// Counts what reaches it.
class count_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr&) override {}
  void write(const core::batch& b) override {
    g_rows.fetch_add(b.size(), std::memory_order_relaxed);
  }
};


std::mutex g_lat_mu;
std::vector<std::int64_t> g_latencies;

/// Records steady_ns() - t0 of every row.
class latency_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr& in) override {
    col_ = in->index_of("t0");
  }
  void write(const core::batch& b) override {
    const std::int64_t now = core::steady_ns();
    std::lock_guard<std::mutex> g(g_lat_mu);
    for (std::size_t i = 0; i < b.size(); ++i)
      g_latencies.push_back(now - std::get<std::int64_t>(b.row(i)[col_]));
  }

private:
  int col_ = -1;
};

double g_paced_rate = 10, g_paced_seconds = 10;

spec::registry bench_registry() {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  spec::component_schema count;
  count.type = "bench_count";
  count.summary = "counts rows (benchmark only)";
  reg.add_sink(count, [](const spec::config&) { return std::make_unique<count_sink>(); });
  spec::component_schema paced;
  paced.type = "bench_paced";
  paced.summary = "rows stamped with the steady clock at a fixed rate (benchmark only)";
  reg.add_source(paced, [](const spec::config&) {
    return std::make_unique<bench::paced_source>(g_paced_rate, g_paced_seconds, true);
  });
  spec::component_schema lat;
  lat.type = "bench_latency";
  lat.summary = "records latency (benchmark only)";
  reg.add_sink(lat, [](const spec::config&) { return std::make_unique<latency_sink>(); });
  return reg;
}

/// The idle workload: `pel run` of this file is what the issue measures.
const char* idle_yaml =
    "pipeline:\n  name: idle\n"
    "sources:\n  sensors:\n    type: generator\n    profile: sensors\n"
    "    devices: 10\n    rate: 1\n"
    "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 1s}\n"
    "operators:\n  averages:\n    type: window\n    input: sensors\n    key: device\n"
    "    window: {type: tumbling, size: 1m}\n"
    "    aggregates:\n      readings: count()\n      avg_temperature: avg(temperature)\n"
    "sinks:\n  out:\n    type: bench_count\n    input: averages\n";

struct idle_sample {
  double cpu_pct = 0;     ///< of one core
  double switches_s = 0;  ///< context switches per second
};

/// Runs the idle pipeline for `seconds` after a 2 s start-up and measures the process.
idle_sample run_idle(const spec::registry& reg, bool idle_sleep, double seconds) {
  auto pipeline = spec::load_text(idle_yaml, "idle.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::options o;
  o.idle_sleep = idle_sleep;
  runtime::job job(plan, o);
  job.start();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // start-up is not idle
  const double c0 = proc_cpu_seconds(), s0 = context_switches();
  const std::int64_t t0 = core::steady_ns();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double c1 = proc_cpu_seconds(), s1 = context_switches();
  const double wall = (core::steady_ns() - t0) / 1e9;
  job.stop();
  auto r = job.wait();
  if (!r.ok) {
    std::fprintf(stderr, "idle pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  return {100.0 * (c1 - c0) / wall, (s1 - s0) / wall};
}

struct latencies {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};

/// Single records at `g_paced_rate` through filter → map → filter → sink, all rebalanced.
latencies run_latency(const spec::registry& reg, bool idle_sleep) {
  {
    std::lock_guard<std::mutex> g(g_lat_mu);
    g_latencies.clear();
  }
  const std::string yaml = bench::latency_pipeline_yaml;

  auto pipeline = spec::load_text(yaml, "latency.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::options o;
  o.idle_sleep = idle_sleep;
  runtime::job job(plan, o);
  job.start();
  auto r = job.wait();
  if (!r.ok) {
    std::fprintf(stderr, "latency pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  std::lock_guard<std::mutex> g(g_lat_mu);
  std::vector<std::int64_t> v = g_latencies;
  latencies l;
  l.n = v.size();
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto q = [&](double x) {
    return v[static_cast<std::size_t>(x * static_cast<double>(v.size() - 1))] / 1e6;
  };
  l.p50 = q(0.5);
  l.p99 = q(0.99);
  l.max = v.back() / 1e6;
  return l;
}

std::string load_average() {
  return bench::shell("cut -d' ' -f1-3 /proc/loadavg");
}

}  // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const double seconds = args.get_double("seconds", 20);
  const int runs = static_cast<int>(args.get_size("runs", 3));
  g_paced_rate = args.get_double("latency-rate", 10);
  g_paced_seconds = args.get_double("latency-seconds", 10);
  auto reg = bench_registry();
  const std::string load_before = load_average();

  // 1. CPU of the idle pipeline, the two settings alternating --------------------------------
  std::vector<double> cpu_sleep, cpu_caf, sw_sleep, sw_caf;
  for (int i = 0; i < runs; ++i) {
    idle_sample c = run_idle(reg, false, seconds);
    cpu_caf.push_back(c.cpu_pct);
    sw_caf.push_back(c.switches_s);
    idle_sample s = run_idle(reg, true, seconds);
    cpu_sleep.push_back(s.cpu_pct);
    sw_sleep.push_back(s.switches_s);
    std::printf(
        "run %d: CAF defaults %.2f %% of a core, %.0f switches/s; PEL's setting %.2f %%, %.0f "
        "switches/s\n",
        i + 1, c.cpu_pct, c.switches_s, s.cpu_pct, s.switches_s);
  }
  const auto caf = bench::stats::of(cpu_caf), sleep = bench::stats::of(cpu_sleep);
  const auto caf_sw = bench::stats::of(sw_caf), sleep_sw = bench::stats::of(sw_sleep);

  // 2. latency of single records on an idle job -------------------------------------------
  const latencies lat_caf = run_latency(reg, false), lat_sleep = run_latency(reg, true);
  std::printf(
      "latency at %.3g records/s: CAF defaults p50 %.3f ms p99 %.3f ms max %.3f ms (%zu); "
      "PEL's setting p50 %.3f ms p99 %.3f ms max %.3f ms (%zu)\n",
      g_paced_rate, lat_caf.p50, lat_caf.p99, lat_caf.max, lat_caf.n, lat_sleep.p50, lat_sleep.p99,
      lat_sleep.max, lat_sleep.n);
  const std::string load_after = load_average();

  // results -------------------------------------------------------------------------------
  auto pct = [](const bench::stats& s) {
    return bench::fmt(s.median, "%.2f") + " % (" + bench::fmt(s.min, "%.2f") + "–" +
           bench::fmt(s.max, "%.2f") + ")";
  };
  bench::report rep("idle",
                    "Idle pipeline: generator at 1 record/s into a per-device 1-minute window");
  rep.condition("measured over", bench::fmt(seconds, "%.0f") + " s per run, after 2 s of start-up");
  rep.condition("runs", std::to_string(runs) + " per setting, alternating (median; min–max)");
  rep.condition("threads", "2 scheduler threads");
  rep.condition("load average (1, 5, 15 min) before / after", load_before + " / " + load_after);
  auto range = [](const bench::stats& s, const char* f) {
    return " (median of runs; " + bench::fmt(s.min, f) + "–" + bench::fmt(s.max, f) + ")";
  };
  rep.value("CPU, CAF's work-stealing defaults, % of one core" + range(caf, "%.2f"), caf.median,
            "%");
  rep.value(
      "CPU, PEL's setting (threads sleep when out of work), % of one core" + range(sleep, "%.2f"),
      sleep.median, "%", 1.0, true);
  rep.value("CPU ratio, PEL's setting to CAF's defaults",
            caf.median > 0 ? sleep.median / caf.median : 0, "×");
  rep.value("context switches/s, CAF's defaults" + range(caf_sw, "%.0f"), caf_sw.median, "/s");
  rep.value("context switches/s, PEL's setting" + range(sleep_sw, "%.0f"), sleep_sw.median, "/s");
  const std::string at =
      " at " + bench::fmt(g_paced_rate, "%.3g") + " records/s (3 operators, 5 actors)";
  rep.value("latency p50" + at + ", CAF's defaults", lat_caf.p50, "ms");
  rep.value("latency p50" + at + ", PEL's setting", lat_sleep.p50, "ms");
  rep.value("latency p99, CAF's defaults", lat_caf.p99, "ms");
  rep.value("latency p99, PEL's setting", lat_sleep.p99, "ms");
  rep.value("latency max, CAF's defaults", lat_caf.max, "ms");
  rep.value("latency max, PEL's setting", lat_sleep.max, "ms");
  rep.write(PEL_SOURCE_DIR "/bench/results");
  std::printf("CPU of the idle pipeline: %s with PEL's setting, %s with CAF's defaults\n",
              pct(sleep).c_str(), pct(caf).c_str());
  return 0;
}
