#pragma once
/// \file
/// Autoscaling decisions, free of CAF and of the runtime: the runtime samples what every
/// scalable unit (a fused chain of operators) did over an interval, a `policy` turns the
/// samples into decisions, and the runtime carries them out with a live rescale.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pel::scaling {

/// What one unit (a fused chain) did over one interval, summed over its instances.
struct unit_sample {
  int unit = 0;          ///< the chain's index in the plan
  std::string name;      ///< its components, joined by '+', for the log
  std::uint32_t parallelism = 1;  ///< instances now
  std::uint32_t min = 1;          ///< bounds from the YAML (min == max: fixed)
  std::uint32_t max = 1;
  bool source = false;   ///< the unit starts with a source
  double records_in = 0;   ///< rows its first component received over the interval
  double records_out = 0;  ///< rows it sent on its main output over the interval
  double busy_s = 0;          ///< seconds spent processing, summed over instances
  double idle_s = 0;          ///< seconds with nothing to do, summed over instances
  double backpressure_s = 0;  ///< seconds holding output without credit, summed
  /// Sources: records per second offered to the unit (a generator's paced rate, Kafka's
  /// produce rate), summed over instances; negative when unknown.
  double offered_rate = -1;
  /// Sources: records waiting to be read (Kafka lag); negative when unknown.
  double backlog = -1;
};

/// One sampling interval of the whole pipeline.
struct sample {
  std::int64_t at_ns = 0;     ///< end of the interval (steady clock of the job)
  double interval_s = 1;      ///< its length
  std::vector<unit_sample> units;
  /// Channels between units: (upstream unit, downstream unit), main outputs only.
  std::vector<std::pair<int, int>> edges;
};

/// A change of one unit's parallelism, with why.
struct decision {
  int unit = 0;
  std::string name;
  std::uint32_t from = 1;
  std::uint32_t to = 1;
  /// One line: the rule that fired ("rate 41,000/s needs 3.4 instances at 0.7 utilisation").
  std::string reason;
  /// The figures it used, as `key=value` pairs separated by spaces (rates, busy fractions,
  /// backlog, true rate per instance, selectivity).
  std::string inputs;
};

/// Settings of the DS2 policy (`pipeline.scaling`).
struct ds2_settings {
  double target_utilisation = 0.7;  ///< busy fraction each instance should run at
  /// No change while a unit's utilisation is within target ± this (Flink: 0.7 ± 0.3).
  double utilisation_band = 0.3;
  std::int64_t stabilisation_ns = 30'000'000'000;  ///< no decision for a unit this long after a change
  std::int64_t scale_in_delay_ns = 120'000'000'000;  ///< the need must stay lower this long
  /// One scale-in step keeps at least this fraction of the instances (0.5: at most halves).
  double max_scale_in = 0.5;
  /// A backlog is to be worked off within this long (added to the rate it must sustain).
  std::int64_t backlog_catch_up_ns = 60'000'000'000;
};

/// One step of a `schedule` policy: at `at_ns` after the start, `unit` gets `parallelism`.
struct scheduled_change {
  std::int64_t at_ns = 0;
  int unit = 0;
  std::uint32_t parallelism = 1;
};

/// Turns samples into decisions. Not thread-safe: the job's supervisor calls it.
class policy {
public:
  virtual ~policy() = default;
  /// "ds2" or "schedule".
  virtual std::string name() const = 0;
  /// The decisions for this sample (at most one per unit), possibly none.
  virtual std::vector<decision> decide(const sample& s) = 0;
  /// A decision was carried out (or the unit's parallelism changed otherwise) at `at_ns`:
  /// the stabilisation window starts there.
  virtual void applied(int unit, std::uint32_t parallelism, std::int64_t at_ns) {
    (void)unit;
    (void)parallelism;
    (void)at_ns;
  }
};

/// DS2 (Kalavri et al., OSDI 2018): each unit's true rate (records per busy second per
/// instance) and the rate it must sustain (the sources' offered rates and backlogs carried
/// downstream by each unit's selectivity) give its parallelism at the target utilisation;
/// clamped to min/max, with stabilisation, a scale-in delay and a bounded scale-in step.
std::unique_ptr<policy> make_ds2(const ds2_settings& s);

/// Changes given in advance, at given times since the job's start (`sample::at_ns` counted
/// from `start_ns`); for tests and demos. Bounds are not applied: the steps are exact.
std::unique_ptr<policy> make_schedule(std::vector<scheduled_change> steps, std::int64_t start_ns);

} // namespace pel::scaling
