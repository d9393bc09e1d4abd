#pragma once
/// \file
/// Shared pieces of the stateful operator family (private to operators/): key extraction and
/// hashing, a per-key state table that snapshots by key group, an event-time reorder buffer,
/// numeric expressions, and helpers for params and output schemas.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/state_io.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pel::operators {

/// Event time that is later than every record (the watermark at end of stream).
inline constexpr std::int64_t time_max = std::numeric_limits<std::int64_t>::max();
/// Event time earlier than every record.
inline constexpr std::int64_t time_min = std::numeric_limits<std::int64_t>::min();

// ---------------------------------------------------------------------------------------
// Keys

/// Positions of the fields named by `cfg[key]` in `in`; fails (located) on an unknown name.
std::vector<int> resolve_fields(const spec::config& cfg, std::string_view key,
                                const core::schema& in, bool required);

/// Positions of `names` in `in`; fails at `cfg[key]` on an unknown name.
std::vector<int> resolve_names(const spec::config& cfg, std::string_view key,
                               const std::vector<std::string>& names, const core::schema& in);

/// Stable hash of the key fields `cols` of `row`: `state::hash_key`, the hash the runtime
/// partitions by.
std::uint64_t key_hash(const core::value* row, const std::vector<int>& cols) noexcept;

/// The key group of a key hash (`state::key_group_of`).
std::uint32_t key_group_of(std::uint64_t hash, std::uint32_t max_parallelism) noexcept;

/// True when the key fields `cols` of `row` equal `key`.
bool key_equals(const core::value* row, const std::vector<int>& cols,
                const std::vector<core::value>& key) noexcept;

/// Per-key state: a hash table from the values of the key fields to `S`. Lookups by row do
/// not allocate (the hash is computed from the row, collisions are compared value by value);
/// only a new key copies its values. Snapshots write each entry with its key group so that a
/// restore keeps only the groups its instance owns.
template <class S>
class key_table {
public:
  struct entry {
    std::vector<core::value> key;
    std::uint64_t hash = 0;
    S state;
  };

  /// The state of the row's key, created with `S{}` when new.
  S& get(const core::value* row, const std::vector<int>& cols) {
    auto h = key_hash(row, cols);
    auto& bucket = buckets_[h];
    for (auto& e : bucket)
      if (key_equals(row, cols, e.key)) return e.state;
    entry e;
    e.key.reserve(cols.size());
    for (int c : cols) e.key.push_back(row[c]);
    e.hash = h;
    bucket.push_back(std::move(e));
    ++size_;
    return bucket.back().state;
  }

  /// The state of the row's key, or nullptr.
  S* find(const core::value* row, const std::vector<int>& cols) {
    auto it = buckets_.find(key_hash(row, cols));
    if (it == buckets_.end()) return nullptr;
    for (auto& e : it->second)
      if (key_equals(row, cols, e.key)) return &e.state;
    return nullptr;
  }

  /// Calls `f(entry&)` for every key; entries for which it returns true are erased.
  template <class F>
  void erase_if(F&& f) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      auto& v = it->second;
      auto before = v.size();
      v.erase(std::remove_if(v.begin(), v.end(), [&](entry& e) { return f(e); }), v.end());
      size_ -= before - v.size();
      it = v.empty() ? buckets_.erase(it) : std::next(it);
    }
  }

  /// Calls `f(entry&)` for every key.
  template <class F>
  void for_each(F&& f) {
    for (auto& [h, v] : buckets_)
      for (auto& e : v) f(e);
  }

  std::size_t size() const noexcept { return size_; }
  void clear() {
    buckets_.clear();
    size_ = 0;
  }

  /// Writes every entry as (key group, key values, state via `save(w, state)`).
  template <class Save>
  void snapshot(core::state_writer& w, std::uint32_t max_parallelism, Save&& save) const {
    w.put<std::uint64_t>(size_);
    for (const auto& [h, v] : buckets_)
      for (const auto& e : v) {
        w.put<std::uint32_t>(key_group_of(e.hash, max_parallelism));
        w.put<std::uint32_t>(static_cast<std::uint32_t>(e.key.size()));
        for (const auto& k : e.key) w.put_value(k);
        save(w, e.state);
      }
  }

  /// Reads what `snapshot` wrote and keeps the entries whose key group is in
  /// [`ctx.key_group_begin`, `ctx.key_group_end`). Adds to what is already there, so the
  /// snapshots of several former instances can be restored one after the other.
  template <class Load>
  void restore(core::state_reader& r, const core::operator_context& ctx, Load&& load) {
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto group = r.get<std::uint32_t>();
      entry e;
      auto width = r.get<std::uint32_t>();
      for (std::uint32_t c = 0; c < width; ++c) e.key.push_back(r.get_value());
      load(r, e.state);
      if (group < ctx.key_group_begin || group >= ctx.key_group_end) continue;
      cols_.resize(e.key.size());
      for (std::size_t c = 0; c < cols_.size(); ++c) cols_[c] = static_cast<int>(c);
      auto h = key_hash(e.key.data(), cols_);
      e.hash = h;
      buckets_[h].push_back(std::move(e));
      ++size_;
    }
  }

private:
  std::unordered_map<std::uint64_t, std::vector<entry>> buckets_;
  std::size_t size_ = 0;
  std::vector<int> cols_;  // 0..n-1, for hashing restored keys
};

// ---------------------------------------------------------------------------------------
// Rows kept in state

/// Writes `n` values of `row`.
void save_row(core::state_writer& w, const core::value* row, std::size_t n);
/// Appends `n` values read from `r` to `out`.
void load_row(core::state_reader& r, std::vector<core::value>& out, std::size_t n);

/// Rows with their event times, stored flat (row-major); erasing from the front is amortised.
class row_store {
public:
  explicit row_store(std::uint32_t width = 0) : width_(width) {}
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
  void save(core::state_writer& w) const;
  /// `keep(row)` decides whether a restored row belongs to this instance.
  void load(core::state_reader& r, const std::function<bool(const core::value*)>& keep);

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
/// first value seen (a shift) to limit cancellation.
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
  double sum(std::size_t j) const { return sum_[j] + shift_[j] * static_cast<double>(n_[j]); }
  double mean(std::size_t j) const;
  /// Sample variance (n - 1); NaN below two values.
  double variance(std::size_t j) const;
  double min(std::size_t j) const;
  double max(std::size_t j) const;
  double first(std::size_t j) const { return vals_.empty() ? std::nan("") : vals_[j]; }
  double last(std::size_t j) const { return vals_.empty() ? std::nan("") : vals_[vals_.size() - m_ + j]; }
  std::int64_t oldest_time() const { return times_.front(); }
  std::int64_t newest_time() const { return times_.back(); }
  void clear();
  void save(core::state_writer& w) const;
  void load(core::state_reader& r);

private:
  void pop();
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
/// order), keyed by `key_`. Subclasses implement `handle` and keep their per-key state in
/// `key_table`s; the base owns the reorder buffer, the watermark and the snapshot of pending
/// records.
class per_record_operator : public core::operator_base {
public:
  std::vector<int> key_columns(int) const override { return key_; }
  core::schema_ptr output_schema() const override { return out_; }
  void open(const core::operator_context& ctx) override { ctx_ = ctx; }
  void process(core::batch& in, int input, core::outputs& out) override;
  void on_watermark(core::event_time wm, core::outputs& out) override;
  void finish(core::outputs& out) override;
  void snapshot(core::state_writer& w) override;
  void restore(core::state_reader& r) override;

protected:
  /// Sets up the reorder buffer for the input schema.
  void init_base(const core::schema_ptr& in, bool ordered);
  /// One record, in order. May move values out of `row`.
  virtual void handle(core::value* row, std::int64_t t, core::outputs& out) = 0;
  /// The watermark advanced to `wm` after the records before it were handled.
  virtual void expire(std::int64_t wm, core::outputs& out) {
    (void)wm;
    (void)out;
  }
  virtual void save_state(core::state_writer& w) const { (void)w; }
  virtual void load_state(core::state_reader& r) { (void)r; }
  /// True when the key group of `row`'s key is owned by this instance.
  bool owns(const core::value* row) const;

  std::vector<int> key_;
  core::schema_ptr in_;
  core::schema_ptr out_;
  core::operator_context ctx_;
  reorder_buffer buffer_;
};

// ---------------------------------------------------------------------------------------
// Params and schemas

/// The `order` param shared by the per-record operators.
spec::param order_param();
/// Reads `order` (event → true).
bool event_order(const spec::config& cfg);

/// Parses a signed duration such as `-5s`, `0s`, `250ms`; fails located at `cfg[key]`.
std::int64_t signed_duration(const spec::config& cfg, std::string_view key);

/// A schema made of `in`'s fields followed by `extra` names (fails when a name collides).
core::schema_ptr extend_schema(const spec::config& cfg, std::string_view key, const core::schema& in,
                               const std::vector<std::string>& extra);

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

  /// Reads the keys from `cfg` and builds the output schema.
  void init(const spec::config& cfg, const core::schema& l, const core::schema& r);
  /// Writes the joined row (`right` may be null: nulls).
  void emit(core::batch& out, const core::value* left_row, const core::value* right_row,
            std::int64_t t) const;
};

/// The key params of the joins.
std::vector<spec::param> join_params();

} // namespace pel::operators
