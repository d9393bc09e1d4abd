#pragma once
/// \file
/// `lookup_join`: enriches records from a CSV / JSON-lines table file.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `lookup_join`.
spec::component_schema lookup_join_schema();

/// Builds a `lookup_join` instance for one input schema.
core::operator_ptr make_lookup_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
