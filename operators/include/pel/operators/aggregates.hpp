#pragma once
/// \file
/// The aggregate functions of windowed operators: `count`, `sum`, `min`, `max`, `avg`,
/// `stddev`, `variance`, `first`, `last`, `distinct_count`, `percentile`, `vwap`, `ohlc`,
/// `returns`. Written in YAML as `name: func(args)` where each argument is an expression over
/// the input schema.
///
/// Each aggregate keeps its state in a fixed-size slot of an accumulator block (a few bytes
/// for most functions; sketches keep a pointer to a heap object). An `aggregate_set` lays out
/// all the aggregates of one operator in one block, so one open window of one key is one
/// block. A block supports add (one row), merge (another block: sliding-window panes, session
/// merges), result, and snapshot/restore.
///
/// Semantics (documented in docs/reference via the window operator):
/// - Null arguments are skipped: `count(x)` counts non-null x, `count()` counts rows;
///   `sum`/`min`/`max`/`avg` of only nulls is null.
/// - A non-numeric argument where a number is needed (a string, a bool) rejects the whole
///   record before any aggregate sees it: `prepare` returns false with the reason and the
///   operator sends the record to its dead-letter output.
/// - Numeric results are doubles except `count`, `distinct_count` and `<name>_trades` (ints).
/// - NaN is a number, not a null: one NaN argument makes the result of `sum`, `avg`, `min`,
///   `max`, `stddev`, `variance`, `percentile`, `vwap` and `<name>_high`/`_low` NaN,
///   whatever order the values come in (a JSON sink writes it as null, having no NaN);
///   `count(x)` counts it. Infinities are numbers too: `max` of a set with +inf is +inf, so
///   is `sum`; `stddev` and `variance` of a set with an infinity are NaN (undefined).
/// - `stddev`/`variance` are the sample statistics (n-1), null below two values (Welford
///   with Chan's parallel merge, on the mean and the population standard deviation so that
///   nothing overflows: `stddev` of {1e308, -1e308} is 1.41e308; a `variance` beyond the
///   largest double is +inf). Adding row by row, by blocks (`add_plain`) or merging partial
///   states gives the same result up to rounding.
/// - `first(x)`/`last(x)` take the value with the smallest/largest event time (ties: the
///   earlier/later arrival); any value type.
/// - `distinct_count(x)` is exact up to 64 distinct values, then a HyperLogLog with 4096
///   registers: standard error 1.04/sqrt(4096) ≈ 1.6 %.
/// - `percentile(x, p)` uses a DDSketch with relative accuracy 1 %: the result is within
///   1 % (relative) of the exact value of rank floor(p * (n - 1)) in the sorted input, and
///   exact at p = 0 and p = 1 (the minimum and maximum). `p` is a constant: a fraction in
///   [0, 1], or a percentage in (1, 100]. |x| below 1e-9 counts as 0; -inf and +inf rank
///   below and above every finite value (the 100th percentile of a set with +inf is +inf).
///   The sketch holds at most 2048 buckets per sign, whatever the values: when they span
///   more than a ratio of about 1e17, the lowest buckets are merged and only the lowest
///   percentiles lose accuracy.
/// - `vwap(price, qty)` = sum(price * qty) / sum(qty), null when sum(qty) is 0.
/// - `ohlc(price, qty)` expands into six outputs `<name>_open`, `<name>_high`, `<name>_low`,
///   `<name>_close` (by event time), `<name>_volume` (sum of qty) and `<name>_trades` (rows).
/// - `returns(price)` is the simple return last / first - 1 (by event time), null when the
///   first price is 0.

#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pel::operators {

/// The evaluated arguments of one aggregate for the current row (filled by `prepare`).
struct aggregate_input {
  double num[2] = {0, 0};           ///< numeric arguments
  bool null[2] = {false, false};    ///< argument i was null
  const core::value* val = nullptr; ///< the first argument as a value (value aggregates)
  core::value scratch;              ///< holds a computed value `val` may point to
};

/// One aggregate function bound to its compiled arguments. Stateless itself: its state lives
/// in a slot of `state_size()` bytes (8-aligned) that the owner allocates. States are
/// trivially relocatable (plain numbers and owning raw pointers), so the owner may move a
/// block with memcpy (e.g. inside a growing byte vector).
class aggregate {
public:
  virtual ~aggregate() = default;

  /// Bytes of state, a multiple of 8.
  virtual std::size_t state_size() const = 0;
  /// Constructs an empty state in `s`.
  virtual void init(void* s) const = 0;
  /// Destroys the state in `s` (frees what it owns on the heap).
  virtual void destroy(void* s) const noexcept { (void)s; }
  /// Evaluates the arguments for `row` into `in`. False (with the reason in `error`) when the
  /// record cannot be aggregated (a non-number where a number is needed).
  virtual bool prepare(const core::value* row, std::int64_t t, aggregate_input& in,
                       std::string& error) const = 0;
  /// Adds a prepared row with event time `t`.
  virtual void add(void* s, const aggregate_input& in, std::int64_t t) const = 0;
  /// Merges `src` into `dst` (both initialised; `src` is left unchanged).
  virtual void merge(void* dst, const void* src) const = 0;
  /// Writes the `outputs().size()` result values to `out`.
  virtual void result(const void* s, core::value* out) const = 0;
  /// Snapshot of a state, and its inverse into an initialised slot.
  virtual void write(const void* s, core::state_writer& w) const = 0;
  virtual void read(void* s, core::state_reader& r) const = 0;
  /// Heap bytes the state owns (sketches), for memory accounting.
  virtual std::size_t heap_bytes(const void* s) const {
    (void)s;
    return 0;
  }

  /// Output fields this aggregate produces (one, or six for ohlc), with their types.
  const std::vector<core::field>& outputs() const noexcept { return outputs_; }
  /// The output fields, for the code that builds the aggregate.
  std::vector<core::field>& outputs_mutable() noexcept { return outputs_; }

protected:
  std::vector<core::field> outputs_;
};

/// One `name: func(args)` entry, as text.
struct aggregate_spec {
  std::string name;
  std::string text;
};

/// Compiles `func(args)` called `name` against `input`. Throws `std::invalid_argument` with a
/// message naming the problem (unknown function with a suggestion, wrong argument count,
/// argument that does not compile, non-constant percentile) and, in `error_offset` when not
/// null, the byte offset in `text` it refers to.
std::unique_ptr<aggregate> compile_aggregate(const std::string& name, const std::string& text,
                                             const core::schema& input,
                                             std::size_t* error_offset = nullptr);

/// The names of the aggregate functions, sorted (for docs and suggestions).
const std::vector<std::string>& aggregate_function_names();

/// All the aggregates of one operator, laid out in one accumulator block. The block is raw
/// bytes of `state_size()`, 8-aligned; the owner calls `init` before use and `destroy` after.
/// `prepare` keeps the evaluated arguments in the set, so one set serves one thread.
class aggregate_set {
public:
  aggregate_set() = default;
  aggregate_set(aggregate_set&&) noexcept = default;
  aggregate_set& operator=(aggregate_set&&) noexcept = default;

  /// From the operator's `aggregates:` expression map read from `cfg`; errors are
  /// `spec::config_error` located at the offending entry (and column, for plain scalars).
  /// When `cfg` gathers, every bad entry is reported and left out of the set, and
  /// `compiled`, when not null, says which entries are in it; otherwise the first throws.
  static aggregate_set compile(const spec::config& cfg,
                               const std::vector<spec::config::named_text>& entries,
                               const core::schema& input, std::vector<bool>* compiled = nullptr);
  /// From plain text (tests, benchmarks); errors are `std::invalid_argument`.
  static aggregate_set compile_text(const std::vector<aggregate_spec>& entries,
                                    const core::schema& input);

  std::size_t state_size() const noexcept { return size_; }
  /// Every output field in order (ohlc contributes six).
  const std::vector<core::field>& outputs() const noexcept { return outputs_; }
  std::size_t size() const noexcept { return aggs_.size(); }
  /// True when every aggregate keeps plain numbers (counts and numeric aggregates: no heap,
  /// no destroy needed, states may be copied as bytes).
  bool plain_states() const noexcept { return fast_ && !aggs_.empty(); }

  void init(std::byte* s) const;
  void destroy(std::byte* s) const noexcept;
  /// Evaluates every aggregate's arguments for one row; false with the reason (prefixed with
  /// the aggregate's name) when the record must go to the dead-letter output instead.
  bool prepare(const core::value* row, std::int64_t t, std::string& error);
  /// Adds the row last given to a successful `prepare`.
  void add(std::byte* s, std::int64_t t) const;
  /// For sets with `plain_states()`: true when `row` can go through `add_plain` (every field
  /// an aggregate needs as a number is a number or null). A row that cannot is given to
  /// `prepare`, which says why it is rejected.
  bool plain_row(const core::value* row) const noexcept {
    for (std::size_t i = 0; i < fast_fields_.size(); ++i) {
      const std::size_t k = row[fast_fields_[i]].index();
      if (fast_number_[i] && k != 0 && k != 2 && k != 3) return false;  // null, integer, number
    }
    return true;
  }
  /// For sets with `plain_states()`: adds `rows[i]` with event time `times[i]` to the state at
  /// `states[i]`, for i < n, every row having passed `plain_row`. One call per block of rows:
  /// each aggregate's update runs as one loop over them, without a call per row. Rows may
  /// share a state; they are added in order.
  void add_plain(const core::value* const* rows, std::byte* const* states,
                 const std::int64_t* times, std::size_t n) const;
  void merge(std::byte* dst, const std::byte* src) const;
  /// Writes `outputs().size()` values.
  void result(const std::byte* s, core::value* out) const;
  void write(const std::byte* s, core::state_writer& w) const;
  void read(std::byte* s, core::state_reader& r) const;
  std::size_t heap_bytes(const std::byte* s) const;

private:
  void append(std::unique_ptr<aggregate> a);

  std::vector<std::unique_ptr<aggregate>> aggs_;
  std::vector<std::size_t> offsets_;
  std::vector<aggregate_input> inputs_;
  std::vector<core::field> outputs_;
  std::size_t size_ = 0;

  // Fast path, for sets made only of counts and numeric aggregates whose arguments are plain
  // fields (vwap(price, qty), sum(qty), ...): `prepare` reads each distinct field once and
  // `add` updates the states without virtual calls. A row with a non-number where a number
  // is needed goes through the general path, which reports it exactly as before.
  struct fast_step {
    std::uint8_t kind;      // which update (aggregates.cpp)
    std::uint8_t a, b;      // its arguments: positions in fast_num_ / fast_null_
    std::uint32_t offset;   // its state in the block
  };
  static constexpr std::size_t fast_max_fields = 8;
  bool fast_ = true;            // every aggregate so far has a fast form
  bool prepared_fast_ = false;  // the last successful `prepare` went the fast way
  std::vector<fast_step> fast_steps_;
  std::vector<int> fast_fields_;            // the distinct fields read
  std::vector<std::uint8_t> fast_number_;   // 1: that field must hold a number
  double fast_num_[fast_max_fields] = {};
  bool fast_null_[fast_max_fields] = {};
};

/// An accumulator block owned by RAII: `init` on construction, `destroy` on destruction.
class accumulator {
public:
  accumulator() = default;
  explicit accumulator(const aggregate_set& set);
  accumulator(accumulator&& o) noexcept : set_(o.set_), data_(std::move(o.data_)) { o.set_ = nullptr; }
  accumulator& operator=(accumulator&& o) noexcept;
  ~accumulator();

  std::byte* data() noexcept { return data_.get(); }
  const std::byte* data() const noexcept { return data_.get(); }
  explicit operator bool() const noexcept { return data_ != nullptr; }

private:
  const aggregate_set* set_ = nullptr;
  std::unique_ptr<std::byte[]> data_;
};

} // namespace pel::operators
