#include "replay.hpp"

#include <algorithm>

namespace pel::testing {

core::poll_status replay_source::poll(core::outputs& out, std::size_t max_rows) {
  (void)max_rows;
  if (!reader_ || next_ >= input_->items.size()) return core::poll_status::end;
  // One entry per poll: the runtime takes the watermark after each poll, so it advances
  // after every record exactly as the entries say, whatever the timing of the run.
  const replay_item& it = input_->items[next_++];
  if (it.watermark) {
    explicit_ = std::max(explicit_, it.event_ns);
    return core::poll_status::data;
  }
  core::value* row = out.main.append(it.row_time);
  std::copy(it.row.begin(), it.row.end(), row);
  if (it.event_ns != INT64_MIN) max_seen_ = std::max(max_seen_, it.event_ns);
  return core::poll_status::data;
}

core::event_time replay_source::watermark() const {
  if (input_->processing_time) return core::event_time::min();
  std::int64_t wm = explicit_;
  if (max_seen_ != INT64_MIN) {
    const std::int64_t ooo = input_->max_out_of_orderness_ns;
    wm = std::max(wm, max_seen_ >= INT64_MIN + ooo ? max_seen_ - ooo : INT64_MIN);
  }
  // Nothing seen yet: the runtime has no watermark either.
  return core::event_time{wm};
}

void replay_source::restore(core::state_reader& r) {
  next_ = static_cast<std::size_t>(r.get<std::uint64_t>());
  // Times up to the restored position, as the first run had them.
  for (std::size_t i = 0; i < next_ && i < input_->items.size(); ++i) {
    const auto& it = input_->items[i];
    if (it.event_ns == INT64_MIN) continue;
    if (it.watermark)
      explicit_ = std::max(explicit_, it.event_ns);
    else
      max_seen_ = std::max(max_seen_, it.event_ns);
  }
}

void capture_sink::open(const core::operator_context& ctx, const core::schema_ptr& input) {
  (void)ctx;
  std::lock_guard<std::mutex> lock(store_->mu);
  if (!store_->rows.schema) store_->rows.schema = input;
}

void capture_sink::write(const core::batch& in) {
  std::lock_guard<std::mutex> lock(store_->mu);
  for (std::size_t r = 0; r < in.size(); ++r) {
    const core::value* row = in.row(r);
    store_->rows.rows.emplace_back(row, row + in.width);
  }
}

} // namespace pel::testing
