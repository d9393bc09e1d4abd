#include "split_watermarks.hpp"

#include <algorithm>
#include <climits>

namespace pel::runtime {

std::string duration_text(std::int64_t ns) {
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  return std::to_string(ns / 1000) + "us";
}

split_watermarks::split_watermarks(settings s, std::int64_t clock) : s_(s), empty_since_(clock) {}

namespace {
constexpr std::int64_t unset = INT64_MIN;
}

split_watermarks::split* split_watermarks::find(std::uint32_t id) {
  if (last_ < splits_.size() && splits_[last_].id == id) return &splits_[last_];
  for (std::size_t i = 0; i < splits_.size(); ++i)
    if (splits_[i].id == id) {
      last_ = i;
      return &splits_[i];
    }
  return nullptr;
}

void split_watermarks::say(bool warning, std::string text) {
  notes_.push_back(note{warning, std::move(text)});
}

void split_watermarks::observe(const std::uint32_t* ids, const std::int64_t* times,
                               std::size_t n, std::int64_t clock) {
  split* cur = nullptr;
  std::uint32_t cur_id = 0;
  std::int64_t cur_max = INT64_MIN;
  auto settle = [&] {
    if (cur == nullptr) return;
    cur->max_ts = std::max(cur->max_ts, cur_max);
    cur->last_data = clock;
    cur->at_end = false;
    cur->at_end_since = unset;
    cur->warned = false;
    if (cur->idle) {
      cur->idle = false;
      all_idle_ = false;
      if (cur->told_idle) say(false, "partition " + cur->name + " has data again and holds the watermark again");
    }
  };
  // Rows of one split come in runs: settle a split's maximum once per run.
  for (std::size_t r = 0; r < n; ++r) {
    if (cur == nullptr || ids[r] != cur_id) {
      settle();
      cur = find(ids[r]);
      cur_id = ids[r];
      cur_max = INT64_MIN;
      if (cur == nullptr) {
        // Rows of a split not synced yet (its first poll): it joins now, named at the sync.
        split fresh;
        fresh.id = cur_id;
        fresh.name = "#" + std::to_string(cur_id);
        splits_.push_back(std::move(fresh));
        last_ = splits_.size() - 1;
        cur = &splits_.back();
      }
    }
    cur_max = std::max(cur_max, times[r]);
  }
  settle();
}

void split_watermarks::sync(const std::vector<core::split_report>& now, std::int64_t clock, bool pending) {
  clock_ = clock;
  // Splits that left (revoked): no longer part of the watermark.
  splits_.erase(std::remove_if(splits_.begin(), splits_.end(),
                               [&](const split& s) {
                                 return std::none_of(now.begin(), now.end(),
                                                     [&](const core::split_report& r) {
                                                       return r.id == s.id;
                                                     });
                               }),
                splits_.end());
  last_ = 0;
  std::vector<std::size_t> going_idle;
  for (const auto& r : now) {
    split* s = find(r.id);
    if (s == nullptr) {
      split fresh;
      fresh.id = r.id;
      fresh.last_data = clock;
      splits_.push_back(std::move(fresh));
      s = &splits_.back();
    }
    s->name = r.name;
    if (r.at_end && !s->at_end) s->at_end_since = clock;
    if (!r.at_end) s->at_end_since = unset;
    s->at_end = r.at_end;
    const bool idle = s->at_end && !s->paused && s_.idle_timeout_ns > 0 &&
                      clock - s->at_end_since >= s_.idle_timeout_ns;
    if (idle && !s->idle) {
      going_idle.push_back(static_cast<std::size_t>(s - splits_.data()));
    } else if (!idle && s->idle) {
      if (s->told_idle) say(false, "partition " + s->name + " has data waiting and holds the watermark again");
      s->idle = false;
    }
    // A split that holds time back for long is named, once until it has data again.
    if (!idle && !s->warned && clock - s->last_data >= s_.warn_after_ns) {
      s->warned = true;
      std::string why = s->max_ts == INT64_MIN ? "has had no data yet" : "has had no new data";
      say(true, "partition " + s->name + " " + why + " for " + duration_text(clock - s->last_data) +
                    " and holds the watermark back, so windows do not close; " +
                    (s_.idle_timeout_ns > 0
                         ? std::string("it is not at its end (is the broker reachable?)")
                         : std::string("set event_time.idle_timeout (e.g. 5s) to let time go on "
                                       "without a partition that has no data")));
    }
  }
  // Splits go idle in the order they reached their end, the watermark taken after each:
  // several that go idle between two calls still let the time of those that went later
  // through (else an empty split and a drained backlog going idle together would leave the
  // backlog's windows open).
  std::sort(going_idle.begin(), going_idle.end(), [&](std::size_t a, std::size_t b) {
    return splits_[a].at_end_since < splits_[b].at_end_since;
  });
  for (std::size_t i : going_idle) {
    split& s = splits_[i];
    if (!s.told_idle)
      say(false, "partition " + s.name + " has had no data for " + duration_text(s_.idle_timeout_ns) +
                     " (event_time.idle_timeout): the watermark goes on without it until data "
                     "returns");
    s.told_idle = true;
    s.idle = true;
    held_ = std::max(held_, computed());
  }
  if (splits_.empty() && pending) {
    // No splits because none were given yet: not idle, however long that takes.
    empty_since_ = unset;
    all_idle_ = false;
  } else if (splits_.empty()) {
    if (empty_since_ == unset) empty_since_ = clock;
    all_idle_ = s_.idle_timeout_ns > 0 && clock - empty_since_ >= s_.idle_timeout_ns;
  } else {
    empty_since_ = unset;
    all_idle_ = std::all_of(splits_.begin(), splits_.end(), [](const split& s) { return s.idle; });
  }
}

std::int64_t split_watermarks::watermark() const { return std::max(held_, computed()); }

std::int64_t split_watermarks::computed() const {
  if (!splits_.empty() &&
      std::all_of(splits_.begin(), splits_.end(), [](const split& s) { return s.idle; })) {
    // Every split idle: the highest of them, as for the inputs of an instance.
    std::int64_t hi = INT64_MIN;
    for (const auto& s : splits_) hi = std::max(hi, s.max_ts);
    if (hi == INT64_MIN || hi < INT64_MIN + s_.out_of_orderness_ns) return INT64_MIN;
    return hi - s_.out_of_orderness_ns;
  }
  std::int64_t m = INT64_MAX;
  for (const auto& s : splits_) {
    if (s.idle) continue;
    if (s.max_ts == INT64_MIN) return INT64_MIN;  // no data yet: holds time back
    m = std::min(m, s.max_ts);
  }
  if (m == INT64_MAX) return INT64_MIN;
  if (m < INT64_MIN + s_.out_of_orderness_ns) return INT64_MIN;
  return m - s_.out_of_orderness_ns;
}

std::int64_t split_watermarks::data_floor() const {
  std::int64_t m = INT64_MAX;
  for (const auto& s : splits_)
    if (!s.idle && !s.at_end && s.max_ts != INT64_MIN) m = std::min(m, s.max_ts);
  return m;
}

std::int64_t split_watermarks::alignment_floor() const {
  // A split whose first data is still on its way (not at its end, assigned less than the
  // grace ago) holds every other split: else a partition fetched a little later than the
  // others would find them far ahead. After the grace it no longer does (it may never get
  // data; the watermark still waits for it).
  for (const auto& s : splits_)
    if (!s.idle && !s.at_end && s.max_ts == INT64_MIN && clock_ - s.last_data < first_data_grace_ns)
      return INT64_MIN;
  return data_floor();
}

void split_watermarks::align(std::int64_t floor, std::vector<decision>& out) {
  if (s_.max_drift_ns <= 0) return;
  for (auto& s : splits_) {
    // A split with nothing left to read gains nothing from a pause; one without data yet is
    // not ahead of anything.
    const bool ahead = floor != INT64_MAX && s.max_ts != INT64_MIN && !s.at_end &&
                       (floor == INT64_MIN || s.max_ts - floor > s_.max_drift_ns);
    if (ahead != s.paused) {
      s.paused = ahead;
      out.push_back(decision{s.id, ahead});
    }
  }
}

std::int64_t split_watermarks::lead() const {
  const std::int64_t floor = data_floor();
  if (floor == INT64_MAX) return 0;
  std::int64_t hi = floor;
  for (const auto& s : splits_)
    if (!s.idle && s.max_ts != INT64_MIN) hi = std::max(hi, s.max_ts);
  return hi - floor;
}

bool split_watermarks::any_paused() const noexcept {
  return std::any_of(splits_.begin(), splits_.end(), [](const split& s) { return s.paused; });
}

std::vector<split_watermarks::note> split_watermarks::take_notes() {
  std::vector<note> n;
  n.swap(notes_);
  return n;
}

} // namespace pel::runtime

namespace pel::runtime {

void split_watermarks::describe(std::vector<split_status>& out) const {
  out.clear();
  for (const auto& sp : splits_) {
    split_status st;
    st.split = sp.name;
    st.watermark_ns = sp.max_ts == INT64_MIN || sp.max_ts < INT64_MIN + s_.out_of_orderness_ns
                          ? INT64_MIN
                          : sp.max_ts - s_.out_of_orderness_ns;
    st.idle = sp.idle;
    st.paused = sp.paused;
    out.push_back(std::move(st));
  }
}

} // namespace pel::runtime
