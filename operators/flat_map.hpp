#pragma once
/// \file
/// `flat_map`: turns one record into one record per piece of a field (split text or a JSON
/// array).

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <string_view>
#include <vector>

namespace pel::operators {

/// The config schema of `flat_map`.
spec::component_schema flat_map_schema();

/// Builds a `flat_map` instance for one input schema. Throws spec::config_error (located)
/// for unknown fields and bad settings.
core::operator_ptr make_flat_map(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

/// Parses `text` as a JSON array, appending one value per element to `out` (numbers become int
/// or double, nested arrays and objects stay as their JSON text). False, with `error` set, when
/// the text is not a JSON array.
bool parse_json_array(std::string_view text, std::vector<core::value>& out, std::string& error);

} // namespace pel::operators
