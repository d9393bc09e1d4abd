#pragma once
/// \file
/// The interface of a source connector. Sources know nothing of actors.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/time.hpp"

#include <cstdint>
#include <memory>

namespace pel::core {

/// What one `poll` call found.
enum class poll_status {
  data,  ///< rows were appended (or may be: call again soon)
  idle,  ///< nothing available now; the runtime polls again after a short pause
  end,   ///< the source is exhausted (bounded input); it is not polled again
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

  /// Progress for bounded inputs: done and total units (bytes, rows); total 0 if unknown.
  virtual void progress(std::uint64_t& done, std::uint64_t& total) const {
    done = 0;
    total = 0;
  }

  /// A checkpoint barrier `id` is being injected after everything emitted so far: remember
  /// the current position under `id`.
  virtual void on_barrier(std::uint64_t id) { (void)id; }

  /// Everything emitted before barrier `id` has been fully processed by all sinks: commit the
  /// position remembered for `id` (e.g. Kafka offsets). At-least-once.
  virtual void on_committed(std::uint64_t id) { (void)id; }

  virtual void close() {}
};

using source_ptr = std::unique_ptr<source_base>;

} // namespace pel::core
