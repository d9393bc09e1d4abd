#pragma once
/// \file
/// Running a physical plan: one actor per instance of every fused chain, connected by
/// credit-based channels. No CAF type appears here; the actor system lives behind a pimpl.

#include "pel/plan/plan.hpp"

#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pel::runtime {

/// Settings of a job that are not part of the pipeline file.
struct options {
  std::size_t threads = 2;                      ///< scheduler worker threads
  std::int64_t watermark_interval_ns = 1'000'000;  ///< sources emit a watermark at most this often
  std::int64_t idle_backoff_min_ns = 1'000'000;    ///< first pause after an idle poll
  std::int64_t idle_backoff_max_ns = 50'000'000;   ///< longest pause between idle polls
  std::uint32_t dead_letter_log_per_second = 20;   ///< `dead_letter: log` lines per second
  std::uint32_t dead_letter_samples = 20;  ///< the newest dead letters kept for `job::status`
  /// A split (Kafka partition) that holds the watermark back this long is named in the log.
  std::int64_t split_warn_after_ns = 30'000'000'000;
  /// State directory for checkpoints; overrides `pipeline.checkpoints.dir`. Empty: that one,
  /// and when it is empty too, checkpoints are kept in memory (recovery inside the process).
  std::string state_dir;
  /// Fault injection (a testing aid): about `rate` times per second a random instance is set
  /// to fail at its next batch or poll, watermark or snapshot (chosen at random, from `seed`);
  /// at most `max` failures happen (0: no limit). `rate` 0: off.
  struct chaos_settings {
    std::uint64_t seed = 1;
    double rate = 0;
    std::uint64_t max = 0;
  } chaos;
  /// Autoscaling (`pipeline.scaling`) of components with a parallelism range; false keeps
  /// every component at its initial parallelism (`pel run --no-autoscale`).
  bool autoscale = true;
  /// Scheduler threads that run out of work sleep on a condition variable after a short spin
  /// (an idle job costs well under 1 % of a core); false keeps CAF's defaults, which poll for
  /// ~25 ms after every job (the idle benchmark's baseline).
  bool idle_sleep = true;
};

/// One autoscaling decision and how it was carried out.
struct scaling_event {
  std::int64_t at_ns = 0;  ///< since the job started
  std::string component;   ///< the rescaled chain's components, joined by '+'
  std::uint32_t from = 0, to = 0;
  std::string reason;      ///< the policy's reason
  std::string inputs;      ///< the figures it decided on (`key=value ...`)
  bool done = false;       ///< carried out (else: refused or abandoned, see `outcome`)
  std::string outcome;     ///< "rescaled in 84 ms, 10.2 MB of state moved", or why not
  std::int64_t took_ns = 0;       ///< decision to the new instances processing
  std::uint64_t state_bytes = 0;  ///< state handed from the old instances to the new ones
};

/// Counters of one instance of one component. Rows are counted per batch.
/// A sink's store-and-forward buffer (`buffer:`), as `job::status` last read it.
struct buffer_metrics {
  bool present = false;     ///< the sink has a buffer (the rest is zero otherwise)
  bool forwarding = true;   ///< false while handing records to the sink fails
  std::uint64_t appended = 0;     ///< records appended (this instance's life)
  std::uint64_t forwarded = 0;    ///< records the sink confirmed
  std::uint64_t dropped = 0;      ///< records `when_full: drop_oldest` deleted unsent
  std::uint64_t full_events = 0;  ///< appends that found it full
  std::uint64_t failures = 0;     ///< failed attempts to forward
  std::uint64_t pending = 0;      ///< records on disk waiting
  std::uint64_t bytes_on_disk = 0;
  std::uint64_t max_size = 0;
};

struct instance_metrics {
  std::string component;
  std::uint32_t instance = 0;
  int chain = 0;
  std::uint64_t rows_in = 0;       ///< rows given to process/write
  std::uint64_t rows_out = 0;      ///< rows on the main output
  std::uint64_t dead_letters = 0;  ///< rows sent to the dead-letter port
  std::uint64_t late = 0;          ///< rows sent to the late port
  std::uint64_t lost = 0;          ///< sources: input lost before it was read (retention)
  /// Sources with splits: the furthest a split's event time ran ahead of the slowest active
  /// one (high-water mark); what bounds the windows a backlog read unevenly keeps open.
  std::int64_t max_split_lead_ns = 0;
  // Of the chain instance this component belongs to:
  std::uint64_t batches_in = 0;
  std::uint64_t batches_out = 0;
  std::int64_t busy_ns = 0;
  std::int64_t backpressure_ns = 0;  ///< time spent holding output without credit (in `job::status`, a stall still going on counts up to now)
  std::uint32_t queued_batches = 0;  ///< input batches waiting now
  std::uint32_t max_queued_batches = 0;  ///< high-water mark of `queued_batches`
  std::uint32_t max_outbound_batches = 0;  ///< high-water mark of sealed, unsent batches
  // Live figures of the chain instance (read by `job::status`; zero in `job::metrics`).
  std::int64_t idle_ns = 0;           ///< since it started, time neither busy nor backpressured
  std::int64_t started_ns = 0;        ///< steady clock when the instance started
  std::uint32_t queue_capacity = 0;   ///< input batches it may hold: credits x open inputs
  std::uint32_t outbound_batches = 0; ///< sealed batches waiting for credit now
  std::uint32_t credits = 0;          ///< credits in hand over its outgoing channels
  std::uint32_t credit_capacity = 0;  ///< credits it holds when nothing is in flight
  /// The instance's event-time watermark (ns since the epoch); INT64_MIN: none yet.
  std::int64_t watermark_ns = INT64_MIN;
  /// Bytes of its state in the last checkpoint or rescale it took part in (-1: none yet).
  std::int64_t state_bytes = -1;
  std::uint32_t global_id = 0;  ///< the instance's id in the job (never reused)
  buffer_metrics buffer;        ///< sinks with a `buffer:` (read by `job::status` only)
};

/// Totals of one component over its instances.
struct component_stats {
  std::string name;
  std::uint64_t rows_in = 0;
  std::uint64_t rows_out = 0;
  std::uint64_t dead_letters = 0;
  std::uint64_t late = 0;
  std::uint64_t lost = 0;  ///< sources: input lost before it was read (retention)
  std::int64_t max_split_lead_ns = 0;  ///< the highest over its instances
  std::int64_t busy_ns = 0;
  std::int64_t backpressure_ns = 0;
  std::uint32_t parallelism = 1;      ///< instances at the end
  std::uint32_t max_parallelism = 1;  ///< the most it had at once (autoscaling)
};

/// One split (Kafka partition) of a source instance, as last published (about twice a
/// second). Offsets are the source's own units (Kafka offsets); -1: unknown.
struct split_status {
  std::string component;
  std::uint32_t instance = 0;
  std::string split;               ///< e.g. `ticks/3`
  std::int64_t position = -1;      ///< next offset to read
  std::int64_t end = -1;           ///< the partition's end (high watermark) as last fetched
  std::int64_t lag = -1;           ///< end - position
  std::int64_t watermark_ns = INT64_MIN;  ///< the split's event-time watermark
  bool idle = false;               ///< counted out of the watermark (no data for idle_timeout)
  bool paused = false;             ///< held back by watermark alignment
};

/// A recent dead letter, kept for the API (the newest `options::dead_letter_samples`).
struct dead_letter_sample {
  std::int64_t at_ns = 0;  ///< wall clock, ns since the epoch
  std::string component;   ///< the component that sent it to its dead-letter port
  std::string json;        ///< the dead-letter row as a JSON object (reason, source, record)
};

/// A component of the physical graph.
struct graph_component {
  std::string name;
  std::string kind;  ///< "source", "operator" or "sink"
  std::string type;  ///< e.g. "kafka", "window"
  int chain = 0;     ///< the fused chain it runs in
  std::uint32_t parallelism = 1;  ///< instances now
  std::uint32_t parallelism_min = 1, parallelism_max = 1;
  std::vector<std::pair<std::string, std::string>> inputs;  ///< (component, port)
};

/// A connection between two components: fused (a call inside one actor) or a channel.
struct graph_channel {
  std::string from, port, to;  ///< port: "main", "dead_letter" or "late"
  std::string partitioning;    ///< "forward", "hash", "rebalance", "broadcast" (or "fused")
  std::vector<std::string> keys;  ///< hash keys
  bool fused = false;
};

/// A fused chain: components that run in one actor per instance.
struct graph_chain {
  int id = 0;
  std::vector<std::string> components;
  std::vector<std::uint32_t> instances;  ///< global ids of its current instances
};

/// The physical graph of a job, as it is now (parallelism follows rescales).
struct job_graph {
  std::string name;  ///< pipeline.name
  std::string file;
  std::vector<graph_component> components;
  std::vector<graph_chain> chains;
  std::vector<graph_channel> channels;
};

/// Everything observable of a running job at one moment. Counters are cumulative; rates are
/// left to the reader (two snapshots). Reading costs nothing on the data path: the counters
/// are per instance and read here.
struct job_status {
  std::int64_t at_ns = 0;       ///< wall clock when taken, ns since the epoch
  std::int64_t uptime_ns = 0;   ///< since `start`
  std::string state;            ///< "starting", "running", "stopping", "finished", "failed"
  std::string error;            ///< when failed
  std::vector<instance_metrics> instances;  ///< current instances, in plan order
  /// Per component over every instance it ever had (a rescale retires instances; these
  /// totals never go down).
  std::vector<component_stats> components;
  std::vector<split_status> splits;
  std::vector<dead_letter_sample> dead_letters;  ///< newest last
  std::uint64_t dead_letters_logged = 0, dead_letters_dropped = 0;
  // Checkpoints.
  std::uint64_t restored_from = 0;
  std::uint64_t checkpoints = 0, checkpoints_abandoned = 0;
  std::uint64_t last_checkpoint = 0, last_checkpoint_bytes = 0;  ///< the last completed (committed) one
  std::int64_t last_checkpoint_ns = 0, max_checkpoint_ns = 0;
  std::int64_t last_checkpoint_at_ns = 0;  ///< wall clock of the last completion (0: none)
  std::uint64_t checkpoint_in_progress = 0;  ///< id, 0: none
  // Supervision.
  std::uint64_t restarts = 0, quarantined = 0;
  std::vector<std::string> restart_log;
  // Autoscaling.
  std::string scaling_policy;
  std::vector<scaling_event> scaling;
  /// Bounded sources' progress (units of `source_base::progress`).
  std::uint64_t progress_done = 0, progress_total = 0;
};

/// How a job ended.
struct result {
  bool ok = true;
  std::string error;  ///< "component: message" when !ok
  std::vector<component_stats> components;  ///< in plan order
  std::uint64_t dead_letters_logged = 0;   ///< written to the log (`dead_letter: log`)
  std::uint64_t dead_letters_dropped = 0;  ///< dropped (`drop`, or beyond the log rate)

  // Checkpoints and supervision.
  std::uint64_t restored_from = 0;       ///< checkpoint the job resumed from at start (0: none)
  std::uint64_t checkpoints = 0;         ///< completed
  std::uint64_t checkpoints_abandoned = 0;
  std::uint64_t last_checkpoint = 0;     ///< id of the last completed one
  std::uint64_t last_checkpoint_bytes = 0;
  std::int64_t last_checkpoint_ns = 0;   ///< how long it took, barrier to manifest
  std::int64_t max_checkpoint_ns = 0;
  std::uint64_t restarts = 0;            ///< recoveries inside the process
  std::uint64_t quarantined = 0;         ///< records sent to dead letters after repeated failures
  std::uint64_t chaos_injected = 0;      ///< failures injected by `options::chaos`
  /// The job stopped with a final checkpoint (a stop without drain): its id, else 0.
  std::uint64_t stopped_at = 0;
  std::vector<std::string> restart_log;  ///< one line per restart: when, what failed, why
  std::vector<scaling_event> scaling;    ///< autoscaling decisions, in order
  std::string scaling_policy;            ///< "ds2", "schedule", or empty when off

  /// The stats of `name`, or nullptr.
  const component_stats* find(const std::string& name) const;
};

/// A running pipeline. Create, `start()`, then `wait()`. All methods are thread-safe;
/// `stop()` may be called from any thread (e.g. one that watches signals).
class job {
public:
  /// Copies what it needs from `plan`. Throws nothing; errors surface from `wait()`.
  explicit job(const plan::physical_plan& plan, options opts = {});
  /// Stops (forcefully if still running) and waits for every actor.
  ~job();
  job(const job&) = delete;
  job& operator=(const job&) = delete;

  /// Spawns the instance actors and starts the sources. Call once.
  void start();

  /// Blocks until every instance has ended (all sinks closed) or the job failed.
  result wait();

  /// Waits up to `timeout`; true when the job has finished (then `wait()` returns at once).
  bool wait_for(std::chrono::nanoseconds timeout);

  /// Stops the job. With a durable state directory and `drain` false: a final checkpoint
  /// (state saved, positions committed, output committed), then every instance halts without
  /// firing windows; the next job on the same state directory continues from there. Else (or
  /// when that checkpoint does not complete within the shutdown timeout): a drain — sources
  /// end their streams, windows fire, sinks flush and close.
  void stop(bool drain = false);

  /// The checkpoint the job resumed from (after `start`; 0: none).
  std::uint64_t restored_from() const;

  /// A snapshot of every instance's counters, one entry per (component, instance).
  std::vector<instance_metrics> metrics() const;

  /// Summed progress of the bounded sources (units of `source_base::progress`).
  void progress(std::uint64_t& done, std::uint64_t& total) const;

  /// The highest checkpoint id committed to the sources so far (0: none).
  std::uint64_t committed_checkpoint() const;

  /// The current parallelism of component `name` (0: unknown).
  std::uint32_t parallelism(const std::string& name) const;

  /// The autoscaling decisions so far.
  std::vector<scaling_event> scaling_events() const;

  /// The physical graph as it is now. Any thread, any time (also before `start`).
  job_graph graph() const;

  /// A snapshot of everything observable: counters of every instance, watermarks, queues,
  /// splits, recent dead letters, checkpoints, restarts and scaling. Any thread, any time.
  job_status status() const;

  /// Samples the rows that `component` sends on `port` ("main", "late" or "dead_letter"):
  /// `on_row` gets each sampled row as a JSON object, on an instance's thread, at most
  /// `rows_per_second` times a second over all instances (the rest are skipped, counted in
  /// `skipped`). Returns an id for `untap`; 0 when there is no such component or port. A
  /// component without taps pays one relaxed atomic load per output batch.
  std::uint64_t tap(const std::string& component, const std::string& port, double rows_per_second,
                    std::function<void(const std::string& json)> on_row);
  /// Ends a tap; `on_row` is not called after this returns.
  void untap(std::uint64_t id);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace pel::runtime
