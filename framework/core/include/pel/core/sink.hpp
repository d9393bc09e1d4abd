#pragma once
/// \file
/// The interface of a sink connector. Sinks know nothing of actors.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/source.hpp"
#include "pel/core/state_io.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pel::core {

/// Live figures of a sink's store-and-forward buffer (`buffer:`). The sink writes them from
/// its own threads; the runtime reads them at any time for `job::status`.
struct sink_buffer_gauges {
  std::atomic<bool> present{false};        ///< the sink has a buffer
  std::atomic<bool> forwarding{true};      ///< false while handing records to the sink fails
  std::atomic<std::uint64_t> appended{0};  ///< records appended to the buffer (this run)
  std::atomic<std::uint64_t> forwarded{0}; ///< records the sink confirmed (this run)
  std::atomic<std::uint64_t> dropped{0};   ///< unforwarded records deleted by `drop_oldest`
  std::atomic<std::uint64_t> full_events{0};  ///< appends that found the buffer full
  std::atomic<std::uint64_t> failures{0};  ///< failed attempts to forward (each retried)
  std::atomic<std::uint64_t> pending{0};   ///< records on disk waiting to be forwarded
  std::atomic<std::uint64_t> bytes_on_disk{0};
  std::atomic<std::uint64_t> max_size{0};
};

/// What the runtime gives a sink before `open`, for work the sink does in the background.
struct sink_binding {
  /// Logs a line for the user; thread-safe. `lost` counts records dropped (a full buffer).
  std::function<void(const source_notice&)> notify;
  /// Lives as long as the job; never null when bound.
  sink_buffer_gauges* gauges = nullptr;
};

/// A sink instance. The runtime calls it from one thread at a time.
class sink_base {
public:
  virtual ~sink_base() = default;

  /// Why this sink, as configured, cannot sit behind a store-and-forward buffer (`buffer:`),
  /// or empty when it can. A buffered sink is built again after each failure and on each
  /// restart, and gets only `write`, `flush`, `close` and `abort`. Checked by the planner.
  virtual std::string buffer_refusal() const { return {}; }

  /// Called by the runtime before `open`. Sinks that do nothing in the background ignore it.
  virtual void bind(const sink_binding& b) { (void)b; }

  /// Called once with the schema of the rows it will receive.
  virtual void open(const operator_context& ctx, const schema_ptr& input) = 0;

  /// Writes the rows of `in`. May buffer. Throwing fails the pipeline.
  virtual void write(const batch& in) = 0;

  /// Make everything written so far durable (flush buffers, wait for delivery reports).
  /// Called on checkpoint barriers and before `close`. Throw when delivery failed.
  virtual void flush() {}

  /// Called after the final `flush` at end of stream or shutdown.
  virtual void close() {}

  /// Count of rows acknowledged as delivered (for status and tests).
  virtual std::uint64_t delivered() const { return 0; }

  // -- checkpoints (two-phase commit) ------------------------------------------------------
  //
  // With checkpoints on, a sink sees, in order: `prepare(id)` when barrier `id` reaches it
  // (everything written since the previous barrier belongs to checkpoint `id`), then
  // `snapshot` (what must survive a crash until the commit), and later `commit(id)` once the
  // checkpoint is complete, i.e. every instance has saved its state and the manifest is
  // written. Commits come in id order; a commit may cover several prepared ids. On a restart
  // from checkpoint `id`, `restore(id, r)` comes after `open` with that snapshot.

  /// True when this sink, as configured, makes its output visible only at `commit`
  /// (`delivery: exactly_once`): a restart from a checkpoint then neither loses nor repeats
  /// output. False: at-least-once (output is visible at once; a restart may repeat it).
  virtual bool exactly_once() const { return false; }

  /// Barrier `id` reached the sink: make everything written so far durable (at-least-once
  /// sinks: deliver it; exactly-once sinks: hold it, ready to be made visible). Throw when
  /// that failed. Default: `flush()`.
  virtual void prepare(std::uint64_t id) {
    (void)id;
    flush();
  }

  /// Writes what a restart must find to finish checkpoint(s) up to the last `prepare`d id
  /// (e.g. the prepared but uncommitted output). Called right after `prepare`.
  virtual void snapshot(state_writer& w) { (void)w; }

  /// Checkpoint `id` is complete: make everything prepared up to `id` visible. Must not
  /// repeat what an earlier `commit` (also one of a previous run) made visible.
  virtual void commit(std::uint64_t id) { (void)id; }

  /// Resuming from complete checkpoint `id`, with what `snapshot` wrote at its barrier: make
  /// visible what was prepared up to `id` and is not yet (the previous run may have died
  /// before its commit), and discard anything a previous run left unfinished after it (fence
  /// it, for Kafka). Called after `open`, before any `write`.
  virtual void restore(std::uint64_t id, state_reader& r) {
    (void)id;
    (void)r;
  }

  /// The job stops without ending the stream (a stop with a final checkpoint, or a failure):
  /// drop what was written since the last `prepare` without making it visible, then release
  /// everything. Called instead of `close`. Default: `close()` for at-least-once sinks.
  virtual void abort() {
    if (!exactly_once()) close();
  }
};

using sink_ptr = std::unique_ptr<sink_base>;

} // namespace pel::core
