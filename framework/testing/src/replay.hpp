#pragma once
/// \file
/// The stand-ins a test run puts in place of the pipeline's sources and sinks: a source that
/// replays a case's records and watermarks, and a sink that keeps what it receives.

#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/testing/compare.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pel::testing {

/// One entry of a source's input, ready to emit.
struct replay_item {
  bool watermark = false;
  std::vector<core::value> row;  ///< schema-width values of a record
  std::int64_t row_time = 0;  ///< the row's own time (used when the source has no event-time field)
  /// The record's event time as the runtime will read it, or the watermark's; INT64_MIN when
  /// it cannot be read (the runtime then sends the record to the dead letters).
  std::int64_t event_ns = INT64_MIN;
};

/// What one replaced source emits in a case.
struct replay_input {
  std::vector<replay_item> items;
  std::int64_t max_out_of_orderness_ns = 0;
  bool processing_time = false;  ///< `pipeline.time: processing`: the runtime keeps time
};

/// Takes the replayed sources through their inputs one item at a time over the whole job:
/// a source emits an item only when it holds the turn, and the turn comes back only when the
/// job is quiet again (`settle`, called by the runner from what `job::status` shows: no batch
/// queued, in flight or waiting for credit, and every instance's watermark where the sources'
/// watermarks put it). Between sources, the next item is the one with the lowest event time
/// (ties: the source listed first). So every operator sees the same inputs in the same order,
/// and the same watermarks between them, on every run, whatever its parallelism.
class replay_gate {
public:
  /// `keys[i]`: the event times of source i's items in order (their sort keys).
  explicit replay_gate(std::vector<std::vector<std::int64_t>> keys);

  /// Source `i` asks for the turn to emit its item `item` (`item == size`: its end). True when
  /// it may; it then holds the turn until `settle`.
  bool take(std::size_t i, std::size_t item);
  /// Source `i` has emitted its item and the runtime has sent it on (called at its next poll),
  /// or it ended; `watermark` is its watermark now (INT64_MAX once ended).
  void handed(std::size_t i, std::int64_t watermark);

  /// For the runner: true when an item was handed on and waits to be settled; `watermarks`
  /// gets every source's watermark.
  bool waiting(std::vector<std::int64_t>& watermarks) const;
  /// For the runner: the job is quiet; the next item may go.
  void settle();

private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::int64_t>> keys_;
  std::vector<std::size_t> next_;  ///< per source: its next item (size: its end)
  std::vector<char> ended_;
  std::vector<std::int64_t> watermarks_;
  bool in_flight_ = false;  ///< a source holds the turn
  bool handed_ = false;     ///< and has handed its item on
};

/// Replays `replay_input` from its instance 0 (the others end at once): one item per poll,
/// when the gate gives the turn; after each record its watermark is the highest of the
/// watermark entries so far and of the highest event time so far less
/// `max_out_of_orderness`. A run with a zero watermark interval sends it downstream right
/// after the record, so every window fires at the same place in the input on every run.
class replay_source final : public core::source_base {
public:
  replay_source(core::schema_ptr schema, std::shared_ptr<const replay_input> input,
                std::shared_ptr<replay_gate> gate, std::size_t slot)
      : schema_(std::move(schema)), input_(std::move(input)), gate_(std::move(gate)), slot_(slot) {}

  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override { reader_ = ctx.instance == 0; }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override;
  core::event_time watermark() const override;
  bool replayable() const override { return true; }
  void snapshot(core::state_writer& w) override { w.put<std::uint64_t>(next_); }
  void restore(core::state_reader& r) override;
  void progress(std::uint64_t& done, std::uint64_t& total) const override {
    done = next_;
    total = input_->items.size();
  }

private:
  core::schema_ptr schema_;
  std::shared_ptr<const replay_input> input_;
  std::shared_ptr<replay_gate> gate_;
  std::size_t slot_ = 0;
  bool reader_ = false;
  bool pending_ = false;  ///< an item was emitted by the last poll
  bool ended_ = false;
  std::size_t next_ = 0;
  std::int64_t explicit_ = INT64_MIN;  ///< highest watermark entry so far
  std::int64_t max_seen_ = INT64_MIN;  ///< highest readable event time so far
};

/// Rows captured by every instance of one sink (or one tap), in arrival order.
struct capture_store {
  std::mutex mu;
  captured rows;
};

/// A sink that appends what it receives to a `capture_store` and writes nothing anywhere.
class capture_sink final : public core::sink_base {
public:
  explicit capture_sink(std::shared_ptr<capture_store> store) : store_(std::move(store)) {}
  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;

private:
  std::shared_ptr<capture_store> store_;
};

}  // namespace pel::testing
