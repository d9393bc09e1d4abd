#include "replay.hpp"

#include <algorithm>

namespace pel::testing {

core::poll_status replay_source::poll(core::outputs& out, std::size_t max_rows) {
  (void)max_rows;
  if (!reader_) return core::poll_status::end;
  if (pending_) {
    // The runtime sent on what the last poll emitted (and its watermark) before this poll.
    pending_ = false;
    gate_->handed(slot_, watermark().ns);
  }
  if (ended_) return core::poll_status::end;
  if (!gate_->take(slot_, next_)) return core::poll_status::idle;
  if (next_ >= input_->items.size()) {
    // The end takes a turn too, so that the streams it closes close at the same place.
    ended_ = true;
    gate_->handed(slot_, INT64_MAX);
    return core::poll_status::end;
  }
  const replay_item& it = input_->items[next_++];
  pending_ = true;
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

replay_gate::replay_gate(std::vector<std::vector<std::int64_t>> keys)
    : keys_(std::move(keys)),
      next_(keys_.size(), 0),
      ended_(keys_.size(), 0),
      watermarks_(keys_.size(), INT64_MIN) {}

bool replay_gate::take(std::size_t i, std::size_t item) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_) return false;
  // The step with the lowest key goes first; a source's end has its last item's key (the
  // lowest possible when it has none: a source without input ends first).
  auto key = [&](std::size_t s) {
    const auto& k = keys_[s];
    if (next_[s] < k.size()) return k[next_[s]];
    return k.empty() ? INT64_MIN : k.back();
  };
  for (std::size_t s = 0; s < keys_.size(); ++s) {
    if (s == i || ended_[s]) continue;
    if (key(s) < key(i) || (key(s) == key(i) && s < i)) return false;
  }
  in_flight_ = true;
  handed_ = false;
  next_[i] = item + 1;
  if (item >= keys_[i].size()) ended_[i] = 1;
  return true;
}

void replay_gate::handed(std::size_t i, std::int64_t watermark) {
  std::lock_guard<std::mutex> lock(mu_);
  watermarks_[i] = watermark;
  handed_ = true;
}

bool replay_gate::waiting(std::vector<std::int64_t>& watermarks) const {
  std::lock_guard<std::mutex> lock(mu_);
  watermarks = watermarks_;
  return in_flight_ && handed_;
}

void replay_gate::settle() {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ = false;
  handed_ = false;
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

}  // namespace pel::testing
