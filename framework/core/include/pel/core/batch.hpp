#pragma once
/// \file
/// A batch of records: the unit that travels between operator instances.

#include "pel/core/schema.hpp"
#include "pel/core/value.hpp"

#include <cstdint>
#include <vector>

namespace pel::core {

/// Records stored row-major: row `i` is `cells[i * width .. (i + 1) * width)`, and its
/// event time is `times[i]` (ns since the epoch). The schema is not stored: the channel the
/// batch travels on knows it. A batch is not thread-safe; it is owned by one actor at a time.
struct batch {
  std::uint32_t width = 0;
  std::vector<value> cells;
  std::vector<std::int64_t> times;

  batch() = default;
  explicit batch(std::uint32_t w) : width(w) {}

  std::size_t size() const noexcept { return times.size(); }
  bool empty() const noexcept { return times.empty(); }

  value* row(std::size_t i) noexcept { return cells.data() + i * width; }
  const value* row(std::size_t i) const noexcept { return cells.data() + i * width; }

  /// Appends a row of `width` null values with event time `t` and returns it for filling.
  /// The pointer is valid until the next append.
  value* append(std::int64_t t) {
    times.push_back(t);
    cells.resize(cells.size() + width);
    return cells.data() + cells.size() - width;
  }

  /// Appends a copy of `src` (which must have `width` values).
  void append_copy(const value* src, std::int64_t t) {
    times.push_back(t);
    cells.insert(cells.end(), src, src + width);
  }

  /// Appends `src` by moving its values.
  void append_move(value* src, std::int64_t t) {
    times.push_back(t);
    for (std::uint32_t c = 0; c < width; ++c) cells.push_back(std::move(src[c]));
  }

  void reserve(std::size_t rows) {
    times.reserve(rows);
    cells.reserve(rows * width);
  }

  /// Drops all rows and keeps the capacity.
  void clear() noexcept {
    cells.clear();
    times.clear();
  }
};

} // namespace pel::core
