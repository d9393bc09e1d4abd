#pragma once
/// \file
/// The interface every operator implements. Operators know nothing of actors: the runtime
/// calls these methods from one thread at a time per instance.

#include "pel/core/batch.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/time.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pel::core {

class state_writer;
class state_reader;

/// Where an instance sits in its operator, given to `open`.
struct operator_context {
  std::string name;               ///< the operator's name in the pipeline
  std::uint32_t instance = 0;     ///< this instance, 0 .. parallelism-1
  std::uint32_t parallelism = 1;  ///< instances of this operator
  std::uint32_t max_parallelism = 128;  ///< number of key groups
  std::uint32_t key_group_begin = 0;    ///< first key group this instance owns
  std::uint32_t key_group_end = 128;    ///< one past the last key group it owns
  /// Rows in a full batch (`pipeline.batch.size`). An input batch this full means the rows
  /// come from a backlog; smaller ones were sent by `batch.linger`, the stream keeping up.
  std::uint32_t batch_size = 1024;
};

/// The outputs an operator writes to while it handles one call. The runtime drains them after
/// the call returns. `main` has the operator's output schema, `late` its (first) input's
/// schema, `dead_letter` the `dead_letter_schema()`.
struct outputs {
  batch main;
  batch late;
  batch dead_letter;
  /// Sources with splits only: the split of each row of `main` (see `source_base::has_splits`).
  std::vector<std::uint32_t> splits;
  /// Late records the operator dropped (not sent to `late`): the runtime counts them with the
  /// late ones, so that no drop is silent, and resets this.
  std::uint64_t late_dropped = 0;

  /// Appends a dead-letter record: `reason` is why, `row`/`in` the failed record.
  void dead(std::string_view op, std::string_view reason, const value* row, const schema& in,
            std::int64_t t, std::string_view source = {}, std::string_view position = {});
};

/// The halves of a two-phase (local/global) aggregation, see `operator_base::split`.
enum class phase : std::uint8_t {
  local,   ///< before the key shuffle: pre-aggregates one upstream instance's rows, any keys
  global,  ///< after the shuffle: merges the local halves' partial results by key
};

/// A stream operator. Lifecycle: construction (from validated config, for known input
/// schemas) → `open` → any number of `process` / `on_watermark` / `on_timer` calls →
/// `finish` at end of stream → destruction. Exceptions escaping `process` fail the instance.
class operator_base {
public:
  virtual ~operator_base() = default;

  /// The schema of `main`. Called after construction, before `open`.
  virtual schema_ptr output_schema() const = 0;

  /// Positions (in input `input`'s schema) of the key fields when the operator is keyed; the
  /// planner then hash-partitions that input by them. Empty when not keyed.
  virtual std::vector<int> key_columns(int input) const {
    (void)input;
    return {};
  }

  virtual void open(const operator_context& ctx) { (void)ctx; }

  /// Handles a batch from input `input` (0 for single-input operators). The operator may move
  /// values out of `in`.
  virtual void process(batch& in, int input, outputs& out) = 0;

  /// The watermark of this instance advanced to `wm` (the minimum over its inputs).
  virtual void on_watermark(event_time wm, outputs& out) {
    (void)wm;
    (void)out;
  }

  /// This instance's output has gone idle: downstream stops waiting for its watermark until
  /// it sends data again. Emit what is held back only until the watermark passes (a local
  /// half's partial aggregates), so that a downstream instance going on without this one does
  /// not close a window without it.
  virtual void on_idle(outputs& out) { (void)out; }

  /// Called periodically (about every `timer_interval`) with the processing time.
  virtual void on_timer(processing_time now, outputs& out) {
    (void)now;
    (void)out;
  }

  /// Requested interval between `on_timer` calls in ns, 0 for none.
  virtual std::int64_t timer_interval_ns() const { return 0; }

  /// All inputs ended: emit whatever is still pending (open windows, buffers).
  virtual void finish(outputs& out) { (void)out; }

  /// Two-phase aggregation. A keyed operator whose state is made of mergeable partial
  /// aggregates may return, for `phase::local`, an operator that takes this operator's input
  /// rows (any keys, no shuffle before it) and emits partial results keyed like its input,
  /// and for `phase::global`, an operator whose input 0 is the local half's output and whose
  /// results are the ones this operator would give. The planner then runs the local half
  /// fused with the upstream and shuffles partials instead of records. Returns nullptr when
  /// this operator, as configured, cannot be split. Called on a fresh, unopened instance,
  /// which the call may consume.
  virtual std::unique_ptr<operator_base> split(phase p) {
    (void)p;
    return nullptr;
  }

  /// True when instances can be added and removed while the pipeline runs (autoscaling):
  /// all the operator's state is kept by key group, so that `restore` of every old instance's
  /// snapshot into a new instance keeps exactly the groups it owns (`key_group_begin/end` of
  /// its context), or it keeps no state. Keyed operators are by default; a stateless
  /// operator says so; an operator with state of the instance as a whole (a local half's
  /// partial aggregates over any keys, a rate limit) is not.
  virtual bool rescalable() const { return !key_columns(0).empty(); }

  /// Checkpoint hooks (state of the key groups this instance owns).
  virtual void snapshot(state_writer& w) { (void)w; }
  virtual void restore(state_reader& r) { (void)r; }
};

using operator_ptr = std::unique_ptr<operator_base>;

} // namespace pel::core
