// Checkpoints and recovery, each measured against its own baseline in the same run:
//   1. checkpoint cost: the 1 s tumbling VWAP per symbol of vwap_bench (prepared trades, replay
//      source, parallelism 2, as planned) with aligned checkpoints to a durable state directory
//      in a temporary folder, against the same pipeline with checkpoints off (interval 0, set
//      on the plan in code: the pipeline file refuses an interval below 1 ms). The run lasts
//      well under the default 1 s interval on prepared input, so the interval is 100 ms, which
//      makes checkpoints ten times as frequent as the default and the measured cost an upper
//      bound of the default's. The fused single-threaded loop of vwap_bench runs too, and all
//      three checksums (windows fired, sum of VWAPs) must agree or the benchmark fails;
//   2. recovery time: from an instance crash to the next row written by a restarted sink, over
//      20 crashes each in (a) a stateless pipeline (sequence source → filter → map → crash
//      operator → sink) and (b) a stateful one (sequence source → keyed `rolling` over
//      100,000 keys, about 10 MB of state → crash operator → sink), at parallelism 2, at a fixed
//      offered rate, with checkpoints every 1 s to a durable state directory. The crash
//      operator (the benchmark's own) throws when a shared flag is set and stamps the steady
//      clock at the throw; the sink (the benchmark's own) stamps the first row it writes after
//      it was reopened by the restart. Supervision backoff is 1 ms (initial and max, no jitter)
//      so that the figure is the recovery itself, not a configured delay. The input must come
//      out right across the crashes: the stateless sink checks that no row was lost (no gap in
//      each source instance's sequence; at-least-once may repeat rows) and that the filter held;
//      the stateful sink checks every rolling sum against its closed form, so a state restored
//      wrongly, or replayed input that does not match it, shows as a mismatch;
//   3. checkpoint duration and size against state size: the same keyed `rolling` pipeline over
//      1e3 .. 1e6 keys at a fixed offered rate; once every key holds its full window, the job
//      runs for several more checkpoints; reported: the last checkpoint's duration (barrier to
//      manifest) and bytes, and the longest over the run.
// Writes bench/results/checkpoint.json and bench/results/checkpoint.md.
//
//   checkpoint_bench [--trades=30000000] [--runs=5] [--interval-ms=100] [--trials=20]
//                    [--rate=200000] [--keys=100000] [--rows=4] [--size-rate=500000]
//                    [--only=cost|recovery|sizes]

#include "bench_support.hpp"
#include "replay_source.hpp"
#include "vwap_workload.hpp"

#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/core/state_io.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>

using namespace pel;
using namespace bench::vwap;

namespace {


void sleep_ms(std::int64_t n) { std::this_thread::sleep_for(std::chrono::milliseconds(n)); }

std::string g_state_root;  // where state directories are made (--state-root; default: the temp dir)

/// A fresh temporary state directory, removed when it goes out of scope.
struct temp_dir {
  std::string path;
  temp_dir() {
    const std::filesystem::path root =
        g_state_root.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(g_state_root);
    std::string t = (root / "pel-checkpoint-bench-XXXXXX").string();
    if (mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = t;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// Checkpoints every `interval_ns` (0: off), and supervision that restarts at once and never
/// gives up, on the plan and on every component (components carry their own copy).
void configure(plan::physical_plan& plan, std::int64_t interval_ns) {
  plan.settings.checkpoint_interval_ns = interval_ns;
  plan.settings.checkpoints.interval_ns = interval_ns;
  auto fast = [](spec::supervision_spec& s) {
    s.intensity = 1'000'000;
    s.backoff.initial_ns = 1'000'000;
    s.backoff.max_ns = 1'000'000;
    s.backoff.multiplier = 1.0;
    s.backoff.jitter = 0.0;
    s.quarantine_after = 0;
  };
  fast(plan.settings.supervision);
  for (auto& n : plan.nodes) fast(n.spec.supervision);
}

// ==== 1. checkpoint cost on the VWAP pipeline ==============================================

std::vector<core::batch>* g_feed = nullptr;

std::string vwap_yaml(int parallelism) {
  return std::string("pipeline:\n  parallelism: ") + std::to_string(parallelism) +
         "\n  batch: {size: " + std::to_string(batch_rows) + ", linger: 1ms}\n"
         "sources:\n  trades:\n    type: bench_replay\n"
         "operators:\n  vwap:\n    type: window\n    input: trades\n    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    aggregates:\n      vwap: vwap(price, qty)\n"
         "sinks:\n  out:\n    type: bench_checksum\n    input: vwap\n";
}

struct cost_run {
  double seconds = 0;
  checksum sum;
  runtime::result r;
  std::uint64_t disk_bytes = 0;  ///< the largest checkpoint kept in the state directory
};

/// Bytes of the largest checkpoint (`chk-*` directory) left in `dir`: `last_checkpoint_bytes`
/// of a bounded run is often that of a checkpoint taken after the instances had ended.
std::uint64_t largest_checkpoint_on_disk(const std::string& dir) {
  std::map<std::string, std::uint64_t> sizes;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec || !it->is_regular_file(ec)) continue;
    for (auto p = it->path().parent_path(); !p.empty() && p.string().size() >= dir.size(); p = p.parent_path())
      if (p.filename().string().rfind("chk-", 0) == 0) {
        sizes[p.string()] += it->file_size(ec);
        break;
      }
  }
  std::uint64_t m = 0;
  for (const auto& [k, v] : sizes) m = std::max(m, v);
  return m;
}

/// The VWAP pipeline over a fresh copy of the prepared input, checkpoints every `interval_ns`
/// (0: off) to a fresh temporary state directory.
cost_run run_vwap(const spec::registry& reg, const prepared& p, int parallelism, std::int64_t interval_ns) {
  std::vector<core::batch> feed = p.batches;  // copied before the clock starts
  g_feed = &feed;
  g_sum = {};
  auto pipeline = spec::load_text(vwap_yaml(parallelism), "vwap.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  configure(plan, interval_ns);
  temp_dir dir;
  runtime::options o;
  if (interval_ns > 0) o.state_dir = dir.path;
  cost_run run;
  {
    runtime::job job(plan, o);
    const auto t0 = core::steady_ns();
    job.start();
    run.r = job.wait();
    run.seconds = static_cast<double>(core::steady_ns() - t0) / 1e9;
  }
  if (interval_ns > 0) run.disk_bytes = largest_checkpoint_on_disk(dir.path);
  if (!run.r.ok) {
    std::fprintf(stderr, "VWAP pipeline failed: %s\n", run.r.error.c_str());
    std::exit(1);
  }
  run.sum = g_sum;
  return run;
}


// ==== 2 and 3. an unbounded, replayable sequence source; crash operator; checking sink =====

// Instance i of p emits seq = i, i + p, i + 2p, ... with key = seq % keys (keys even and p = 2:
// a key comes from one instance only, in order, so a rolling window over it is deterministic)
// and v = seq. Event time: 1 µs per seq. Offered at `g_rate` rows/s in total (0: as fast as
// the pipeline takes them), measured from `g_epoch`, which a restart does not reset: a
// restored instance is behind and catches up in full batches.
std::atomic<double> g_rate{0};
std::atomic<std::int64_t> g_keys{1000};
std::atomic<std::int64_t> g_epoch{0};
std::atomic<std::uint64_t> g_emitted{0};  // rows emitted, replays included

core::schema_ptr seq_schema() {
  static core::schema_ptr s = std::make_shared<core::schema>(std::vector<core::field>{
      {"seq", core::value_type::integer}, {"key", core::value_type::integer}, {"v", core::value_type::number}});
  return s;
}

class seq_source final : public core::source_base {
public:
  core::schema_ptr output_schema() const override { return seq_schema(); }
  void open(const core::operator_context& ctx) override {
    instance_ = ctx.instance;
    step_ = ctx.parallelism;
    keys_ = g_keys.load();
    rate_ = g_rate.load() / ctx.parallelism;
  }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    std::size_t n = max_rows;
    if (rate_ > 0) {
      const double elapsed = static_cast<double>(core::steady_ns() - g_epoch.load()) / 1e9;
      const auto due = static_cast<std::uint64_t>(elapsed * rate_);
      if (due <= next_) return core::poll_status::idle;
      n = std::min<std::uint64_t>(due - next_, max_rows);
    }
    for (std::size_t i = 0; i < n; ++i, ++next_) {
      const std::int64_t seq = static_cast<std::int64_t>(instance_ + next_ * step_);
      core::value* r = out.main.append(1'700'000'000'000 * ms + seq * 1000);
      r[0] = seq;
      r[1] = seq % keys_;
      r[2] = static_cast<double>(seq);
    }
    g_emitted.fetch_add(n, std::memory_order_relaxed);
    return core::poll_status::data;
  }
  bool replayable() const override { return true; }
  void snapshot(core::state_writer& w) override {
    w.put<std::uint32_t>(1);
    w.put<std::uint64_t>(next_);
  }
  void restore(core::state_reader& r) override {
    if (r.get<std::uint32_t>() != 1) throw std::runtime_error("seq source: unknown snapshot version");
    next_ = r.get<std::uint64_t>();
  }

private:
  std::uint64_t instance_ = 0, step_ = 1, next_ = 0;
  std::int64_t keys_ = 1;
  double rate_ = 0;
};

std::atomic<bool> g_arm{false};               // the next batch at a crash operator throws
std::atomic<std::int64_t> g_throw_ns{0};      // steady clock at the throw
std::atomic<std::int64_t> g_recovered_ns{0};  // first row written by a sink opened after it

/// Passes its input through; throws at the first batch after `g_arm` is set.
class crash_operator final : public core::operator_base {
public:
  explicit crash_operator(core::schema_ptr in) : schema_(std::move(in)) {}
  core::schema_ptr output_schema() const override { return schema_; }
  void process(core::batch& in, int, core::outputs& out) override {
    if (g_arm.load(std::memory_order_relaxed) && g_arm.exchange(false)) {
      g_throw_ns.store(core::steady_ns());
      throw std::runtime_error("crash injected by the benchmark");
    }
    if (out.main.empty()) std::swap(out.main, in);
    else
      for (std::size_t i = 0; i < in.size(); ++i) out.main.append_move(in.row(i), in.times[i]);
  }

private:
  core::schema_ptr schema_;
};

enum class check_mode { none, stateless, stateful };
std::atomic<int> g_mode{0};
std::atomic<std::int64_t> g_window_rows{4};  // `rows` of the rolling operator
std::atomic<std::uint64_t> g_rows_out{0}, g_bad{0};
std::mutex g_check_mu;
std::int64_t g_high[2] = {-1, -1};  // stateless: highest seq seen per source instance
constexpr std::int64_t filtered_key = 3;  // the stateless filter drops key 3

/// Stamps the first row it writes when it was opened after a crash; checks the rows.
class recovery_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr& in) override {
    opened_ns_ = core::steady_ns();
    seq_ = in->index_of("seq");
    key_ = in->index_of("key");
    sum_ = in->index_of("s");
  }
  void write(const core::batch& b) override {
    if (b.size() == 0) return;
    const std::int64_t now = core::steady_ns();
    const std::int64_t thrown = g_throw_ns.load();
    if (thrown != 0 && opened_ns_ > thrown) {
      std::int64_t zero = 0;
      g_recovered_ns.compare_exchange_strong(zero, now);
    }
    g_rows_out.fetch_add(b.size(), std::memory_order_relaxed);
    const auto mode = static_cast<check_mode>(g_mode.load());
    std::uint64_t bad = 0;
    if (mode == check_mode::stateless) {
      const std::int64_t keys = g_keys.load();
      std::lock_guard<std::mutex> g(g_check_mu);
      for (std::size_t i = 0; i < b.size(); ++i) {
        const auto seq = std::get<std::int64_t>(b.row(i)[seq_]);
        const auto key = std::get<std::int64_t>(b.row(i)[key_]);
        if (key == filtered_key) ++bad;
        std::int64_t& hi = g_high[seq % 2];
        if (seq <= hi) continue;  // a replay after a restart: at-least-once
        std::int64_t expect = hi < 0 ? seq % 2 : hi + 2;
        while (expect % keys == filtered_key) expect += 2;
        if (seq != expect) ++bad;  // a row was lost
        hi = seq;
      }
    } else if (mode == check_mode::stateful) {
      const std::int64_t keys = g_keys.load(), rows = g_window_rows.load();
      for (std::size_t i = 0; i < b.size(); ++i) {
        const auto s = std::get<std::int64_t>(b.row(i)[seq_]);
        double got = 0;
        core::as_number(b.row(i)[sum_], got);
        const std::int64_t m = std::min(rows, s / keys + 1);
        const double want = static_cast<double>(m * s - keys * m * (m - 1) / 2);
        if (got != want) ++bad;
      }
    }
    if (bad) g_bad.fetch_add(bad);
  }

private:
  std::int64_t opened_ns_ = 0;
  int seq_ = -1, key_ = -1, sum_ = -1;
};

spec::registry bench_registry(const core::schema_ptr& trades) {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  auto schema = [](const char* type, const char* summary) {
    spec::component_schema s;
    s.type = type;
    s.summary = summary;
    return s;
  };
  reg.add_source(schema("bench_replay", "prepared trades (benchmark only)"),
                 [trades](const spec::config&) { return std::make_unique<bench::replay_source>(trades, g_feed); });
  reg.add_source(schema("bench_seq", "replayable sequence at a fixed rate (benchmark only)"),
                 [](const spec::config&) { return std::make_unique<seq_source>(); });
  auto crash = schema("bench_crash", "passes rows through; throws when the benchmark says (benchmark only)");
  crash.min_inputs = 1;
  crash.max_inputs = 1;
  reg.add_operator(crash, [](const spec::config&, const std::vector<core::schema_ptr>& in) {
    return std::make_unique<crash_operator>(in.at(0));
  });
  reg.add_sink(schema("bench_checksum", "count and sum of vwap (benchmark only)"),
               [](const spec::config&) { return std::make_unique<checksum_sink>(); });
  reg.add_sink(schema("bench_recovery", "stamps recovery, checks rows (benchmark only)"),
               [](const spec::config&) { return std::make_unique<recovery_sink>(); });
  return reg;
}

std::string stateless_yaml(int parallelism) {
  return "pipeline:\n  parallelism: " + std::to_string(parallelism) +
         "\n  batch: {size: 1024, linger: 1ms}\n"
         "sources:\n  seq:\n    type: bench_seq\n"
         "operators:\n"
         "  keep:\n    type: filter\n    input: seq\n    where: key != " + std::to_string(filtered_key) + "\n"
         "  double:\n    type: map\n    input: keep\n    fields:\n      w: v * 2\n"
         "  crash:\n    type: bench_crash\n    input: double\n"
         "sinks:\n  out:\n    type: bench_recovery\n    input: crash\n";
}

std::string stateful_yaml(int parallelism, std::int64_t rows, bool crash) {
  return "pipeline:\n  parallelism: " + std::to_string(parallelism) +
         "\n  batch: {size: 1024, linger: 1ms}\n"
         "sources:\n  seq:\n    type: bench_seq\n"
         "operators:\n"
         "  roll:\n    type: rolling\n    input: seq\n    key: key\n    rows: " + std::to_string(rows) +
         "\n    aggregates:\n      s: sum(v)\n" +
         (crash ? "  crash:\n    type: bench_crash\n    input: roll\n" : "") +
         "sinks:\n  out:\n    type: bench_recovery\n    input: " + (crash ? "crash" : "roll") + "\n";
}

std::int64_t percentile(std::vector<std::int64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

struct recovery {
  std::vector<std::int64_t> ns;  // per crash
  std::uint64_t restarts = 0, checkpoints = 0, rows = 0, bad = 0, state_bytes = 0;
  std::int64_t max_checkpoint_ns = 0;
};

/// Runs `yaml` at `rate` rows/s with checkpoints every 1 s to a temporary state directory;
/// once `fill_rows` rows have gone by and a checkpoint completed, crashes an instance `trials`
/// times, each after the next checkpoint completed, and measures throw → first row written
/// after the restart.
recovery measure_recovery(const spec::registry& reg, const std::string& yaml, check_mode mode, double rate,
                          std::int64_t keys, std::uint64_t fill_rows, int trials) {
  g_rate = rate;
  g_keys = keys;
  g_mode = static_cast<int>(mode);
  g_rows_out = 0;
  g_bad = 0;
  g_emitted = 0;
  g_high[0] = g_high[1] = -1;
  g_arm = false;
  g_throw_ns = 0;
  g_recovered_ns = 0;
  auto pipeline = spec::load_text(yaml, "recovery.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  configure(plan, 1000 * ms);
  temp_dir dir;
  runtime::options o;
  o.state_dir = dir.path;
  recovery out;
  runtime::job job(plan, o);
  g_epoch = core::steady_ns();
  job.start();
  auto deadline_ok = [&](std::int64_t t0, double seconds) {
    return static_cast<double>(core::steady_ns() - t0) / 1e9 < seconds;
  };
  const auto start = core::steady_ns();
  while (g_emitted.load() < fill_rows && deadline_ok(start, 120)) sleep_ms(10);
  std::uint64_t cp = job.committed_checkpoint();
  std::uint32_t x = 12345;
  for (int t = 0; t < trials; ++t) {
    // After a checkpoint that completed since the previous crash, at a pseudo-random point.
    const auto w0 = core::steady_ns();
    while (job.committed_checkpoint() <= cp && deadline_ok(w0, 60)) sleep_ms(5);
    x = x * 1103515245u + 12345u;
    sleep_ms(50 + (x >> 16) % 400);
    cp = job.committed_checkpoint();
    g_recovered_ns = 0;
    g_throw_ns = 0;
    g_arm = true;
    const auto c0 = core::steady_ns();
    while (g_recovered_ns.load() == 0 && deadline_ok(c0, 60)) sleep_ms(1);
    if (g_recovered_ns.load() == 0) {
      std::fprintf(stderr, "no output within 60 s of crash %d\n", t + 1);
      std::exit(1);
    }
    out.ns.push_back(g_recovered_ns.load() - g_throw_ns.load());
  }
  // The state size at the last checkpoint, then a drain.
  const auto w0 = core::steady_ns();
  while (job.committed_checkpoint() <= cp && deadline_ok(w0, 60)) sleep_ms(5);
  job.stop(true);
  auto r = job.wait();
  if (!r.ok) {
    std::fprintf(stderr, "recovery pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  out.restarts = r.restarts;
  out.checkpoints = r.checkpoints;
  out.state_bytes = r.last_checkpoint_bytes;
  out.max_checkpoint_ns = r.max_checkpoint_ns;
  out.rows = g_rows_out.load();
  out.bad = g_bad.load();
  g_mode = 0;
  return out;
}

struct size_point {
  std::int64_t keys = 0;
  std::uint64_t checkpoints = 0, bytes = 0, disk_bytes = 0;
  std::int64_t last_ns = 0, max_ns = 0;
  std::uint64_t bad = 0, rows = 0;
};

/// The keyed rolling pipeline over `keys` keys at `rate` rows/s: once every key holds its
/// full window, `after` more checkpoints; the last one's duration and bytes, the longest.
size_point measure_size(const spec::registry& reg, std::int64_t keys, std::int64_t rows, double rate, int after) {
  g_rate = rate;
  g_keys = keys;
  g_window_rows = rows;
  g_mode = static_cast<int>(check_mode::stateful);
  g_rows_out = 0;
  g_bad = 0;
  g_emitted = 0;
  g_arm = false;
  g_throw_ns = 0;
  auto pipeline = spec::load_text(stateful_yaml(2, rows, false), "sizes.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  configure(plan, 1000 * ms);
  temp_dir dir;
  runtime::options o;
  o.state_dir = dir.path;
  runtime::job job(plan, o);
  g_epoch = core::steady_ns();
  job.start();
  const auto t0 = core::steady_ns();
  const auto fill = static_cast<std::uint64_t>(keys * rows);
  while (g_emitted.load() < fill && core::steady_ns() - t0 < 300'000 * ms) sleep_ms(10);
  const std::uint64_t cp = job.committed_checkpoint();
  while (job.committed_checkpoint() < cp + static_cast<std::uint64_t>(after) && core::steady_ns() - t0 < 600'000 * ms)
    sleep_ms(10);
  // A stop with a final checkpoint: the last checkpoint is then one of the full state (a
  // drain could leave as last one that completed after the instances had ended).
  job.stop(false);
  auto r = job.wait();
  if (!r.ok) {
    std::fprintf(stderr, "state size pipeline failed: %s\n", r.error.c_str());
    std::exit(1);
  }
  size_point p;
  p.keys = keys;
  p.checkpoints = r.checkpoints;
  p.bytes = r.last_checkpoint_bytes;
  p.disk_bytes = largest_checkpoint_on_disk(dir.path);
  p.last_ns = r.last_checkpoint_ns;
  p.max_ns = r.max_checkpoint_ns;
  p.bad = g_bad.load();
  p.rows = g_rows_out.load();
  g_mode = 0;
  std::printf("state %lld keys: %llu checkpoints, last (final) %.1f MB in %.1f ms, longest %.1f ms; largest "
              "on disk %.1f MB (%llu rows, %llu bad)\n",
              static_cast<long long>(keys), static_cast<unsigned long long>(p.checkpoints), double(p.bytes) / 1e6,
              double(p.last_ns) / 1e6, double(p.max_ns) / 1e6, double(p.disk_bytes) / 1e6,
              static_cast<unsigned long long>(p.rows),
              static_cast<unsigned long long>(p.bad));
  return p;
}

std::string mb(double bytes) { return bench::fmt(bytes / 1e6, "%.3g") + " MB"; }

} // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const std::size_t n = args.get_size("trades", 30'000'000);
  const int runs = static_cast<int>(std::max<std::size_t>(1, args.get_size("runs", 5)));
  const std::int64_t interval_ms = static_cast<std::int64_t>(args.get_size("interval-ms", 100));
  const int trials = static_cast<int>(args.get_size("trials", 20));
  const double rate = args.get_double("rate", 200'000);
  const auto rec_keys = static_cast<std::int64_t>(args.get_size("keys", 100'000));
  const auto rows = static_cast<std::int64_t>(args.get_size("rows", 4));
  const double size_rate = args.get_double("size-rate", 500'000);
  const std::string only = args.get_string("only", "");
  g_state_root = args.get_string("state-root", "");
  const int parallelism = 2;

  bench::report rep("checkpoint", "Checkpoints and recovery");
  const std::string fs = bench::shell(
      ("df --output=fstype " + (g_state_root.empty() ? std::filesystem::temp_directory_path().string() : g_state_root) +
       " 2>/dev/null | tail -n 1").c_str());
  // Others share the machine: the load when the benchmark starts and ends is part of its
  // conditions.
  const std::string load_start = bench::shell("cut -d' ' -f1-3 /proc/loadavg");

  // 1. checkpoint cost ----------------------------------------------------------------------
  if (only.empty() || only == "cost") {
    std::printf("preparing %zu trades...\n", n);
    prepared p = prepare(n);
    auto reg = bench_registry(p.schema);
    const checksum want = fused_loop(p.plain);
    const std::int64_t interval = interval_ms * ms;
    auto warm = run_vwap(reg, p, parallelism, 0);  // warm-up
    require_same(warm.sum, want, "PEL, checkpoints off");
    std::vector<double> off_rates, on_rates, loop_rates;
    std::vector<double> cps, bytes, max_cp;
    for (int i = 0; i < runs; ++i) {
      const auto t0 = core::steady_ns();
      require_same(fused_loop(p.plain), want, "fused loop");
      loop_rates.push_back(double(n) / (double(core::steady_ns() - t0) / 1e9));
      auto off = run_vwap(reg, p, parallelism, 0);
      require_same(off.sum, want, "PEL, checkpoints off");
      off_rates.push_back(double(n) / off.seconds);
      auto on = run_vwap(reg, p, parallelism, interval);
      require_same(on.sum, want, "PEL, checkpoints on");
      on_rates.push_back(double(n) / on.seconds);
      cps.push_back(double(on.r.checkpoints));
      bytes.push_back(double(on.disk_bytes));
      max_cp.push_back(double(on.r.max_checkpoint_ns) / 1e6);
      std::printf("run %d: off %.3g trades/s, on %.3g trades/s (%llu checkpoints, largest kept "
                  "%llu bytes on disk, longest %.1f ms, %.2f s)\n",
                  i + 1, off_rates.back(), on_rates.back(), static_cast<unsigned long long>(on.r.checkpoints),
                  static_cast<unsigned long long>(on.disk_bytes), max_cp.back(), on.seconds);
    }
    const auto off_s = bench::stats::of(off_rates), on_s = bench::stats::of(on_rates),
               loop_s = bench::stats::of(loop_rates);
    const double ratio = on_s.median / off_s.median;
    // Extra time per checkpoint, from the medians: (1/on - 1/off) × N over the checkpoints of a
    // run; at the default 1 s interval the cost is that over 1 s.
    const double cps_median = bench::stats::of(cps).median;
    const double per_cp_s = cps_median > 0 ? (1.0 / on_s.median - 1.0 / off_s.median) * double(n) / cps_median : 0;
    std::printf("checkpoint cost: on/off %.3f; %.1f ms of extra time per checkpoint\n", ratio, per_cp_s * 1e3);
    rep.condition("VWAP trades", std::to_string(n));
    rep.condition("symbols", std::to_string(symbols));
    rep.condition("VWAP checkpoint interval", std::to_string(interval_ms) + " ms (default 1 s)");
    rep.condition("runs", std::to_string(runs) + " (median; min–max), after a warm-up");
    rep.condition("VWAP checksum", std::to_string(want.windows) + " windows, VWAP sum " +
                                       bench::fmt(want.vwap_sum, "%.6f") +
                                       ", equal for the fused loop and PEL with checkpoints off and on");
    rep.metric("VWAP p=2, checkpoints off (baseline)", off_s, "trades/s", 1.0);
    rep.metric("VWAP p=2, checkpoints every " + std::to_string(interval_ms) +
                   " ms to a durable state directory (fsync'd)",
               on_s, "trades/s", ratio, 0.9);
    rep.metric("fused single-threaded loop (reference)", loop_s, "trades/s", loop_s.median / off_s.median);
    rep.value("checkpoints completed per run (median)", cps_median, "");
    rep.value("extra time per VWAP checkpoint (from the medians: (1/on − 1/off) × N / checkpoints)",
              per_cp_s * 1e3, "ms");
    rep.value("derived cost at the default 1 s interval (extra time per checkpoint / 1 s; not measured)",
              per_cp_s * 100, "%", 10, true);
    rep.value("VWAP checkpoint size (largest of the 3 kept on disk, median over runs)", bench::stats::of(bytes).median / 1e6, "MB");
    rep.value("VWAP longest checkpoint (median over runs)", bench::stats::of(max_cp).median, "ms");
  }

  auto reg = bench_registry(seq_schema());

  // 2. recovery time ------------------------------------------------------------------------
  if (only.empty() || only == "recovery") {
    g_window_rows = rows;
    auto a = measure_recovery(reg, stateless_yaml(parallelism), check_mode::stateless, rate, 1000,
                              static_cast<std::uint64_t>(rate), trials);
    auto b = measure_recovery(reg, stateful_yaml(parallelism, rows, true), check_mode::stateful, rate, rec_keys,
                              static_cast<std::uint64_t>(rec_keys * rows), trials);
    for (auto* r : {&a, &b}) {
      std::printf("recovery %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %zu crashes; %llu restarts, "
                  "%llu checkpoints, state %.1f MB, %llu rows, %llu bad\n",
                  r == &a ? "stateless" : "stateful", double(percentile(r->ns, 0.5)) / 1e6,
                  double(percentile(r->ns, 0.99)) / 1e6,
                  double(*std::max_element(r->ns.begin(), r->ns.end())) / 1e6, r->ns.size(),
                  static_cast<unsigned long long>(r->restarts), static_cast<unsigned long long>(r->checkpoints),
                  double(r->state_bytes) / 1e6, static_cast<unsigned long long>(r->rows),
                  static_cast<unsigned long long>(r->bad));
      if (r->bad != 0 || r->restarts != r->ns.size()) {
        std::fprintf(stderr, "recovery: %llu rows wrong or lost, %llu restarts for %zu crashes\n",
                     static_cast<unsigned long long>(r->bad), static_cast<unsigned long long>(r->restarts),
                     r->ns.size());
        std::exit(1);
      }
    }
    rep.condition("recovery", std::to_string(trials) + " crashes per pipeline, parallelism 2, " +
                                  bench::fmt_rate(rate) + " rows/s offered, checkpoints every 1 s to a durable "
                                  "state directory, supervision backoff 1 ms (initial = max, no jitter)");
    rep.condition("recovery check", "stateless: no row lost (" + std::to_string(a.rows) +
                                        " rows); stateful: all " + std::to_string(b.rows) +
                                        " rolling sums equal their closed form across the crashes");
    rep.condition("stateful state", std::to_string(rec_keys) + " keys × rolling rows: " + std::to_string(rows) +
                                        ", " + mb(double(b.state_bytes)) + " per checkpoint");
    rep.value("recovery p50, stateless (filter → map), crash → next row at the sink",
              double(percentile(a.ns, 0.5)) / 1e6, "ms");
    rep.value("recovery p99, stateless", double(percentile(a.ns, 0.99)) / 1e6, "ms", 100, true);
    rep.value("recovery p50, stateful (rolling over " + std::to_string(rec_keys) + " keys, " +
                  mb(double(b.state_bytes)) + ")",
              double(percentile(b.ns, 0.5)) / 1e6, "ms");
    rep.value("recovery p99, stateful", double(percentile(b.ns, 0.99)) / 1e9, "s", 1, true);
  }

  // 3. checkpoint duration and size against state size --------------------------------------
  if (only.empty() || only == "sizes") {
    rep.condition("state sizes", "rolling rows: " + std::to_string(rows) + " per key, parallelism 2, " +
                                     bench::fmt_rate(size_rate) + " rows/s offered, checkpoints every 1 s "
                                     "to a durable state directory; 3 checkpoints after every key is full, then a stop with a final "
                                     "checkpoint");
    for (std::int64_t keys : {1'000, 10'000, 100'000, 1'000'000}) {
      auto p = measure_size(reg, keys, rows, size_rate, 3);
      if (p.bad != 0) {
        std::fprintf(stderr, "state sizes: %llu wrong rolling sums\n", static_cast<unsigned long long>(p.bad));
        std::exit(1);
      }
      const std::string k = std::to_string(keys) + " keys";
      rep.value("checkpoint size (the final one, full state), " + k, double(p.bytes) / 1e6, "MB");
      const bool in_s = p.max_ns >= 1000 * ms;  // keeps the figures readable
      const double unit = in_s ? 1e9 : 1e6;
      rep.value("checkpoint duration (the final one), " + k, double(p.last_ns) / unit, in_s ? "s" : "ms");
      rep.value("checkpoint duration (longest of " + std::to_string(p.checkpoints) + "), " + k,
                double(p.max_ns) / unit, in_s ? "s" : "ms");
    }
  }

  rep.condition("parallelism", std::to_string(parallelism));
  rep.condition("batch size / linger", std::to_string(batch_rows) + " / 1 ms");
  rep.condition("state directory filesystem", fs);
  rep.condition("load average (1, 5, 15 min) at start / end",
                load_start + " / " + bench::shell("cut -d' ' -f1-3 /proc/loadavg"));
  if (only.empty()) rep.write(PEL_SOURCE_DIR "/bench/results");
  return 0;
}
