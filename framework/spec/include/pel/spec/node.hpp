#pragma once
/// \file
/// The YAML document as a tree of nodes that remember where they were written.
/// yaml-cpp stays inside spec/src: everything else sees only this tree.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pel::spec {

/// A position in a pipeline file, 1-based (0 when unknown).
struct mark {
  int line = 0;
  int column = 0;
};

class node;
using node_ptr = std::shared_ptr<const node>;

/// One YAML node: null, scalar, sequence or map. Map entries keep their order and the mark of
/// their key. Scalars keep their text and whether they were quoted (a quoted "5" is a string).
class node {
public:
  enum class kind : std::uint8_t { null, scalar, sequence, map };

  struct entry {
    std::string key;
    mark key_mark;
    node_ptr value;
  };

  kind type = kind::null;
  mark at;
  std::string text;     ///< scalar text
  bool quoted = false;  ///< scalar was single- or double-quoted
  std::vector<node_ptr> items;   ///< sequence items
  std::vector<entry> entries;    ///< map entries, in file order

  bool is_null() const noexcept { return type == kind::null; }
  bool is_scalar() const noexcept { return type == kind::scalar; }
  bool is_sequence() const noexcept { return type == kind::sequence; }
  bool is_map() const noexcept { return type == kind::map; }

  /// First entry with this key, or nullptr.
  const entry* find(std::string_view key) const noexcept;

  /// "map", "list", "scalar" or "null", for error messages.
  const char* kind_name() const noexcept;
};

/// Parses durations such as `250ms`, `1s`, `1.5s`, `5m`, `2h`, `100us`, `10ns` into
/// nanoseconds. False on anything else (a bare number has no unit and is rejected).
bool parse_duration(std::string_view text, std::int64_t& ns) noexcept;

/// Parses sizes such as `512`, `64KiB`, `1MiB`, `1MB`, `2GiB` into bytes.
bool parse_bytes(std::string_view text, std::int64_t& bytes) noexcept;

} // namespace pel::spec
