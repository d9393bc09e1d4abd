#pragma once
// The workload the pipeline benchmarks share: trades generated before any clock starts, and
// the sink they end in, which counts rows and sums their `notional` field so that a run's
// result can be checked against the same computation done by hand.

#include "pel/connectors/generator.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/core/value.hpp"

#include <cstdint>
#include <mutex>
#include <vector>

namespace bench {

/// Trades generated before any clock starts, as batches of the generator's schema.
struct prepared_trades {
  pel::core::schema_ptr schema;
  std::vector<pel::core::batch> batches;
  std::size_t rows = 0;
};

/// `rows` trades of 1000 symbols (seed 7) in batches of `batch_rows`.
inline prepared_trades prepare_trades(std::size_t rows, std::size_t batch_rows) {
  pel::connectors::generator_options o;
  o.profile = pel::connectors::generator_profile::trades;
  o.symbols = 1000;
  o.count = rows;
  o.seed = 7;
  auto src = pel::connectors::make_generator(o);
  pel::core::operator_context ctx;
  src->open(ctx);
  prepared_trades p;
  p.schema = src->output_schema();
  for (int guard = 0; guard < 1'000'000; ++guard) {
    pel::core::outputs out;
    out.main.width = static_cast<std::uint32_t>(p.schema->size());
    auto st = src->poll(out, batch_rows);
    if (!out.main.empty()) {
      p.rows += out.main.size();
      p.batches.push_back(std::move(out.main));
    }
    if (st == pel::core::poll_status::end) break;
  }
  return p;
}

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
