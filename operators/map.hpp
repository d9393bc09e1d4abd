#pragma once
/// \file
/// `map`: computes fields from expressions, renames, drops and selects fields.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `map`.
spec::component_schema map_schema();

/// Builds a `map` instance for one input schema; the output schema is computed here. Throws
/// spec::config_error (located) for expressions that do not compile and unknown field names.
core::operator_ptr make_map(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
