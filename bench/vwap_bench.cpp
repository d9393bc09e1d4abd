// 1-second tumbling-window VWAP per symbol over prepared trades (10,000 symbols, 2,000 trades
// per ms of event time), with its baseline in the same run:
//   1. throughput: the simplest fast program, a hand-written fused single-threaded loop over
//      the prepared trades with symbols interned to integer indexes before timing (state is a
//      vector indexed by symbol), against
//      a. the full pipeline in PEL at parallelism 2 through pel::runtime::job, from YAML, as
//         planned by default: two-phase aggregation, `pre_aggregate: auto` (replay source →
//         local window half → hash by symbol → global window half → checksum sink),
//      b. the same pipeline with `pre_aggregate: never` (replay source → hash by symbol →
//         window operator → checksum sink: every trade crosses the shuffle), and
//      c. the window operator alone, driven directly (one instance, no runtime);
//      checksums (windows fired, sum of VWAPs) must match or the benchmark fails;
//   2. state bytes per key of the window operator (VWAP, one open window per key);
//   3. latency from a window's end to its result leaving the sink: a paced source stamps each
//      trade's event time with the steady clock, so window end and sink arrival are on one
//      clock; p50/p99/p99.9/max over all results at a fixed offered rate.
// Writes bench/results/vwap.json and bench/results/vwap.md.
//
//   vwap_bench [--trades=20000000] [--runs=3] [--latency-rate=200000] [--latency-seconds=6]
//              [--only=operator|halves|pipeline|single-phase|latency|latency-single-phase]
//              (profiling: one part, repeated --runs times, no report written)

#include "bench_support.hpp"
#include "replay_source.hpp"
#include "vwap_workload.hpp"
#include "window.hpp"

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
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace pel;
using namespace bench::vwap;

namespace {




// ---- prepared input ------------------------------------------------------------------------


// ---- baseline ------------------------------------------------------------------------------


// ---- the window operator alone ---------------------------------------------------------------

struct op_run {
  checksum sum;
  std::size_t state_bytes = 0;
  std::size_t keys = 0;
  std::int64_t fire_ns = 0;      ///< time in watermark calls that fired windows
  std::uint64_t fired_rows = 0;  ///< windows those calls emitted
};

op_run through_operator(std::vector<core::batch>& in, const core::schema_ptr& schema) {
  operators::window_options o;
  o.key = {"symbol"};
  o.kind = operators::window_kind::tumbling;
  o.size_ns = window_ns;
  auto aggs = operators::aggregate_set::compile_text({{"vwap", "vwap(price, qty)"}}, *schema);
  operators::window_operator op(o, std::move(aggs), schema);
  core::operator_context ctx;
  op.open(ctx);
  op_run run;
  core::outputs out;
  auto drain = [&] {
    for (std::size_t i = 0; i < out.main.size(); ++i) {
      double v;
      if (core::as_number(out.main.row(i)[3], v)) {
        ++run.sum.windows;
        run.sum.vwap_sum += v;
      }
    }
    out.main.clear();
  };
  for (auto& b : in) {
    const std::int64_t last = b.times.back();
    op.process(b, 0, out);
    const std::size_t before = out.main.size();
    const auto f0 = core::steady_ns();
    op.on_watermark({last}, out);
    if (out.main.size() > before) {
      run.fire_ns += core::steady_ns() - f0;
      run.fired_rows += out.main.size() - before;
    }
    if (run.keys < op.keys()) {
      run.keys = op.keys();
      run.state_bytes = op.state_bytes();
    }
    drain();
  }
  op.finish(out);
  drain();
  return run;
}

// ---- the two halves alone, one thread ----------------------------------------------------

/// The local half (pre-aggregating from the start) and the global half driven directly, one
/// batch at a time with the watermark after each: the two-phase path without the runtime.
checksum through_halves(std::vector<core::batch>& in, const core::schema_ptr& schema,
                        std::size_t first = 0, std::size_t step = 1) {
  operators::window_options o;
  o.key = {"symbol"};
  o.kind = operators::window_kind::tumbling;
  o.size_ns = window_ns;
  o.pre_aggregate = operators::pre_aggregation::always;
  auto half = [&](core::phase ph) {  // a split consumes the operator it is made from
    operators::window_operator whole(
        o, operators::aggregate_set::compile_text({{"vwap", "vwap(price, qty)"}}, *schema), schema);
    return whole.split(ph);
  };
  auto local = half(core::phase::local), global = half(core::phase::global);
  core::operator_context ctx;
  ctx.batch_size = batch_rows;
  local->open(ctx);
  global->open(ctx);
  checksum sum;
  core::outputs lo, go;
  const int col = global->output_schema()->index_of("vwap");
  auto drain = [&] {
    if (!lo.main.empty()) {
      global->process(lo.main, 0, go);
      lo.main.clear();
    }
    for (std::size_t i = 0; i < go.main.size(); ++i) {
      double v;
      if (core::as_number(go.main.row(i)[col], v)) {
        ++sum.windows;
        sum.vwap_sum += v;
      }
    }
    go.main.clear();
  };
  for (std::size_t i = first; i < in.size(); i += step) {
    core::batch& b = in[i];
    const core::event_time wm{b.times.back()};
    local->process(b, 0, lo);
    b = core::batch(3);  // as the runtime does: the batch is freed once processed
    local->on_watermark(wm, lo);
    drain();
    global->on_watermark(wm, go);
    drain();
  }
  local->finish(lo);
  drain();
  global->finish(go);
  drain();
  return sum;
}

// ---- the cost of a window end in two phases, halves driven directly ------------------------

/// One local half gets `per_key` trades for each of 10,000 symbols in one window, then the
/// watermark passes the window's end: prints the ns per key of the local flush, of the global
/// half's merge of those partials, and of its firing, against the single operator's firing.
void burst_costs(const core::schema_ptr& schema, int per_key) {
  const auto names = symbol_names();
  auto make = [&](int ph) {
    operators::window_options o;
    o.key = {"symbol"};
    o.kind = operators::window_kind::tumbling;
    o.size_ns = window_ns;
    auto aggs = operators::aggregate_set::compile_text({{"vwap", "vwap(price, qty)"}}, *schema);
    auto whole = std::make_unique<operators::window_operator>(o, std::move(aggs), schema);
    core::operator_ptr op = ph == 0 ? std::move(whole)
                                    : whole->split(ph == 1 ? core::phase::local : core::phase::global);
    core::operator_context ctx;
    op->open(ctx);
    return op;
  };
  auto single = make(0), local = make(1), global = make(2);
  double local_ns = 0, merge_ns = 0, fire_ns = 0, single_ns = 0;
  std::size_t results = 0, single_results = 0;
  constexpr int windows = 20;
  for (int w = 1; w <= windows; ++w) {
    core::batch in(3);
    for (int r = 0; r < per_key; ++r)
      for (int k = 0; k < symbols; ++k) {
        auto* row = in.append(w * window_ns + r * symbols + k);
        row[0] = names[k];
        row[1] = 100.0 + k % 7;
        row[2] = std::int64_t(1 + k % 5);
      }
    core::outputs lo, so, go;
    auto copy = in;
    local->process(in, 0, lo);
    single->process(copy, 0, so);
    const core::event_time end{(w + 1) * window_ns};
    const auto t0 = core::steady_ns();
    local->on_watermark(end, lo);
    const auto t1 = core::steady_ns();
    global->process(lo.main, 0, go);
    const auto t2 = core::steady_ns();
    global->on_watermark(end, go);
    const auto t3 = core::steady_ns();
    single->on_watermark(end, so);
    const auto t4 = core::steady_ns();
    local_ns += double(t1 - t0);
    merge_ns += double(t2 - t1);
    fire_ns += double(t3 - t2);
    single_ns += double(t4 - t3);
    results += go.main.size();
    single_results += so.main.size();
  }
  const double keys = double(symbols) * windows;
  std::printf("per key at a window end: local flush %.0f ns, global merge %.0f ns, global firing "
              "%.0f ns; single operator firing %.0f ns (%zu / %zu results)\n",
              local_ns / keys, merge_ns / keys, fire_ns / keys, single_ns / keys, results,
              single_results);
}

// ---- bench components (registered in the bench's own registry) ----------------------------

std::vector<core::batch>* g_feed = nullptr;

double g_paced_rate = 0, g_paced_seconds = 0;

/// Trades at a fixed rate for `seconds`, event time = the steady clock at emission, symbols
/// round robin over the 10,000 names.
class paced_source final : public core::source_base {
public:
  explicit paced_source(core::schema_ptr s) : schema_(std::move(s)), names_(symbol_names()) {}
  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override {
    start_ = core::steady_ns();
    rate_ = g_paced_rate / ctx.parallelism;  // the instances share the offered rate
  }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    const std::int64_t now = core::steady_ns();
    const double elapsed = static_cast<double>(now - start_) / 1e9;
    if (elapsed >= g_paced_seconds) return core::poll_status::end;
    const auto due = static_cast<std::uint64_t>(elapsed * rate_);
    if (due <= sent_) return core::poll_status::idle;
    const std::size_t n = std::min<std::uint64_t>(due - sent_, max_rows);
    for (std::size_t i = 0; i < n; ++i) {
      core::value* r = out.main.append(now);
      r[0] = names_[(sent_ + i) % symbols];
      r[1] = 100.0 + static_cast<double>((sent_ + i) % 1000) / 10;
      r[2] = static_cast<std::int64_t>(1 + (sent_ + i) % 7);
    }
    sent_ += n;
    return core::poll_status::data;
  }

private:
  core::schema_ptr schema_;
  std::vector<std::string> names_;
  std::int64_t start_ = 0;
  double rate_ = 0;
  std::uint64_t sent_ = 0;
};

std::mutex g_lat_mu;
std::vector<std::int64_t> g_latencies;

/// Records steady_ns() at arrival minus the window's end (epoch ms of the steady clock).
class latency_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr& in) override {
    col_ = in->index_of("window_end");
  }
  void write(const core::batch& b) override {
    const std::int64_t now = core::steady_ns();
    for (std::size_t i = 0; i < b.size(); ++i)
      local_.push_back(now - std::get<std::int64_t>(b.row(i)[col_]) * ms);
  }
  void close() override {
    std::lock_guard<std::mutex> g(g_lat_mu);
    g_latencies.insert(g_latencies.end(), local_.begin(), local_.end());
  }

private:
  int col_ = -1;
  std::vector<std::int64_t> local_;
};

spec::registry bench_registry(const core::schema_ptr& trades) {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  auto add_source = [&](const char* type, const char* summary, spec::source_factory f) {
    spec::component_schema s;
    s.type = type;
    s.summary = summary;
    reg.add_source(s, std::move(f));
  };
  auto add_sink = [&](const char* type, const char* summary, spec::sink_factory f) {
    spec::component_schema s;
    s.type = type;
    s.summary = summary;
    reg.add_sink(s, std::move(f));
  };
  add_source("bench_replay", "prepared trades (benchmark only)",
             [trades](const spec::config&) { return std::make_unique<bench::replay_source>(trades, g_feed); });
  add_source("bench_paced", "trades stamped with the steady clock at a fixed rate (benchmark only)",
             [trades](const spec::config&) { return std::make_unique<paced_source>(trades); });
  add_sink("bench_checksum", "count and sum of vwap (benchmark only)",
           [](const spec::config&) { return std::make_unique<checksum_sink>(); });
  add_sink("bench_latency", "window end to sink arrival (benchmark only)",
           [](const spec::config&) { return std::make_unique<latency_sink>(); });
  return reg;
}

std::string vwap_yaml(int parallelism, const char* source, const char* sink,
                      bool pre_aggregate = true) {
  // `pre_aggregate` true: the default (`auto`); false: `never`.
  return std::string("pipeline:\n  parallelism: ") + std::to_string(parallelism) +
         "\n  batch: {size: " + std::to_string(batch_rows) + ", linger: 1ms}\n"
         "sources:\n  trades:\n    type: " + source + "\n"
         "operators:\n  vwap:\n    type: window\n    input: trades\n    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    aggregates:\n      vwap: vwap(price, qty)\n" +
         (pre_aggregate ? "" : "    pre_aggregate: never\n") +
         "sinks:\n  out:\n    type: " + sink + "\n    input: vwap\n";
}

/// Runs the PEL pipeline over a fresh copy of the prepared input; returns seconds.
double run_pel(const spec::registry& reg, const prepared& p, int parallelism, checksum& out,
               bool pre_aggregate = true, double* cores = nullptr) {
  std::vector<core::batch> feed = p.batches;  // copied before the clock starts
  g_feed = &feed;
  g_sum = {};
  auto pipeline = spec::load_text(
      vwap_yaml(parallelism, "bench_replay", "bench_checksum", pre_aggregate), "vwap.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::job job(plan);
  const double c0 = bench::process_cpu_seconds();
  const auto t0 = core::steady_ns();
  job.start();
  auto r = job.wait();
  const auto t1 = core::steady_ns();
  if (cores != nullptr)
    *cores = (bench::process_cpu_seconds() - c0) / (static_cast<double>(t1 - t0) / 1e9);
  if (std::getenv("PEL_BENCH_DEBUG"))  // per component, summed over instances
    for (const auto& c : r.components)
      std::fprintf(stderr, "%s: in %llu out %llu busy %.1f ms backpressure %.1f ms (wall %.1f ms)\n",
                   c.name.c_str(), static_cast<unsigned long long>(c.rows_in),
                   static_cast<unsigned long long>(c.rows_out), double(c.busy_ns) / 1e6,
                   double(c.backpressure_ns) / 1e6, double(t1 - t0) / 1e6);
  if (!r.ok) {
    std::fprintf(stderr, "pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  out = g_sum;
  return static_cast<double>(t1 - t0) / 1e9;
}

std::int64_t percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

struct latency {
  std::size_t results = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // ms
};

/// Window end (steady clock) → result at the sink, over a paced run of the pipeline.
latency measure_latency(const spec::registry& reg, int parallelism, bool pre_aggregate) {
  g_latencies.clear();
  auto pipeline = spec::load_text(
      vwap_yaml(parallelism, "bench_paced", "bench_latency", pre_aggregate), "latency.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  {
    runtime::job job(plan);
    job.start();
    auto r = job.wait();
    if (!r.ok) {
      std::fprintf(stderr, "latency pipeline failed: %s\n", r.error.c_str());
      std::exit(1);
    }
  }
  // The last windows close at end of stream, not by the watermark: only results of windows
  // that ended before the source stopped count.
  std::vector<std::int64_t> v;
  for (auto l : g_latencies)
    if (l >= 0) v.push_back(l);
  latency out;
  out.results = v.size();
  out.p50 = double(percentile(v, 0.50)) / 1e6;
  out.p99 = double(percentile(v, 0.99)) / 1e6;
  out.p999 = double(percentile(v, 0.999)) / 1e6;
  out.max = v.empty() ? 0 : double(*std::max_element(v.begin(), v.end())) / 1e6;
  std::printf("latency window end → sink at %.3g trades/s, %s (%zu results): p50 %.3f ms, "
              "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
              g_paced_rate, pre_aggregate ? "pre_aggregate auto" : "single phase", out.results, out.p50,
              out.p99, out.p999, out.max);
  return out;
}


} // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const std::size_t n = args.get_size("trades", 20'000'000);
  const int runs = static_cast<int>(std::max<std::size_t>(1, args.get_size("runs", 3)));
  const int parallelism = static_cast<int>(args.get_size("parallelism", 2));
  const std::string only = args.get_string("only", "");

  std::printf("preparing %zu trades...\n", n);
  prepared p = prepare(n);
  auto reg = bench_registry(p.schema);
  if (!only.empty()) {
    // Profiling mode: one side, repeated, nothing written.
    const checksum want = fused_loop(p.plain);
    for (int i = 0; i < runs; ++i) {
      checksum got;
      if (only == "operator") {
        auto copy = p.batches;
        const auto t1 = core::steady_ns();
        got = through_operator(copy, p.schema).sum;
        std::printf("operator: %.3g trades/s\n", double(n) / (double(core::steady_ns() - t1) / 1e9));
      } else if (only == "halves") {
        auto copy = p.batches;
        const auto t1 = core::steady_ns();
        got = through_halves(copy, p.schema);
        std::printf("halves: %.3g trades/s\n", double(n) / (double(core::steady_ns() - t1) / 1e9));
      } else if (only == "halves2") {
        auto copy = p.batches;
        const auto t1 = core::steady_ns();
        std::thread other([&] { through_halves(copy, p.schema, 1, 2); });
        through_halves(copy, p.schema, 0, 2);
        other.join();
        std::printf("halves2: %.3g trades/s\n", double(n) / (double(core::steady_ns() - t1) / 1e9));
        continue;
      } else if (only == "burst") {
        burst_costs(p.schema, static_cast<int>(args.get_size("per-key", 10)));
        continue;
      } else if (only == "latency" || only == "latency-single-phase") {
        g_paced_rate = args.get_double("latency-rate", 200'000);
        g_paced_seconds = args.get_double("latency-seconds", 6);
        measure_latency(reg, parallelism, only == "latency");
        continue;
      } else if (only == "pipeline" || only == "single-phase") {
        const double s = run_pel(reg, p, parallelism, got, only == "pipeline");
        std::printf("%s: %.3g trades/s\n", only.c_str(), double(n) / s);
      } else {
        std::fprintf(stderr, "--only: operator, halves, burst, pipeline, single-phase, latency or "
                             "latency-single-phase\n");
        return 2;
      }
      require_same(got, want, only.c_str());
    }
    return 0;
  }

  // 1. throughput --------------------------------------------------------------------------
  checksum base_sum = fused_loop(p.plain);  // warm-up
  std::vector<double> base_rates, pel_rates, single_rates, op_rates, pel_cores;
  op_run op_last;
  checksum c;
  run_pel(reg, p, parallelism, c);  // warm-up
  require_same(c, base_sum, "PEL");
  for (int i = 0; i < runs; ++i) {
    auto t0 = core::steady_ns();
    base_sum = fused_loop(p.plain);
    base_rates.push_back(static_cast<double>(n) / (static_cast<double>(core::steady_ns() - t0) / 1e9));

    double cores = 0;
    pel_rates.push_back(static_cast<double>(n) / run_pel(reg, p, parallelism, c, true, &cores));
    pel_cores.push_back(cores);
    require_same(c, base_sum, "PEL");

    single_rates.push_back(static_cast<double>(n) / run_pel(reg, p, parallelism, c, false));
    require_same(c, base_sum, "PEL single phase");

    auto copy = p.batches;
    t0 = core::steady_ns();
    op_last = through_operator(copy, p.schema);
    op_rates.push_back(static_cast<double>(n) / (static_cast<double>(core::steady_ns() - t0) / 1e9));
    require_same(op_last.sum, base_sum, "window operator");
  }
  const auto base = bench::stats::of(base_rates), pel_s = bench::stats::of(pel_rates),
             single_s = bench::stats::of(single_rates), op_s = bench::stats::of(op_rates);
  const double per_key = op_last.keys ? double(op_last.state_bytes) / double(op_last.keys) : 0;
  const double cores_used = bench::stats::of(pel_cores).median;
  std::printf("checksum: %llu windows, vwap sum %.6f (fused loop, PEL and operator agree)\n",
              static_cast<unsigned long long>(base_sum.windows), base_sum.vwap_sum);
  std::printf("trades/s: fused loop %.3g, PEL p=%d %.3g (%.3fx), single phase %.3g (%.3fx), "
              "window operator alone %.3g (%.3fx)\n",
              base.median, parallelism, pel_s.median, pel_s.median / base.median, single_s.median,
              single_s.median / base.median, op_s.median, op_s.median / base.median);
  const double fire_ns = op_last.fired_rows ? double(op_last.fire_ns) / double(op_last.fired_rows) : 0;
  std::printf("cores used by PEL p=%d as planned (CPU time / wall time, median): %.2f\n",
              parallelism, cores_used);
  std::printf("state: %.1f bytes per key (%zu keys); firing %.0f ns per window\n", per_key,
              op_last.keys, fire_ns);

  // 2. latency: window end (steady clock) → result at the sink -----------------------------
  g_paced_rate = args.get_double("latency-rate", 200'000);
  g_paced_seconds = args.get_double("latency-seconds", 6);
  const latency lat = measure_latency(reg, parallelism, true);
  const latency lat_single = measure_latency(reg, parallelism, false);

  // results -------------------------------------------------------------------------------
  bench::report rep("vwap", "Windows: 1 s tumbling VWAP per symbol");
  rep.condition("trades", std::to_string(n));
  rep.condition("symbols", std::to_string(symbols));
  rep.condition("event time", "2,000 trades per ms, in order");
  rep.condition("parallelism", std::to_string(parallelism));
  rep.condition("batch size / linger", std::to_string(batch_rows) + " / 1 ms");
  rep.condition("runs", std::to_string(runs) + " (median; min–max)");
  rep.condition("baseline", "fused single-threaded loop over plain structs, symbols interned to "
                            "integer indexes before timing, state in a vector by index");
  rep.condition("checksum", std::to_string(base_sum.windows) + " windows, VWAP sum " +
                                bench::fmt(base_sum.vwap_sum, "%.6f") + ", equal on all sides");
  rep.metric("fused loop (baseline)", base, "trades/s", 1.0);
  rep.metric("PEL p=" + std::to_string(parallelism) +
                 " full pipeline as planned, `pre_aggregate: auto` (replay source → local window "
                 "half → hash → window → sink, pel::runtime::job)",
             pel_s, "trades/s", pel_s.median / base.median, 0.25);
  rep.value("cores used by PEL p=" + std::to_string(parallelism) +
                " as planned (CPU time / wall time)",
            cores_used, "cores");
  rep.metric("PEL p=" + std::to_string(parallelism) +
                 " single phase, `pre_aggregate: never` (replay source → hash → window → sink)",
             single_s, "trades/s", single_s.median / base.median);
  rep.metric("window operator alone (1 instance, no runtime)", op_s, "trades/s",
             op_s.median / base.median);
  rep.value("window state per key (VWAP, one open window)", per_key, "bytes");
  rep.value("firing cost per window (watermark call that emits, operator alone)", fire_ns, "ns");
  rep.value("latency p50, window end → result at the sink, at " + bench::fmt_rate(g_paced_rate) +
                " trades/s, as planned (`auto`)",
            lat.p50, "ms");
  rep.value("latency p99", lat.p99, "ms", 5.0, true);
  rep.value("latency p99.9", lat.p999, "ms");
  rep.value("latency max", lat.max, "ms");
  rep.value("latency p50, single phase (`pre_aggregate: never`)", lat_single.p50, "ms");
  rep.value("latency p99, single phase", lat_single.p99, "ms");

  rep.write(PEL_SOURCE_DIR "/bench/results");
  return 0;
}
