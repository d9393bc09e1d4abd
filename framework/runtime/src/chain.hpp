#pragma once
/// \file
/// Internal: one instance of a fused chain — the components it runs, its input slots and
/// output channels (partitioning, batching, credits), watermarks, barriers and end of
/// stream. Knows nothing of CAF: the hosting actor implements `transport` and forwards its
/// messages to the `on_*` methods. Not thread-safe: one actor drives it.

#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/core/time_format.hpp"
#include "shared.hpp"
#include "split_watermarks.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace pel::runtime {

/// What a chain instance needs from its host actor.
class transport {
public:
  virtual ~transport() = default;
  virtual void send_batch(std::uint32_t target, core::batch&& b) = 0;
  virtual void send_control(std::uint32_t target, control_kind k, std::int64_t v) = 0;
  /// Returns `n` credits to the sender of `slot`, with `spare`: the storage of a processed
  /// batch (emptied, capacity kept, possibly none) for the sender to fill again.
  virtual void send_credit(std::uint32_t slot, std::uint32_t n, core::batch&& spare) = 0;
  virtual void schedule_tick(std::int64_t delay_ns) = 0;
  virtual void schedule_poll(std::int64_t delay_ns) = 0;
  virtual void schedule_timer(int position, std::int64_t delay_ns) = 0;
  /// The instance has ended and sent everything: the host may terminate.
  virtual void finished() = 0;
  /// The job's instances changed (a rescale): the host takes the current actor list.
  virtual void refresh_peers() = 0;
};

/// Thrown (internally) to attribute a failure to a component.
struct component_failure {
  std::string component;
  std::string what;
};

class chain_instance {
public:
  chain_instance(job_state& js, std::uint32_t global_id, transport& t);
  ~chain_instance();

  /// Creates and opens the components; a source starts polling.
  void start();
  void on_batch(std::uint32_t slot, core::batch&& b);
  void on_control(std::uint32_t slot, control_kind k, std::int64_t v);
  void on_credit(std::uint32_t target, std::uint32_t n, core::batch&& spare);
  void on_tick();
  void on_poll();
  void on_timer(int position);
  /// Sources: start checkpoint `id` (save the position and state, send the barrier on).
  /// `final`: a stop with a checkpoint; the source reads nothing more after it.
  void on_barrier(std::uint64_t id, bool final);
  /// Checkpoint `id` is complete: sources commit positions, sinks make output visible.
  void on_commit(std::uint64_t id);
  /// Graceful stop: a source stops reading and ends its stream (windows fire: a drain).
  void on_stop();
  /// The job stops after a final checkpoint: nothing more is emitted, no window fires, sinks
  /// drop what came after the checkpoint; the instance finishes.
  void on_halt();
  /// Fault injection: fail at the next `point` (0: processing a batch or a poll, 1: a
  /// watermark, 2: a snapshot).
  void arm_chaos(int point) noexcept { chaos_point_ = point; }
  /// Rescale `rid` of a chain downstream: switch the channels to it over to its new
  /// instances, after sending `rescale` as the last item to each old one.
  void on_rescale(std::uint64_t rid);
  /// A new instance of rescale `rid`: every old instance handed its state over; restore it
  /// and start processing.
  void on_rescale_state(std::uint64_t rid);
  /// Where this instance sends and receives (its own copy; a rescale updates it).
  const instance_wiring& wiring() const noexcept { return w_; }

  bool is_source() const noexcept { return source_ != nullptr; }
  bool is_blocking_source() const noexcept;
  /// The component being called, for error messages.
  const std::string& current_component() const noexcept { return *current_; }

private:
  struct node_rt;
  struct edge_rt;
  struct target_rt;
  struct in_item;
  struct slot_rt;

  // -- data path ---------------------------------------------------------------------------
  void run_node(std::size_t pos, core::batch& in, int input);
  void drain_node(std::size_t pos);
  void emit(const std::vector<int>& edges, core::batch& b, std::uint32_t width);
  void emit_edge(edge_rt& e, core::batch& b, bool consume);
  void push_rows(std::uint32_t t, core::batch& b, bool consume);
  void push_row(std::uint32_t t, core::value* row, std::int64_t time, bool consume);
  void seal(std::uint32_t t);
  void drain(std::uint32_t t);
  void push_control(control_kind k, std::int64_t v);
  /// Queues `k` for target `t` after its pending rows, and sends what credits allow.
  void queue_control(std::uint32_t t, control_kind k, std::int64_t v);
  bool blocked() const noexcept;
  void pump();
  void arm_tick();
  void note_blocked();
  void handle(in_item& item);
  void assign_event_times(core::outputs& out);
  void route_dead(node_rt& n, core::batch& b);
  /// An empty batch of `width` with room for `batch.size` rows, from the spares when one is
  /// there (no allocation), else newly reserved.
  core::batch fresh_batch(std::uint32_t width);

  // -- time, barriers, end -----------------------------------------------------------------
  void source_watermark(std::int64_t now, bool force);
  /// Sources with splits: per-split watermarks, idleness, alignment and their log lines.
  void split_time(std::int64_t now, bool force);
  /// Steady ns less the time spent backpressured: what idleness is measured in.
  std::int64_t unblocked_clock(std::int64_t now) const;
  /// This instance's output goes idle: local halves send what they hold, then `idle`.
  void go_idle(std::size_t from);
  /// Logs what the source noticed and counts the input it lost.
  void take_source_notices();
  /// Builds the sink of `nr`, behind its store-and-forward buffer when it has one, and binds
  /// it to the job (log, counters).
  core::sink_ptr make_sink(node_rt& nr);
  void advance_watermark(std::int64_t wm, std::size_t from);
  void recompute_watermark();
  /// Aligned barriers: once every open input delivered the barrier some input is blocked
  /// on, saves the state, sends the barrier on and releases the held input.
  void check_alignment();
  /// Snapshots every component of the chain for checkpoint `id` (sinks prepare first),
  /// stores the blob and acknowledges.
  void take_snapshot(std::uint64_t id);
  /// The state of every component as one blob; `id` > 0: sinks prepare checkpoint `id` first.
  std::string snapshot_blob(std::uint64_t id);
  /// Reads this instance's blob of the checkpoint the job resumes from into its components.
  void restore_state();
  void forward_barrier(std::uint64_t id);
  /// Takes the job's current wiring of this instance: channels added by a rescale.
  void sync_wiring();
  /// Adds the targets and slots of `w_` this instance does not have yet.
  void sync_wiring_tables();
  /// Points every outgoing edge at the live (not retired) targets of its channel.
  void rebuild_edges();
  /// Rescale alignment: an old instance hands over once every open input delivered the
  /// marker; a downstream instance releases the new channels once every old one did.
  void check_rescale();
  /// An old instance of a rescaled source: saves its position, sends the marker and retires.
  void hand_over_source(std::uint64_t rid, std::uint32_t k);
  /// Restores the operators of the chain from blobs of other instances (a rescale, or a
  /// checkpoint taken at another parallelism); each keeps the key groups it owns.
  void restore_blobs(const std::vector<std::string>& blobs, const std::string& what);
  /// Quarantine: runs `b` row by row through the chain from node `pos`; a row that throws
  /// goes to the dead-letter output of node `pos` with the exception.
  void run_careful(std::size_t pos, core::batch& b, int input);
  void chaos(int point);
  void end_chain(std::size_t from);
  void check_finished();

  job_state& js_;
  transport& tr_;
  std::uint32_t id_;
  instance_wiring w_;
  std::uint32_t par_ = 1;  ///< instances of this chain now
  std::atomic<bool>* careful_ = nullptr;
  const plan::chain& chain_;
  std::uint32_t batch_size_;
  std::int64_t linger_ns_;
  std::vector<node_rt> nodes_;
  std::vector<edge_rt> edges_;      ///< outgoing channel edges (any node, any port)
  std::vector<target_rt> targets_;  ///< one per outgoing channel
  std::vector<slot_rt> slots_;
  std::deque<in_item> in_queue_;
  std::vector<core::batch> spares_;  ///< emptied batches returned with credits, for reuse
  std::size_t max_spares_ = 0;
  chain_counters& cm_;
  const std::string* current_;

  core::source_base* source_ = nullptr;
  bool started_ = false;
  bool in_pump_ = false;
  bool tick_armed_ = false;
  bool poll_wanted_ = false;
  bool poll_scheduled_ = false;
  bool source_done_ = false;
  bool ended_ = false;
  bool finished_ = false;
  bool idle_out_ = false;
  std::int64_t bp_since_ = 0;
  std::uint32_t outbound_ = 0;  ///< sealed batches not yet sent, over all targets
  std::uint32_t queued_batches_ = 0;  ///< batches in `in_queue_`
  std::int64_t now_ = 0;  ///< steady clock, cached per emit
  bool processing_time_ = false;

  // Source state.
  core::time_parser time_parser_;
  std::int64_t max_seen_ = INT64_MIN;
  std::int64_t ooo_ns_ = 0;
  std::int64_t idle_timeout_ns_ = 0;
  std::int64_t last_row_ns_ = 0;
  std::int64_t last_wm_emit_ns_ = 0;
  std::int64_t backoff_ns_ = 0;
  bool source_idle_ = false;
  int chaos_point_ = -1;
  std::uint64_t restored_from_ = 0;  ///< the checkpoint this instance started from (0: none)
  std::uint64_t early_barrier_ = 0;  ///< a barrier that came before `start`
  bool early_final_ = false;
  bool halted_ = false;
  std::unique_ptr<split_watermarks> split_wm_;  ///< sources with splits
  std::vector<core::split_report> split_reports_;
  std::vector<split_watermarks::decision> split_changes_;
  std::vector<core::source_notice> notices_;
  std::string who_;  ///< "source 'name' instance i", for the log

  // Watermark and barrier state of the instance.
  std::int64_t wm_ = INT64_MIN;
  std::uint64_t forwarded_barrier_ = 0;
  std::uint64_t rescale_wait_ = 0;  ///< a new instance of this rescale: waits for the state
  std::int64_t last_offer_ns_ = 0;  ///< sources: when `offered` was last sampled
  std::int64_t splits_published_ns_ = 0;  ///< sources with splits: last `publish_splits`
  std::vector<core::split_position> positions_;
};

} // namespace pel::runtime
