#pragma once
/// \file
/// `window_join`: joins two inputs by key within tumbling event-time windows.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `window_join`.
spec::component_schema window_join_schema();

/// Builds a `window_join` instance for one input schema.
core::operator_ptr make_window_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
