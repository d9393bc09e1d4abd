#pragma once
/// \file
/// Internal: the event time of one source instance whose input has splits (Kafka
/// partitions). One watermark per split, idleness per split, and watermark alignment (a split
/// running too far ahead of the slowest one of its source is paused). No CAF here; a chain
/// instance drives it from its poll loop. Not thread-safe.

#include "pel/core/source.hpp"
#include "pel/runtime/job.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pel::runtime {

/// Per-split watermarks of one source instance.
///
/// Clock: every call takes `clock`, steady nanoseconds that do not advance while the
/// instance is backpressured, so that a split whose data waits behind a full channel is not
/// taken for idle (the pitfall of FLIP-471).
class split_watermarks {
public:
  struct settings {
    std::int64_t out_of_orderness_ns = 0;
    std::int64_t idle_timeout_ns = 0;  ///< 0: a split is never idle
    std::int64_t max_drift_ns = 0;     ///< 0: no alignment
    std::int64_t warn_after_ns = 30'000'000'000;  ///< a split holding time back is named after
  };

  /// A pause or resume the source should apply.
  struct decision {
    std::uint32_t id = 0;
    bool pause = false;
  };

  /// A line for the log.
  struct note {
    bool warning = false;
    std::string text;
  };

  split_watermarks(settings s, std::int64_t clock);

  /// The rows of one poll: `ids[i]` is the split of the row with event time `times[i]`.
  void observe(const std::uint32_t* ids, const std::int64_t* times, std::size_t n,
               std::int64_t clock);

  /// Takes the source's current splits (new ones join, revoked ones leave) and updates
  /// idleness. `describe` prefixes the log notes (e.g. "source 'ticks' instance 2").
  /// `pending`: the source waits for splits to be given to it; without splits it is then not
  /// idle (see `core::source_base::assignment_pending`).
  void sync(const std::vector<core::split_report>& now, std::int64_t clock, bool pending = false);

  /// The instance's watermark: the minimum over the splits that are not idle of their largest
  /// event time, less the out-of-orderness bound (INT64_MIN while a split that is not idle
  /// has had no data yet: it holds time back). Never below what it was as splits went idle,
  /// one after the other in the order they reached their end. When every split is idle, the
  /// highest of theirs.
  std::int64_t watermark() const;

  /// Every split is idle, or none has been assigned for `idle_timeout`.
  bool all_idle() const noexcept { return all_idle_; }

  /// Smallest largest-event-time over the splits that have data, are not idle and have more
  /// to read (not at their end); INT64_MAX when there is none; INT64_MIN while a split's
  /// first data is on its way (for `first_data_grace_ns` after it was assigned), which holds
  /// every other split. What this instance publishes for alignment: a split with nothing to
  /// read must not keep others paused.
  std::int64_t alignment_floor() const;

  /// How long a split that has had no data yet holds the others under alignment.
  static constexpr std::int64_t first_data_grace_ns = 1'000'000'000;

  /// With `floor` the smallest `alignment_floor()` over every instance of the source, pauses
  /// the splits more than `max_drift` ahead of it and resumes the others. Appends the changes.
  void align(std::int64_t floor, std::vector<decision>& out);

  bool any_paused() const noexcept;

  /// How far the furthest split (not idle, with data) is ahead of the alignment floor: what
  /// bounds the open windows a backlog read unevenly leaves behind. 0 when none.
  std::int64_t lead() const;

  /// Notes since the last call, oldest first.
  std::vector<note> take_notes();

  /// Each split as it stands: name, watermark (its newest time less the out-of-orderness),
  /// idle and paused, for `job::status`. Positions are the source's (`core::split_position`).
  void describe(std::vector<split_status>& out) const;

  std::size_t size() const noexcept { return splits_.size(); }

private:
  struct split {
    std::uint32_t id = 0;
    std::string name;
    std::int64_t max_ts = INT64_MIN;
    std::int64_t at_end_since = INT64_MIN;  ///< clock when it reached its end (if at_end)
    std::int64_t last_data = 0;      ///< clock of its last row (or when it was assigned)
    bool at_end = false;
    bool idle = false;
    bool paused = false;
    bool warned = false;        ///< told that it holds time back (until data comes)
    bool told_idle = false;     ///< told once that it went idle (later times are not logged)
  };

  split* find(std::uint32_t id);
  /// The minimum over the splits that are not idle now (see `watermark`).
  std::int64_t computed() const;
  /// `alignment_floor` without the hold of splits waiting for their first data.
  std::int64_t data_floor() const;
  void say(bool warning, std::string text);

  settings s_;
  std::vector<split> splits_;
  std::size_t last_ = 0;
  std::int64_t empty_since_;  ///< clock since no split has been assigned (INT64_MIN: some are)
  bool all_idle_ = false;
  std::int64_t clock_ = 0;  ///< of the last sync
  std::int64_t held_ = INT64_MIN;  ///< highest watermark seen as splits went idle one by one
  std::vector<note> notes_;
};

/// `ns` as a short duration for messages ("5s", "250ms").
std::string duration_text(std::int64_t ns);

} // namespace pel::runtime
