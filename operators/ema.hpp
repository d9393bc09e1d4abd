#pragma once
/// \file
/// `ema`: per-key exponential moving average (by alpha or event-time half-life).

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `ema`.
spec::component_schema ema_schema();

/// Builds a `ema` instance for one input schema.
core::operator_ptr make_ema(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
