#pragma once
/// \file
/// Shared pieces of the stateful operator family (private to operators/): key fields, the
/// glue to `pel::state` (whose `keyed_map` holds every operator's per-key state and writes
/// its snapshots by key group), an event-time reorder buffer, sliding numeric series, state
/// per tumbling window, numeric expressions, and helpers for params and output schemas.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"
#include "pel/state/keyed_map.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pel::operators {

/// Event time that is later than every record (the watermark at end of stream).
inline constexpr std::int64_t time_max = std::numeric_limits<std::int64_t>::max();
/// Event time earlier than every record.
inline constexpr std::int64_t time_min = std::numeric_limits<std::int64_t>::min();

/// Event time `ns` in epoch milliseconds, rounded down: the unit of every time-valued field an
/// operator writes (window_start / window_end, an alert's `time`).
inline std::int64_t epoch_ms(std::int64_t ns) noexcept {
  auto q = ns / 1'000'000;
  return (ns % 1'000'000 < 0) ? q - 1 : q;
}

// ---------------------------------------------------------------------------------------
// Keys

/// Positions of the fields named by `cfg[key]` in `in`. An unknown name is reported at its
/// item with a did-you-mean (`find_fields` in field_names.hpp): the first throws, unless `cfg`
/// gathers, which gets every one and a result without them.
std::vector<int> resolve_fields(const spec::config& cfg, std::string_view key,
                                const core::schema& in, bool required);

/// Positions of `names`, the value of `cfg[key]`, in `in`, reported as `resolve_fields` does;
/// `of` says whose fields they are in the message ("of the left input").
std::vector<int> resolve_names(const spec::config& cfg, std::string_view key,
                               const std::vector<std::string>& names, const core::schema& in,
                               std::string_view of = {});

/// The key groups an instance owns (what it restores).
inline state::key_group_range owned_groups(const core::operator_context& ctx) noexcept {
  return {ctx.key_group_begin, ctx.key_group_end};
}

/// Every key group (what an instance snapshots: all the keys it holds).
inline state::key_group_range all_groups(const core::operator_context& ctx) noexcept {
  return {0, ctx.max_parallelism};
}

/// The entry of the key `row[cols]` in `map` (inserted with `S{}` when new); `hash` receives
/// the key's `state::hash_key`, which callers may reuse (sampling, partitioning).
template <class S>
typename state::keyed_map<S>::index find_or_insert(state::keyed_map<S>& map, const core::value* row,
                                                   const std::vector<int>& cols,
                                                   std::uint64_t& hash, bool& inserted) {
  hash = state::hash_key(row, cols.data(), cols.size());
  return map.find_or_insert(row, cols.data(), cols.size(), hash, inserted);
}

// ---------------------------------------------------------------------------------------
// Rows kept in state

/// Writes `n` values of `row`.
void save_row(core::state_writer& w, const core::value* row, std::size_t n);
/// Appends `n` values read from `r` to `out`.
void load_row(core::state_reader& r, std::vector<core::value>& out, std::size_t n);

/// Rows with their event times, stored flat (row-major); erasing from the front is amortised.
class row_store {
public:
  row_store() = default;
  explicit row_store(std::uint32_t width) : width_(width) {}
  void set_width(std::uint32_t w) { width_ = w; }
  std::uint32_t width() const noexcept { return width_; }
  std::size_t size() const noexcept { return times_.size() - head_; }
  bool empty() const noexcept { return size() == 0; }
  const core::value* row(std::size_t i) const { return cells_.data() + (head_ + i) * width_; }
  std::int64_t time(std::size_t i) const { return times_[head_ + i]; }
  void push(const core::value* src, std::int64_t t) {
    cells_.insert(cells_.end(), src, src + width_);
    times_.push_back(t);
  }
  /// Inserts keeping the rows ordered by time (after rows with the same time).
  void insert_sorted(const core::value* src, std::int64_t t);
  /// Drops the first `n` rows.
  void pop_front(std::size_t n);
  void clear() {
    cells_.clear();
    times_.clear();
    head_ = 0;
  }
  void save(core::state_writer& w) const;
  void load(core::state_reader& r);

private:
  std::uint32_t width_ = 0;
  std::vector<core::value> cells_;
  std::vector<std::int64_t> times_;
  std::size_t head_ = 0;
};

// ---------------------------------------------------------------------------------------
// Event-time order

/// Holds records until the watermark passes them, then hands them out in event-time order
/// (records with equal times in arrival order). A record older than the watermark on arrival
/// is late. With `enabled == false` records pass straight through in arrival order.
class reorder_buffer {
public:
  /// `width`: values per row.
  void init(std::uint32_t width, bool enabled) {
    pending_ = core::batch(width);
    enabled_ = enabled;
  }
  bool enabled() const noexcept { return enabled_; }
  std::int64_t watermark() const noexcept { return watermark_; }

  /// Takes the rows of `in`: late ones go to `late`, the others are kept (or, unordered,
  /// handed to `f(row, t)` at once).
  template <class F>
  void add(core::batch& in, core::batch& late, F&& f) {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      if (!enabled_) {
        f(row, t);
      } else if (t < watermark_) {
        late.append_move(row, t);
      } else {
        pending_.append_move(row, t);
      }
    }
  }

  /// Advances to `wm` and hands every kept record older than it to `f(row, t)` in order.
  template <class F>
  void advance(std::int64_t wm, F&& f) {
    if (wm > watermark_) watermark_ = wm;
    if (pending_.empty()) return;
    order_.clear();
    for (std::size_t i = 0; i < pending_.size(); ++i)
      if (pending_.times[i] < watermark_) order_.push_back(static_cast<std::uint32_t>(i));
    if (order_.empty()) return;
    std::stable_sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
      return pending_.times[a] < pending_.times[b];
    });
    for (auto i : order_) f(pending_.row(i), pending_.times[i]);
    // Keep the rows not yet released, in arrival order.
    core::batch rest(pending_.width);
    for (std::size_t i = 0; i < pending_.size(); ++i)
      if (pending_.times[i] >= watermark_) rest.append_move(pending_.row(i), pending_.times[i]);
    pending_ = std::move(rest);
  }

  /// Kept records (for snapshots).
  core::batch& pending() noexcept { return pending_; }
  /// Writes the watermark and the kept records grouped by their key (fields `key`) in the
  /// `state::keyed_map` snapshot format, one section per key group.
  void save(core::state_writer& w, const std::vector<int>& key,
            std::uint32_t max_parallelism) const;
  /// Reads what `save` wrote and keeps the records of the key groups in `range` (after the
  /// ones already kept, so the snapshots of several instances can be restored in turn).
  void load(core::state_reader& r, state::key_group_range range, std::uint32_t max_parallelism);

private:
  core::batch pending_;
  std::vector<std::uint32_t> order_;
  std::int64_t watermark_ = time_min;
  bool enabled_ = true;
};

// ---------------------------------------------------------------------------------------
// Sliding series of numbers

/// The last records of one key as `m` numbers each (NaN for null), bounded by a count
/// (`rows`) or an event-time span (`range`), with running sums for O(1) count / sum / mean /
/// variance and monotonic queues for O(1) amortised min / max. Sums are kept relative to the
/// first value seen (a shift) to limit cancellation. Values are finite numbers, or NaN for a
/// missing one.
///
/// This is the sliding form of the aggregate library's count, sum, avg, variance, min and max
/// (`pel/operators/aggregates.hpp`, whose states only add and merge): a record that leaves
/// is subtracted instead of the window being recomputed. `rolling`, `zscore` and
/// `change_detect` use it; the functions and their semantics are the library's.
class series_window {
public:
  /// `m` numbers per record; `track_extrema` keeps min/max queues.
  void init(std::size_t m, bool track_extrema);
  /// Drops records so that at most `rows` (0: no bound) remain and none is older than
  /// `now - range` (0: no bound; a record at `now - range` exactly is dropped).
  void evict(std::size_t rows, std::int64_t range, std::int64_t now);
  void push(const double* xs, std::int64_t t);
  std::size_t size() const noexcept { return times_.size(); }
  bool empty() const noexcept { return times_.empty(); }
  /// Non-null values of number `j` in the window.
  std::int64_t count(std::size_t j) const { return n_[j]; }
  double sum(std::size_t j) const;
  double mean(std::size_t j) const;
  /// Sample variance (n - 1); NaN below two values; +inf when it is beyond the largest double.
  double variance(std::size_t j) const;
  /// Sample standard deviation; NaN below two values. Finite for any finite values (1e308
  /// and -1e308: 1.41e308), where sqrt(variance) would be +inf.
  double stddev(std::size_t j) const;
  double min(std::size_t j) const;
  double max(std::size_t j) const;
  std::int64_t oldest_time() const { return times_.front(); }
  std::int64_t newest_time() const { return times_.back(); }
  void clear();
  void save(core::state_writer& w) const;
  void load(core::state_reader& r);

private:
  void pop();
  // Values far apart (beyond about 1e154) overflow the running sums of squares. Then mean,
  // variance and stddev are computed exactly from the values in the window instead (O(n),
  // only while such values are in it), and a pop sums the rest again.
  bool overflowed(std::size_t j) const;
  bool far_shift(std::size_t j) const;
  void sum_again(std::size_t j);
  double exact_mean(std::size_t j) const;
  /// The variance of the values divided by 2^scale; sets `scale`.
  double scaled_variance(std::size_t j, int& scale) const;
  std::size_t m_ = 1;
  bool extrema_ = false;
  std::deque<std::int64_t> times_;
  std::deque<double> vals_;
  std::uint64_t first_seq_ = 0;
  std::uint64_t next_seq_ = 0;
  std::vector<double> shift_, sum_, sumsq_;
  std::vector<std::int64_t> n_;
  std::vector<bool> shifted_;
  std::vector<std::deque<std::pair<std::uint64_t, double>>> mins_, maxs_;
};

// ---------------------------------------------------------------------------------------
// Expressions

/// A numeric expression over a row, compiled once against the input schema.
class number_expr {
public:
  number_expr() = default;
  /// Compiles `text`; fails located at `cfg[key]` when it does not compile.
  static number_expr compile(const spec::config& cfg, std::string_view key, const std::string& text,
                             const core::schema& in);
  /// Compiles the expression written at `cfg[key]`.
  static number_expr compile(const spec::config& cfg, std::string_view key, const core::schema& in) {
    return compile(cfg, key, cfg.get_string(key), in);
  }
  /// False when the value is null or not a number.
  bool eval(const core::value* row, std::int64_t t, double& out) const { return fn_(row, t, out); }
  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }

private:
  std::function<bool(const core::value*, std::int64_t, double&)> fn_;
};

// ---------------------------------------------------------------------------------------
// Base of the per-record keyed operators

/// A single-input operator that handles records one by one in event-time order (or arrival
/// order), keyed by `key_`, with per-key state `S` in a `state::keyed_map`. The base owns the
/// reorder buffer, the watermark, the key map and the snapshot of both (by key group);
/// subclasses implement `handle` and say how one `S` is written and read.
template <class S>
class per_record_operator : public core::operator_base {
public:
  std::vector<int> key_columns(int) const override { return key_; }
  core::schema_ptr output_schema() const override { return out_; }
  void open(const core::operator_context& ctx) override {
    ctx_ = ctx;
    keys_.set_max_parallelism(ctx.max_parallelism);
  }
  void process(core::batch& in, int, core::outputs& out) override {
    buffer_.add(in, out.late, [&](core::value* row, std::int64_t t) { handle(row, t, out); });
  }
  void on_watermark(core::event_time wm, core::outputs& out) override {
    buffer_.advance(wm.ns, [&](core::value* row, std::int64_t t) { handle(row, t, out); });
    expire(wm.ns, out);
  }
  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }
  void snapshot(core::state_writer& w) override {
    buffer_.save(w, key_, ctx_.max_parallelism);
    keys_.snapshot(w, all_groups(ctx_),
                   [this](core::state_writer& w, const S& s) { write_key(w, s); });
  }
  void restore(core::state_reader& r) override {
    buffer_.load(r, owned_groups(ctx_), ctx_.max_parallelism);
    keys_.restore(r, owned_groups(ctx_), [this](core::state_reader& r) { return read_key(r); });
  }

protected:
  /// Sets up the reorder buffer for the input schema.
  void init_base(const core::schema_ptr& in, bool ordered) {
    in_ = in;
    buffer_.init(static_cast<std::uint32_t>(in->size()), ordered);
  }
  /// One record, in order. May move values out of `row`.
  virtual void handle(core::value* row, std::int64_t t, core::outputs& out) = 0;
  /// The watermark advanced to `wm` after the records before it were handled.
  virtual void expire(std::int64_t wm, core::outputs& out) {
    (void)wm;
    (void)out;
  }
  /// Snapshot of one key's state, and its inverse.
  virtual void write_key(core::state_writer& w, const S& s) const = 0;
  virtual S read_key(core::state_reader& r) const = 0;

  /// The state of `row`'s key, created with `S{}` when new (`hash`: the key's hash).
  S& state_of(const core::value* row, std::uint64_t& hash) {
    bool inserted;
    return keys_.at(find_or_insert(keys_, row, key_, hash, inserted));
  }
  S& state_of(const core::value* row) {
    std::uint64_t hash;
    return state_of(row, hash);
  }
  /// Drops the keys for which `stale(S&)` is true.
  template <class P>
  void erase_keys_if(P&& stale) {
    keys_.erase_if([&](auto, const state::key&, S& s) { return stale(s); });
  }

  std::vector<int> key_;
  core::schema_ptr in_;
  core::schema_ptr out_;
  core::operator_context ctx_;
  reorder_buffer buffer_;
  state::keyed_map<S> keys_;
};

// ---------------------------------------------------------------------------------------
// State per tumbling window

/// Per-key state `S` for each open tumbling event-time window of `size` (aligned to the
/// epoch): one `state::keyed_map` per window start. Whole windows fire when the watermark
/// passes their end. Shared by the operators that look at all the keys of a window at once
/// (`top_k`, `window_join`).
template <class S>
class tumbling_state {
public:
  using map_type = state::keyed_map<S>;

  void init(std::int64_t size) { size_ = size; }
  void open(const core::operator_context& ctx) { ctx_ = ctx; }
  std::int64_t size() const noexcept { return size_; }
  /// Start of the window of event time `t`.
  std::int64_t start_of(std::int64_t t) const noexcept { return t - ((t % size_) + size_) % size_; }
  /// True when the window of `t` has already fired (a record for it is late).
  bool fired(std::int64_t t) const noexcept { return start_of(t) + size_ <= watermark_; }

  /// The state of `row`'s key (fields `cols`) in the window of `t`, created when new.
  S& get(const core::value* row, const std::vector<int>& cols, std::int64_t t) {
    auto start = start_of(t);
    if (!last_ || last_start_ != start) {
      last_ = &windows_.try_emplace(start, ctx_.max_parallelism).first->second;
      last_start_ = start;
    }
    std::uint64_t hash;
    bool inserted;
    return last_->at(find_or_insert(*last_, row, cols, hash, inserted));
  }

  /// Advances to `wm` and calls `fire(start, end, map_type&)` for each window whose end it
  /// reached (every window at the end of stream), oldest first, then drops it.
  template <class F>
  void advance(std::int64_t wm, F&& fire) {
    watermark_ = std::max(watermark_, wm);
    while (!windows_.empty()) {
      auto it = windows_.begin();
      auto end = it->first + size_;
      if (wm != time_max && end > wm) break;
      fire(it->first, end, it->second);
      if (last_ == &it->second) last_ = nullptr;
      windows_.erase(it);
    }
  }

  /// The watermark, then per window its start and its keys (`state::keyed_map` sections).
  template <class W>
  void snapshot(core::state_writer& w, W&& write_value) const {
    w.put<std::int64_t>(watermark_);
    w.put<std::uint64_t>(windows_.size());
    for (const auto& [start, map] : windows_) {
      w.put<std::int64_t>(start);
      map.snapshot(w, all_groups(ctx_), write_value);
    }
  }
  /// Reads what `snapshot` wrote, keeping the keys of the groups this instance owns.
  template <class R>
  void restore(core::state_reader& r, R&& read_value) {
    watermark_ = std::max(watermark_, r.get<std::int64_t>());
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto start = r.get<std::int64_t>();
      auto& map = windows_.try_emplace(start, ctx_.max_parallelism).first->second;
      map.restore(r, owned_groups(ctx_), read_value);
    }
  }

private:
  std::int64_t size_ = 1;
  core::operator_context ctx_;
  std::int64_t watermark_ = time_min;
  std::map<std::int64_t, map_type> windows_;
  map_type* last_ = nullptr;  // the window the previous record went to
  std::int64_t last_start_ = 0;
};

// ---------------------------------------------------------------------------------------
// Params and schemas

/// The `order` param shared by the per-record operators.
spec::param order_param();
/// Reads `order` (event → true).
bool event_order(const spec::config& cfg);

/// Parses a signed duration such as `-5s`, `0s`, `250ms`; fails located at `cfg[key]`.
std::int64_t signed_duration(const spec::config& cfg, std::string_view key);

/// A schema made of `in`'s fields followed by `extra` (fails at `key` when a name collides).
core::schema_ptr extend_schema(const spec::config& cfg, std::string_view key,
                               const core::schema& in, const std::vector<core::field>& extra);

/// A schema made of the fields `cols` of `in` followed by `extra` names.
core::schema_ptr pick_schema(const core::schema& in, const std::vector<int>& cols,
                             const std::vector<std::pair<std::string, std::optional<core::value_type>>>& extra);

/// Output schema of a join: every left field, then every right field except the positions
/// in `skip_right`, renamed `prefix + name` when the name is taken. `right_map` receives, for
/// each kept right field, its position in the right schema.
core::schema_ptr join_schema(const core::schema& left, const core::schema& right,
                             const std::vector<int>& skip_right, const std::string& prefix,
                             std::vector<int>& right_map);

} // namespace pel::operators

namespace pel::operators {

/// Key and output settings shared by the joins: `key` (shared names) or `left_key` /
/// `right_key`, `prefix`, `how`.
struct join_keys {
  std::vector<int> left;
  std::vector<int> right;
  std::vector<int> right_map;  ///< right positions copied to the output, in order
  core::schema_ptr out;
  bool left_outer = false;
  std::uint32_t left_width = 0, right_width = 0;  ///< fields per input record

  /// Reads the keys from `cfg` and builds the output schema.
  void init(const spec::config& cfg, const core::schema& l, const core::schema& r);
  /// Writes the joined row (`right` may be null: nulls).
  void emit(core::batch& out, const core::value* left_row, const core::value* right_row,
            std::int64_t t) const;
};

/// The records of one key on both sides of a join, each side in event-time order.
struct join_sides {
  row_store left;
  row_store right;

  /// Adds a record of input `input` (0: left, 1: right) in time order.
  void add(const join_keys& keys, int input, const core::value* row, std::int64_t t);
  void save(core::state_writer& w) const;
  static join_sides load(core::state_reader& r, const join_keys& keys);
};

/// The key params of the joins.
std::vector<spec::param> join_params();

/// The schema parts every join shares: the key params, two inputs, the `late` port.
void add_join_schema(spec::component_schema& s);

/// Fails at `input` unless `inputs` are two: `[left, right]`.
void require_two_inputs(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs,
                        const std::string& type);

} // namespace pel::operators
