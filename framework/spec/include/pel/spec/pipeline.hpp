#pragma once
/// \file
/// A validated pipeline file: the logical graph the planner turns into a physical plan.

#include "pel/spec/config.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pel::spec {

class registry;

/// A reference to an output: `name` or `name.port` (e.g. `parse.dead_letter`).
struct output_ref {
  std::string component;
  std::string port;  ///< empty for the main output
  mark at;
};

/// How records move from an upstream operator to this one, when the YAML forces a choice.
enum class partitioning { automatic, forward, rebalance, hash, broadcast };

/// Event-time settings of a source (its `event_time:` block).
struct event_time_spec {
  std::string field;             ///< empty: the source's own time (e.g. Kafka timestamp)
  /// An expression over the source's fields giving the time (exclusive with `field`); its
  /// value is read with `format` and `timezone` like a field's. Compiled by `plan::build`.
  std::string expression;
  std::string format = "auto";   ///< epoch_s|epoch_ms|epoch_us|epoch_ns|iso8601|datetime|auto
  std::string timezone = "UTC";  ///< for `datetime` (`YYYY-MM-DD HH:MM:SS`)
  std::int64_t max_out_of_orderness_ns = 0;
  std::int64_t idle_timeout_ns = -1;  ///< 0: never idle; -1: the source's default
  std::int64_t max_drift_ns = 0;      ///< watermark alignment of splits; 0: none
  config settings;  ///< the block as written (locates `expression` errors); empty when built in code
};

/// How a supervisor restarts its children when one fails (Erlang/OTP strategies).
enum class supervision_strategy {
  one_for_one,   ///< restart only the child that failed
  one_for_all,   ///< restart every live child
  rest_for_one,  ///< restart the child that failed and those started after it
};

/// Which ends of a child lead to a restart (Erlang/OTP restart types).
enum class restart_type {
  permanent,  ///< always restarted, after a failure or a stop on request (not after its end of stream)
  transient,  ///< restarted only after a failure
  temporary,  ///< never restarted
};

/// Delay before a restart: `initial`, times `multiplier` for each further restart of the
/// same child in a row, at most `max`, times a random factor in [1 - jitter, 1 + jitter].
struct backoff_spec {
  std::int64_t initial_ns = 100'000'000;
  std::int64_t max_ns = 10'000'000'000;
  double multiplier = 2.0;  ///< >= 1
  double jitter = 0.2;      ///< in [0, 1]
};

/// Supervision settings (`pipeline.supervision`, overridden per component by its own
/// `supervision:` block).
struct supervision_spec {
  supervision_strategy strategy = supervision_strategy::one_for_one;  ///< pipeline level only
  /// At most this many restarts within `period_ns`, else the supervisor gives up and
  /// escalates. 0: never restart, any failure escalates.
  std::uint32_t intensity = 5;
  std::int64_t period_ns = 60'000'000'000;
  restart_type restart = restart_type::permanent;
  backoff_spec backoff;
  /// Failures on the same input before the record is quarantined to the dead-letter
  /// output (0: never).
  std::uint32_t quarantine_after = 3;
  /// Pipeline level only: how long an orderly stop may take before the instances are killed.
  std::int64_t shutdown_timeout_ns = 10'000'000'000;
};

/// Checkpoint settings (`pipeline.checkpoints`).
struct checkpoint_spec {
  std::int64_t interval_ns = 1'000'000'000;  ///< how often sources inject barriers (>= 1ms)
  std::string dir;        ///< empty: no state directory (checkpoints only commit positions)
  std::uint32_t keep = 3;  ///< complete checkpoints kept, >= 1
  std::int64_t timeout_ns = 60'000'000'000;  ///< a checkpoint not complete by then is abandoned
};

/// One step of a `policy: schedule`: at `at_ns` after the start, set `component` to
/// `parallelism` instances.
struct scaling_step {
  std::int64_t at_ns = 0;
  std::string component;
  std::uint32_t parallelism = 1;
  mark at;  ///< where the step is
};

/// Autoscaling settings (`pipeline.scaling`): how the runtime decides the parallelism of the
/// operators that give a `parallelism` range.
struct scaling_spec {
  std::string policy = "ds2";                          ///< ds2 | schedule
  std::int64_t interval_ns = 5'000'000'000;            ///< metrics interval (>= 100ms)
  double target_utilisation = 0.7;                     ///< (0, 1]
  std::int64_t stabilisation_ns = 30'000'000'000;      ///< >= 0
  std::int64_t scale_in_delay_ns = 120'000'000'000;    ///< >= 0
  double max_scale_in = 0.5;  ///< (0, 1]: one step keeps at least this fraction of the instances
  std::vector<scaling_step> schedule;  ///< `policy: schedule` only, in file order
  mark at;                             ///< where the block is
};

/// A sink's store-and-forward buffer (`buffer:`), see the key's reference.
struct buffer_spec {
  std::string dir;
  std::uint64_t max_size = 1ull << 30;
  bool drop_oldest = false;  ///< `when_full: drop_oldest`; else block
  bool fsync = true;
  std::uint32_t batch = 1000;
  std::int64_t retry_max_ns = 10'000'000'000;
  std::int64_t drain_timeout_ns = 30'000'000'000;
  mark at;  ///< where the `buffer:` key is
};

/// One source, operator or sink block.
struct component {
  std::string name;
  std::string type;
  component_kind kind = component_kind::operator_;
  mark at;                          ///< where the block starts
  config settings;                  ///< its own parameters, schema-checked
  std::vector<output_ref> inputs;   ///< operators and sinks
  std::uint32_t parallelism = 1;  ///< the initial number of instances
  /// The range autoscaling may move `parallelism` in (`parallelism: {initial, min, max}`);
  /// both equal to `parallelism` when it is fixed.
  std::uint32_t parallelism_min = 1, parallelism_max = 1;
  partitioning partition = partitioning::automatic;
  std::optional<event_time_spec> event_time;  ///< sources only
  /// The pipeline's supervision settings overridden by the component's own `supervision:`
  /// block (`strategy` and `shutdown_timeout` are always the pipeline's).
  supervision_spec supervision;
  std::optional<buffer_spec> buffer;  ///< sinks only
};

/// Pipeline-wide settings (the `pipeline:` block).
struct pipeline_settings {
  std::string name = "pipeline";
  std::uint32_t parallelism = 1;        ///< default for components that do not set it
  std::uint32_t max_parallelism = 128;  ///< key groups
  std::uint32_t batch_size = 1024;      ///< rows per batch before a flush
  std::int64_t batch_linger_ns = 1'000'000;  ///< flush a partial batch after this long
  std::uint32_t channel_credits = 8;    ///< batches in flight per channel
  std::string time = "event";           ///< event | processing
  /// Barrier (commit) interval: the same as `checkpoints.interval_ns`, kept for the code
  /// that reads it.
  std::int64_t checkpoint_interval_ns = 1'000'000'000;
  checkpoint_spec checkpoints;          ///< `pipeline.checkpoints` (or `checkpoint_interval`)
  supervision_spec supervision;         ///< `pipeline.supervision`
  scaling_spec scaling;                 ///< `pipeline.scaling`
  std::string dead_letter = "log";      ///< log | drop | the name of a sink
  mark dead_letter_at;                  ///< where `dead_letter` is written (for diagnostics)
};

/// A whole pipeline file after validation: components in file order.
struct pipeline {
  std::string file;
  pipeline_settings settings;
  std::vector<component> sources;
  std::vector<component> operators;
  std::vector<component> sinks;
  node_ptr root;  ///< keeps the nodes alive for the configs
  /// Components left out because their own blocks have errors (only from `check_*`); the
  /// planner treats them as failed and says nothing more about their consumers.
  std::vector<std::string> rejected;

  /// The component called `name` in any section, or nullptr.
  const component* find(std::string_view name) const;
};

/// Reads and validates a pipeline file against the registry. Gathers every problem it can
/// find (syntax, unknown keys with suggestions, duplicates, types, bounds, inputs, cycles)
/// and throws `spec_error` with all of them. Never crashes or hangs on hostile input (size,
/// nesting and alias-expansion limits). Errors that need the input schemas (an expression
/// naming an unknown field, a keyed operator without a key) are found by `plan::build`.
pipeline load_file(const std::string& path, const registry& reg);

/// Same, from text already in memory; `file` is the name used in messages.
pipeline load_text(const std::string& text, const std::string& file, const registry& reg);

/// The outcome of checking a file without throwing, so that `pel lint` can also plan the
/// clean part of a file with errors and report both passes at once.
struct check_result {
  pipeline p;             ///< the clean components (the rest are named in `p.rejected`)
  diagnostics diags;      ///< every problem found, sorted
  bool plannable = false;  ///< false when errors are outside component blocks (syntax,
                           ///< settings, sections, names), so nothing can be planned
};

/// Like `load_file`, but never throws `spec_error`.
check_result check_file(const std::string& path, const registry& reg);

/// Like `load_text`, but never throws `spec_error`.
check_result check_text(const std::string& text, const std::string& file, const registry& reg);

} // namespace pel::spec
