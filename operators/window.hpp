#pragma once
/// \file
/// The `window` operator: keyed event-time windows (tumbling, sliding, session) with
/// aggregates. See `register_windows.cpp` for its YAML schema and reference text.

#include "pel/core/operator.hpp"
#include "pel/operators/aggregates.hpp"
#include "pel/state/keyed_map.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <vector>

namespace pel::operators {

/// The three window shapes.
enum class window_kind { tumbling, sliding, session };

/// Two-phase aggregation (see `window_operator::split`): never; automatic, where the local
/// half pre-aggregates only while that reduces the shuffle enough and otherwise passes records
/// through; or always.
enum class pre_aggregation { never, automatic, always };

/// What the window operator needs, already validated.
struct window_options {
  std::string name = "window";       ///< operator name (dead letters)
  std::vector<std::string> key;      ///< key fields; empty: one global window (parallelism 1)
  window_kind kind = window_kind::tumbling;
  std::int64_t size_ns = 0;          ///< tumbling, sliding
  std::int64_t slide_ns = 0;         ///< sliding (tumbling: = size)
  std::int64_t gap_ns = 0;           ///< session
  std::int64_t allowed_lateness_ns = 0;
  bool route_late = false;           ///< late records to the `late` port (else counted, dropped)
  std::int64_t emit_every_ns = 0;    ///< early firing period in processing time, 0: none
  pre_aggregation pre_aggregate = pre_aggregation::automatic;  ///< two-phase (see `split`)
};

/// Approximate count of distinct 64-bit hashes (HyperLogLog, 256 registers: ~6.5 % error),
/// enough to judge how much pre-aggregation would reduce a stream.
class distinct_counter {
public:
  void add(std::uint64_t h) noexcept {
    h *= 0x9E3779B97F4A7C15ULL;  // spread: key hashes may vary little in some bits
    const std::uint32_t r = static_cast<std::uint32_t>(h >> 56);
    const std::uint8_t rank =
        static_cast<std::uint8_t>(__builtin_clzll((h << 8) | (std::uint64_t{1} << 7)) + 1);
    if (rank > reg_[r]) reg_[r] = rank;
  }
  double estimate() const noexcept;
  void clear() noexcept { std::memset(reg_, 0, sizeof reg_); }

private:
  std::uint8_t reg_[256] = {};
};

/// Keyed event-time windows.
///
/// - Windows are assigned by event time; tumbling and sliding windows are aligned to the
///   epoch (a window starts at a multiple of `slide`). Sliding windows keep one accumulator
///   per pane of gcd(size, slide) and merge panes when a window fires, so a record is added
///   once whatever size/slide is. Session windows merge when their gaps overlap or touch.
/// - A window [start, end) fires when the watermark reaches `end` (wm >= end). Its state is
///   kept until wm >= end + allowed_lateness; a record for a fired window still within the
///   lateness updates it and the window is emitted again (after the batch). A record all of
///   whose windows are past the lateness is late: routed to `late` or dropped and counted.
/// - Output: key fields, `window_start`, `window_end` (epoch ms, ints), the aggregates, and,
///   only when `emit_every` is set, `final` (false for early results). The event time of an
///   output row is window_end - 1 ns, inside the window.
/// - End of stream (`finish`) is the watermark +infinity: every open window fires.
/// - Firing is O(fired): each key has one timer, at the next instant it needs attention (its
///   earliest unfired window end or state expiry), in a bucket per instant (sessions: in a
///   min-heap). A key whose last
///   window fired keeps its entry for one more pane, so keys that trade every window are not
///   erased and re-inserted each time.
/// - Two-phase aggregation (`split`), for keyed tumbling and sliding windows without
///   `emit_every` and with `late: drop`. The halves exchange the input's rows with two more
///   fields, `pane_start` (ns) and `partial`. Pre-aggregating, the local half keeps per key
///   one accumulator per pane of its own upstream instance's rows and, when its watermark
///   passes a pane's end, emits the pane as a partial (key fields, `pane_start`, `partial`:
///   the accumulator in its snapshot form; other fields null) and forgets it; a row for a
///   pane already past the local watermark is sent on at the end of its batch. Passing
///   through, it sends each record on with `partial` null. `pre_aggregate: auto` starts
///   passing through and pre-aggregates while its input is backlogged (mostly full batches)
///   and keys repeat at least `min_reduction` times per pane. The global half merges partials
///   and adds records by key and pane, and fires windows exactly like the single operator,
///   judging lateness by its own watermark (late drops are counted per partial for
///   pre-aggregated records). Dead letters (non-numeric arguments) carry the original record,
///   from whichever half prepared it. The local half keeps short keys with plain numeric
///   aggregates in a combiner table (see `combined_cell`), others in the keyed map.
class window_operator final : public core::operator_base {
public:
  /// Throws spec::config_error via `aggs` compilation upstream; here only std::invalid_argument
  /// for a key field missing from `input`.
  window_operator(window_options opts, aggregate_set aggs, core::schema_ptr input);
  ~window_operator() override;

  core::schema_ptr output_schema() const override { return output_; }
  std::vector<int> key_columns(int input) const override;
  void open(const core::operator_context& ctx) override;
  void process(core::batch& in, int input, core::outputs& out) override;
  void on_watermark(core::event_time wm, core::outputs& out) override;
  void on_timer(core::processing_time now, core::outputs& out) override;
  std::int64_t timer_interval_ns() const override { return opts_.emit_every_ns; }
  void finish(core::outputs& out) override;
  /// The local half sends every partial it holds: a global half going on without this
  /// (idle) instance must not close a window without them.
  void on_idle(core::outputs& out) override;
  void snapshot(core::state_writer& w) override;
  void restore(core::state_reader& r) override;
  core::operator_ptr split(core::phase p) override;
  /// The whole operator and the global half keep their state by key group; the local half
  /// holds partial aggregates of whatever keys reached its instance, so it is not.
  bool rescalable() const override;

  /// Late records dropped (with `late: drop`) and routed (with `late: route`).
  std::uint64_t late_dropped() const noexcept { return late_dropped_; }
  std::uint64_t late_routed() const noexcept { return late_routed_; }
  /// Keys with state, and open windows (tumbling/session) or panes (sliding) over all keys.
  std::size_t keys() const noexcept { return map_.size(); }
  std::size_t open_slots() const noexcept { return open_slots_; }
  /// Bytes of keyed state held (table, keys, window slots, sketches), as allocated.
  std::size_t state_bytes() const;
  /// The current watermark (ns).
  std::int64_t watermark() const noexcept { return wm_; }

private:
  enum class mode : std::uint8_t { single, local, global };

  /// A half of a two-phase aggregation over `rows` (see `split`).
  window_operator(window_options opts, aggregate_set aggs, core::schema_ptr rows, core::phase p);

  /// Per key: its window slots (each a header plus an accumulator block, `stride_` bytes,
  /// sorted by start) and the time of its armed timer.
  /// Slots that fit in `inline_bytes` live inside the entry itself (most keys hold one open
  /// window: a VWAP slot is 40 bytes), so a record touches the key's entry and nothing else.
  /// Beyond that the slots move to a heap buffer sized exactly (realloc per window, not per
  /// record). Accumulator states are moved with memcpy, as before.
  static constexpr std::size_t inline_bytes = 48;
  struct key_state {
    union {
      std::byte* heap;
      alignas(8) std::byte local[inline_bytes];
    } buf;
    std::uint32_t count = 0;
    bool on_heap = false;
    std::int64_t timer_at = none;

    key_state() noexcept { buf.heap = nullptr; }
    key_state(key_state&& o) noexcept : count(o.count), on_heap(o.on_heap), timer_at(o.timer_at) {
      std::memcpy(&buf, &o.buf, sizeof buf);
      o.count = 0;
      o.on_heap = false;
    }
    key_state& operator=(key_state&& o) noexcept {
      decltype(buf) tmp;
      std::memcpy(&tmp, &buf, sizeof buf);
      std::memcpy(&buf, &o.buf, sizeof buf);
      std::memcpy(&o.buf, &tmp, sizeof buf);
      std::swap(count, o.count);
      std::swap(on_heap, o.on_heap);
      timer_at = o.timer_at;
      return *this;
    }
    /// Frees the heap buffer only: the owner destroys the accumulators first.
    ~key_state() {
      if (on_heap) std::free(buf.heap);
    }
    std::byte* data() noexcept { return on_heap ? buf.heap : buf.local; }
    const std::byte* data() const noexcept { return on_heap ? buf.heap : buf.local; }
  };
  static constexpr std::int64_t none = INT64_MAX;
  using map_type = state::keyed_map<key_state>;

  // The local half's combiner: for one key field whose values are short (strings of at most
  // 16 bytes, integers) and plain numeric aggregates of at most 24 bytes, a (key, pane)'s
  // accumulator lives in one 64-byte cell of an open-addressing table, key inline, so adding
  // a record touches one cache line instead of the keyed map's table cell and entry. Other
  // keys go through the keyed map. Cells are sent on as partials when the watermark passes
  // their pane; a full table sends everything on early (partials are deltas: still exact).
  struct alignas(64) combined_cell {
    std::uint64_t hash;
    std::int64_t pane;
    std::uint32_t rows;
    std::uint8_t used;
    std::uint8_t key_type;  // 2: integer, 4: string (core::value_type)
    std::uint8_t key_len;
    std::uint8_t pad;
    char key[16];
    alignas(8) std::byte acc[24];
  };
  static_assert(sizeof(combined_cell) == 64, "one cache line per cell");

  struct slot_header {
    std::int64_t start;
    std::int64_t end;
    std::uint32_t flags;
    std::uint32_t reserved;
  };

  /// A key's armed timer; the instant is the bucket's.
  struct timer {
    map_type::index idx;
    std::uint32_t gen;
  };
  // --- slots
  std::size_t slot_count(const key_state& ks) const noexcept { return ks.count; }
  slot_header* slot(key_state& ks, std::size_t i) noexcept {
    return reinterpret_cast<slot_header*>(ks.data() + i * stride_);
  }
  const slot_header* slot(const key_state& ks, std::size_t i) const noexcept {
    return reinterpret_cast<const slot_header*>(ks.data() + i * stride_);
  }
  static std::byte* acc(slot_header* h) noexcept { return reinterpret_cast<std::byte*>(h + 1); }
  slot_header* insert_slot(key_state& ks, std::size_t pos, std::int64_t start, std::int64_t end);
  void erase_slot(key_state& ks, std::size_t pos);
  void clear_slots(key_state& ks);

  // --- window arithmetic
  std::int64_t last_end_of_pane(std::int64_t pane_start) const noexcept;
  std::int64_t first_end_of_pane(std::int64_t pane_start) const noexcept;
  std::int64_t slot_next_time(const slot_header* h) const noexcept;
  std::int64_t next_time(const key_state& ks) const noexcept;

  // --- per record
  /// `found`: the key's entry, or npos when it was absent before the batch.
  void add_record(const core::value* row, std::int64_t t, std::uint64_t hash,
                  map_type::index found, core::outputs& out);
  void add_session(map_type::index idx, std::int64_t t);
  /// Two-phase: a row into the local half's pane, a partial into the global half's pane.
  void add_local(const core::value* row, std::int64_t t, std::uint64_t hash,
                 map_type::index found, core::outputs& out);
  void add_partial(const core::value* row, std::int64_t t, std::uint64_t hash,
                   map_type::index found, core::outputs& out);
  /// The key's slot for the pane starting at `pane_start` (tumbling, sliding), inserted and
  /// its timer armed when absent.
  slot_header* pane_slot(map_type::index idx, std::int64_t pane_start);
  /// Start of the pane `t` falls in (tumbling, sliding), cached across calls.
  std::int64_t pane_of(std::int64_t t) noexcept;
  /// Local half: emits the key's panes that ended at or before `wm` (with `only_dirty`, only
  /// those that rows behind the watermark updated) and forgets them.
  void flush_local(map_type::index idx, std::int64_t wm, bool only_dirty, core::outputs& out);
  void emit_partial(map_type::index idx, const slot_header* h, core::outputs& out);
  /// Local half, pre-aggregating with the combiner table: the cell the row adds to (taken when
  /// new; the table must have room), `&bad_row_` when the row is a dead letter, or null when
  /// the row is not for the table (its key is not short, or its pane already ended).
  combined_cell* find_combined(const core::value* row, std::int64_t t, std::uint64_t hash);
  /// `process` for the local half with the combiner, from row `first` of `in`.
  void process_combined(core::batch& in, std::size_t first, core::outputs& out);
  /// A row `find_combined` did not give a cell: a dead letter (`bad`), or added through the
  /// keyed map. Out of line: rare.
  [[gnu::noinline, gnu::cold]] void not_combined(const core::value* row, std::int64_t t,
                                                 std::uint64_t hash, bool bad, core::outputs& out);
  /// Emits the combiner's panes that ended at or before `wm` (all with INT64_MAX) as partials.
  void flush_combined(std::int64_t wm, core::outputs& out);
  std::size_t cell_home(std::uint64_t hash) const noexcept;
  /// The cell of (key, pane), taken when absent (the table must have room).
  combined_cell* find_cell(std::uint64_t hash, std::int64_t pane, std::uint8_t type,
                           const char* key, std::uint8_t len);
  /// Puts a cell taken out of the table back (rehash, flush).
  void reinsert_cell(const combined_cell& c);
  /// The key a cell holds, as a value.
  static core::value cell_key(const combined_cell& c);
  /// Doubles the table, or sends everything on when it is at its largest.
  void grow_cells(core::outputs& out);
  /// Moves the combiner's cells into the keyed map (before a snapshot).
  void spill_combined();
  /// Local half, `auto`: given `rows` records of a pane that made (or would make) `groups`
  /// partials, pre-aggregate or pass through from now on.
  void judge(double rows, double groups);
  /// Local half, `auto`, passing through: judges the pane so far (`elapsed` ns of event time
  /// into it) once its keys repeat enough, or once they stop growing and the records
  /// projected to the whole pane would repeat enough.
  void judge_early(std::int64_t elapsed);
  /// A key without windows left: erased now, or kept for one more pane when `just_emptied`.
  void retire(map_type::index idx, bool just_emptied, std::int64_t wm);
  void mark_dirty(map_type::index idx, slot_header* h);
  void arm(map_type::index idx, std::int64_t at);

  // --- firing
  void process_key(map_type::index idx, std::int64_t from, std::int64_t wm, core::outputs& out);
  void emit_range(map_type::index idx, std::int64_t lo, std::int64_t hi, bool final,
                  core::outputs& out);
  void emit_sliding(map_type::index idx, std::int64_t end, bool final, core::outputs& out);
  void emit_row(map_type::index idx, std::int64_t start, std::int64_t end, const std::byte* acc,
                bool final, core::outputs& out);
  void flush_dirty(core::outputs& out);
  void advance(std::int64_t wm, core::outputs& out);

  window_options opts_;
  mode mode_ = mode::single;
  aggregate_set aggs_;
  core::schema_ptr input_;
  core::schema_ptr output_;
  std::vector<int> key_cols_;
  std::int64_t pane_ns_ = 0;   // tumbling: size; sliding: gcd(size, slide)
  std::int64_t last_pane_ = 0;  // start of the pane of the last record (cache)
  bool have_last_pane_ = false;
  std::size_t stride_ = 0;     // bytes per slot
  std::uint32_t width_out_ = 0;

  map_type map_;
  state::key_group_range range_{0, 128};
  // Timers of tumbling and sliding windows, bucketed by instant: the windows of many keys end
  // at the same instants, so arming is an append to the bucket and firing walks it in order,
  // prefetching the entries ahead. Sessions end at instants of their own: a min-heap.
  std::map<std::int64_t, std::vector<timer>> timers_;
  struct session_timer {
    std::int64_t at;
    timer t;
    bool operator>(const session_timer& o) const noexcept { return at > o.at; }
  };
  std::priority_queue<session_timer, std::vector<session_timer>, std::greater<session_timer>>
      session_timers_;
  std::int64_t last_bucket_at_ = none;          // the bucket armed last (most arms repeat it)
  std::vector<timer>* last_bucket_ = nullptr;
  std::vector<std::pair<map_type::index, std::uint32_t>> dirty_;
  std::vector<std::uint64_t> hashes_;     // per row of the batch in `process`
  std::vector<map_type::index> found_;    // per row: its key's entry before the batch, or npos
  std::vector<const core::value*> block_rows_;  // the combiner's block: rows taken,
  std::vector<std::byte*> block_states_;        // their cells' accumulators,
  std::vector<std::int64_t> block_times_;       // their event times
  combined_cell bad_row_{};                     // `find_combined`'s answer for a dead letter
  std::int64_t wm_ = INT64_MIN;
  bool restored_ = false;
  std::int64_t last_early_ = 0;
  std::uint64_t late_dropped_ = 0;
  std::uint64_t late_routed_ = 0;
  std::size_t open_slots_ = 0;
  std::string error_;
  accumulator scratch_;  // merge target for sliding windows
  accumulator incoming_; // global half: the partial being merged

  // Two-phase.
  core::schema_ptr rows_;          // the input rows' schema (also after the halves split)
  std::uint32_t row_width_ = 0;    // its width: `pane_start` and `partial` follow
  /// Below this many records per partial emitted at the watermark (not counting those for
  /// records behind it, sent at the end of their batch), the local half passes records
  /// through: a partial
  /// costs far more than a record at the window's end (it is emitted, shuffled and merged
  /// then, all at once), so aggregating must save many records to pay.
  static constexpr double min_reduction = 32;
  bool passthrough_ = false;
  bool skip_judgement_ = false;
  std::uint32_t batch_size_ = 1024;     // a full input batch (operator_context::batch_size)
  std::uint64_t seen_rows_ = 0;         // rows since the last judgement,
  std::uint64_t backlog_rows_ = 0;      // and those in full batches
  std::uint64_t rows_flushed_ = 0;      // aggregating: records in the panes flushed ...
  std::uint64_t partials_flushed_ = 0;  // ... by the watermark, and the partials they made
  std::int64_t track_pane_ = INT64_MIN; // passing through: the latest pane of event time,
  std::uint64_t track_rows_ = 0;        // its records
  distinct_counter distinct_;           // and its keys;
  double track_keys_ = 0;               // the keys when its records were half as many

  bool combine_ = false;                 // the combiner applies (decided at construction)
  std::vector<combined_cell> cells_;     // power-of-two size, at most a quarter full
  std::vector<std::uint32_t> cell_list_;     // the cells in use, in the order taken
  std::vector<std::uint32_t> cell_scratch_;  // flush and growth: the list being emptied
  std::int64_t cells_min_end_ = INT64_MAX;
};

} // namespace pel::operators
