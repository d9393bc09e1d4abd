// Core runtime benchmark (generate → filter → project → count), with its baseline in the
// same run:
//   1. throughput: a hand-written fused single-threaded loop over prepared trades vs the same
//      pipeline in PEL at parallelism 2 (fused as the planner chooses it, and with a forced
//      rebalance so every batch crosses a channel);
//   2. latency: p50/p99/p99.9/max of one record through a 3-operator pipeline at half of
//      PEL's measured maximum throughput;
//   3. idle resident memory of a `pel run` process.
// Writes bench/results/pipeline.json and bench/results/pipeline.md.

#include "bench_support.hpp"
#include "paced_source.hpp"
#include "trades_workload.hpp"
#include "replay_source.hpp"

#include "pel/connectors/generator.hpp"
#include "pel/connectors/register.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace pel;
using bench::process_cpu_seconds;

namespace {

constexpr std::int64_t qty_threshold = 100;

// ---- prepared input ------------------------------------------------------------------------

using prepared = bench::prepared_trades;


std::vector<core::batch> deep_copy(const std::vector<core::batch>& in) { return in; }

// ---- baseline ------------------------------------------------------------------------------

struct checksum {
  std::uint64_t count = 0;
  double sum = 0;
};

checksum fused_loop(const prepared& p) {
  int qty = p.schema->index_of("qty"), price = p.schema->index_of("price");
  checksum c;
  for (const auto& b : p.batches) {
    for (std::size_t i = 0; i < b.size(); ++i) {
      const core::value* r = b.row(i);
      auto q = std::get<std::int64_t>(r[qty]);
      if (q >= qty_threshold) {
        double notional = std::get<double>(r[price]) * static_cast<double>(q);
        ++c.count;
        c.sum += notional;
      }
    }
  }
  return c;
}

// ---- bench components (registered in the bench's own registry) ----------------------------

/// The prepared batches of the current run, consumed by the replay source instances.
std::vector<core::batch>* g_feed = nullptr;

/// Totals of all checksum sink instances of a run.
/// Totals of all the notional sink instances of a run.
bench::notional_total g_sum;


/// Latencies in 1 µs buckets up to 1 s (a fixed 4 MB, so that recording tens of millions of
/// rows does not grow a vector, with its copies and page faults, inside the measured pipeline),
/// plus the exact count and maximum.
struct latency_histogram {
  static constexpr std::size_t buckets = 1'000'000;  ///< the last one holds everything ≥ 1 s
  std::vector<std::uint32_t> counts = std::vector<std::uint32_t>(buckets, 0);
  std::uint64_t n = 0;
  std::int64_t max_ns = 0;

  void add(std::int64_t ns) {
    const std::size_t us = ns <= 0 ? 0 : static_cast<std::size_t>(ns / 1000);
    ++counts[std::min(us, buckets - 1)];
    ++n;
    max_ns = std::max(max_ns, ns);
  }
  void merge(const latency_histogram& o) {
    for (std::size_t i = 0; i < buckets; ++i) counts[i] += o.counts[i];
    n += o.n;
    max_ns = std::max(max_ns, o.max_ns);
  }
  /// The `q` quantile in ns, to the µs (upper edge of its bucket).
  std::int64_t quantile(double q) const {
    if (n == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n - 1));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts[i];
      if (seen > rank) return std::min<std::int64_t>(static_cast<std::int64_t>(i + 1) * 1000, max_ns);
    }
    return max_ns;
  }
};

std::mutex g_lat_mu;
latency_histogram g_latencies;

/// Records steady_ns() - t0 for every row.
class latency_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr& in) override {
    col_ = in->index_of("t0");
  }
  void write(const core::batch& b) override {
    std::int64_t now = core::steady_ns();
    for (std::size_t i = 0; i < b.size(); ++i) local_.add(now - std::get<std::int64_t>(b.row(i)[col_]));
  }
  void close() override {
    std::lock_guard<std::mutex> g(g_lat_mu);
    g_latencies.merge(local_);
  }

private:
  int col_ = -1;
  latency_histogram local_;
};

double g_paced_rate = 0, g_paced_seconds = 0;

spec::registry bench_registry(const core::schema_ptr& trades) {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  spec::component_schema replay;
  replay.type = "bench_replay";
  replay.summary = "prepared trades (benchmark only)";
  reg.add_source(replay, [trades](const spec::config&) {
    return std::make_unique<bench::replay_source>(trades, g_feed);
  });
  spec::component_schema sum;
  sum.type = "bench_checksum";
  sum.summary = "count and sum of notional (benchmark only)";
  reg.add_sink(sum, [](const spec::config&) { return std::make_unique<bench::notional_sink>(g_sum); });
  spec::component_schema paced;
  paced.type = "bench_paced";
  paced.summary = "rows stamped with the steady clock at a fixed rate (benchmark only)";
  reg.add_source(paced, [](const spec::config&) {
    return std::make_unique<bench::paced_source>(g_paced_rate, g_paced_seconds);
  });
  spec::component_schema lat;
  lat.type = "bench_latency";
  lat.summary = "records latency (benchmark only)";
  reg.add_sink(lat, [](const spec::config&) { return std::make_unique<latency_sink>(); });
  return reg;
}

std::string throughput_yaml(int parallelism, bool rebalance) {
  std::string y = "pipeline:\n  parallelism: " + std::to_string(parallelism) +
                  "\nsources:\n  trades:\n    type: bench_replay\n"
                  "operators:\n  large:\n    type: filter\n    input: trades\n"
                  "    where: qty >= " + std::to_string(qty_threshold) + "\n"
                  "  project:\n    type: map\n    input: large\n"
                  "    fields:\n      notional: price * qty\n    select: [symbol, notional]\n"
                  "sinks:\n  count:\n    type: bench_checksum\n    input: project\n";
  if (rebalance) y += "    partition: rebalance\n";
  return y;
}

/// Runs one PEL pipeline over a fresh copy of the prepared input; returns seconds. `cpu`
/// receives the CPU seconds the process used meanwhile (all threads).
double run_pel(const spec::registry& reg, const prepared& p, const std::string& yaml,
               checksum& out, double* cpu = nullptr) {
  std::vector<core::batch> feed = deep_copy(p.batches);  // before the clock starts
  g_feed = &feed;
  g_sum.reset();
  auto pipeline = spec::load_text(yaml, "bench.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::job job(plan);
  const double c0 = process_cpu_seconds();
  auto t0 = core::steady_ns();
  job.start();
  auto r = job.wait();
  auto t1 = core::steady_ns();
  const double c1 = process_cpu_seconds();
  if (cpu != nullptr) *cpu = c1 - c0;
  if (std::getenv("PEL_BENCH_DEBUG"))
    std::fprintf(stderr, "run: total %.3f ms, cpu %.3f ms\n", (t1 - t0) / 1e6, (c1 - c0) * 1e3);
  if (!r.ok) {
    std::fprintf(stderr, "pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  out.count = g_sum.count;
  out.sum = g_sum.sum;
  return (t1 - t0) / 1e9;
}


/// Resident memory of a `pel run` process on an idle pipeline, in KiB (0 on failure).
long idle_rss_kib(const std::string& pel_binary) {
  char dir[] = "/tmp/pel-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 0;
  std::string in = std::string(dir) + "/in.jsonl", yaml = std::string(dir) + "/idle.yaml";
  std::ofstream(in).close();
  std::ofstream(yaml) << "sources:\n  in:\n    type: file\n    path: " << in
                      << "\n    format: json\n    follow: true\n    schema: {v: int}\n"
                         "sinks:\n  out:\n    type: stdout\n    input: in\n";
  // posix_spawn, not fork: a forked copy of this process would be measured until it execs.
  const char* argv[] = {"pel", "--log-level", "warn", "run", "--progress", "never", yaml.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, pel_binary.c_str(), nullptr, nullptr, const_cast<char* const*>(argv),
                  environ) != 0)
    return 0;
  // Sample for 3 s and keep the largest reading: the process is idle after start-up.
  long rss = 0;
  auto deadline = core::steady_ns() + 3'000'000'000LL;
  while (core::steady_ns() < deadline) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) rss = std::max(rss, std::atol(line.c_str() + 6));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  std::remove(in.c_str());
  std::remove(yaml.c_str());
  rmdir(dir);
  return rss;
}

/// Runs the latency pipeline at g_paced_rate for g_paced_seconds; fills g_latencies.
bool run_latency(const spec::registry& reg) {
  g_latencies = latency_histogram{};
  const std::string yaml = bench::latency_pipeline_yaml;

  auto pipeline = spec::load_text(yaml, "latency.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::job job(plan);
  job.start();
  auto r = job.wait();
  if (!r.ok) std::fprintf(stderr, "latency pipeline failed: %s\n", r.error.c_str());
  return r.ok;
}

} // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const std::size_t rows = args.get_size("rows", 4'000'000);
  const int runs = static_cast<int>(args.get_size("runs", 3));
  const std::size_t batch_rows = 1024;
  const std::string pel_binary = args.get_string("pel", PEL_BINARY_DIR "/framework/cli/pel");

  std::printf("preparing %zu trades...\n", rows);
  prepared p = bench::prepare_trades(rows, batch_rows);
  auto reg = bench_registry(p.schema);

  // --only=latency --latency-rate=R: just the latency pipeline at R rows/s.
  if (args.get_string("only", "") == "latency") {
    g_paced_rate = args.get_double("latency-rate", 1e6);
    g_paced_seconds = args.get_double("latency-seconds", 5);
    if (!run_latency(reg)) return 1;
    const auto& lat = g_latencies;
    std::printf("latency at %.3g rows/s (%llu rows): p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n",
                g_paced_rate, static_cast<unsigned long long>(lat.n), lat.quantile(0.50) / 1e6,
                lat.quantile(0.99) / 1e6, lat.quantile(0.999) / 1e6);
    return 0;
  }
  // --only=fused|rebalance: just that PEL pipeline, `runs` times (for profilers).
  if (const std::string only = args.get_string("only", ""); !only.empty()) {
    checksum c;
    for (int i = 0; i < runs; ++i) {
      double secs = run_pel(reg, p, throughput_yaml(2, only == "rebalance"), c);
      std::printf("pel p=2 %s: %.3g rows/s (%llu results, sum %.6e)\n", only.c_str(), p.rows / secs,
                  static_cast<unsigned long long>(c.count), c.sum);
    }
    return 0;
  }

  // 1. throughput ------------------------------------------------------------------------
  checksum base_sum = fused_loop(p);  // warm-up
  std::vector<double> base_rates, fused_rates, rebalance_rates;
  // Cores used on average during each run (CPU seconds / wall seconds): on a shared machine
  // the two PEL threads do not always get two cores.
  std::vector<double> base_cpu, fused_cpu, rebalance_cpu;
  for (int i = 0; i < runs; ++i) {
    const double c0 = process_cpu_seconds();
    auto t0 = core::steady_ns();
    checksum c = fused_loop(p);
    double secs = (core::steady_ns() - t0) / 1e9;
    base_cpu.push_back((process_cpu_seconds() - c0) / secs);
    base_rates.push_back(p.rows / secs);
    base_sum = c;
  }
  std::printf("fused loop: %zu rows -> %llu results, sum %.6e\n", p.rows,
              static_cast<unsigned long long>(base_sum.count), base_sum.sum);

  auto check = [&](const checksum& c, const char* what) {
    if (c.count != base_sum.count || std::fabs(c.sum - base_sum.sum) > 1e-9 * std::fabs(base_sum.sum)) {
      std::fprintf(stderr, "%s: checksum mismatch: %llu/%.9e vs %llu/%.9e\n", what,
                   static_cast<unsigned long long>(c.count), c.sum,
                   static_cast<unsigned long long>(base_sum.count), base_sum.sum);
      std::exit(1);
    }
  };
  checksum c;
  run_pel(reg, p, throughput_yaml(2, false), c);  // warm-up
  check(c, "pel p=2");
  for (int i = 0; i < runs; ++i) {
    double cpu = 0, secs = run_pel(reg, p, throughput_yaml(2, false), c, &cpu);
    fused_rates.push_back(p.rows / secs);
    fused_cpu.push_back(cpu / secs);
    check(c, "pel p=2");
    secs = run_pel(reg, p, throughput_yaml(2, true), c, &cpu);
    rebalance_rates.push_back(p.rows / secs);
    rebalance_cpu.push_back(cpu / secs);
    check(c, "pel p=2 rebalance");
  }
  auto base = bench::stats::of(base_rates), fused = bench::stats::of(fused_rates),
       reb = bench::stats::of(rebalance_rates);
  std::printf("throughput rows/s: fused loop %.3g, pel p=2 %.3g (%.2fx), pel p=2 rebalance %.3g (%.2fx)\n",
              base.median, fused.median, fused.median / base.median, reb.median,
              reb.median / base.median);
  const double base_cores = bench::stats::of(base_cpu).median,
               fused_cores = bench::stats::of(fused_cpu).median,
               reb_cores = bench::stats::of(rebalance_cpu).median;
  std::printf("cores used (CPU time / wall time, median): fused loop %.2f, pel p=2 %.2f, pel p=2 rebalance %.2f\n",
              base_cores, fused_cores, reb_cores);

  // 2. latency at half of the rebalanced pipeline's maximum --------------------------------
  g_paced_rate = reb.median / 2;
  g_paced_seconds = args.get_double("latency-seconds", 5);
  if (!run_latency(reg)) return 1;
  const auto& lat = g_latencies;
  const auto lat_n = static_cast<unsigned long long>(lat.n);
  double p50 = lat.quantile(0.50) / 1e6, p99 = lat.quantile(0.99) / 1e6,
         p999 = lat.quantile(0.999) / 1e6, lmax = lat.max_ns / 1e6;
  std::printf("latency at %.3g rows/s (%llu rows, 4 actors): p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
              g_paced_rate, lat_n, p50, p99, p999, lmax);

  // 3. idle memory ------------------------------------------------------------------------
  long rss = idle_rss_kib(pel_binary);
  std::printf("idle pel run RSS: %.1f MB\n", rss / 1024.0);

  // results -------------------------------------------------------------------------------
  bench::report rep("pipeline", "Core runtime: generate → filter → project → count");
  rep.condition("rows", std::to_string(p.rows));
  rep.condition("symbols", "1000");
  rep.condition("batch size / linger", "1024 / 1 ms");
  rep.condition("runs", std::to_string(runs) + " (median; min–max)");
  rep.metric("fused loop", base, "rows/s", 1.0);
  rep.metric("PEL p=2 (planner's fusion: 2 actors)", fused, "rows/s", fused.median / base.median,
             0.5);
  rep.metric("PEL p=2, rebalance before the sink (4 actors, channels)", reb, "rows/s",
             reb.median / base.median, 0.5);
  rep.value("cores used by the fused loop (CPU time / wall time)", base_cores, "cores");
  rep.value("cores used by PEL p=2 (2 scheduler threads)", fused_cores, "cores");
  rep.value("cores used by PEL p=2, rebalance", reb_cores, "cores");
  rep.value("latency p50 at " + bench::fmt_rate(g_paced_rate) + " rows/s (3 operators, 5 actors)", p50, "ms");
  rep.value("latency p99", p99, "ms", 2.0, true);
  rep.value("latency p99.9", p999, "ms");
  rep.value("latency max", lmax, "ms");
  rep.value("idle `pel run` RSS", rss / 1024.0, "MB", 30.0, true);
  rep.write(PEL_SOURCE_DIR "/bench/results");
  return 0;
}
