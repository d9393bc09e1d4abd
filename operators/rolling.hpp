#pragma once
/// \file
/// `rolling`: per-key aggregates over the last N records or T of event time, on every record.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `rolling`.
spec::component_schema rolling_schema();

/// Builds a `rolling` instance for one input schema.
core::operator_ptr make_rolling(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
