#pragma once
/// \file
/// The synthetic market / sensor source (`type: generator`), usable directly by benchmarks
/// and tests. Implemented in connectors/generator.

#include "pel/core/schema.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pel::connectors {

/// What the generator produces.
enum class generator_profile {
  trades,   ///< ts, symbol, price, qty, side, trade_id
  quotes,   ///< ts, symbol, bid, ask, bid_size, ask_size
  sensors,  ///< ts, device, temperature, humidity, status
};

/// One step of a rate schedule (`rate: [{for: 20s, per_second: 200000}, ...]`): `per_second`
/// records per second over all instances for `for_ns` of pacing, i.e. for the next
/// `for_ns / 1e9 × per_second` records (the last step holds until `count`, or forever).
struct generator_rate_step {
  std::int64_t for_ns = 0;  ///< 0 only on the last step (it holds)
  double per_second = 0;
};

/// Settings of a generator (the YAML keys, already converted).
struct generator_options {
  generator_profile profile = generator_profile::trades;
  std::uint32_t symbols = 100;   ///< trades/quotes: distinct symbols
  std::uint32_t devices = 100;   ///< sensors: distinct devices
  double rate = 0;               ///< records per second per instance (wall clock); 0: unpaced
  /// A rate schedule over all instances (each paces `per_second / parallelism`); when set,
  /// `rate` is not used. Which step a record falls in is a matter of its global index, so
  /// records and event times do not depend on the clock.
  std::vector<generator_rate_step> rate_schedule;
  double event_rate = 0;         ///< records per second of event time over all instances;
                                 ///< 0: the schedule's rate when there is one, `rate` ×
                                 ///< parallelism when `rate` is set, else 1000
  std::uint64_t count = 0;       ///< records over all instances; 0: unbounded
  std::int64_t duration_ns = 0;  ///< stop after this much event time; 0: no limit
  std::uint64_t seed = 42;
  std::int64_t start_ms = 1704205800000;    ///< event-time origin (2024-01-02T14:30:00Z)
  double out_of_order = 0;                  ///< fraction of records whose timestamp is moved back
  std::int64_t max_delay_ns = 500'000'000;  ///< at most this far
  double burstiness = 0.3;                  ///< 0: evenly spaced; towards 1: clustered arrivals
  double bad_records = 0;  ///< sensors: fraction of readings with a bad temperature
  bool preload = false;    ///< generate this instance's `count` records at open()
};

/// The generator's YAML parameters.
std::vector<spec::param> generator_params();

/// Reads and checks the options from a `type: generator` block (throws `spec::config_error`).
generator_options read_generator_options(const spec::config& cfg);

/// The schema of a profile's rows.
core::schema_ptr generator_schema(generator_profile p);

/// A generator source. With parallelism p, instance i produces the records whose global
/// index n satisfies n % p == i (interleaved), so the union over instances is the same
/// at any parallelism.
core::source_ptr make_generator(const generator_options& opt);

/// The name of symbol `i`: a list of real tickers first (AAPL, MSFT, ...), then `SYM0042`.
std::string generator_symbol_name(std::uint32_t i);

/// The mid price of symbol `symbol` at event time `ts_ms`: a geometric random walk with one
/// step per second of event time from `start_ms`, interpolated within the second. A function
/// of (seed, symbol, start_ms, ts_ms) only, so trades and quotes generated with the same
/// seed, symbols and start time agree.
double generator_mid_price(std::uint64_t seed, std::uint32_t symbol, std::int64_t start_ms,
                           std::int64_t ts_ms);

/// Parses an ISO-8601 time (`2024-01-02`, `2024-01-02T14:30:00Z`, `...T14:30:00.250+01:00`)
/// into ms since the epoch; false when it is not one.
bool parse_iso8601_ms(std::string_view text, std::int64_t& ms) noexcept;

}  // namespace pel::connectors
