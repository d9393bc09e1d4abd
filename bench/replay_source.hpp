#pragma once
/// \file
/// The in-memory replay source the benchmarks feed PEL with: batches prepared before the clock
/// starts are handed to the pipeline by moving them, so a benchmark measures the framework,
/// not a generator.

#include "pel/core/source.hpp"

#include <utility>
#include <vector>

namespace bench {

/// Replays `*feed`; instance i of p takes batches i, i+p, ... by moving them out. The feed
/// must outlive the job and is consumed by it. Event time is the rows' own time.
class replay_source final : public pel::core::source_base {
public:
  replay_source(pel::core::schema_ptr s, std::vector<pel::core::batch>* feed)
    : schema_(std::move(s)), feed_(feed) {}
  pel::core::schema_ptr output_schema() const override { return schema_; }
  void open(const pel::core::operator_context& ctx) override {
    next_ = ctx.instance;
    step_ = ctx.parallelism;
  }
  pel::core::poll_status poll(pel::core::outputs& out, std::size_t) override {
    if (feed_ == nullptr || next_ >= feed_->size()) return pel::core::poll_status::end;
    auto& b = (*feed_)[next_];
    next_ += step_;
    if (out.main.empty()) std::swap(out.main, b);
    else
      for (std::size_t i = 0; i < b.size(); ++i) out.main.append_move(b.row(i), b.times[i]);
    return pel::core::poll_status::data;
  }

private:
  pel::core::schema_ptr schema_;
  std::vector<pel::core::batch>* feed_;
  std::size_t next_ = 0, step_ = 1;
};

} // namespace bench
