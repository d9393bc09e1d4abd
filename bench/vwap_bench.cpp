// 1-second tumbling-window VWAP per symbol over prepared trades (10,000 symbols, 2,000 trades
// per ms of event time): a hand-written fused single-threaded loop against the window operator
// driven directly (one instance, batches of 1024). Both read the same records, prepared in
// memory before timing; checksums (window count, sum of VWAPs) must match. Writes
// bench/results/vwap.json (or the path given as the second argument).
//
//   vwap_bench [trades=4000000] [out.json]

#include "window.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

using namespace pel;

namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr int symbols = 10000;
constexpr std::size_t batch_rows = 1024;

struct checksum {
  std::uint64_t windows = 0;
  double vwap_sum = 0;
};

/// The prepared input: batches of (symbol, price, qty) with event times, in time order.
std::vector<core::batch> prepare(std::size_t n) {
  std::vector<core::batch> out;
  std::uint64_t x = 88172645463325252ULL;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::vector<std::string> names(symbols);
  for (int s = 0; s < symbols; ++s) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "SYM%05d", s);
    names[s] = buf;
  }
  const std::int64_t t0 = 1'700'000'000'000 * ms;
  for (std::size_t i = 0; i < n; i += batch_rows) {
    core::batch b(3);
    b.reserve(batch_rows);
    for (std::size_t j = i; j < std::min(n, i + batch_rows); ++j) {
      auto* r = b.append(t0 + static_cast<std::int64_t>(j) * ms / 2000);  // 2,000 per ms
      r[0] = names[rnd() % symbols];
      r[1] = 100.0 + static_cast<double>(rnd() % 10000) / 100;
      r[2] = static_cast<std::int64_t>(1 + rnd() % 100);
    }
    out.push_back(std::move(b));
  }
  return out;
}

/// The simplest correct program: per symbol the current window's sums; a record in a later
/// window closes the previous one (input is in time order); the rest close at the end.
checksum fused(const std::vector<core::batch>& in) {
  struct acc {
    std::int64_t start = INT64_MIN;
    double pq = 0, q = 0;
  };
  std::unordered_map<std::string, acc> state;
  state.reserve(symbols * 2);
  checksum c;
  const std::int64_t size = 1000 * ms;
  for (const auto& b : in) {
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto* r = b.row(i);
      std::int64_t start = b.times[i] / size * size;
      acc& a = state[std::get<std::string>(r[0])];
      if (a.start != start) {
        if (a.start != INT64_MIN && a.q != 0) {
          ++c.windows;
          c.vwap_sum += a.pq / a.q;
        }
        a = acc{start, 0, 0};
      }
      double p = std::get<double>(r[1]), q = static_cast<double>(std::get<std::int64_t>(r[2]));
      a.pq += p * q;
      a.q += q;
    }
  }
  for (auto& [k, a] : state)
    if (a.start != INT64_MIN && a.q != 0) {
      ++c.windows;
      c.vwap_sum += a.pq / a.q;
    }
  return c;
}

struct op_run {
  checksum sum;
  std::size_t state_bytes = 0;
  std::size_t keys = 0;
  std::vector<double> fire_ns;  // time per firing watermark call with output, ns per window
};

op_run through_operator(std::vector<core::batch>& in) {
  auto schema = std::make_shared<core::schema>(std::vector<core::field>{
      {"symbol", core::value_type::string}, {"price", core::value_type::number},
      {"qty", core::value_type::integer}});
  operators::window_options o;
  o.key = {"symbol"};
  o.kind = operators::window_kind::tumbling;
  o.size_ns = 1000 * ms;
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
    op.process(b, 0, out);
    std::size_t before = out.main.size();
    auto t0 = core::steady_ns();
    op.on_watermark({b.times.back()}, out);
    auto dt = core::steady_ns() - t0;
    if (out.main.size() > before)
      run.fire_ns.push_back(double(dt) / double(out.main.size() - before));
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  std::size_t n = argc > 1 ? std::stoull(argv[1]) : 4'000'000;
  std::string out_path = argc > 2 ? argv[2] : std::string(PEL_BENCH_RESULTS) + "/vwap.json";

  auto input = prepare(n);
  // The operator may move values out of its input: give each run its own copy.
  std::vector<double> fused_rate, op_rate;
  checksum fc, oc;
  op_run last;
  const int runs = 3;
  for (int r = -1; r < runs; ++r) {  // r = -1: warm-up
    auto t0 = std::chrono::steady_clock::now();
    fc = fused(input);
    double fs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto copy = input;
    t0 = std::chrono::steady_clock::now();
    last = through_operator(copy);
    double os = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    oc = last.sum;
    if (r >= 0) {
      fused_rate.push_back(n / fs);
      op_rate.push_back(n / os);
    }
  }
  bool same = fc.windows == oc.windows &&
              std::fabs(fc.vwap_sum - oc.vwap_sum) <= 1e-9 * std::fabs(fc.vwap_sum);
  double fm = median(fused_rate), om = median(op_rate);
  auto [fmin, fmax] = std::minmax_element(fused_rate.begin(), fused_rate.end());
  auto [omin, omax] = std::minmax_element(op_rate.begin(), op_rate.end());
  double per_key = last.keys ? double(last.state_bytes) / double(last.keys) : 0;
  double fire = last.fire_ns.empty() ? 0 : median(last.fire_ns);

  std::printf("vwap_bench: %zu trades, %d symbols, 1 s tumbling windows, batches of %zu\n", n,
              symbols, batch_rows);
  std::printf("  fused loop       %8.2f M trades/s (min %.2f, max %.2f)  windows %llu  sum %.6f\n",
              fm / 1e6, *fmin / 1e6, *fmax / 1e6, (unsigned long long)fc.windows, fc.vwap_sum);
  std::printf("  window operator  %8.2f M trades/s (min %.2f, max %.2f)  windows %llu  sum %.6f\n",
              om / 1e6, *omin / 1e6, *omax / 1e6, (unsigned long long)oc.windows, oc.vwap_sum);
  std::printf("  ratio operator/fused %.3f; state %.1f bytes/key (%zu keys); firing %.0f ns/window\n",
              om / fm, per_key, last.keys, fire);
  std::printf("  checksums %s\n", same ? "match" : "DIFFER");

  std::ofstream js(out_path);
  js << "{\n  \"benchmark\": \"vwap\",\n  \"trades\": " << n << ",\n  \"symbols\": " << symbols
     << ",\n  \"window\": \"tumbling 1s\",\n  \"batch_size\": " << batch_rows
     << ",\n  \"runs\": " << runs
     << ",\n  \"fused_trades_per_s\": {\"median\": " << fm << ", \"min\": " << *fmin
     << ", \"max\": " << *fmax << "},\n  \"operator_trades_per_s\": {\"median\": " << om
     << ", \"min\": " << *omin << ", \"max\": " << *omax
     << "},\n  \"ratio_operator_vs_fused\": " << om / fm
     << ",\n  \"state_bytes_per_key\": " << per_key
     << ",\n  \"firing_ns_per_window\": " << fire
     << ",\n  \"checksum\": {\"windows\": " << fc.windows << ", \"vwap_sum\": " << fc.vwap_sum
     << ", \"match\": " << (same ? "true" : "false") << "}\n}\n";
  return same ? 0 : 1;
}
