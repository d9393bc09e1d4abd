#pragma once
/// \file
/// Internal: text → node tree.

#include "nodes.hpp"

namespace pel::expr {

/// Parses `text` against `input`; fills `fields_used` with the positions it reads. Throws
/// parse_error.
node_ptr parse(std::string_view text, const core::schema& input, std::vector<int>& fields_used);

} // namespace pel::expr
