#pragma once
/// \file
/// Per-key state of one operator instance, grouped by key group so that a snapshot can be
/// restored by any set of instances that owns the same key groups (rescaling moves whole
/// key groups).

#include "pel/core/state_io.hpp"
#include "pel/state/key.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace pel::state {

/// A hash map from `key` to `V`, with open addressing over an index table and entries held in
/// a slab with stable indices. Lookups take the key's hash (computed once per record by the
/// caller, who needs it for the key group anyway) and the row the key lives in, so a lookup
/// builds no key object and allocates nothing.
///
/// Entry indices stay valid until the entry is erased; each erase bumps the entry's
/// generation, so holders of an index (timers) can tell a reused slot from theirs.
/// Not thread-safe: one operator instance owns it.
template <class V>
class keyed_map {
public:
  /// Index of an entry.
  using index = std::uint32_t;
  static constexpr index npos = std::numeric_limits<index>::max();

  /// `max_parallelism` is the number of key groups keys are spread over.
  explicit keyed_map(std::uint32_t max_parallelism = 128) : max_parallelism_(max_parallelism) {}

  /// Changes the number of key groups; only while empty.
  void set_max_parallelism(std::uint32_t m) { max_parallelism_ = m; }
  std::uint32_t max_parallelism() const noexcept { return max_parallelism_; }

  /// The entry for the key `row[cols[0..n)]` whose `hash_key` is `hash`, or npos.
  index find(const core::value* row, const int* cols, std::size_t n,
             std::uint64_t hash) const noexcept {
    if (slots_.empty()) return npos;
    const std::uint32_t t = tag(hash);
    for (std::size_t s = home(hash);; s = (s + 1) & mask_) {
      const std::uint64_t c = slots_[s];
      if (c == 0) return npos;
      // The tag in the table rejects most other keys without touching their entries.
      if (static_cast<std::uint32_t>(c >> 32) != t) continue;
      const index e = static_cast<index>(c) - 1;
      const entry& en = ent(e);
      if (en.hash == hash && en.k.equals(row, cols, n)) return e;
    }
  }

  /// Hints the cache to load the table cell where a lookup of `hash` starts. No effect on
  /// the map; lets a caller that knows the hashes of the next records overlap their misses.
  /// (Forced inline: as a call, the compiler may find it free of effects and drop it.)
  [[gnu::always_inline]] void prefetch(std::uint64_t hash) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(hash)]);
  }

  /// The value of the first entry whose tag matches `hash` along its probe run (most likely
  /// the entry a lookup will return, but the key is not compared), or nullptr; hints the cache
  /// to load that entry. For prefetching only: the pointer is valid until the next insert.
  /// (Forced inline: as a call whose result is unused, the compiler may drop it.)
  [[gnu::always_inline]] const V* peek(std::uint64_t hash) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::uint32_t t = tag(hash);
    for (std::size_t s = home(hash);; s = (s + 1) & mask_) {
      const std::uint64_t c = slots_[s];
      if (c == 0) return nullptr;
      if (static_cast<std::uint32_t>(c >> 32) != t) continue;
      const entry& en = ent(static_cast<index>(c) - 1);
      const char* first = reinterpret_cast<const char*>(&en);
      for (std::size_t off = 0; off < sizeof(entry); off += 64) __builtin_prefetch(first + off);
      if (alignof(entry) < 64) __builtin_prefetch(first + sizeof(entry) - 1);
      return &en.value;
    }
  }

  /// The entry for the key, inserted with a default `V` when absent (`inserted` says which).
  index find_or_insert(const core::value* row, const int* cols, std::size_t n,
                       std::uint64_t hash, bool& inserted) {
    index i = find(row, cols, n, hash);
    inserted = i == npos;
    if (!inserted) return i;
    return emplace(key(row, cols, n), hash, V{});
  }

  /// Inserts `k` (which must be absent) with `v` (restore path). Returns its index.
  index insert(key k, V v) {
    std::uint64_t h = k.hash();
    return emplace(std::move(k), h, std::move(v));
  }

  /// Removes entry `i`; its index may be reused by a later insert.
  void erase(index i) {
    entry& en = ent(i);
    // Find the slot pointing at i and delete it with backward shifting (no tombstones).
    std::size_t s = home(en.hash);
    while (static_cast<index>(slots_[s]) != i + 1) s = (s + 1) & mask_;
    std::size_t hole = s;
    for (std::size_t j = (hole + 1) & mask_; slots_[j] != 0; j = (j + 1) & mask_) {
      std::size_t h = home(ent(static_cast<index>(slots_[j]) - 1).hash);
      // Move j into the hole when its home is not in (hole, j] (cyclically).
      bool in_between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!in_between) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = 0;
    meta& m = met(i);
    m.kg = dead;
    ++m.generation;
    en.k = key();
    en.value = V{};
    free_.push_back(i);
    --size_;
  }

  V& at(index i) noexcept { return ent(i).value; }
  const V& at(index i) const noexcept { return ent(i).value; }
  const key& key_of(index i) const noexcept { return ent(i).k; }
  key_group group_of(index i) const noexcept { return met(i).kg; }
  std::uint32_t generation(index i) const noexcept { return met(i).generation; }
  /// True when `i` is a live entry whose generation is `gen`.
  bool valid(index i, std::uint32_t gen) const noexcept {
    return i < count_ && met(i).live() && met(i).generation == gen;
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Calls `f(index, const key&, V&)` for every live entry.
  template <class F>
  void for_each(F&& f) {
    for (index i = 0; i < count_; ++i)
      if (met(i).live()) f(i, ent(i).k, ent(i).value);
  }

  /// Calls `pred(index, const key&, V&)` for every live entry and erases the entries for
  /// which it returns true: the erase-while-iterating that `for_each` does not allow (state
  /// expiry on a watermark). Indices of the other entries stay valid. Returns how many were
  /// erased.
  template <class P>
  std::size_t erase_if(P&& pred) {
    std::size_t erased = 0;
    for (index i = 0; i < count_; ++i) {
      if (!met(i).live() || !pred(i, static_cast<const key&>(ent(i).k), ent(i).value)) continue;
      erase(i);
      ++erased;
    }
    return erased;
  }

  /// Removes every entry.
  void clear() {
    chunks_.clear();
    count_ = 0;
    free_.clear();
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }

  /// Bytes held by the table itself (slots, entry slab, keys' heap); the caller adds what its
  /// `V`s own on the heap.
  std::size_t table_bytes() const noexcept {
    std::size_t n = slots_.capacity() * sizeof(std::uint64_t) +
                    chunks_.size() * sizeof(block) + chunks_.capacity() * sizeof(void*) +
                    free_.capacity() * sizeof(index);
    for (index i = 0; i < count_; ++i)
      if (met(i).live()) n += ent(i).k.heap_bytes();
    return n;
  }

  // ---------------------------------------------------------------- snapshot / restore

  /// Writes the entries of key groups [range.begin, range.end) as one section per non-empty
  /// key group, in key-group order: `u32 magic, u32 sections`, then per section
  /// `u32 key_group, u32 entries, string payload` where the payload holds, per entry, the key
  /// (`key::write`) followed by whatever `write_value(writer, const V&)` writes.
  template <class W>
  void snapshot(core::state_writer& w, key_group_range range, W&& write_value) const {
    // Counting sort of the live entries by key group.
    const std::uint32_t groups = range.size();
    std::vector<std::uint32_t> start(groups + 1, 0);
    for (index i = 0; i < count_; ++i)
      if (met(i).live() && range.contains(met(i).kg)) ++start[met(i).kg - range.begin + 1];
    std::uint32_t sections = 0;
    for (std::uint32_t g = 0; g < groups; ++g) {
      if (start[g + 1] != 0) ++sections;
      start[g + 1] += start[g];
    }
    std::vector<index> order(start[groups]);
    std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
    for (index i = 0; i < count_; ++i)
      if (met(i).live() && range.contains(met(i).kg))
        order[fill[met(i).kg - range.begin]++] = i;

    w.put<std::uint32_t>(magic);
    w.put<std::uint32_t>(sections);
    for (std::uint32_t g = 0; g < groups; ++g) {
      std::uint32_t n = start[g + 1] - start[g];
      if (n == 0) continue;
      core::state_writer section;
      for (std::uint32_t j = start[g]; j < start[g + 1]; ++j) {
        const entry& e = ent(order[j]);
        e.k.write(section);
        write_value(section, e.value);
      }
      w.put<std::uint32_t>(range.begin + g);
      w.put<std::uint32_t>(n);
      w.put_string(section.bytes());
    }
  }

  /// Reads a section list written by `snapshot` and inserts the entries of the key groups in
  /// `range`, skipping the others. Entries are added to what the map already holds, so the
  /// snapshots of several old instances can be restored into one. `read_value(reader)`
  /// returns a `V`. Throws `std::runtime_error` on a malformed snapshot or a key that is
  /// already present.
  template <class R>
  void restore(core::state_reader& r, key_group_range range, R&& read_value) {
    if (r.get<std::uint32_t>() != magic)
      throw std::runtime_error("keyed state snapshot: bad section header");
    std::uint32_t sections = r.get<std::uint32_t>();
    for (std::uint32_t s = 0; s < sections; ++s) {
      key_group kg = r.get<std::uint32_t>();
      std::uint32_t n = r.get<std::uint32_t>();
      std::string payload = r.get_string();
      if (!range.contains(kg)) continue;
      core::state_reader pr(payload);
      for (std::uint32_t j = 0; j < n; ++j) {
        key k = key::read(pr);
        std::uint64_t h = k.hash();
        if (key_group_of(h, max_parallelism_) != kg)
          throw std::runtime_error("keyed state snapshot: key in the wrong key group "
                                   "(was max_parallelism changed?)");
        V v = read_value(pr);
        emplace(std::move(k), h, std::move(v));
      }
      if (!pr.at_end()) throw std::runtime_error("keyed state snapshot: trailing bytes");
    }
  }

private:
  static constexpr std::uint32_t magic = 0x5045534bu;  // "KSEP"

  static constexpr key_group dead = std::numeric_limits<key_group>::max();

  // What a lookup touches is in the entry: the hash, the key (a short string key keeps its
  // bytes inline) and the value right behind them. The key group and generation, read only
  // on insert, erase, iteration and timer checks, live in a separate array of the chunk.
  struct entry_fields {
    std::uint64_t hash;
    key k;
    V value;
  };
  // Entries start on a cache line when that wastes at most an eighth of the entry: a
  // 128-byte entry (a 56-byte key, a 64-byte value) then spans exactly two lines, not three.
  static constexpr std::size_t line = 64;
  static constexpr std::size_t entry_align =
      sizeof(entry_fields) >= line &&
              ((sizeof(entry_fields) + line - 1) / line * line - sizeof(entry_fields)) * 8 <=
                  sizeof(entry_fields)
          ? line
          : alignof(entry_fields);
  struct alignas(entry_align) entry {
    std::uint64_t hash = 0;
    key k;
    V value{};
  };
  struct meta {
    key_group kg = dead;  // `dead` marks a free slab slot
    std::uint32_t generation = 0;
    bool live() const noexcept { return kg != dead; }
  };

  /// The bits of the hash kept next to the entry index in the table (the high half; `home`
  /// mixes all bits, the key group uses the low ones).
  static std::uint32_t tag(std::uint64_t hash) noexcept {
    return static_cast<std::uint32_t>(hash >> 32);
  }

  std::size_t home(std::uint64_t hash) const noexcept {
    // Fibonacci hashing on the high bits: the low bits of the hash pick the key group, so
    // within one instance they are far from uniform.
    return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }

  index emplace(key k, std::uint64_t hash, V v) {
    // At most half full: lookups of a hit then rarely probe past their home cell. (At 0.6-0.7
    // a batch of lookups over 5,000-10,000 keys ran about 25 % slower; the table costs 8 bytes
    // per cell, 16-32 per key.)
    if ((size_ + 1) * 2 > slots_.size()) grow();
    index i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else {
      if (count_ >= npos - 1) throw std::length_error("keyed_map: too many keys");
      i = static_cast<index>(count_);
      if ((i & (chunk - 1)) == 0) chunks_.push_back(std::make_unique<block>());
      ++count_;
    }
    entry& e = ent(i);
    e.k = std::move(k);
    e.hash = hash;
    met(i).kg = key_group_of(hash, max_parallelism_);
    e.value = std::move(v);
    place(i);
    ++size_;
    return i;
  }

  void place(index i) {
    const std::uint64_t hash = ent(i).hash;
    std::size_t s = home(hash);
    while (slots_[s] != 0) s = (s + 1) & mask_;
    slots_[s] = (std::uint64_t(tag(hash)) << 32) | (std::uint64_t(i) + 1);
  }

  void grow() {
    std::size_t cap = slots_.empty() ? 16 : slots_.size() * 2;
    slots_.assign(cap, 0);
    mask_ = cap - 1;
    shift_ = 64;
    for (std::size_t c = cap; c > 1; c >>= 1) --shift_;
    for (index i = 0; i < count_; ++i)
      if (met(i).live()) place(i);
  }

  std::uint32_t max_parallelism_;
  // Entries live in fixed chunks: indices stay valid, growth copies nothing, and the slab
  // overshoots by less than one chunk (a doubling vector would by up to 2x).
  static constexpr std::size_t chunk = 1024;
  struct block {
    entry entries[chunk];
    meta metas[chunk];
  };
  entry& ent(index i) noexcept { return chunks_[i / chunk]->entries[i % chunk]; }
  const entry& ent(index i) const noexcept { return chunks_[i / chunk]->entries[i % chunk]; }
  meta& met(index i) noexcept { return chunks_[i / chunk]->metas[i % chunk]; }
  const meta& met(index i) const noexcept { return chunks_[i / chunk]->metas[i % chunk]; }
  std::vector<std::unique_ptr<block>> chunks_;
  std::size_t count_ = 0;
  std::vector<index> free_;
  // Table cells: 0 empty, else (tag(hash) << 32) | (entry index + 1).
  std::vector<std::uint64_t> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t size_ = 0;
};

} // namespace pel::state
