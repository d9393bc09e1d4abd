// Live rescaling (`parallelism: {initial, min, max}` with `pipeline.scaling`), three figures,
// each against its own baseline in the same run:
//   1. decisions to converge: the real runtime in a closed loop. The built-in generator's rate
//      steps 10,000/s → 20,000/s (2x) → 80,000/s (4x) into an operator of the benchmark's own
//      whose instances each handle at most 20,000 rows/s (it waits 50 µs per row, as an
//      enrichment call to another service does, so that instances add capacity on a 2-core
//      machine), `parallelism: {initial: 1, min: 1, max: 8}`, DS2 policy. Counted: the
//      decisions made in the segment after each step; and whether the parallelism reached
//      keeps up: the generator's rows per second over the last 3 s of the segment against
//      the rate it offers (the baseline of this figure: what the load asks for);
//   2. time from a decision to the new instances processing, with ~10 MB of keyed state: a
//      source of the benchmark's own (prepared symbol strings, paced) → a keyed 1 h tumbling
//      window with five aggregates over 63,000 symbols (about 10 MB) (no window fires during the run, so
//      the state only grows to all keys) → a sink that drops rows; the schedule policy
//      rescales it 1 → 4 → 2 → 3. Reported per rescale: `scaling_event::took_ns` (decision to
//      the last new instance having restored its state) and `state_bytes` (bytes handed
//      over). Baseline: the same work without actors — the same operator (built from the same
//      plan node) filled with the same keys, then for each step the old instances' state
//      serialised and every new instance built, opened and given all the old snapshots to
//      restore (as the runtime does: each new instance keeps the key groups it owns), in a
//      plain loop. This is the floor of a rescale (serialise + restore), which is why it is
//      the baseline rather than a checkpoint's duration (that adds a durable write a rescale
//      does not do). The ratio is runtime / hand loop;
//   3. throughput dip during a rescale: the pipeline of 2 at parallelism 2, source unpaced
//      (saturated), rescaled 2 → 3 by the schedule policy; records the source emitted per
//      100 ms around the rescale: the lowest 100 ms window from the decision to 200 ms after
//      the rescale completed, against the median of the windows before the decision. Baseline:
//      the same run with `runtime::options::autoscale = false` (no rescale), the same windows.
// Writes bench/results/rescale.json and bench/results/rescale.md.
//
//   rescale_bench [--runs=3] [--loop-runs=3] [--keys=63000] [--rate=100000]
//                 [--only=loop|state|dip]

#include "bench_support.hpp"

#include "pel/connectors/register.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/time.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"
#include "pel/state/key.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace pel;

namespace {

constexpr std::int64_t ms = 1'000'000;

void sleep_ms(std::int64_t n) { std::this_thread::sleep_for(std::chrono::milliseconds(n)); }

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ==== components of the benchmark ============================================================

/// Passes rows on after waiting `ns_per_row` per row: an instance handles at most
/// 1e9 / ns_per_row rows a second however many cores there are. Keeps no state.
class latency_op final : public core::operator_base {
public:
  latency_op(core::schema_ptr in, std::int64_t ns_per_row) : in_(std::move(in)), ns_(ns_per_row) {}
  core::schema_ptr output_schema() const override { return in_; }
  bool rescalable() const override { return true; }
  void process(core::batch& in, int, core::outputs& out) override {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns_ * static_cast<std::int64_t>(in.size())));
    for (std::size_t r = 0; r < in.size(); ++r) out.main.append_move(in.row(r), in.times[r]);
  }

private:
  core::schema_ptr in_;
  std::int64_t ns_;
};

constexpr std::int64_t enrich_ns_per_row = 50'000;  // 20,000 rows/s per instance

/// Drops what it gets.
class null_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr&) override {}
  void write(const core::batch&) override {}
};

// The keyed source: row i has symbol g_symbols[i % keys], a price and a quantity, event time
// 1 µs per row. The first `keys` rows (every symbol once) go out as fast as the pipeline takes
// them; after that, `g_rate` rows/s (0: as fast as it takes them). Ends when `g_stop` is set.
std::vector<std::string> g_symbols;  // prepared before any clock starts
std::atomic<double> g_rate{0};
std::atomic<bool> g_stop{false};
std::atomic<std::uint64_t> g_emitted{0};

core::schema_ptr keyed_schema() {
  static core::schema_ptr s = std::make_shared<core::schema>(std::vector<core::field>{
      {"symbol", core::value_type::string}, {"price", core::value_type::number}, {"qty", core::value_type::integer}});
  return s;
}

class keyed_source final : public core::source_base {
public:
  core::schema_ptr output_schema() const override { return keyed_schema(); }
  void open(const core::operator_context&) override { rate_ = g_rate.load(); }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    if (g_stop.load(std::memory_order_relaxed)) return core::poll_status::end;
    const std::uint64_t keys = g_symbols.size();
    std::size_t n = max_rows;
    if (rate_ > 0 && next_ >= keys) {
      if (paced_from_ns_ == 0) paced_from_ns_ = core::steady_ns(), paced_from_ = next_;
      const double s = static_cast<double>(core::steady_ns() - paced_from_ns_) / 1e9;
      const auto due = paced_from_ + static_cast<std::uint64_t>(s * rate_);
      if (due <= next_) return core::poll_status::idle;
      n = std::min<std::uint64_t>(due - next_, max_rows);
    }
    for (std::size_t i = 0; i < n; ++i, ++next_) {
      core::value* r = out.main.append(1'700'000'000'000 * ms + static_cast<std::int64_t>(next_) * 1000);
      r[0] = g_symbols[next_ % keys];
      r[1] = 100.0 + static_cast<double>(next_ % 397) / 4;
      r[2] = static_cast<std::int64_t>(1 + next_ % 7);
    }
    g_emitted.fetch_add(n, std::memory_order_relaxed);
    return core::poll_status::data;
  }
  bool replayable() const override { return true; }
  void snapshot(core::state_writer& w) override { w.put<std::uint64_t>(next_); }
  void restore(core::state_reader& r) override {
    next_ = r.get<std::uint64_t>();
    paced_from_ns_ = 0;
  }

private:
  std::uint64_t next_ = 0, paced_from_ = 0;
  std::int64_t paced_from_ns_ = 0;
  double rate_ = 0;
};

spec::registry bench_registry() {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_generator_connectors(reg);
  auto schema = [](const char* type, const char* summary, int min_inputs, int max_inputs) {
    spec::component_schema s;
    s.type = type;
    s.summary = summary;
    s.min_inputs = min_inputs;
    s.max_inputs = max_inputs;
    return s;
  };
  reg.add_operator(schema("bench_enrich", "waits 50 µs per row (benchmark only)", 1, 1),
                   [](const spec::config&, const std::vector<core::schema_ptr>& in) {
                     return std::make_unique<latency_op>(in.at(0), enrich_ns_per_row);
                   });
  reg.add_source(schema("bench_keys", "prepared symbols, paced (benchmark only)", 0, 0),
                 [](const spec::config&) { return std::make_unique<keyed_source>(); });
  reg.add_sink(schema("bench_null", "drops rows (benchmark only)", 1, -1),
               [](const spec::config&) { return std::make_unique<null_sink>(); });
  return reg;
}

runtime::result finish(runtime::job& job, const char* what) {
  if (!job.wait_for(std::chrono::seconds(120))) {
    std::fprintf(stderr, "%s: the job did not end within 120 s\n", what);
    std::exit(1);
  }
  auto r = job.wait();
  if (!r.ok) {
    std::fprintf(stderr, "%s failed: %s\n", what, r.error.c_str());
    std::exit(1);
  }
  return r;
}

// ==== 1. the closed loop =====================================================================

struct step {
  double for_s, per_second;
};
const std::vector<step> loop_steps = {{5, 10'000}, {9, 20'000}, {9, 80'000}};

std::string loop_yaml() {
  std::string rate = "[";
  std::uint64_t count = 0;
  for (std::size_t i = 0; i < loop_steps.size(); ++i) {
    rate += (i ? ", " : "") + std::string("{for: ") + bench::fmt(loop_steps[i].for_s, "%g") +
            "s, per_second: " + bench::fmt(loop_steps[i].per_second, "%.0f") + "}";
    count += static_cast<std::uint64_t>(loop_steps[i].for_s * loop_steps[i].per_second);
  }
  rate += "]";
  return "pipeline:\n"
         "  name: closed_loop\n"
         "  batch: {size: 256, linger: 2ms}\n"
         "  scaling: {policy: ds2, interval: 500ms, target_utilisation: 0.7, stabilisation: 2s, "
         "scale_in_delay: 3s}\n"
         "sources:\n"
         "  ticks:\n"
         "    type: generator\n"
         "    profile: trades\n"
         "    rate: " + rate + "\n"
         "    count: " + std::to_string(count) + "\n"
         "operators:\n"
         "  enriched:\n"
         "    type: bench_enrich\n"
         "    input: ticks\n"
         "    parallelism: {initial: 1, min: 1, max: 8}\n"
         "sinks:\n"
         "  out:\n"
         "    type: bench_null\n"
         "    input: enriched\n";
}

struct loop_segment {
  int decisions = 0;
  double last_decision_s = 0;  ///< from the step to the segment's last decision (0: none)
  std::uint32_t final_parallelism = 0;
  double emitted_rate = 0;  ///< the generator's rows/s over the last 3 s of the segment
  double offered = 0;
  std::string log;
};

struct loop_run {
  std::vector<loop_segment> seg;  // one per step of the rate schedule
};

loop_run run_loop(const spec::registry& reg) {
  auto pipeline = spec::load_text(loop_yaml(), "closed_loop.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::options o;
  o.threads = 12;  // the instances wait rather than compute: enough workers for 8 of them
  struct sample {
    std::int64_t t;
    std::uint64_t rows;
    std::uint32_t p;
  };
  std::vector<sample> samples;
  runtime::job job(plan, o);
  const auto t0 = core::steady_ns();
  job.start();
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done.load()) {
      std::uint64_t rows = 0;
      for (const auto& m : job.metrics())
        if (m.component == "ticks") rows += m.rows_out;
      samples.push_back({core::steady_ns() - t0, rows, job.parallelism("enriched")});
      sleep_ms(100);
    }
  });
  const auto r = finish(job, "closed loop");
  done = true;
  sampler.join();
  loop_run out;
  double begin = 0;
  for (const auto& st : loop_steps) {
    const double end = begin + st.for_s;
    loop_segment s;
    s.offered = st.per_second;
    for (const auto& e : r.scaling) {
      const double at = static_cast<double>(e.at_ns) / 1e9;
      if (at >= begin && at < end) {
        ++s.decisions;
        s.last_decision_s = at - begin;
        s.log += bench::fmt(at, "%.1f") + " s " + std::to_string(e.from) + "→" + std::to_string(e.to) + " ";
      }
    }
    // The samples nearest end - 3 s and end.
    auto nearest = [&](double t) {
      const auto ns = static_cast<std::int64_t>(t * 1e9);
      const sample* best = &samples.front();
      for (const auto& x : samples)
        if (std::llabs(x.t - ns) < std::llabs(best->t - ns)) best = &x;
      return *best;
    };
    const sample a = nearest(end - 3), b = nearest(end - 0.05);
    s.emitted_rate = b.t > a.t ? static_cast<double>(b.rows - a.rows) / (static_cast<double>(b.t - a.t) / 1e9) : 0;
    s.final_parallelism = b.p;
    std::printf("  segment %.0f/s: %d decisions (%s), parallelism %u at its end, generator %.0f rows/s over its "
                "last 3 s (%.2f of offered)\n",
                st.per_second, s.decisions, s.log.c_str(), s.final_parallelism, s.emitted_rate,
                s.emitted_rate / st.per_second);
    out.seg.push_back(std::move(s));
    begin = end;
  }
  return out;
}

// ==== 2 and 3. the keyed window ==============================================================

std::string window_yaml(const std::string& parallelism, const std::string& schedule) {
  return "pipeline:\n"
         "  name: keyed_state\n"
         "  batch: {size: 1024, linger: 1ms}\n" +
         (schedule.empty() ? std::string() : "  scaling:\n    policy: schedule\n    schedule:\n" + schedule) +
         "sources:\n"
         "  trades:\n"
         "    type: bench_keys\n"
         "operators:\n"
         "  bars:\n"
         "    type: window\n"
         "    input: trades\n"
         "    key: symbol\n"
         "    parallelism: " + parallelism + "\n"
         "    window: {type: tumbling, size: 1h}\n"
         "    pre_aggregate: never\n"
         "    aggregates: {vwap: \"vwap(price, qty)\", n: count(), lo: min(price), hi: max(price), "
         "volume: sum(qty)}\n"
         "sinks:\n"
         "  out:\n"
         "    type: bench_null\n"
         "    input: bars\n";
}

const std::vector<std::uint32_t> state_steps = {4, 2, 3};  // from 1

struct state_run {
  std::vector<runtime::scaling_event> events;
};

state_run run_state(const spec::registry& reg, double rate) {
  std::string schedule;
  for (std::size_t i = 0; i < state_steps.size(); ++i)
    schedule += "      - {at: " + std::to_string(1500 + 1500 * i) + "ms, component: bars, parallelism: " +
                std::to_string(state_steps[i]) + "}\n";
  auto pipeline = spec::load_text(window_yaml("{initial: 1, min: 1, max: 4}", schedule), "state.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  g_rate = rate;
  g_stop = false;
  g_emitted = 0;
  runtime::options o;
  o.threads = 2;
  runtime::job job(plan, o);
  const auto t0 = core::steady_ns();
  job.start();
  // Until the last step is done, then a little longer.
  while (core::steady_ns() - t0 < 60'000 * ms) {
    const auto ev = job.scaling_events();
    if (ev.size() == state_steps.size() && !ev.back().outcome.empty()) break;
    sleep_ms(20);
  }
  sleep_ms(300);
  g_stop = true;
  const auto r = finish(job, "keyed state");
  state_run out;
  out.events = r.scaling;
  for (const auto& e : r.scaling)
    std::printf("  %u → %u at %.2f s: %s (took %.1f ms, %.2f MB)\n", e.from, e.to, double(e.at_ns) / 1e9,
                e.outcome.c_str(), double(e.took_ns) / 1e6, double(e.state_bytes) / 1e6);
  return out;
}

struct hand_step {
  std::uint32_t from, to;
  std::int64_t ns;
  std::uint64_t bytes;
};

/// The baseline of figure 2: the same operator filled with every key at parallelism 1, then
/// rescaled 1 → 4 → 2 → 3 by hand: snapshot every old instance, build and open the new ones,
/// restore every old snapshot into each.
std::vector<hand_step> run_hand(const spec::registry& reg) {
  auto pipeline = spec::load_text(window_yaml("1", ""), "state.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  const plan::node* bars = nullptr;
  for (const auto& n : plan.nodes)
    if (n.name == "bars") bars = &n;
  if (bars == nullptr || !bars->make_operator) {
    std::fprintf(stderr, "no window node in the plan\n");
    std::exit(1);
  }
  const std::uint32_t maxp = plan.nodes.empty() ? 128 : pipeline.settings.max_parallelism;
  auto open_all = [&](std::uint32_t p) {
    std::vector<core::operator_ptr> ops;
    for (std::uint32_t i = 0; i < p; ++i) {
      ops.push_back(bars->make_operator(bars->spec.settings, bars->input_schemas));
      core::operator_context c;
      c.name = "bars";
      c.instance = i;
      c.parallelism = p;
      c.max_parallelism = maxp;
      const auto range = state::key_group_range_of(i, p, maxp);
      c.key_group_begin = range.begin;
      c.key_group_end = range.end;
      ops.back()->open(c);
    }
    return ops;
  };
  auto ops = open_all(1);
  core::outputs out;
  out.main = core::batch(static_cast<std::uint32_t>(ops[0]->output_schema()->size()));
  out.late = core::batch(static_cast<std::uint32_t>(keyed_schema()->size()));
  out.dead_letter = core::batch(static_cast<std::uint32_t>(core::dead_letter_schema()->size()));
  const std::size_t keys = g_symbols.size();
  for (std::size_t i = 0; i < 2 * keys; i += 1024) {  // every key twice
    core::batch b(3);
    for (std::size_t j = i; j < std::min(2 * keys, i + 1024); ++j) {
      core::value* r = b.append(1'700'000'000'000 * ms + static_cast<std::int64_t>(j) * 1000);
      r[0] = g_symbols[j % keys];
      r[1] = 100.0 + static_cast<double>(j % 397) / 4;
      r[2] = static_cast<std::int64_t>(1 + j % 7);
    }
    ops[0]->process(b, 0, out);
  }
  std::vector<hand_step> steps;
  std::uint32_t from = 1;
  for (std::uint32_t to : state_steps) {
    const auto t0 = core::steady_ns();
    std::vector<std::string> snapshots;
    std::uint64_t bytes = 0;
    for (auto& op : ops) {
      core::state_writer w;
      op->snapshot(w);
      snapshots.push_back(w.take());
      bytes += snapshots.back().size();
    }
    auto next = open_all(to);
    for (auto& op : next)
      for (const auto& s : snapshots) {
        core::state_reader r(s);
        op->restore(r);
      }
    const auto ns = core::steady_ns() - t0;
    ops = std::move(next);
    steps.push_back({from, to, ns, bytes});
    std::printf("  by hand %u → %u: %.1f ms, %.2f MB\n", from, to, double(ns) / 1e6, double(bytes) / 1e6);
    from = to;
  }
  return steps;
}

struct dip_run {
  double median_before = 0;  ///< rows per 100 ms, median of the windows before the decision
  double min_during = 0;     ///< the lowest window from the decision to 200 ms after done
  double deficit_ms = 0;     ///< rows short of the median over those windows, in ms of it
  std::int64_t at_ns = 0, took_ns = 0;
};

/// The keyed window at parallelism 2, source unpaced; with `rescale`, 2 → 3 at 2 s. Rows the
/// source emitted per 100 ms. `span_ns` (when not rescaling): the span to look at after 2 s.
dip_run run_dip(const spec::registry& reg, bool rescale, std::int64_t span_ns) {
  auto pipeline = spec::load_text(
      window_yaml("{initial: 2, min: 1, max: 4}", "      - {at: 2000ms, component: bars, parallelism: 3}\n"),
      "dip.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  g_rate = 0;
  g_stop = false;
  g_emitted = 0;
  runtime::options o;
  o.threads = 2;
  o.autoscale = rescale;
  std::vector<std::pair<std::int64_t, std::uint64_t>> samples;
  runtime::job job(plan, o);
  const auto t0 = core::steady_ns();
  job.start();
  while (core::steady_ns() - t0 < 4500 * ms) {
    samples.emplace_back(core::steady_ns() - t0, g_emitted.load());
    sleep_ms(100);
  }
  g_stop = true;
  const auto r = finish(job, "throughput dip");
  dip_run d;
  d.at_ns = 2000 * ms;
  d.took_ns = span_ns;
  if (rescale) {
    if (r.scaling.size() != 1 || !r.scaling[0].done) {
      std::fprintf(stderr, "throughput dip: the rescale was not carried out\n");
      std::exit(1);
    }
    d.at_ns = r.scaling[0].at_ns;
    d.took_ns = r.scaling[0].took_ns;
  }
  std::vector<double> before;
  std::vector<double> during;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const auto [ta, ra] = samples[i - 1];
    const auto [tb, rb] = samples[i];
    const double per100 = static_cast<double>(rb - ra) * 100.0 * ms / static_cast<double>(tb - ta);
    if (ta >= 800 * ms && tb <= d.at_ns) before.push_back(per100);
    else if (tb > d.at_ns && ta < d.at_ns + d.took_ns + 200 * ms) during.push_back(per100);
  }
  d.median_before = median_of(before);
  d.min_during = during.empty() ? 0 : *std::min_element(during.begin(), during.end());
  for (double x : during) d.deficit_ms += std::max(0.0, d.median_before - x) / d.median_before * 100;
  std::printf("  %s: median before %.0f rows/100 ms, lowest around %.0f (%.2f), short by %.0f ms of throughput; "
              "decision at %.2f s, took %.1f ms\n",
              rescale ? "rescaled 2 → 3" : "no rescale    ", d.median_before, d.min_during,
              d.min_during / d.median_before, d.deficit_ms, double(d.at_ns) / 1e9, double(d.took_ns) / 1e6);
  return d;
}

} // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int runs = static_cast<int>(args.get_size("runs", 3));
  const int loop_runs = static_cast<int>(args.get_size("loop-runs", 3));
  const std::size_t keys = args.get_size("keys", 63'000);
  const double rate = args.get_double("rate", 100'000);
  const std::string only = args.get_string("only", "");
  const std::string load_start = bench::shell("cut -d' ' -f1-3 /proc/loadavg");

  g_symbols.reserve(keys);
  for (std::size_t i = 0; i < keys; ++i) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "SYM%07zu", i);
    g_symbols.emplace_back(buf);
  }
  const auto reg = bench_registry();
  bench::report rep("rescale", "Live rescaling: convergence, state hand-over, throughput dip");

  // 1. decisions to converge ------------------------------------------------------------------
  if (only.empty() || only == "loop") {
    std::vector<std::vector<double>> decisions(loop_steps.size()), keeps(loop_steps.size()),
        par(loop_steps.size()), last(loop_steps.size());
    for (int i = 0; i < loop_runs; ++i) {
      std::printf("closed loop, run %d\n", i + 1);
      const auto run = run_loop(reg);
      for (std::size_t s = 0; s < loop_steps.size(); ++s) {
        decisions[s].push_back(run.seg[s].decisions);
        keeps[s].push_back(run.seg[s].emitted_rate / run.seg[s].offered);
        par[s].push_back(run.seg[s].final_parallelism);
        last[s].push_back(run.seg[s].last_decision_s);
      }
    }
    auto maxof = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    auto minof = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    rep.value("decisions while steady at 10 k/s before any step (most over runs)", maxof(decisions[0]), "");
    const char* names[] = {"", "2x step (10 k → 20 k rows/s)", "4x step (20 k → 80 k rows/s)"};
    for (std::size_t s = 1; s < loop_steps.size(); ++s) {
      rep.value(std::string("decisions after the ") + names[s] + ", most over runs", maxof(decisions[s]), "", 2,
                true);
      rep.value(std::string("time from the ") + names[s] + " to its last decision (median)", median_of(last[s]), "s");
      rep.value(std::string("parallelism reached after the ") + names[s] + " (median; needs " +
                    bench::fmt(loop_steps[s].per_second / (1e9 / enrich_ns_per_row) / 0.7, "%.2g") +
                    " at 0.7 utilisation)",
                median_of(par[s]), "instances");
      rep.value(std::string("keeps up after the ") + names[s] +
                    ": generator rows/s over the segment's last 3 s / offered (lowest over runs)",
                minof(keeps[s]), "×", 0.95);
    }
    rep.condition("closed loop", "generator (profile trades) at 10 k rows/s for 5 s, 20 k for 9 s, 80 k for 9 s → "
                                 "an operator waiting 50 µs per row (20 k rows/s per instance), parallelism "
                                 "{initial 1, min 1, max 8} → null sink; DS2 every 500 ms, target utilisation "
                                 "0.7, stabilisation 2 s, scale-in delay 3 s; 12 scheduler threads; batch 256, "
                                 "linger 2 ms; decisions counted over each segment; " +
                                     std::to_string(loop_runs) + " runs");
  }

  // 2. decision → new instances processing, ~10 MB of state -------------------------------------
  if (only.empty() || only == "state") {
    std::printf("by hand (baseline)\n");
    const auto hand = run_hand(reg);
    std::vector<std::vector<double>> took(state_steps.size()), bytes(state_steps.size()),
        hand_ns(state_steps.size());
    for (int i = 0; i < runs; ++i) {
      std::printf("keyed state, run %d\n", i + 1);
      const auto h = run_hand(reg);
      const auto run = run_state(reg, rate);
      if (run.events.size() != state_steps.size()) {
        std::fprintf(stderr, "keyed state: %zu rescales, expected %zu\n", run.events.size(), state_steps.size());
        std::exit(1);
      }
      for (std::size_t s = 0; s < state_steps.size(); ++s) {
        if (!run.events[s].done) {
          std::fprintf(stderr, "keyed state: rescale %zu not carried out: %s\n", s, run.events[s].outcome.c_str());
          std::exit(1);
        }
        took[s].push_back(static_cast<double>(run.events[s].took_ns));
        bytes[s].push_back(static_cast<double>(run.events[s].state_bytes));
        hand_ns[s].push_back(static_cast<double>(h[s].ns));
      }
    }
    std::uint32_t from = 1;
    double worst = 0;
    for (std::size_t s = 0; s < state_steps.size(); ++s) {
      const std::string step = std::to_string(from) + " → " + std::to_string(state_steps[s]);
      const auto st = bench::stats::of(took[s]);
      const auto hs = bench::stats::of(hand_ns[s]);
      worst = std::max(worst, st.max);
      std::vector<double> took_ms, hand_ms;
      for (double x : took[s]) took_ms.push_back(x / 1e6);
      for (double x : hand_ns[s]) hand_ms.push_back(x / 1e6);
      rep.metric("by hand " + step + ": snapshot the old instances, build the new ones, restore every snapshot "
                     "into each (baseline)",
                 bench::stats::of(hand_ms), "ms", 1.0);
      rep.metric("runtime " + step + ": decision → last new instance restored, " +
                     bench::fmt(median_of(bytes[s]) / 1e6, "%.3g") + " MB handed over",
                 bench::stats::of(took_ms), "ms", st.median / hs.median);
      from = state_steps[s];
    }
    rep.value("slowest rescale of the ~10 MB state, over all steps and runs (decision → new instances processing)", worst / 1e6, "ms", 500, true);
    rep.condition("keyed state", std::to_string(keys) + " symbols → 1 h tumbling window (pre_aggregate never; vwap, "
                                 "count, min, max, sum) → null sink; source paced at " + bench::fmt_rate(rate) +
                                     " rows/s after every symbol was sent once; schedule 1 → 4 at 1.5 s, → 2 at "
                                     "3 s, → 3 at 4.5 s; 2 scheduler threads; checkpoints at the default 1 s, in "
                                     "memory; " + std::to_string(runs) + " runs (hand loop once per run, on one thread; the runtime "
                                     "restores the new instances in parallel on the cores it gets, so the ratio "
                                     "can fall below 1)");
  }

  // 3. throughput dip -------------------------------------------------------------------------
  if (only.empty() || only == "dip") {
    std::vector<double> dip, base, deficit, base_deficit;
    for (int i = 0; i < runs; ++i) {
      std::printf("throughput dip, pair %d\n", i + 1);
      const auto a = run_dip(reg, true, 0);
      const auto b = run_dip(reg, false, a.took_ns);
      dip.push_back(a.min_during / a.median_before);
      base.push_back(b.min_during / b.median_before);
      deficit.push_back(a.deficit_ms);
      base_deficit.push_back(b.deficit_ms);
    }
    auto pct = [](std::vector<double> v) {
      for (auto& x : v) x *= 100;
      return bench::stats::of(v);
    };
    const auto d = pct(dip), b = pct(base);
    rep.metric("no rescale (baseline): lowest 100 ms window / median of those before, same windows", b, "%", 1.0);
    rep.metric("rescale 2 → 3: lowest 100 ms window from the decision to 200 ms after it completed / median of "
               "those before",
               d, "%", d.median / b.median);
    rep.value("rescale 2 → 3: throughput lost over those windows, in ms of the median rate (median)",
              median_of(deficit), "ms");
    rep.value("no rescale: the same (median)", median_of(base_deficit), "ms");
    rep.condition("throughput dip", "the keyed window of the state figure at parallelism 2, source unpaced "
                                    "(saturated), schedule 2 → 3 at 2 s; rows the source emitted per 100 ms; "
                                    "pairs (rescale, then autoscale off) × " + std::to_string(runs));
  }

  rep.condition("load average (1, 5, 15 min) at start / end",
                load_start + " / " + bench::shell("cut -d' ' -f1-3 /proc/loadavg"));
  if (only.empty()) rep.write(PEL_SOURCE_DIR "/bench/results");
  return 0;
}
