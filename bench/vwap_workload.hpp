#pragma once
/// \file
/// The VWAP workload shared by the benchmarks that measure it (vwap_bench, checkpoint_bench):
/// prepared trades (PEL batches and plain structs, built before any clock starts), the
/// hand-written fused loop that is their baseline, and the checksum both sides must agree on.

#include "pel/core/batch.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/sink.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bench::vwap {

namespace core = pel::core;

inline constexpr std::int64_t ms = 1'000'000;
inline constexpr std::int64_t window_ns = 1000 * ms;  ///< 1 s tumbling windows
inline constexpr int symbols = 10000;
inline constexpr std::size_t batch_rows = 1024;

struct checksum {
  std::uint64_t windows = 0;
  double vwap_sum = 0;
};

inline bool same(const checksum& a, const checksum& b) {
  return a.windows == b.windows && std::fabs(a.vwap_sum - b.vwap_sum) <= 1e-9 * std::fabs(a.vwap_sum);
}

inline std::vector<std::string> symbol_names() {
  std::vector<std::string> names(symbols);
  for (int s = 0; s < symbols; ++s) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "SYM%05d", s);
    names[s] = buf;
  }
  return names;
}

/// One trade as the baseline reads it: the symbol interned to its index.
struct plain_trade {
  std::int64_t t;
  double price;
  std::int64_t qty;
  std::uint32_t sym;
};

/// The same trades twice, built before any clock starts: as PEL batches (symbol as a string,
/// price, qty; event time in the row's time, in order) and as plain structs for the baseline.
struct prepared {
  core::schema_ptr schema;
  std::vector<core::batch> batches;
  std::vector<plain_trade> plain;
  std::size_t rows = 0;
};

inline prepared prepare(std::size_t n) {
  prepared p;
  p.schema = std::make_shared<core::schema>(std::vector<core::field>{
      {"symbol", core::value_type::string}, {"price", core::value_type::number},
      {"qty", core::value_type::integer}});
  std::uint64_t x = 88172645463325252ULL;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const auto names = symbol_names();
  const std::int64_t t0 = 1'700'000'000'000 * ms;
  p.plain.reserve(n);
  for (std::size_t i = 0; i < n; i += batch_rows) {
    core::batch b(3);
    b.reserve(batch_rows);
    for (std::size_t j = i; j < std::min(n, i + batch_rows); ++j) {
      const std::int64_t t = t0 + static_cast<std::int64_t>(j) * ms / 2000;  // 2,000 per ms
      const auto sym = static_cast<std::uint32_t>(rnd() % symbols);
      const double price = 100.0 + static_cast<double>(rnd() % 10000) / 100;
      const auto qty = static_cast<std::int64_t>(1 + rnd() % 100);
      auto* r = b.append(t);
      r[0] = names[sym];
      r[1] = price;
      r[2] = qty;
      p.plain.push_back({t, price, qty, sym});
    }
    p.batches.push_back(std::move(b));
  }
  p.rows = n;
  return p;
}

/// The simplest correct fast program: per symbol index, the current window's sums; a trade in
/// a later window closes the previous one (input is in time order); the rest close at the end.
inline checksum fused_loop(const std::vector<plain_trade>& in) {
  struct acc {
    std::int64_t start = INT64_MIN;
    double pq = 0, q = 0;
  };
  std::vector<acc> state(symbols);
  checksum c;
  for (const plain_trade& tr : in) {
    const std::int64_t start = tr.t / window_ns * window_ns;
    acc& a = state[tr.sym];
    if (a.start != start) {
      if (a.start != INT64_MIN && a.q != 0) {
        ++c.windows;
        c.vwap_sum += a.pq / a.q;
      }
      a = acc{start, 0, 0};
    }
    const double q = static_cast<double>(tr.qty);
    a.pq += tr.price * q;
    a.q += q;
  }
  for (const acc& a : state)
    if (a.start != INT64_MIN && a.q != 0) {
      ++c.windows;
      c.vwap_sum += a.pq / a.q;
    }
  return c;
}

inline void require_same(const checksum& got, const checksum& want, const char* what) {
  if (same(got, want)) return;
  std::fprintf(stderr, "%s: checksum mismatch: %llu windows / %.9e vs %llu / %.9e\n", what,
               static_cast<unsigned long long>(got.windows), got.vwap_sum,
               static_cast<unsigned long long>(want.windows), want.vwap_sum);
  std::exit(1);
}

/// The checksums of every `checksum_sink` instance, added when each closes.
inline std::mutex g_sum_mu;
inline checksum g_sum;

/// A sink that sums the `vwap` column of what it gets (PEL's side of the checksum).
class checksum_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr& in) override { col_ = in->index_of("vwap"); }
  void write(const core::batch& b) override {
    for (std::size_t i = 0; i < b.size(); ++i) {
      double d;
      if (core::as_number(b.row(i)[col_], d)) {
        ++c_.windows;
        c_.vwap_sum += d;
      }
    }
  }
  void close() override {
    std::lock_guard<std::mutex> g(g_sum_mu);
    g_sum.windows += c_.windows;
    g_sum.vwap_sum += c_.vwap_sum;
  }

private:
  int col_ = -1;
  checksum c_;
};

} // namespace bench::vwap
