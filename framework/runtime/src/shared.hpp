#pragma once
/// \file
/// Internal: state shared by the job and its instance actors (wiring, counters, failure,
/// checkpoint bookkeeping, dead-letter logging). No CAF here.

#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "checkpoint_store.hpp"
#include "pel/core/sink.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pel::runtime {

/// Control events travelling in order with the batches of a channel.
enum class control_kind : std::uint8_t {
  watermark = 0,      ///< value: event time in ns
  idle = 1,           ///< the sender has no data; do not wait for its watermark
  barrier = 2,        ///< value: checkpoint id
  end_of_stream = 3,  ///< the sender will send nothing more
  /// value: rescale id. From an upstream instance to an instance being replaced: the last
  /// item on that channel (the upstream has switched to the new instances). From an
  /// instance being replaced or a new one to a downstream instance: the first item of a new
  /// instance, the last of an old one; the downstream holds the new channels until every old
  /// one delivered it, so that a key's records keep their order.
  rescale = 4,
};

/// One outgoing channel of a chain instance: to which instance and which of its input slots.
struct target_wiring {
  std::uint32_t receiver = 0;       ///< global instance id
  std::uint32_t receiver_slot = 0;  ///< input slot at the receiver
  int edge = -1;
  std::uint32_t down_instance = 0;
  /// The receiver was replaced by a rescale: nothing more goes there (kept so that indices,
  /// which credits name, stay stable).
  bool retired = false;
};

/// One incoming channel of a chain instance.
struct slot_wiring {
  std::uint32_t sender = 0;         ///< global instance id
  std::uint32_t sender_target = 0;  ///< target index at the sender (for credits)
  int edge = -1;
  int input = 0;                    ///< input index of the chain's first component
  bool retired = false;             ///< the sender was replaced by a rescale: closed
};

/// Where one chain instance sits and what it is connected to.
struct instance_wiring {
  int chain = 0;
  std::uint32_t instance = 0;
  std::vector<target_wiring> targets;
  std::vector<slot_wiring> slots;
};

/// Counters of one component instance (relaxed atomics, updated per batch).
struct node_counters {
  std::atomic<std::uint64_t> rows_in{0}, rows_out{0}, dead{0}, late{0};
  std::atomic<std::uint64_t> lost{0};  ///< sources: input lost before it was read (retention)
  std::atomic<std::int64_t> max_split_lead_ns{0};  ///< sources with splits: see split_watermarks::lead
  core::sink_buffer_gauges buffer;  ///< sinks with a `buffer:` (written by the sink)
};

/// Counters of one chain instance.
struct chain_counters {
  std::atomic<std::uint64_t> batches_in{0}, batches_out{0};
  std::atomic<std::int64_t> busy_ns{0}, backpressure_ns{0};
  std::atomic<std::uint32_t> queued{0}, max_queued{0}, max_outbound{0};
  std::atomic<std::uint64_t> progress_done{0}, progress_total{0};
  /// Sources: `source_base::offered()` as last sampled (negative: unknown).
  std::atomic<double> offered_rate{-1}, backlog{-1};
  // Live figures for `job::status` (written by the instance, read by any thread).
  std::atomic<std::int64_t> started_ns{0};    ///< steady clock at start (0: not started)
  std::atomic<std::uint32_t> queue_capacity{0}, outbound{0}, credits{0}, credit_capacity{0};
  std::atomic<std::int64_t> watermark_ns{INT64_MIN};
  std::atomic<std::int64_t> state_bytes{-1};  ///< last snapshot or hand-over blob
  /// Steady clock when the current backpressure period began (0: none): `backpressure_ns`
  /// grows when a period ends, so a reader adds the running one itself.
  std::atomic<std::int64_t> backpressure_since{0};
};

/// Everything the actors of one job share. Lives as long as the job.
struct job_state {
  job_state(const plan::physical_plan& p, options o);

  plan::physical_plan plan;
  options opts;

  // -- topology ----------------------------------------------------------------------------
  // Global instance ids are never reused: a rescale retires the ids of a chain's instances
  // and adds new ones. The tables below only grow, under `mu`, from the job's supervisor (or
  // before the start); an instance copies its wiring when it is created and again when a
  // rescale tells it to, and keeps pointers to its own counters.
  std::vector<instance_wiring> wiring;   ///< by global instance id
  std::vector<std::vector<std::uint32_t>> chain_ids;  ///< by chain: its current instances' ids
  std::vector<std::uint32_t> parallelism;  ///< by chain: its current number of instances
  std::vector<std::unique_ptr<chain_counters>> chain_metrics;  ///< by global id
  /// By global id, by position in its chain.
  std::vector<std::vector<std::unique_ptr<node_counters>>> node_metrics;
  /// Sets the parallelism of every chain (before the start) and connects the instances.
  void build_topology(const std::vector<std::uint32_t>& par);
  /// Adds `n` instances of `chain` (ids, counters, flags; no wiring yet); returns their ids.
  /// Call with `mu` held (or before the start).
  std::vector<std::uint32_t> add_instances(int chain, std::uint32_t n);
  /// Connects channel edge `ei` from instances `ups` to instances `downs` (appending targets
  /// and slots). Call with `mu` held.
  void connect(int ei, const std::vector<std::uint32_t>& ups, const std::vector<std::uint32_t>& downs);
  /// The text stored with every checkpoint: each chain's parallelism.
  std::string topology_text() const;
  /// Each chain's parallelism when checkpoint `id` was taken; empty when the checkpoint does
  /// not say (older ones) or says it for another plan.
  std::vector<std::uint32_t> checkpoint_topology(std::uint64_t id) const;

  // -- lifecycle ---------------------------------------------------------------------------
  std::mutex mu;
  std::condition_variable cv;
  std::size_t live = 0;      ///< actors not yet terminated
  bool failed = false;
  std::string error;
  std::function<void()> kill_all;  ///< set by the job: ends every actor at once

  /// Records the first failure and ends every actor.
  void fail(const std::string& component, const std::string& what);
  /// An actor terminated.
  void actor_done();

  // -- checkpoints -------------------------------------------------------------------------
  // Aligned barriers: the coordinator starts checkpoint N at every source instance; each
  // instance saves its components' state once N arrived on all its open inputs and
  // acknowledges; when every instance that has not ended did, the checkpoint is complete: the
  // manifest is written, then every instance gets commit(N) (sources commit positions, sinks
  // make output visible).
  std::unique_ptr<checkpoint_store> store;
  std::uint64_t restore_id = 0;  ///< the checkpoint instances start from (0: none); under mu
  std::uint64_t next_checkpoint = 1;  ///< under mu
  struct pending_checkpoint {
    std::vector<bool> acked;  ///< by global instance id
    std::uint64_t bytes = 0;
    std::int64_t started_ns = 0;
    bool final = false;  ///< a stop: the job halts once it is complete
  };
  std::map<std::uint64_t, pending_checkpoint> pending;  ///< under mu
  std::vector<bool> ended;  ///< by global instance id: ended its stream, acknowledges no more
  std::atomic<std::uint64_t> committed{0};
  /// Set by the job: tells every instance that checkpoint `id` is complete (and, for a final
  /// one, to halt afterwards).
  std::function<void(std::uint64_t id, bool final)> on_complete;
  // Figures for the summary.
  std::atomic<std::uint64_t> checkpoints_done{0}, checkpoints_abandoned{0};
  std::atomic<std::uint64_t> last_checkpoint_bytes{0};
  std::atomic<std::int64_t> last_checkpoint_ns{0}, max_checkpoint_ns{0};

  /// Starts a checkpoint: returns its id (0 when one is already pending and `final` is false).
  std::uint64_t begin_checkpoint(bool final, std::int64_t now_ns);
  /// Instance `instance` saved its state for `id` (`bytes` written).
  void ack_checkpoint(std::uint64_t id, std::uint32_t instance, std::uint64_t bytes);
  /// Instance `instance` ended its stream: no checkpoint waits for it any more. `blob` is its
  /// state at the end (sources: their final position), which every later checkpoint carries;
  /// once every instance has ended, a last checkpoint of them all is written, so that a run
  /// on the same state directory continues after the end instead of repeating it.
  void instance_ended(std::uint32_t instance, std::string blob);
  std::map<std::uint32_t, std::string> final_blobs;  ///< under mu, by global id
  /// Abandons every pending checkpoint (a restart, or one that took longer than `timeout`).
  /// Returns the ids abandoned.
  std::vector<std::uint64_t> abandon_checkpoints(std::int64_t older_than_ns);
  /// Completes `id` if every live instance acknowledged it (call with `mu` held); returns
  /// whether it did, with `final` set from the checkpoint.
  bool try_complete(std::uint64_t id, bool& final);

  // -- failures and restarts ---------------------------------------------------------------
  /// Set by the job: instance `id` failed with `what` in `component`; the job's supervisor
  /// decides (restart from the latest checkpoint, or fail the job).
  /// `data`: it failed on records (a batch or a poll), so a record may be the cause.
  std::function<void(std::uint32_t id, std::uint32_t generation, const std::string& component,
                     const std::string& what, bool data)>
      on_failure;
  bool restarting = false;  ///< under mu: instances are being replaced (the job is not over)
  /// Under mu: failures reported to the supervisor and not yet decided (the job is not over).
  std::uint32_t failures_pending = 0;
  /// Under mu: the job may be over (no actor left, nothing being restarted or decided).
  bool over() const noexcept { return live == 0 && !restarting && failures_pending == 0; }
  std::atomic<std::uint64_t> stopped_at{0};  ///< the final checkpoint of a stop, once complete
  /// Per global id: process rows one at a time and send a row that throws to the dead-letter
  /// output (set after repeated failures of the same instance).
  std::deque<std::atomic<bool>> careful;
  std::atomic<std::uint64_t> restarts{0}, quarantined{0};

  // -- dead letters ------------------------------------------------------------------------
  std::atomic<std::uint64_t> dead_logged{0}, dead_dropped{0};
  std::mutex log_mu;
  std::int64_t log_window_start = 0;
  std::uint32_t log_window_count = 0;
  std::uint64_t log_suppressed = 0;

  /// Writes the rows of a dead-letter batch as JSON lines (warn level), rate-limited.
  void log_dead_letters(const core::batch& b);
  /// Keeps the newest dead letters of `b` (sent by `component`) for `job::status`.
  void sample_dead_letters(const std::string& component, const core::batch& b);
  std::deque<dead_letter_sample> dead_samples;  ///< under log_mu, newest last

  // -- observation -------------------------------------------------------------------------
  std::atomic<std::int64_t> last_checkpoint_at_ns{0};  ///< wall clock of the last completion
  /// Splits of source instances as last published, by global id (under `split_mu`).
  std::mutex split_mu;
  std::map<std::uint32_t, std::vector<split_status>> split_status_of;
  void publish_splits(std::uint32_t id, std::vector<split_status> s);

  /// Taps (`job::tap`): per node, a bit per port being tapped (1 main, 2 late, 4 dead
  /// letter), read per output batch; the taps themselves under `tap_mu`.
  std::unique_ptr<std::atomic<std::uint32_t>[]> tapped;
  struct tap_entry {
    std::uint64_t id = 0;
    int node = -1;
    std::uint32_t port_bit = 0;
    double rate = 0;      ///< rows per second
    double tokens = 0;    ///< token bucket
    std::int64_t refilled_ns = 0;
    std::function<void(const std::string&)> fn;
  };
  std::mutex tap_mu;
  std::vector<tap_entry> taps;
  std::uint64_t next_tap = 1;
  /// Offers the rows `node` sends on port `bit` to its taps (rate-limited, as JSON).
  void tap_rows(int node, std::uint32_t bit, const core::batch& b, const core::schema& schema);

  /// One line in the job's log: `level` 0 info, 1 warning, 2 error.
  void log(int level, const std::string& text);

  // -- watermark alignment -----------------------------------------------------------------
  /// Per source node, per instance: the smallest event time over the instance's active
  /// splits that have data (INT64_MAX: none). Alignment pauses splits far ahead of the
  /// minimum over all instances of the source.
  std::vector<std::unique_ptr<std::atomic<std::int64_t>[]>> split_floor;

  /// The smallest published floor of `node`'s instances.
  std::int64_t source_floor(int node) const;

  // -- rescaling ---------------------------------------------------------------------------
  // A live rescale replaces every instance of one chain (old ids → new ids). The upstream
  // instances switch their channels to the new instances and send `rescale` as the last item
  // to each old one; an old instance that has it on every open input hands its state over
  // (`rescale_state::blobs`) and retires; the new instances restore from all the old blobs
  // (each keeps the key groups it owns) and then process what waited for them.
  struct rescale_state {
    std::uint64_t id = 0;  ///< 0: no rescale running
    int chain = -1;
    std::uint32_t from = 0, to = 0;
    std::vector<std::uint32_t> old_ids, new_ids;
    std::vector<std::string> blobs;   ///< by old instance index
    std::vector<bool> handed;         ///< by old instance index
    std::uint32_t handed_count = 0;
    std::uint32_t restored_count = 0;
    std::vector<std::uint32_t> switched;  ///< upstream ids that switched to the new instances
    std::int64_t started_ns = 0;
    std::uint64_t state_bytes = 0;
  };
  rescale_state rescale;  ///< under mu
  /// Every rescale's old and new instance ids, kept after it is done: a downstream instance
  /// aligns on a rescale's markers after the job moved on (under mu).
  std::map<std::uint64_t, std::pair<std::vector<std::uint32_t>, std::vector<std::uint32_t>>> rescale_sets;
  std::uint64_t next_rescale = 1;  ///< under mu
  /// Set by the job: tells the supervisor that every old instance handed its state over
  /// (`what` 0) or that every new instance restored it (`what` 1).
  std::function<void(int what, std::uint64_t id)> on_rescale_progress;
  /// Old instance `id` (index `k` among the old ones) handed over its state.
  void rescale_handed(std::uint64_t rid, std::uint32_t k, std::string blob);
  /// A new instance restored the old state.
  void rescale_restored(std::uint64_t rid);
};

} // namespace pel::runtime
