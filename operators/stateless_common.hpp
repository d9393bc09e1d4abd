#pragma once
/// \file
/// Helpers shared by the stateless operators: construction-time checks and messages, and
/// the cell moves of their per-row loops.

#include "pel/core/schema.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"

#include "field_names.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pel::operators {

/// Location of the key of entry `i` of the map param `key`.
spec::mark entry_key_mark(const spec::config& cfg, std::string_view key, std::size_t i);

/// Position of `name` in `names`, or -1.
int position_of(const std::vector<std::string>& names, std::string_view name);

/// The field names of a schema.
std::vector<std::string> names_of(const core::schema& s);

// --- hot path: cell moves without the generic variant visit --------------------------------

/// Appends a copy of `v` when copying costs no allocation (numbers, bools, null and strings
/// short enough for the string's inline buffer), else moves it. A copy leaves the source's
/// memory untouched: a batch that is only read, then cleared, is not written back to memory.
inline void push_cell_keep_source(std::vector<core::value>& cells, core::value& v) {
  constexpr std::size_t inline_chars = 15;  // libstdc++'s short-string capacity
  switch (v.index()) {
    case 2: cells.emplace_back(std::in_place_index<2>, *std::get_if<2>(&v)); return;
    case 3: cells.emplace_back(std::in_place_index<3>, *std::get_if<3>(&v)); return;
    case 4: {
      std::string& str = *std::get_if<4>(&v);
      if (str.size() <= inline_chars) cells.emplace_back(std::in_place_index<4>, str);
      else cells.emplace_back(std::in_place_index<4>, std::move(str));
      return;
    }
    default: cells.emplace_back(v); return;
  }
}

/// `cells.emplace_back(std::move(v))`, constructing the alternative directly.
inline void push_cell(std::vector<core::value>& cells, core::value& v) {
  switch (v.index()) {
    case 2: cells.emplace_back(std::in_place_index<2>, *std::get_if<2>(&v)); return;
    case 3: cells.emplace_back(std::in_place_index<3>, *std::get_if<3>(&v)); return;
    case 4: cells.emplace_back(std::in_place_index<4>, std::move(*std::get_if<4>(&v))); return;
    default: cells.emplace_back(std::move(v)); return;
  }
}

} // namespace pel::operators
