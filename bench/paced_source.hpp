#pragma once
/// \file
/// A source for latency benchmarks: rows `t0` (steady ns at emission) and `v` (a sequence
/// number) at a fixed rate for a fixed time, so that a sink can measure each row's latency;
/// and the latency pipeline both latency benchmarks run over it.

#include "pel/core/source.hpp"
#include "pel/core/time.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace bench {

namespace core = pel::core;

class paced_source final : public core::source_base {
public:
  /// `first_at_start`: emit the first row at once (a slow rate's first row would otherwise
  /// wait a whole period).
  paced_source(double rate, double seconds, bool first_at_start = false)
      : rate_(rate), seconds_(seconds), first_(first_at_start ? 1 : 0) {
    schema_ = std::make_shared<core::schema>(std::vector<core::field>{
        {"t0", core::value_type::integer}, {"v", core::value_type::integer}});
  }
  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context&) override { start_ = core::steady_ns(); }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    const std::int64_t now = core::steady_ns();
    const double elapsed = (now - start_) / 1e9;
    if (elapsed >= seconds_) return core::poll_status::end;
    const auto due = static_cast<std::uint64_t>(elapsed * rate_) + first_;
    if (due <= sent_) return core::poll_status::idle;
    const std::size_t n = std::min<std::uint64_t>(due - sent_, max_rows);
    out.main.width = 2;
    for (std::size_t i = 0; i < n; ++i) {
      core::value* r = out.main.append(now);
      r[0] = now;
      r[1] = static_cast<std::int64_t>(sent_ + i);
    }
    sent_ += n;
    return core::poll_status::data;
  }

private:
  core::schema_ptr schema_;
  double rate_, seconds_;
  std::uint64_t first_;
  std::int64_t start_ = 0;
  std::uint64_t sent_ = 0;
};

/// Source `bench_paced` → three rebalanced operators → sink `bench_latency` (types each
/// benchmark registers): every row crosses three actor hops.
inline constexpr const char* latency_pipeline_yaml =
    "sources:\n  src:\n    type: bench_paced\n"
    "operators:\n"
    "  a:\n    type: filter\n    input: src\n    where: v >= 0\n    partition: rebalance\n"
    "  b:\n    type: map\n    input: a\n    fields: {w: v * 2}\n    partition: rebalance\n"
    "  c:\n    type: filter\n    input: b\n    where: w % 2 == 0\n    partition: rebalance\n"
    "sinks:\n  out:\n    type: bench_latency\n    input: c\n    partition: rebalance\n";

} // namespace bench
