// What the HTTP API of `pel run --http` costs the pipeline it watches. The core runtime
// benchmark's workload (trades → filter → project → count at parallelism 2, as the planner
// fuses it; see pipeline_bench.cpp) runs with the HTTP server on — its sampler reading the
// job every second and a client GETting `/metrics` and `/api/v1/pipelines/bench/instances`
// every second, as Prometheus and the dashboard do — and, as the baseline, the same run with
// the server off. Runs alternate in this process (off, on, off, on, ...) so that a machine
// getting busier hurts both sides alike; the cost is 1 - median(on) / median(off), and the
// median of each pair's own cost. On a shared machine the wall clock moves by several % from
// one run to the next whatever the server does, so the benchmark also reports the process's
// CPU time per row, on against off: what the server's threads take, which other processes
// barely move (the pipeline keeps both cores busy either way, so a server taking x % of the
// CPU costs about x % of the throughput when the machine is quiet). Most precisely, it reads
// the CPU time of the server's own threads (those that appear when it starts, the scraper's
// excepted) from /proc/self/task/*/schedstat, in ns: their share of the process's CPU time
// is the server's direct cost, whatever else the machine runs.
//
// A run must last seconds to see scrapes at all, and the prepared trades of pipeline_bench
// would not fit in memory for that long: the source replays a pool of prepared batches over
// and over, copying each (the copy is work of the source, the same on both sides). Both sides
// must process the same rows: their checksums are compared to a plain loop's.
// Writes bench/results/http.json and bench/results/http.md.

#include "bench_support.hpp"
#include "trades_workload.hpp"

#include "pel/api/server.hpp"
#include "pel/connectors/generator.hpp"
#include "pel/connectors/register.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <httplib.h>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace pel;

namespace {

constexpr std::int64_t qty_threshold = 100;

// ---- prepared input ------------------------------------------------------------------------

/// Trades generated before any clock starts, replayed over and over.
using pool = bench::prepared_trades;


struct checksum {
  std::uint64_t count = 0;
  double sum = 0;
  std::uint64_t rows = 0;  ///< rows read (only the plain computation counts them)
};

/// The plain computation over the batches a run replays: batch k is pool[k % pool size].
checksum expected_checksum(const pool& p, std::size_t total_batches) {
  const int qty = p.schema->index_of("qty"), price = p.schema->index_of("price");
  std::vector<checksum> per_batch;
  for (const auto& b : p.batches) {
    checksum c;
    c.rows = b.size();
    for (std::size_t i = 0; i < b.size(); ++i) {
      const core::value* r = b.row(i);
      const auto q = std::get<std::int64_t>(r[qty]);
      if (q >= qty_threshold) {
        ++c.count;
        c.sum += std::get<double>(r[price]) * static_cast<double>(q);
      }
    }
    per_batch.push_back(c);
  }
  checksum all;
  for (std::size_t k = 0; k < total_batches; ++k) {
    all.count += per_batch[k % per_batch.size()].count;
    all.sum += per_batch[k % per_batch.size()].sum;
    all.rows += per_batch[k % per_batch.size()].rows;
  }
  return all;
}

// ---- bench components ----------------------------------------------------------------------

const pool* g_pool = nullptr;
std::size_t g_total_batches = 0;

/// Instance i of p emits copies of the pool's batches k = i, i+p, ... < g_total_batches.
class cycling_replay final : public core::source_base {
public:
  explicit cycling_replay(core::schema_ptr s) : schema_(std::move(s)) {}
  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override {
    next_ = ctx.instance;
    step_ = ctx.parallelism;
  }
  core::poll_status poll(core::outputs& out, std::size_t) override {
    if (next_ >= g_total_batches) return core::poll_status::end;
    const auto& b = g_pool->batches[next_ % g_pool->batches.size()];
    next_ += step_;
    if (out.main.empty())
      out.main = b;
    else
      for (std::size_t i = 0; i < b.size(); ++i) out.main.append_copy(b.row(i), b.times[i]);
    return core::poll_status::data;
  }

private:
  core::schema_ptr schema_;
  std::size_t next_ = 0, step_ = 1;
};

/// Totals of all the notional sink instances of a run.
bench::notional_total g_sum;

spec::registry bench_registry(const core::schema_ptr& trades) {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  spec::component_schema replay;
  replay.type = "bench_cycling_replay";
  replay.summary = "prepared trades, replayed over and over (benchmark only)";
  reg.add_source(
      replay, [trades](const spec::config&) { return std::make_unique<cycling_replay>(trades); });
  spec::component_schema sum;
  sum.type = "bench_checksum";
  sum.summary = "count and sum of notional (benchmark only)";
  reg.add_sink(sum, [](const spec::config&) { return std::make_unique<bench::notional_sink>(g_sum); });
  return reg;
}

/// pipeline_bench's throughput pipeline, as the planner fuses it.
const std::string pipeline_yaml =
    "pipeline:\n  name: bench\n  parallelism: 2\n"
    "sources:\n  trades:\n    type: bench_cycling_replay\n"
    "operators:\n  large:\n    type: filter\n    input: trades\n"
    "    where: qty >= " +
    std::to_string(qty_threshold) +
    "\n"
    "  project:\n    type: map\n    input: large\n"
    "    fields:\n      notional: price * qty\n    select: [symbol, notional]\n"
    "sinks:\n  count:\n    type: bench_checksum\n    input: project\n";

// ---- threads' CPU time ---------------------------------------------------------------------

/// The ids of this process's threads.
std::set<long> thread_ids() {
  std::set<long> out;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.insert(std::strtol(e->d_name, nullptr, 10));
    closedir(d);
  }
  return out;
}

/// CPU time thread `tid` of this process has run, in seconds (first field of its schedstat,
/// in ns); 0 when it is gone.
double thread_cpu_seconds(long tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  double ns = 0;
  f >> ns;
  return ns / 1e9;
}

// ---- the scraper ---------------------------------------------------------------------------

/// GETs `/metrics` and `/api/v1/pipelines/bench/instances` every `period` on a thread of its
/// own, as Prometheus and the dashboard would, until destroyed.
class scraper {
public:
  scraper(int port, std::chrono::milliseconds period) {
    thread_ = std::thread([this, port, period] {
      tid_ = static_cast<long>(::syscall(SYS_gettid));
      httplib::Client c("127.0.0.1", port);
      c.set_keep_alive(true);
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        lock.unlock();
        for (const char* path : {"/metrics", "/api/v1/pipelines/bench/instances"}) {
          auto r = c.Get(path);
          if (r && r->status == 200) {
            ++requests_;
            bytes_ += r->body.size();
          } else {
            ++failures_;
          }
        }
        lock.lock();
        if (cv_.wait_for(lock, period, [this] { return done_; })) return;
      }
    });
  }
  ~scraper() {
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::uint64_t requests() const { return requests_; }
  std::uint64_t failures() const { return failures_; }
  std::uint64_t bytes() const { return bytes_; }
  long tid() const { return tid_; }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<std::uint64_t> requests_{0}, failures_{0}, bytes_{0};
  std::atomic<long> tid_{0};
  std::thread thread_;
};

/// What one run measured.
struct run_result {
  double seconds = 0;
  double cores = 0;  ///< CPU seconds of the process over wall seconds
  double cpu_seconds = 0;
  double server_cpu_seconds = 0;  ///< the server's own threads
  std::size_t server_threads = 0;
  checksum sum;
  std::uint64_t requests = 0, failures = 0, bytes = 0;
};

/// One run of the pipeline over g_total_batches batches; with the HTTP server and its
/// scraper when `http`. The clock covers the job's start to its end, the server's start and
/// every scrape included.
run_result run_once(const spec::registry& reg, bool http) {
  g_sum.reset();
  auto pipeline = spec::load_text(pipeline_yaml, "bench.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::job job(plan);
  std::unique_ptr<api::server> server;
  if (http) {
    api::settings s;
    s.host = "127.0.0.1";
    s.port = 0;
    server = std::make_unique<api::server>(s);
    server->add("bench", "bench.yaml", job);
  }
  run_result out;
  const double c0 = bench::process_cpu_seconds();
  const auto t0 = core::steady_ns();
  job.start();
  std::unique_ptr<scraper> client;
  std::set<long> before;
  if (server) {
    before = thread_ids();
    const int port = server->start();
    client = std::make_unique<scraper>(port, std::chrono::seconds(1));
  }
  auto r = job.wait();
  const auto t1 = core::steady_ns();
  const double c1 = bench::process_cpu_seconds();
  if (client) {
    for (long tid : thread_ids())
      if (before.count(tid) == 0 && tid != client->tid()) {
        out.server_cpu_seconds += thread_cpu_seconds(tid);
        ++out.server_threads;
      }
    out.requests = client->requests();
    out.failures = client->failures();
    out.bytes = client->bytes();
    client.reset();
  }
  if (server) server->stop();
  if (!r.ok) {
    std::fprintf(stderr, "pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  out.seconds = (t1 - t0) / 1e9;
  out.cpu_seconds = c1 - c0;
  out.cores = out.cpu_seconds / out.seconds;
  out.sum.count = g_sum.count;
  out.sum.sum = g_sum.sum;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const std::size_t pool_rows = args.get_size("pool-rows", 262'144);
  const std::size_t rows = args.get_size("rows", 60'000'000);
  const int runs = static_cast<int>(args.get_size("runs", 11));
  const std::size_t batch_rows = 1024;

  std::printf("preparing %zu trades...\n", pool_rows);
  pool p = bench::prepare_trades(pool_rows, batch_rows);
  g_pool = &p;
  g_total_batches = rows / batch_rows;
  const checksum expected = expected_checksum(p, g_total_batches);
  const auto total_rows = static_cast<double>(expected.rows);
  auto reg = bench_registry(p.schema);

  auto check = [&](const checksum& c, const char* what) {
    if (c.count != expected.count ||
        std::fabs(c.sum - expected.sum) > 1e-9 * std::fabs(expected.sum)) {
      std::fprintf(stderr, "%s: checksum mismatch: %llu/%.9e vs %llu/%.9e\n", what,
                   static_cast<unsigned long long>(c.count), c.sum,
                   static_cast<unsigned long long>(expected.count), expected.sum);
      std::exit(1);
    }
  };

  // Warm-up, one of each.
  check(run_once(reg, false).sum, "server off");
  check(run_once(reg, true).sum, "server on");

  std::vector<double> off_rates, on_rates, pair_costs, off_cores, on_cores, off_cpu, on_cpu,
      pair_cpu_costs, server_shares, server_ms_per_s;
  std::size_t server_threads = 0;
  std::uint64_t requests = 0, failures = 0, bytes = 0;
  double on_seconds = 0;
  for (int i = 0; i < runs; ++i) {
    // Alternate which side goes first, so neither always follows the other.
    run_result off, on;
    if (i % 2 == 0) {
      off = run_once(reg, false);
      on = run_once(reg, true);
    } else {
      on = run_once(reg, true);
      off = run_once(reg, false);
    }
    check(off.sum, "server off");
    check(on.sum, "server on");
    off_rates.push_back(total_rows / off.seconds);
    on_rates.push_back(total_rows / on.seconds);
    off_cores.push_back(off.cores);
    on_cores.push_back(on.cores);
    pair_costs.push_back(100.0 * (1.0 - off.seconds / on.seconds));
    off_cpu.push_back(1e9 * off.cpu_seconds / total_rows);
    on_cpu.push_back(1e9 * on.cpu_seconds / total_rows);
    pair_cpu_costs.push_back(100.0 * (on.cpu_seconds / off.cpu_seconds - 1.0));
    server_shares.push_back(100.0 * on.server_cpu_seconds / on.cpu_seconds);
    server_ms_per_s.push_back(1e3 * on.server_cpu_seconds / on.seconds);
    server_threads = on.server_threads;
    requests += on.requests;
    failures += on.failures;
    bytes += on.bytes;
    on_seconds += on.seconds;
    std::printf(
        "run %d: off %.3g rows/s (%.2f s, %.2f cpu s), on %.3g rows/s (%.2f s, %.2f cpu s, "
        "%llu requests, server threads %.3f cpu s): cost %.2f %%, cpu %.2f %%\n",
        i + 1, off_rates.back(), off.seconds, off.cpu_seconds, on_rates.back(), on.seconds,
        on.cpu_seconds, static_cast<unsigned long long>(on.requests), on.server_cpu_seconds,
        pair_costs.back(), pair_cpu_costs.back());
  }
  if (requests == 0 || failures > 0) {
    std::fprintf(stderr, "the scraper got %llu answers and %llu failures\n",
                 static_cast<unsigned long long>(requests),
                 static_cast<unsigned long long>(failures));
    return 1;
  }
  const auto off = bench::stats::of(off_rates), on = bench::stats::of(on_rates);
  const double cost = 100.0 * (1.0 - on.median / off.median);
  const double pair_cost = bench::stats::of(pair_costs).median;
  const auto cpu_off = bench::stats::of(off_cpu), cpu_on = bench::stats::of(on_cpu);
  const double cpu_cost = 100.0 * (cpu_on.median / cpu_off.median - 1.0);
  const double pair_cpu_cost = bench::stats::of(pair_cpu_costs).median;
  const auto share = bench::stats::of(server_shares), ms = bench::stats::of(server_ms_per_s);
  std::printf(
      "the server's %zu threads: %.3f ms of CPU a second, %.3f %% of the process's CPU "
      "time (median)\n",
      server_threads, ms.median, share.median);
  const double per_second = requests / on_seconds;
  std::printf(
      "server off %.3g rows/s, on %.3g rows/s: cost %.2f %% (pairwise median %.2f %%); "
      "cpu per row off %.1f ns, on %.1f ns: cost %.2f %% (pairwise median %.2f %%)\n",
      off.median, on.median, cost, pair_cost, cpu_off.median, cpu_on.median, cpu_cost,
      pair_cpu_cost);

  bench::report rep("http", "HTTP API: pel run --http scraped every second against the server off");
  rep.condition("rows per run", std::to_string(expected.rows));
  rep.condition("pool",
                std::to_string(pool_rows) + " prepared trades (1000 symbols), replayed by copy");
  rep.condition("pipeline", "trades → filter → project → count, parallelism 2 (2 actors)");
  rep.condition("batch size / linger", "1024 / 1 ms");
  rep.condition("scrapes",
                "/metrics and /api/v1/pipelines/bench/instances every 1 s, " +
                    bench::fmt(per_second, "%.2f") + " requests/s, " +
                    bench::fmt(bytes / static_cast<double>(requests), "%.0f") +
                    " bytes per answer on average; the server samples the job every 1 s");
  rep.condition("runs", std::to_string(runs) + " of each side, alternating (median; min–max)");
  const double cores_off = bench::stats::of(off_cores).median;
  if (cores_off < 1.5)
    rep.condition("note", "the process got " + bench::fmt(cores_off, "%.2f") +
                              " of the machine's cores (others were busy): wall-clock and "
                              "CPU-per-row figures move by up to ±15 % from run to run whatever "
                              "the server does; the server threads' own CPU time is measured "
                              "directly and does not depend on that");
  rep.metric("PEL p=2, HTTP server off", off, "rows/s", 1.0);
  rep.metric("PEL p=2, HTTP server on and scraped every second", on, "rows/s",
             on.median / off.median);
  rep.value("cores used, server off (CPU time / wall time)", cores_off, "cores");
  rep.value("cores used, server on", bench::stats::of(on_cores).median, "cores");
  rep.value("throughput cost of the HTTP server: 1 − median on / median off", cost, "%", 2.0, true);
  rep.value("throughput cost: median of the runs' pairwise costs", pair_cost, "%", 2.0, true);
  rep.value("process CPU time per row, server off", cpu_off.median, "ns");
  rep.value("process CPU time per row, server on", cpu_on.median, "ns");
  rep.value("CPU cost of the HTTP server: median on / median off − 1", cpu_cost, "%", 2.0, true);
  rep.value("CPU cost: median of the runs' pairwise costs", pair_cpu_cost, "%", 2.0, true);
  rep.value("CPU time of the server's " + std::to_string(server_threads) +
                " threads (sampler, listener, workers) per second of run (median; " +
                bench::fmt(ms.min, "%.3g") + "–" + bench::fmt(ms.max, "%.3g") + ")",
            ms.median, "ms");
  rep.value("the server's threads' share of the process's CPU time (median; " +
                bench::fmt(share.min, "%.3g") + "–" + bench::fmt(share.max, "%.3g") + ")",
            share.median, "%", 2.0, true);
  rep.write(PEL_SOURCE_DIR "/bench/results");
  return 0;
}
