#pragma once
/// \file
/// `change_detect`: alerts when a value moves by more than a percentage or delta within a time span.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `change_detect`.
spec::component_schema change_detect_schema();

/// Builds a `change_detect` instance for one input schema.
core::operator_ptr make_change_detect(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
