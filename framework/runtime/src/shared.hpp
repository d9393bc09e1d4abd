#pragma once
/// \file
/// Internal: state shared by the job and its instance actors (wiring, counters, failure,
/// checkpoint bookkeeping, dead-letter logging). No CAF here.

#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
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
  // 4..: reserved for rescale markers
};

/// One outgoing channel of a chain instance: to which instance and which of its input slots.
struct target_wiring {
  std::uint32_t receiver = 0;       ///< global instance id
  std::uint32_t receiver_slot = 0;  ///< input slot at the receiver
  int edge = -1;
  std::uint32_t down_instance = 0;
};

/// One incoming channel of a chain instance.
struct slot_wiring {
  std::uint32_t sender = 0;         ///< global instance id
  std::uint32_t sender_target = 0;  ///< target index at the sender (for credits)
  int edge = -1;
  int input = 0;                    ///< input index of the chain's first component
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
};

/// Counters of one chain instance.
struct chain_counters {
  std::atomic<std::uint64_t> batches_in{0}, batches_out{0};
  std::atomic<std::int64_t> busy_ns{0}, backpressure_ns{0};
  std::atomic<std::uint32_t> queued{0}, max_queued{0}, max_outbound{0};
  std::atomic<std::uint64_t> progress_done{0}, progress_total{0};
};

/// Everything the actors of one job share. Lives as long as the job.
struct job_state {
  job_state(const plan::physical_plan& p, options o);

  plan::physical_plan plan;
  options opts;
  std::vector<instance_wiring> wiring;   ///< by global instance id
  std::vector<std::uint32_t> chain_base; ///< first global id of each chain
  std::vector<std::unique_ptr<chain_counters>> chain_metrics;  ///< by global id
  std::vector<std::vector<std::unique_ptr<node_counters>>> node_metrics;  ///< [node][instance]

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
  std::vector<std::uint64_t> sink_barrier;  ///< last barrier each sink instance flushed
  std::vector<bool> sink_ended;
  std::vector<std::uint32_t> sink_index_base;  ///< per node: index into sink_* (or 0)
  std::atomic<std::uint64_t> committed{0};
  std::function<void(std::uint64_t)> commit_sources;  ///< set by the job

  /// A sink instance flushed everything before barrier `id`.
  void sink_flushed(int node, std::uint32_t instance, std::uint64_t id);
  /// A sink instance closed.
  void sink_closed(int node, std::uint32_t instance);

  // -- dead letters ------------------------------------------------------------------------
  std::atomic<std::uint64_t> dead_logged{0}, dead_dropped{0};
  std::mutex log_mu;
  std::int64_t log_window_start = 0;
  std::uint32_t log_window_count = 0;
  std::uint64_t log_suppressed = 0;

  /// Writes the rows of a dead-letter batch as JSON lines (warn level), rate-limited.
  void log_dead_letters(const core::batch& b);

  /// One line in the job's log: `level` 0 info, 1 warning, 2 error.
  void log(int level, const std::string& text);

  // -- watermark alignment -----------------------------------------------------------------
  /// Per source node, per instance: the smallest event time over the instance's active
  /// splits that have data (INT64_MAX: none). Alignment pauses splits far ahead of the
  /// minimum over all instances of the source.
  std::vector<std::unique_ptr<std::atomic<std::int64_t>[]>> split_floor;

  /// The smallest published floor of `node`'s instances.
  std::int64_t source_floor(int node) const;

  /// Global instance id of `instance` of `chain`.
  std::uint32_t id_of(int chain, std::uint32_t instance) const {
    return chain_base[chain] + instance;
  }
};

} // namespace pel::runtime
