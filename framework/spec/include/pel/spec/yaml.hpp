#pragma once
/// \file
/// YAML text → `spec::node` tree, with the limits that keep hostile files harmless.
/// `load_file`/`load_text` use this; it is public for tools that read other YAML files
/// (e.g. expected-output files) with the same located errors.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"

#include <cstddef>
#include <string>

namespace pel::spec {

/// Files larger than this are refused before they are read.
inline constexpr std::size_t max_file_bytes = 8u * 1024u * 1024u;
/// Deepest nesting of maps and lists (the top-level map is depth 1).
inline constexpr int max_nesting_depth = 64;
/// Most nodes a document may have once every alias is expanded (guards against
/// "billion laughs" files whose aliases multiply a few lines into billions of nodes).
inline constexpr std::size_t max_expanded_nodes = 1'000'000;
/// Most diagnostics one file reports; the rest are counted in a last line.
inline constexpr std::size_t max_reported_errors = 100;

/// Parses one YAML document. Marks are 1-based. Quoted and block scalars are `quoted`;
/// plain `null`, `Null`, `NULL`, `~` and empty values become null nodes. Aliases share the
/// anchored node. Throws `spec_error` (located, `file` used in messages) on binary or
/// non-UTF-8 text, size, depth or alias-expansion limits, syntax errors, duplicate keys,
/// keys that are not scalars, an empty document or more than one document.
node_ptr parse_yaml(const std::string& text, const std::string& file);

/// Reads a file and parses it as `parse_yaml` does (the size limit is checked before reading).
node_ptr parse_yaml_file(const std::string& path);

} // namespace pel::spec
