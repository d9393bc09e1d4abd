#pragma once
// The sink the pipeline benchmarks end in: it counts rows and sums their `notional` field, so
// that a run's result can be checked against the same computation done by hand.

#include "pel/core/sink.hpp"
#include "pel/core/value.hpp"

#include <cstdint>
#include <mutex>

namespace bench {

/// Totals of every `notional_sink` instance of a run (each adds its own when it closes).
struct notional_total {
  std::mutex mu;
  std::uint64_t count = 0;
  double sum = 0;

  void reset() {
    std::lock_guard<std::mutex> g(mu);
    count = 0;
    sum = 0;
  }
};

/// Counts rows and sums the `notional` field; adds both to `total` at close.
class notional_sink final : public pel::core::sink_base {
public:
  explicit notional_sink(notional_total& total) : total_(total) {}
  void open(const pel::core::operator_context&, const pel::core::schema_ptr& in) override {
    col_ = in->index_of("notional");
  }
  void write(const pel::core::batch& b) override {
    count_ += b.size();
    for (std::size_t i = 0; i < b.size(); ++i) {
      double d;
      if (pel::core::as_number(b.row(i)[col_], d)) sum_ += d;
    }
  }
  void close() override {
    std::lock_guard<std::mutex> g(total_.mu);
    total_.count += count_;
    total_.sum += sum_;
  }

private:
  notional_total& total_;
  int col_ = -1;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

} // namespace bench
