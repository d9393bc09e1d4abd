#pragma once
/// \file
/// `throttle`: per-key (or global) rate limiting and deterministic sampling.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `throttle`.
spec::component_schema throttle_schema();

/// Builds a `throttle` instance for one input schema.
core::operator_ptr make_throttle(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
