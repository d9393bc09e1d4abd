#pragma once
/// \file
/// `zscore`: per-key rolling mean / standard deviation of a value, alerting on outliers and on
/// fixed thresholds.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `zscore`.
spec::component_schema zscore_schema();

/// Builds a `zscore` instance for one input schema.
core::operator_ptr make_zscore(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
