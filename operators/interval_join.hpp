#pragma once
/// \file
/// `interval_join`: joins two inputs by key within a time interval, or as-of (latest at or before).

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `interval_join`.
spec::component_schema interval_join_schema();

/// Builds a `interval_join` instance for one input schema.
core::operator_ptr make_interval_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
