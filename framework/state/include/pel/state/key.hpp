#pragma once
/// \file
/// Keys of keyed state and the key-group arithmetic that decides which instance owns a key.

#include "pel/core/state_io.hpp"
#include "pel/core/value.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace pel::state {

/// Index of a key group, 0 .. max_parallelism-1.
using key_group = std::uint32_t;

/// A half-open range of key groups [begin, end) owned by one instance.
struct key_group_range {
  key_group begin = 0;
  key_group end = 0;

  bool contains(key_group kg) const noexcept { return kg >= begin && kg < end; }
  std::uint32_t size() const noexcept { return end - begin; }
  bool operator==(const key_group_range& o) const noexcept {
    return begin == o.begin && end == o.end;
  }
};

/// The key group of a key whose hash (see `hash_key`) is `hash`: `hash % max_parallelism`.
inline key_group key_group_of(std::uint64_t hash, std::uint32_t max_parallelism) noexcept {
  return static_cast<key_group>(hash % max_parallelism);
}

/// The key groups instance `instance` of `parallelism` instances owns, with Flink's formula:
/// begin = ceil(instance * max_p / p), end = floor(((instance + 1) * max_p - 1) / p) + 1.
/// The ranges of all instances are contiguous, disjoint, and cover [0, max_parallelism).
/// Requires 1 <= parallelism <= max_parallelism and instance < parallelism.
key_group_range key_group_range_of(std::uint32_t instance, std::uint32_t parallelism,
                                   std::uint32_t max_parallelism) noexcept;

/// The instance (of `parallelism`) that owns key group `kg` (the inverse of
/// `key_group_range_of`): kg * p / max_p.
inline std::uint32_t instance_of(key_group kg, std::uint32_t parallelism,
                                 std::uint32_t max_parallelism) noexcept {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(kg) * parallelism /
                                    max_parallelism);
}

/// The hash of a key made of the values `row[cols[0]], row[cols[1]], ...`: the
/// `core::stable_hash` of the first, then each next one mixed in with `core::hash_combine`
/// in key order. An empty key (a global window) hashes to 0.
inline std::uint64_t hash_key(const core::value* row, const int* cols, std::size_t n) noexcept {
  if (n == 0) return 0;
  std::uint64_t h = core::stable_hash(row[cols[0]]);
  for (std::size_t i = 1; i < n; ++i) h = core::hash_combine(h, core::stable_hash(row[cols[i]]));
  return h;
}

/// True when the `n` bytes at `a` and `b` are equal. Strings of up to 16 bytes (most keys)
/// are compared with at most two pairs of overlapping word loads, no library call.
inline bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
  const auto w64 = [](const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  };
  const auto w32 = [](const char* p) {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  };
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return ((w64(a) ^ w64(b)) | (w64(a + n - 8) ^ w64(b + n - 8))) == 0;
  }
  if (n >= 4) return ((w32(a) ^ w32(b)) | (w32(a + n - 4) ^ w32(b + n - 4))) == 0;
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

/// True when the two values are the same key component: same type and equal (an int 3 and a
/// double 3.0 are different keys even though they hash alike; they only share a key group).
bool same_key_value(const core::value& a, const core::value& b) noexcept;

/// A key of one or more values. The common single-value key is stored inline: building and
/// comparing it allocates nothing beyond the value itself (short strings stay in the small
/// string buffer). Composite keys keep their other values in a heap vector.
class key {
public:
  key() = default;
  /// The key made of `row[cols[0..n)]` (copies the values).
  key(const core::value* row, const int* cols, std::size_t n);

  key(const key& o) : first_(o.first_), size_(o.size_) {
    if (o.rest_) rest_ = std::make_unique<std::vector<core::value>>(*o.rest_);
  }
  key(key&&) noexcept = default;
  key& operator=(key&&) noexcept = default;
  key& operator=(const key& o) {
    if (this != &o) *this = key(o);
    return *this;
  }

  /// Number of values (0 for the global key).
  std::size_t size() const noexcept { return size_; }
  /// Value `i`, 0 <= i < size().
  const core::value& operator[](std::size_t i) const noexcept {
    return i == 0 ? first_ : (*rest_)[i - 1];
  }
  /// The same hash as `hash_key` over the row the key came from.
  std::uint64_t hash() const noexcept;
  /// True when this key equals `row[cols[0..n)]` (n must equal size()).
  bool equals(const core::value* row, const int* cols, std::size_t n) const noexcept {
    // Inline fast path for the common one-string key (a symbol, a device id).
    if (n == 1 && size_ == 1) {
      if (const auto* a = std::get_if<std::string>(&first_)) {
        const auto* b = std::get_if<std::string>(&row[cols[0]]);
        return b && a->size() == b->size() && same_bytes(a->data(), b->data(), a->size());
      }
    }
    return equals_general(row, cols, n);
  }
  /// `equals` for any key (out of line).
  bool equals_general(const core::value* row, const int* cols, std::size_t n) const noexcept;
  bool operator==(const key& o) const noexcept;

  /// Heap bytes this key owns beyond `sizeof(key)` (strings outside the small buffer,
  /// the vector of a composite key), approximately.
  std::size_t heap_bytes() const noexcept;

  /// Appends its values to `out` (for building output rows).
  void copy_to(core::value* out) const;

  /// Self-describing binary form: count, then each value.
  void write(core::state_writer& w) const;
  static key read(core::state_reader& r);

private:
  core::value first_;
  std::unique_ptr<std::vector<core::value>> rest_;
  std::uint32_t size_ = 0;
};

} // namespace pel::state
