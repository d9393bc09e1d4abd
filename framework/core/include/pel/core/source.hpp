#pragma once
/// \file
/// The interface of a source connector. Sources know nothing of actors.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/time.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pel::core {

/// What one `poll` call found.
enum class poll_status {
  data,  ///< rows were appended (or may be: call again soon)
  idle,  ///< nothing available now; the runtime polls again after a short pause
  end,   ///< the source is exhausted (bounded input); it is not polled again
};

/// One split of a source instance's input: a part that is in event-time order on its own and
/// read independently of the others (a Kafka partition). The runtime keeps a watermark per
/// split; see `source_base::has_splits`.
struct split_report {
  std::uint32_t id = 0;  ///< stable while assigned; never reused by the same instance
  std::string name;      ///< for the log, e.g. `ticks/3`
  /// Everything available has been read (Kafka: the partition's end was reached and no message
  /// came after it). A split that is not at its end is never idle: data is waiting for it.
  bool at_end = false;
};

/// Where a source stands in one split, for monitoring: Kafka offsets. -1: unknown.
struct split_position {
  std::string name;            ///< as in `split_report::name`
  std::int64_t position = -1;  ///< the next offset it reads
  std::int64_t end = -1;       ///< the split's end as last fetched (Kafka: high watermark)
};

/// Something a source noticed that the user must be told, with the records it knows were lost
/// before they reached the source (e.g. deleted by retention before they were read).
struct source_notice {
  enum class level : std::uint8_t { info, warning, error };
  level severity = level::warning;
  std::string text;        ///< one line, says what happened and what to do
  std::uint64_t lost = 0;  ///< input records lost, counted in the run summary
};

/// A source instance. The runtime calls it from one thread at a time. A source that blocks
/// (stdin) returns `true` from `blocking()` and gets a thread of its own.
class source_base {
public:
  virtual ~source_base() = default;

  /// Schema of the rows it appends. Known after construction.
  virtual schema_ptr output_schema() const = 0;

  /// `ctx.instance` / `ctx.parallelism` say which share of the input this instance reads.
  virtual void open(const operator_context& ctx) { (void)ctx; }

  /// Appends up to `max_rows` rows to `out.main` (and malformed input to `out.dead_letter`).
  /// Must return promptly unless `blocking()`.
  virtual poll_status poll(outputs& out, std::size_t max_rows) = 0;

  /// Event time below which this source promises no more rows, if it tracks one itself
  /// (e.g. the minimum over its Kafka partitions); `event_time::min()` lets the runtime derive
  /// the watermark from the rows it emitted.
  virtual event_time watermark() const { return event_time::min(); }

  virtual bool blocking() const { return false; }

  // -- splits (per-partition event time) ---------------------------------------------------

  /// True when the input is made of splits, each in event-time order on its own (Kafka
  /// partitions). The source then tags every row it appends to `out.main` with its split in
  /// `out.splits` (same length as `out.main`), and the runtime keeps one watermark per split:
  /// the instance's watermark is the minimum over its active splits, a split at its end for
  /// `idle_timeout` stops holding it back, and `watermark()` is not used.
  virtual bool has_splits() const { return false; }

  /// The splits assigned now (the runtime calls it after each poll).
  virtual void splits(std::vector<split_report>& out) const { out.clear(); }

  /// True while the source waits for splits given to it from outside (a Kafka consumer group
  /// that has not assigned this member anything yet, or is between taking partitions away and
  /// handing them out again). An instance without splits then does not count as idle: the
  /// other instances' time must not run ahead of partitions nobody reads yet.
  virtual bool assignment_pending() const { return false; }

  /// Watermark alignment: stop (`paused`) or resume reading split `id`. Rows already returned
  /// stay valid, and reading resumes right after the last row returned for the split.
  /// Sources with splits: where each split stands (`split_position`). Called about twice a
  /// second, not per poll; may use figures the client library caches.
  virtual void positions(std::vector<split_position>& out) const { out.clear(); }

  virtual void pause_split(std::uint32_t id, bool paused) {
    (void)id;
    (void)paused;
  }

  /// `idle_timeout` when the pipeline gives none: how long a split (or the whole instance)
  /// may be at its end before it stops holding the watermark back. 0: never.
  virtual std::int64_t default_idle_timeout_ns() const { return 0; }

  /// Where row `row` of the last `poll`'s `out.main` came from (e.g. `ticks/3@1042`), for
  /// the dead letters the runtime makes of it (an unreadable event time). Empty if unknown.
  virtual std::string row_position(std::size_t row) const {
    (void)row;
    return {};
  }

  /// Moves what the source noticed since the last call into `out` (the runtime logs it).
  virtual void take_notices(std::vector<source_notice>& out) { (void)out; }

  /// Progress for bounded inputs: done and total units (bytes, rows); total 0 if unknown.
  virtual void progress(std::uint64_t& done, std::uint64_t& total) const {
    done = 0;
    total = 0;
  }

  /// True when instances can be added and removed while the pipeline runs (autoscaling):
  /// the input is split (Kafka partitions assigned by the source itself), `open` takes this
  /// instance's share of the splits from `instance` and `parallelism`, and `restore` may be
  /// called with the snapshots of several old instances, each time keeping the positions of
  /// the splits this instance owns.
  virtual bool rescalable() const { return false; }

  /// What arrives at this instance's input and waits to be read, for the autoscaler.
  struct load {
    /// Records per second offered to this instance now (a generator's paced rate, Kafka's
    /// produce rate); negative when unknown: the observed output rate is used instead.
    double rate = -1;
    /// Records waiting to be read (Kafka lag over the assigned partitions); negative when
    /// unknown.
    double backlog = -1;
  };
  /// Sampled by the runtime about once a second, between polls.
  virtual load offered() const { return {}; }

  /// Time the last `poll` spent blocked waiting for input (Kafka: `poll_wait` with nothing
  /// queued), in ns. The runtime counts it as idle, not busy: a source waiting for data is
  /// not working, and utilisation (the dashboard, autoscaling) must not say it is.
  virtual std::int64_t last_wait_ns() const { return 0; }

  /// A checkpoint barrier `id` is being injected after everything emitted so far: remember
  /// the current position under `id`.
  virtual void on_barrier(std::uint64_t id) { (void)id; }

  /// Everything emitted before barrier `id` has been fully processed by all sinks: commit the
  /// position remembered for `id` (e.g. Kafka offsets). At-least-once.
  virtual void on_committed(std::uint64_t id) { (void)id; }

  // -- checkpoints (positions) -------------------------------------------------------------

  /// True when the source can go back to a position written by `snapshot` (Kafka offsets, a
  /// file offset, the generator's sequence number). A job with checkpoints warns about a
  /// source that cannot: after a restart its input is not replayed.
  virtual bool replayable() const { return false; }

  /// Writes the position reached: every row returned by `poll` so far is before it, every
  /// later row after it. Called on a checkpoint barrier, right after `on_barrier(id)`. The
  /// format is the source's own; write a version first.
  virtual void snapshot(state_writer& w) { (void)w; }

  /// Resuming from a checkpoint: called after `open` and before the first `poll` with what
  /// `snapshot` wrote. The next row returned is the first one after that position. Throws
  /// `std::runtime_error` when the snapshot cannot be read.
  virtual void restore(state_reader& r) { (void)r; }

  virtual void close() {}
};

using source_ptr = std::unique_ptr<source_base>;

} // namespace pel::core
