#pragma once
/// \file
/// Helpers shared by the stateless operators (construction time only).

#include "pel/core/schema.hpp"
#include "pel/spec/config.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pel::operators {

/// Location of item `i` of the list (or single string) param `key`.
spec::mark item_mark(const spec::config& cfg, std::string_view key, std::size_t i);

/// Location of the key of entry `i` of the map param `key`.
spec::mark entry_key_mark(const spec::config& cfg, std::string_view key, std::size_t i);

/// "unknown field 'x'; did you mean 'y'? (fields: a, b, c)"
std::string unknown_field_message(std::string_view name, const std::vector<std::string>& fields);

/// Position of `name` in `names`, or -1.
int position_of(const std::vector<std::string>& names, std::string_view name);

/// The field names of a schema.
std::vector<std::string> names_of(const core::schema& s);

} // namespace pel::operators
