#include "window.hpp"
#include "field_names.hpp"

#include "pel/state/key.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <stdexcept>

namespace pel::operators {

namespace {

constexpr std::uint32_t dirty_flag = 1;
constexpr std::uint32_t snapshot_version = 1;

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

} // namespace

double distinct_counter::estimate() const noexcept {
  constexpr double m = 256;
  double sum = 0;
  int zeros = 0;
  for (std::uint8_t r : reg_) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double raw = 0.7182725932495458 * m * m / sum;  // alpha_256 = 0.7213 / (1 + 1.079 / m)
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / zeros);  // linear counting
  return raw;
}

// ------------------------------------------------------------------ construction

window_operator::window_operator(window_options opts, aggregate_set aggs, core::schema_ptr input)
  : opts_(std::move(opts)), aggs_(std::move(aggs)), input_(std::move(input)) {
  auto out = std::make_shared<core::schema>();
  for (const auto& k : opts_.key) {
    int i = input_->index_of(k);
    if (i < 0) {
      std::vector<std::string> names;
      for (const auto& f : input_->fields()) names.push_back(f.name);
      throw std::invalid_argument(unknown_field_message(k, names));
    }
    key_cols_.push_back(i);
    out->add(k, (*input_)[i].type);
  }
  out->set_time_unit(static_cast<std::size_t>(out->add("window_start", core::value_type::integer)), 1'000'000);
  out->set_time_unit(static_cast<std::size_t>(out->add("window_end", core::value_type::integer)), 1'000'000);
  for (const auto& f : aggs_.outputs()) {
    if (out->index_of(f.name) >= 0)
      throw std::invalid_argument("output field '" + f.name +
                                  "' is written twice; rename the aggregate");
    out->add(f.name, f.type);
  }
  if (opts_.emit_every_ns > 0) {
    if (out->index_of("final") >= 0)
      throw std::invalid_argument("an aggregate called 'final' clashes with the `final` field "
                                  "that emit_every adds; rename it");
    out->add("final", core::value_type::boolean);
  }
  output_ = out;
  width_out_ = static_cast<std::uint32_t>(output_->size());
  rows_ = input_;
  row_width_ = static_cast<std::uint32_t>(input_->size());

  switch (opts_.kind) {
    case window_kind::tumbling: opts_.slide_ns = opts_.size_ns; pane_ns_ = opts_.size_ns; break;
    case window_kind::sliding: pane_ns_ = std::gcd(opts_.size_ns, opts_.slide_ns); break;
    case window_kind::session: pane_ns_ = 0; break;
  }
  stride_ = sizeof(slot_header) + ((aggs_.state_size() + 7) & ~std::size_t(7));
  scratch_ = accumulator(aggs_);
}

window_operator::window_operator(window_options opts, aggregate_set aggs, core::schema_ptr rows,
                                 core::phase p)
  : window_operator(std::move(opts), std::move(aggs), std::move(rows)) {
  // Between the halves travel the input's rows with two more fields: `pane_start` and
  // `partial`. A partial has the key fields, the pane and the accumulator (other fields
  // null); a record passed through has `partial` null. Both keep the key fields where the
  // input has them, so the shuffle hashes the same columns either way.
  auto between = std::make_shared<core::schema>();
  for (const auto& f : rows_->fields()) between->add(f.name, f.type);
  auto fresh = [&](std::string name) {
    while (between->index_of(name) >= 0) name = "_" + name;
    return name;
  };
  between->add(fresh("pane_start"), core::value_type::integer);
  between->add(fresh("partial"), core::value_type::string);
  if (p == core::phase::local) {
    mode_ = mode::local;
    // `auto` starts by passing records through, until a pane shows that keys repeat enough.
    passthrough_ = opts_.pre_aggregate == pre_aggregation::automatic;
    const auto key_type = key_cols_.size() == 1 ? (*rows_)[key_cols_[0]].type : core::value_type::null;
    combine_ = pane_ns_ > 0 && aggs_.plain_states() && aggs_.state_size() <= sizeof(combined_cell::acc) &&
               (key_type == core::value_type::string || key_type == core::value_type::integer);
    output_ = between;
    width_out_ = static_cast<std::uint32_t>(output_->size());
  } else {
    mode_ = mode::global;
    input_ = between;
    incoming_ = accumulator(aggs_);
  }
}

bool window_operator::rescalable() const { return mode_ != mode::local && !key_cols_.empty(); }

core::operator_ptr window_operator::split(core::phase p) {
  if (mode_ != mode::single || opts_.pre_aggregate == pre_aggregation::never || key_cols_.empty() ||
      opts_.kind == window_kind::session || opts_.emit_every_ns > 0 || opts_.route_late)
    return nullptr;
  return core::operator_ptr(new window_operator(std::move(opts_), std::move(aggs_), std::move(input_), p));
}

window_operator::~window_operator() {
  map_.for_each([&](auto, const state::key&, key_state& ks) { clear_slots(ks); });
}

std::vector<int> window_operator::key_columns(int input) const {
  (void)input;
  // The local half takes any keys: its input is not partitioned.
  return mode_ == mode::local ? std::vector<int>{} : key_cols_;
}

void window_operator::open(const core::operator_context& ctx) {
  if (map_.empty()) map_.set_max_parallelism(ctx.max_parallelism);
  batch_size_ = std::max<std::uint32_t>(1, ctx.batch_size);
  range_ = {ctx.key_group_begin, ctx.key_group_end};
  if (mode_ == mode::local) range_ = {0, ctx.max_parallelism};
  if (!ctx.name.empty()) opts_.name = ctx.name;
  // The planner names the local half `<name>/local`; dead letters name the operator.
  const std::string suffix = "/local";
  if (mode_ == mode::local && opts_.name.size() > suffix.size() &&
      opts_.name.compare(opts_.name.size() - suffix.size(), suffix.size(), suffix) == 0)
    opts_.name.resize(opts_.name.size() - suffix.size());
}

// ------------------------------------------------------------------ slots

window_operator::slot_header* window_operator::insert_slot(key_state& ks, std::size_t pos,
                                                           std::int64_t start,
                                                           std::int64_t end) {
  const std::size_t bytes = ks.count * stride_;
  const std::size_t grown_bytes = bytes + stride_;
  if (ks.on_heap) {
    auto* grown = static_cast<std::byte*>(std::realloc(ks.buf.heap, grown_bytes));
    if (!grown) throw std::bad_alloc();
    ks.buf.heap = grown;
  } else if (grown_bytes > inline_bytes) {
    auto* moved = static_cast<std::byte*>(std::malloc(grown_bytes));
    if (!moved) throw std::bad_alloc();
    std::memcpy(moved, ks.buf.local, bytes);
    ks.buf.heap = moved;
    ks.on_heap = true;
  }
  std::byte* d = ks.data();
  std::memmove(d + (pos + 1) * stride_, d + pos * stride_, (ks.count - pos) * stride_);
  ++ks.count;
  slot_header* h = slot(ks, pos);
  h->start = start;
  h->end = end;
  h->flags = 0;
  h->reserved = 0;
  aggs_.init(acc(h));
  ++open_slots_;
  return h;
}

void window_operator::erase_slot(key_state& ks, std::size_t pos) {
  aggs_.destroy(acc(slot(ks, pos)));
  std::byte* d = ks.data();
  std::memmove(d + pos * stride_, d + (pos + 1) * stride_, (ks.count - pos - 1) * stride_);
  --ks.count;
  --open_slots_;
  if (!ks.on_heap) return;
  const std::size_t bytes = ks.count * stride_;
  if (bytes <= inline_bytes) {
    std::byte* old = ks.buf.heap;  // shares storage with `local`: read it first
    std::memcpy(ks.buf.local, old, bytes);
    std::free(old);
    ks.on_heap = false;
  } else if (auto* shrunk = static_cast<std::byte*>(std::realloc(ks.buf.heap, bytes))) {
    ks.buf.heap = shrunk;
  }
}

void window_operator::clear_slots(key_state& ks) {
  for (std::size_t i = 0; i < ks.count; ++i) aggs_.destroy(acc(slot(ks, i)));
  open_slots_ -= ks.count;
  if (ks.on_heap) std::free(ks.buf.heap);
  ks.buf.heap = nullptr;
  ks.on_heap = false;
  ks.count = 0;
}

// ------------------------------------------------------------------ window arithmetic

std::int64_t window_operator::first_end_of_pane(std::int64_t ps) const noexcept {
  // The earliest window [k*slide, k*slide + size) that contains ps.
  return floor_div(ps - opts_.size_ns, opts_.slide_ns) * opts_.slide_ns + opts_.slide_ns +
         opts_.size_ns;
}

std::int64_t window_operator::last_end_of_pane(std::int64_t ps) const noexcept {
  return floor_div(ps, opts_.slide_ns) * opts_.slide_ns + opts_.size_ns;
}

std::int64_t window_operator::slot_next_time(const slot_header* h) const noexcept {
  if (opts_.kind != window_kind::sliding)
    return h->end > wm_ ? h->end : sat_add(h->end, opts_.allowed_lateness_ns);
  std::int64_t last = last_end_of_pane(h->start);
  if (last <= wm_) return sat_add(last, opts_.allowed_lateness_ns);
  std::int64_t first = first_end_of_pane(h->start);
  if (first > wm_) return first;
  return first + (floor_div(wm_ - first, opts_.slide_ns) + 1) * opts_.slide_ns;
}

std::int64_t window_operator::next_time(const key_state& ks) const noexcept {
  std::int64_t t = none;
  for (std::size_t i = 0; i < ks.count; ++i) t = std::min(t, slot_next_time(slot(ks, i)));
  return t;
}

void window_operator::arm(map_type::index idx, std::int64_t at) {
  key_state& ks = map_.at(idx);
  if (at >= ks.timer_at || at == none) return;
  ks.timer_at = at;
  if (opts_.kind == window_kind::session) {
    session_timers_.push(session_timer{at, timer{idx, map_.generation(idx)}});
    return;
  }
  if (at != last_bucket_at_ || last_bucket_ == nullptr) {
    last_bucket_ = &timers_[at];
    last_bucket_at_ = at;
  }
  last_bucket_->push_back(timer{idx, map_.generation(idx)});
}

void window_operator::mark_dirty(map_type::index idx, slot_header* h) {
  if (h->flags & dirty_flag) return;
  h->flags |= dirty_flag;
  dirty_.emplace_back(idx, map_.generation(idx));
}

// ------------------------------------------------------------------ records

void window_operator::process(core::batch& in, int input, core::outputs& out) {
  (void)input;
  if (out.main.width == 0) out.main.width = width_out_;
  const std::size_t n = in.size();
  const std::size_t nk = key_cols_.size();
  std::size_t first = 0;  // rows before it were passed through
  if (mode_ == mode::local) {
    seen_rows_ += n;
    if (n >= batch_size_) backlog_rows_ += n;
  }
  if (mode_ == mode::local && passthrough_) {
    // Records go on as they are; only their keys are counted, to tell when aggregating here
    // would pay. Once it would, the rest of the batch is aggregated.
    out.main.reserve(out.main.size() + n);
    for (; first < n && passthrough_; ++first) {
      const std::size_t i = first;
      core::value* src = in.row(i);
      // Keys per pane of event time, judged when the records move on to a later pane.
      const std::int64_t pane = pane_of(in.times[i]);
      if (pane != track_pane_) {
        if (pane > track_pane_) {
          if (track_rows_ > 0) judge(double(track_rows_), distinct_.estimate());
          track_pane_ = pane;
          track_rows_ = 0;
          track_keys_ = 0;
          distinct_.clear();
        }
      }
      if (pane == track_pane_) {
        ++track_rows_;
        distinct_.add(state::hash_key(src, key_cols_.data(), nk));
        // Keys repeating enough already within part of a pane, or bound to by its end:
        // aggregate from here on. Checked at 4,096 records and each doubling.
        if (track_rows_ >= 4096 && (track_rows_ & (track_rows_ - 1)) == 0)
          judge_early(std::max(in.times[i] - track_pane_, std::int64_t{0}));
      }
      if (!passthrough_) break;  // this row starts the aggregation
      core::value* dst = out.main.append(in.times[i]);
      for (std::uint32_t c = 0; c < row_width_; ++c) dst[c] = std::move(src[c]);
    }
    if (first == n) return;
  }
  if (mode_ == mode::local && combine_) {
    process_combined(in, first, out);
    return;
  }
  // Keyed state is far larger than the cache and each record touches a random key. Three
  // passes so that the misses overlap instead of queueing one per record:
  // hash every row (prefetching the rows and the table cells), look every key up (prefetching
  // the entries a few rows ahead; lookups do not depend on each other), then add. Entries are
  // never erased while a batch is processed, so the indices found stay valid; a key first seen
  // in this batch is inserted by its first record and found again by the later ones.
  hashes_.resize(n);
  found_.resize(n);
  const std::size_t row_bytes = in.width * sizeof(core::value);
  constexpr std::size_t row_ahead = 16;  // rows arrive from memory: far enough to hide it
  for (std::size_t i = first; i < n; ++i) {
    if (i + row_ahead < n) {
      const char* next = reinterpret_cast<const char*>(in.row(i + row_ahead));
      for (std::size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
    }
    hashes_[i] = state::hash_key(in.row(i), key_cols_.data(), nk);
    map_.prefetch(hashes_[i]);
  }
  // Lookup and add go by blocks small enough that the entries found are still in L1 when
  // their records are added.
  constexpr std::size_t ahead = 12, block = 64;
  for (std::size_t b = first; b < n; b += block) {
    const std::size_t e = std::min(n, b + block);
    for (std::size_t i = b; i < e; ++i) {
      if (i + ahead < n) map_.peek(hashes_[i + ahead]);
      found_[i] = map_.find(in.row(i), key_cols_.data(), nk, hashes_[i]);
    }
    switch (mode_) {
      case mode::single:
        for (std::size_t i = b; i < e; ++i)
          add_record(in.row(i), in.times[i], hashes_[i], found_[i], out);
        break;
      case mode::local:
        for (std::size_t i = b; i < e; ++i)
          add_local(in.row(i), in.times[i], hashes_[i], found_[i], out);
        break;
      case mode::global:
        for (std::size_t i = b; i < e; ++i) {
          if (core::is_null(in.row(i)[row_width_ + 1]))
            add_record(in.row(i), in.times[i], hashes_[i], found_[i], out);  // passed through
          else
            add_partial(in.row(i), in.times[i], hashes_[i], found_[i], out);
        }
        break;
    }
  }
  if (!dirty_.empty()) flush_dirty(out);
}

void window_operator::process_combined(core::batch& in, std::size_t first, core::outputs& out) {
  const std::size_t n = in.size();
  const int key = key_cols_[0];  // the combiner's one key field
  // One pass: row i + `ahead` is hashed and its cell prefetched while row i's cell is found,
  // so a row is read from memory once and its cell is in cache when its turn comes. Rows the
  // combiner does not take go through the keyed map.
  hashes_.resize(n);
  if (cells_.empty()) cells_.resize(4096);
  const std::size_t row_bytes = in.width * sizeof(core::value);
  constexpr std::size_t ahead = 8, row_ahead = 16;
  auto look_ahead = [&](std::size_t j) {
    if (j + row_ahead < n) {
      const char* next = reinterpret_cast<const char*>(in.row(j + row_ahead));
      for (std::size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(next + off);
    }
    hashes_[j] = core::stable_hash(in.row(j)[key]);  // = state::hash_key for one field
    __builtin_prefetch(&cells_[cell_home(hashes_[j])], 1);
  };
  for (std::size_t j = first; j < std::min(n, first + ahead); ++j) look_ahead(j);
  // By blocks: each row's cell is found (a row the combiner does not take goes through the
  // keyed map at once), then the block's rows are added to their cells in one
  // `add_plain` call. The table has room for a whole block first, so cells found stay put.
  constexpr std::size_t block = 64;
  block_rows_.resize(block);
  block_states_.resize(block);
  block_times_.resize(block);
  for (std::size_t b = first; b < n; b += block) {
    const std::size_t e = std::min(n, b + block);
    // At most a quarter full: a record's home cell (the one prefetched) is then its cell
    // far more often than at half full, and a second probe is a miss.
    if ((cell_list_.size() + (e - b)) * 4 > cells_.size()) grow_cells(out);
    std::size_t m = 0;
    for (std::size_t i = b; i < e; ++i) {
      if (i + ahead < n) look_ahead(i + ahead);
      combined_cell* c = find_combined(in.row(i), in.times[i], hashes_[i]);
      if (c == nullptr || c == &bad_row_) {
        not_combined(in.row(i), in.times[i], hashes_[i], c == &bad_row_, out);
      } else {
        ++c->rows;
        block_rows_[m] = in.row(i);
        block_states_[m] = c->acc;
        block_times_[m] = in.times[i];
        ++m;
      }
    }
    aggs_.add_plain(block_rows_.data(), block_states_.data(), block_times_.data(), m);
  }
  if (!dirty_.empty()) flush_dirty(out);
}

void window_operator::not_combined(const core::value* row, std::int64_t t, std::uint64_t hash,
                                   bool bad, core::outputs& out) {
  const std::size_t nk = key_cols_.size();
  if (bad && !aggs_.prepare(row, t, error_)) {
    out.dead(opts_.name, error_, row, *rows_, t);
    return;
  }
  // Not for the table (or, not expected, a row `plain_row` and `prepare` disagree on).
  add_local(row, t, hash, map_.find(row, key_cols_.data(), nk, hash), out);
}

void window_operator::add_record(const core::value* row, std::int64_t t, std::uint64_t hash,
                                 map_type::index found, core::outputs& out) {
  const std::size_t nk = key_cols_.size();
  const std::int64_t lateness = opts_.allowed_lateness_ns;
  std::int64_t pane_start = 0, last_end;
  if (opts_.kind == window_kind::session) {
    last_end = sat_add(t, opts_.gap_ns);
  } else {
    pane_start = pane_of(t);
    last_end = opts_.kind == window_kind::tumbling ? pane_start + pane_ns_
                                                    : last_end_of_pane(pane_start);
  }

  if (sat_add(last_end, lateness) <= wm_) {
    bool joins = false;
    if (opts_.kind == window_kind::session) {
      // A late record may still join a session that is kept for its lateness.
      auto idx = found != map_type::npos ? found : map_.find(row, key_cols_.data(), nk, hash);
      if (idx != map_type::npos) {
        const key_state& ks = map_.at(idx);
        for (std::size_t s = 0; s < ks.count && !joins; ++s) {
          const slot_header* h = slot(ks, s);
          joins = h->start < last_end && h->end > t;
        }
      }
    }
    if (!joins) {
      if (opts_.route_late) {
        if (out.late.width == 0) out.late.width = static_cast<std::uint32_t>(input_->size());
        out.late.append_copy(row, t);
        ++late_routed_;
      } else {
        ++late_dropped_;
        ++out.late_dropped;
      }
      return;
    }
  }

  if (!aggs_.prepare(row, t, error_)) {
    out.dead(opts_.name, error_, row, *rows_, t);
    return;
  }

  auto idx = found;
  if (idx == map_type::npos) {
    bool inserted = false;
    idx = map_.find_or_insert(row, key_cols_.data(), nk, hash, inserted);
  }
  if (opts_.kind == window_kind::session) {
    add_session(idx, t);
    return;
  }
  slot_header* h = pane_slot(idx, pane_start);
  aggs_.add(acc(h), t);
  std::int64_t first_end = opts_.kind == window_kind::tumbling ? h->end : first_end_of_pane(pane_start);
  if (first_end <= wm_) mark_dirty(idx, h);
}

window_operator::slot_header* window_operator::pane_slot(map_type::index idx,
                                                          std::int64_t pane_start) {
  key_state& ks = map_.at(idx);
  // Slots are sorted by start and records mostly hit the newest: search from the back.
  std::size_t pos = ks.count;
  while (pos > 0 && slot(ks, pos - 1)->start > pane_start) --pos;
  if (pos > 0 && slot(ks, pos - 1)->start == pane_start) return slot(ks, pos - 1);
  slot_header* h = insert_slot(ks, pos, pane_start, pane_start + pane_ns_);
  // The local half sends a pane on at its end; the others wait for the windows over it.
  arm(idx, mode_ == mode::local ? h->end : slot_next_time(h));
  return h;
}

std::int64_t window_operator::pane_of(std::int64_t t) noexcept {
  // Records of a batch mostly fall in the pane of the previous one: skip the division.
  if (have_last_pane_ && t >= last_pane_ &&
      static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(last_pane_) <
          static_cast<std::uint64_t>(pane_ns_))
    return last_pane_;
  last_pane_ = floor_div(t, pane_ns_) * pane_ns_;
  have_last_pane_ = true;
  return last_pane_;
}

void window_operator::add_local(const core::value* row, std::int64_t t, std::uint64_t hash,
                                map_type::index found, core::outputs& out) {
  // No lateness here: the global half judges it by the watermark over all inputs.
  if (!aggs_.prepare(row, t, error_)) {
    out.dead(opts_.name, error_, row, *rows_, t);
    return;
  }
  const std::int64_t pane_start = pane_of(t);
  auto idx = found;
  if (idx == map_type::npos) {
    bool inserted = false;
    idx = map_.find_or_insert(row, key_cols_.data(), key_cols_.size(), hash, inserted);
  }
  slot_header* h = pane_slot(idx, pane_start);
  aggs_.add(acc(h), t);
  ++h->reserved;  // records in the pane (the local half's use of the spare field)
  if (h->end <= wm_) mark_dirty(idx, h);
}

std::size_t window_operator::cell_home(std::uint64_t hash) const noexcept {
  return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> 40) & (cells_.size() - 1);
}

// Both run once per record in `process`: inlined there.
[[gnu::always_inline]] inline window_operator::combined_cell*
window_operator::find_cell(std::uint64_t hash, std::int64_t pane, std::uint8_t type,
                           const char* key, std::uint8_t len) {
  const std::size_t mask = cells_.size() - 1;
  for (std::size_t pos = cell_home(hash);; pos = (pos + 1) & mask) {
    combined_cell& c = cells_[pos];
    if (!c.used) {
      c.hash = hash;
      c.pane = pane;
      c.rows = 0;
      c.used = 1;
      c.key_type = type;
      c.key_len = len;
      std::memcpy(c.key, key, len);
      aggs_.init(c.acc);
      cell_list_.push_back(static_cast<std::uint32_t>(pos));
      cells_min_end_ = std::min(cells_min_end_, pane + pane_ns_);
      return &c;
    }
    if (c.hash == hash && c.pane == pane && c.key_type == type && c.key_len == len &&
        state::same_bytes(c.key, key, len))
      return &c;
  }
}

[[gnu::always_inline]] inline window_operator::combined_cell*
window_operator::find_combined(const core::value* row, std::int64_t t, std::uint64_t hash) {
  const core::value& k = row[key_cols_[0]];
  const char* key;
  std::uint8_t len, type;
  if (const auto* str = std::get_if<std::string>(&k)) {
    if (str->size() > sizeof(combined_cell::key)) return nullptr;
    key = str->data();
    len = static_cast<std::uint8_t>(str->size());
    type = static_cast<std::uint8_t>(core::value_type::string);
  } else if (const auto* i = std::get_if<std::int64_t>(&k)) {
    key = reinterpret_cast<const char*>(i);
    len = sizeof(std::int64_t);
    type = static_cast<std::uint8_t>(core::value_type::integer);
  } else {
    return nullptr;
  }
  const std::int64_t pane = pane_of(t);
  if (pane + pane_ns_ <= wm_) return nullptr;  // behind the watermark: sent on at the batch end
  if (!aggs_.plain_row(row)) return &bad_row_;
  return find_cell(hash, pane, type, key, len);
}

void window_operator::reinsert_cell(const combined_cell& c) {
  combined_cell* d = find_cell(c.hash, c.pane, c.key_type, c.key, c.key_len);
  std::memcpy(d->acc, c.acc, sizeof c.acc);  // plain states: bytes
  d->rows = c.rows;
}

core::value window_operator::cell_key(const combined_cell& c) {
  if (c.key_type == static_cast<std::uint8_t>(core::value_type::string))
    return std::string(c.key, c.key_len);
  std::int64_t v;
  std::memcpy(&v, c.key, sizeof v);
  return v;
}

void window_operator::grow_cells(core::outputs& out) {
  constexpr std::size_t max_cells = std::size_t{1} << 20;  // 64 MB
  if (cells_.size() >= max_cells) {
    // Full: everything goes on now, as early partials (the global half merges them).
    flush_combined(INT64_MAX, out);
    return;
  }
  std::vector<combined_cell> old(cells_.size() * 2);
  old.swap(cells_);
  cell_scratch_.swap(cell_list_);
  cell_list_.clear();
  for (std::uint32_t pos : cell_scratch_) reinsert_cell(old[pos]);
}

void window_operator::flush_combined(std::int64_t wm, core::outputs& out) {
  if (cells_min_end_ > wm || cell_list_.empty()) return;
  if (out.main.width == 0) out.main.width = width_out_;
  std::vector<combined_cell> keep;
  std::int64_t min_end = INT64_MAX;
  // The cells in use, from their list: the table itself is mostly empty.
  cell_scratch_.swap(cell_list_);
  cell_list_.clear();
  out.main.reserve(out.main.size() + cell_scratch_.size());
  for (std::uint32_t pos : cell_scratch_) {
    combined_cell& c = cells_[pos];
    const std::int64_t end = c.pane + pane_ns_;
    if (end > wm) {
      keep.push_back(c);
      min_end = std::min(min_end, end);
    } else {
      core::value* row = out.main.append(end - 1);
      row[key_cols_[0]] = cell_key(c);
      row[row_width_] = c.pane;
      core::state_writer w;
      aggs_.write(c.acc, w);
      row[row_width_ + 1] = w.take();
      if (wm != INT64_MAX) {
        rows_flushed_ += c.rows;
        ++partials_flushed_;
      }
    }
    c.used = 0;
  }
  // What stays (panes not yet ended: out-of-order rows) goes back in its probe order.
  cells_min_end_ = INT64_MAX;
  for (const combined_cell& c : keep) reinsert_cell(c);
  cells_min_end_ = keep.empty() ? INT64_MAX : min_end;
}

void window_operator::spill_combined() {
  // Into the keyed map, whose snapshot format the checkpoint uses.
  std::vector<core::value> row(row_width_);
  for (std::uint32_t pos : cell_list_) {
    combined_cell& c = cells_[pos];
    row[key_cols_[0]] = cell_key(c);
    bool inserted = false;
    auto idx = map_.find_or_insert(row.data(), key_cols_.data(), 1, c.hash, inserted);
    slot_header* h = pane_slot(idx, c.pane);
    aggs_.merge(acc(h), c.acc);
    h->reserved += c.rows;
    c.used = 0;
  }
  cell_list_.clear();
  cells_min_end_ = INT64_MAX;
}

void window_operator::judge_early(std::int64_t elapsed) {
  const double rows = double(track_rows_), keys = std::max(1.0, distinct_.estimate());
  const double half = track_keys_;  // keys at half as many records
  track_keys_ = keys;
  if (rows / keys >= min_reduction) {
    judge(rows, keys);
    return;
  }
  // The keys seen have stopped growing (doubling the records added under 10% more keys):
  // the pane's records so far, projected to its whole length, over its keys. With records
  // spread over the pane, this tells by its first few percent what its end would.
  if (half <= 0 || keys > 1.1 * half) return;
  const double share = double(std::max(elapsed, pane_ns_ / 1024)) / double(pane_ns_);
  if (share < 1 && rows / share / keys >= min_reduction) judge(rows / share, keys);
}

void window_operator::judge(double rows, double groups) {
  // The first flush after switching to pre-aggregation covers a pane cut short, which would
  // understate the reduction: it is not judged. (A pane cut short while passing through only
  // errs towards passing through.)
  if (skip_judgement_) {
    skip_judgement_ = false;
    return;
  }
  // Pre-aggregate when keys repeat enough and the input is backlogged (mostly full
  // batches): then the shuffle limits throughput. A stream that keeps up gains nothing from
  // fewer shuffled records and would pay the partials at every window end.
  const bool backlogged = backlog_rows_ * 2 >= seen_rows_ && seen_rows_ > 0;
  backlog_rows_ = seen_rows_ = 0;
  const bool pass = !backlogged || rows / std::max(1.0, groups) < min_reduction;
  if (pass == passthrough_) return;
  passthrough_ = pass;
  skip_judgement_ = !pass;
  rows_flushed_ = partials_flushed_ = 0;
  track_pane_ = INT64_MIN;
  track_rows_ = 0;
  track_keys_ = 0;
  distinct_.clear();
}

void window_operator::add_partial(const core::value* row, std::int64_t t, std::uint64_t hash,
                                  map_type::index found, core::outputs& out) {
  const std::size_t nk = key_cols_.size();
  const auto* pane = std::get_if<std::int64_t>(&row[row_width_]);
  const auto* bytes = std::get_if<std::string>(&row[row_width_ + 1]);
  if (pane == nullptr || bytes == nullptr) {
    out.dead(opts_.name, "malformed partial aggregate", row, *input_, t);
    return;
  }
  const std::int64_t pane_start = *pane;
  const std::int64_t last_end = opts_.kind == window_kind::tumbling
                                    ? pane_start + pane_ns_
                                    : last_end_of_pane(pane_start);
  if (sat_add(last_end, opts_.allowed_lateness_ns) <= wm_) {
    ++late_dropped_;
    ++out.late_dropped;
    return;
  }
  std::byte* in = incoming_.data();
  aggs_.destroy(in);
  aggs_.init(in);
  try {
    core::state_reader r(*bytes);
    aggs_.read(in, r);
  } catch (const std::exception& e) {
    out.dead(opts_.name, std::string("malformed partial aggregate: ") + e.what(), row, *input_, t);
    return;
  }
  auto idx = found;
  if (idx == map_type::npos) {
    bool inserted = false;
    idx = map_.find_or_insert(row, key_cols_.data(), nk, hash, inserted);
  }
  slot_header* h = pane_slot(idx, pane_start);
  aggs_.merge(acc(h), in);
  const std::int64_t first_end =
      opts_.kind == window_kind::tumbling ? h->end : first_end_of_pane(pane_start);
  if (first_end <= wm_) mark_dirty(idx, h);
}

void window_operator::add_session(map_type::index idx, std::int64_t t) {
  key_state& ks = map_.at(idx);
  const std::int64_t end = sat_add(t, opts_.gap_ns);
  // Sessions are disjoint half-open intervals, sorted: the ones [t, end) overlaps are a run.
  // A record exactly `gap` after the last one starts a new session.
  std::size_t i = 0;
  while (i < ks.count && slot(ks, i)->end <= t) ++i;
  std::size_t j = i;
  while (j < ks.count && slot(ks, j)->start < end) ++j;
  slot_header* h;
  if (i == j) {
    h = insert_slot(ks, i, t, end);
  } else {
    h = slot(ks, i);
    h->start = std::min(h->start, t);
    h->end = std::max(h->end, end);
    for (std::size_t k = i + 1; k < j; ++k) {
      slot_header* o = slot(ks, k);
      aggs_.merge(acc(h), acc(o));
      h->end = std::max(h->end, o->end);
    }
    for (std::size_t k = j; k-- > i + 1;) erase_slot(ks, k);
    h = slot(ks, i);  // erase may have moved the buffer
  }
  aggs_.add(acc(h), t);
  arm(idx, slot_next_time(h));
  if (h->end <= wm_) mark_dirty(idx, h);
}

// ------------------------------------------------------------------ firing

void window_operator::emit_row(map_type::index idx, std::int64_t start, std::int64_t end,
                               const std::byte* a, bool final, core::outputs& out) {
  if (out.main.width == 0) out.main.width = width_out_;
  core::value* row = out.main.append(end - 1);
  const state::key& k = map_.key_of(idx);
  k.copy_to(row);
  std::size_t c = k.size();
  row[c++] = floor_div(start, 1'000'000);
  row[c++] = floor_div(end, 1'000'000);
  aggs_.result(a, row + c);
  if (opts_.emit_every_ns > 0) row[width_out_ - 1] = final;
}

void window_operator::emit_sliding(map_type::index idx, std::int64_t end, bool final,
                                   core::outputs& out) {
  key_state& ks = map_.at(idx);
  const std::int64_t start = end - opts_.size_ns;
  std::byte* target = scratch_.data();
  aggs_.destroy(target);
  aggs_.init(target);
  bool any = false;
  for (std::size_t i = 0; i < ks.count; ++i) {
    const slot_header* h = slot(ks, i);
    if (h->start >= end) break;
    if (h->start >= start) {
      aggs_.merge(target, acc(const_cast<slot_header*>(h)));
      any = true;
    }
  }
  if (any) emit_row(idx, start, end, target, final, out);
}

void window_operator::emit_range(map_type::index idx, std::int64_t lo, std::int64_t hi,
                                 bool final, core::outputs& out) {
  key_state& ks = map_.at(idx);
  if (opts_.kind != window_kind::sliding) {
    for (std::size_t i = 0; i < ks.count; ++i) {
      slot_header* h = slot(ks, i);
      if (h->end > lo && h->end <= hi) emit_row(idx, h->start, h->end, acc(h), final, out);
    }
    return;
  }
  if (ks.count == 0) return;
  const std::int64_t slide = opts_.slide_ns, size = opts_.size_ns;
  std::int64_t e = first_end_of_pane(slot(ks, 0)->start);
  if (e <= lo) e += (floor_div(lo - e, slide) + 1) * slide;
  std::size_t p = 0;
  while (e <= hi) {
    while (p < ks.count && slot(ks, p)->start < e - size) ++p;
    if (p == ks.count) break;
    std::int64_t ps = slot(ks, p)->start;
    if (ps >= e) {
      // No pane in this window: jump to the first window that holds the next pane.
      e = std::max(e + slide, first_end_of_pane(ps));
      continue;
    }
    emit_sliding(idx, e, final, out);
    if (e > INT64_MAX - slide) break;
    e += slide;
  }
}

void window_operator::emit_partial(map_type::index idx, const slot_header* h,
                                   core::outputs& out) {
  if (out.main.width == 0) out.main.width = width_out_;
  core::value* row = out.main.append(h->end - 1);
  const state::key& k = map_.key_of(idx);
  for (std::size_t i = 0; i < k.size(); ++i) row[key_cols_[i]] = k[i];
  row[row_width_] = h->start;
  core::state_writer w;
  aggs_.write(acc(const_cast<slot_header*>(h)), w);
  row[row_width_ + 1] = w.take();
}

void window_operator::flush_local(map_type::index idx, std::int64_t wm, bool only_dirty,
                                  core::outputs& out) {
  key_state& ks = map_.at(idx);
  const std::size_t before = ks.count;
  for (std::size_t i = 0; i < ks.count;) {
    slot_header* h = slot(ks, i);
    if (h->end <= wm && (!only_dirty || (h->flags & dirty_flag))) {
      const std::uint32_t rows_in = h->reserved;
      emit_partial(idx, h, out);
      erase_slot(ks, i);
      if (!only_dirty) {
        // What `auto` weighs: records per partial at the watermark, where they come at once.
        rows_flushed_ += rows_in;
        ++partials_flushed_;
      }
    } else {
      ++i;
    }
  }
  if (ks.count == 0) {
    retire(idx, before != 0, wm);
    return;
  }
  std::int64_t next = none;
  for (std::size_t i = 0; i < ks.count; ++i) next = std::min(next, slot(ks, i)->end);
  arm(idx, next);
}

void window_operator::retire(map_type::index idx, bool just_emptied, std::int64_t wm) {
  // A key that just lost its last window keeps its entry for one more pane: most keys have
  // records in the next window too, and then firing neither erases nor re-inserts them. An
  // entry still empty when that timer comes is erased. (Sessions have no pane; end of stream
  // erases at once.)
  if (just_emptied && pane_ns_ > 0 && wm != INT64_MAX) {
    arm(idx, sat_add(wm, pane_ns_));
    return;
  }
  map_.erase(idx);
}

void window_operator::process_key(map_type::index idx, std::int64_t from, std::int64_t wm,
                                  core::outputs& out) {
  if (mode_ == mode::local) {
    flush_local(idx, wm, false, out);
    return;
  }
  emit_range(idx, from - 1, wm, true, out);
  key_state& ks = map_.at(idx);
  const std::int64_t lateness = opts_.allowed_lateness_ns;
  const std::size_t before = ks.count;
  for (std::size_t i = ks.count; i-- > 0;) {
    const slot_header* h = slot(ks, i);
    std::int64_t last = opts_.kind == window_kind::sliding ? last_end_of_pane(h->start) : h->end;
    if (sat_add(last, lateness) <= wm) erase_slot(ks, i);
  }
  if (ks.count == 0) {
    retire(idx, before != 0, wm);
    return;
  }
  arm(idx, next_time(ks));
}

void window_operator::flush_dirty(core::outputs& out) {
  if (mode_ == mode::local) {
    for (auto [idx, gen] : dirty_)
      if (map_.valid(idx, gen)) flush_local(idx, wm_, true, out);
    dirty_.clear();
    return;
  }
  const std::int64_t lateness = opts_.allowed_lateness_ns;
  std::vector<std::int64_t> ends;
  for (auto [idx, gen] : dirty_) {
    if (!map_.valid(idx, gen)) continue;
    key_state& ks = map_.at(idx);
    ends.clear();
    for (std::size_t i = 0; i < ks.count; ++i) {
      slot_header* h = slot(ks, i);
      if (!(h->flags & dirty_flag)) continue;
      h->flags &= ~dirty_flag;
      if (opts_.kind != window_kind::sliding) {
        if (h->end <= wm_ && sat_add(h->end, lateness) > wm_)
          emit_row(idx, h->start, h->end, acc(h), true, out);
        continue;
      }
      std::int64_t last = std::min(last_end_of_pane(h->start), wm_);
      for (std::int64_t e = first_end_of_pane(h->start); e <= last; e += opts_.slide_ns)
        if (sat_add(e, lateness) > wm_) ends.push_back(e);
    }
    if (ends.empty()) continue;
    std::sort(ends.begin(), ends.end());
    ends.erase(std::unique(ends.begin(), ends.end()), ends.end());
    for (auto e : ends) emit_sliding(idx, e, true, out);
  }
  dirty_.clear();
}

void window_operator::advance(std::int64_t wm, core::outputs& out) {
  if (wm <= wm_) return;
  wm_ = wm;
  if (mode_ == mode::local) flush_combined(wm, out);
  while (!session_timers_.empty() && session_timers_.top().at <= wm) {
    const session_timer st = session_timers_.top();
    session_timers_.pop();
    if (!map_.valid(st.t.idx, st.t.gen)) continue;
    key_state& ks = map_.at(st.t.idx);
    if (ks.timer_at != st.at) continue;
    ks.timer_at = none;
    process_key(st.t.idx, st.at, wm, out);
  }
  while (!timers_.empty() && timers_.begin()->first <= wm) {
    auto bucket = timers_.extract(timers_.begin());
    if (last_bucket_ == &bucket.mapped()) last_bucket_ = nullptr;
    const std::int64_t at = bucket.key();
    const std::vector<timer>& due = bucket.mapped();
    // Room for one row per key up front: growing a batch of variants moves every row.
    if (out.main.width == 0) out.main.width = width_out_;
    out.main.reserve(out.main.size() + due.size());
    constexpr std::size_t ahead = 8;
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (i + ahead < due.size()) {
        // Entries of a bucket are scattered over the table: load them ahead of their turn.
        const map_type::index next = due[i + ahead].idx;
        __builtin_prefetch(&map_.key_of(next));
        __builtin_prefetch(&map_.at(next));
      }
      const timer tm = due[i];
      if (!map_.valid(tm.idx, tm.gen)) continue;
      key_state& ks = map_.at(tm.idx);
      if (ks.timer_at != at) continue;
      ks.timer_at = none;
      process_key(tm.idx, at, wm, out);
    }
  }
}

void window_operator::on_watermark(core::event_time wm, core::outputs& out) {
  advance(wm.ns, out);
  if (mode_ == mode::local && opts_.pre_aggregate == pre_aggregation::automatic &&
      partials_flushed_ > 0 && !passthrough_) {
    judge(double(rows_flushed_), double(partials_flushed_));
    rows_flushed_ = partials_flushed_ = 0;
  }
}

void window_operator::on_timer(core::processing_time now, core::outputs& out) {
  if (opts_.emit_every_ns <= 0) return;
  // The runtime calls about every emit_every; tolerate an early tick of up to a quarter.
  if (last_early_ != 0 && now.ns - last_early_ < opts_.emit_every_ns * 3 / 4) return;
  last_early_ = now.ns;
  map_.for_each([&](map_type::index idx, const state::key&, key_state&) {
    emit_range(idx, wm_, INT64_MAX, false, out);
  });
}

void window_operator::finish(core::outputs& out) { advance(INT64_MAX, out); }

void window_operator::on_idle(core::outputs& out) {
  if (mode_ != mode::local) return;
  // Partials of panes still open go now; records that come later for the same pane make
  // another partial, which the global half merges into the same window. Emptied keys stay
  // until their timer retires them.
  flush_combined(INT64_MAX, out);
  if (out.main.width == 0) out.main.width = width_out_;
  map_.for_each([&](map_type::index idx, const state::key&, key_state& ks) {
    while (ks.count > 0) {
      emit_partial(idx, slot(ks, 0), out);
      erase_slot(ks, 0);
    }
  });
}

// ------------------------------------------------------------------ state

std::size_t window_operator::state_bytes() const {
  std::size_t n = map_.table_bytes() + cells_.capacity() * sizeof(combined_cell) +
                  (cell_list_.capacity() + cell_scratch_.capacity()) * sizeof(std::uint32_t);
  auto& self = const_cast<window_operator&>(*this);
  self.map_.for_each([&](auto, const state::key&, key_state& ks) {
    // glibc: a chunk is the request plus 8 bytes, rounded up to 16, at least 32.
    // (Slots held inline are part of the entry, counted by table_bytes.)
    if (ks.on_heap)
      n += std::max<std::size_t>(32, (ks.count * stride_ + 8 + 15) & ~std::size_t(15));
    for (std::size_t i = 0; i < ks.count; ++i) n += aggs_.heap_bytes(acc(self.slot(ks, i)));
  });
  return n;
}

void window_operator::snapshot(core::state_writer& w) {
  if (!cell_list_.empty()) spill_combined();
  w.put<std::uint32_t>(snapshot_version);
  w.put<std::int64_t>(wm_);
  map_.snapshot(w, range_, [&](core::state_writer& sw, const key_state& ks) {
    sw.put<std::uint32_t>(ks.count);
    for (std::size_t i = 0; i < ks.count; ++i) {
      const slot_header* h = slot(ks, i);
      sw.put<std::int64_t>(h->start);
      sw.put<std::int64_t>(h->end);
      sw.put<std::uint32_t>(h->flags & ~dirty_flag);
      aggs_.write(acc(const_cast<slot_header*>(h)), sw);
    }
  });
}

void window_operator::restore(core::state_reader& r) {
  if (r.get<std::uint32_t>() != snapshot_version)
    throw std::runtime_error("window snapshot: unknown version");
  std::int64_t wm = r.get<std::int64_t>();
  // Restoring several old instances' snapshots (rescaling): the safe watermark is the lowest.
  wm_ = restored_ ? std::min(wm_, wm) : wm;
  restored_ = true;
  map_.restore(r, range_, [&](core::state_reader& sr) {
    key_state ks;
    std::uint32_t n = sr.get<std::uint32_t>();
    try {
      for (std::uint32_t i = 0; i < n; ++i) {
        std::int64_t start = sr.get<std::int64_t>();
        std::int64_t end = sr.get<std::int64_t>();
        std::uint32_t flags = sr.get<std::uint32_t>();
        slot_header* h = insert_slot(ks, ks.count, start, end);
        h->flags = flags;
        aggs_.read(acc(h), sr);
      }
    } catch (...) {
      clear_slots(ks);
      throw;
    }
    return ks;
  });
  map_.for_each([&](map_type::index idx, const state::key&, key_state& ks) {
    ks.timer_at = none;
    arm(idx, next_time(ks));
  });
}

} // namespace pel::operators
