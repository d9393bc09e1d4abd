#pragma once
/// \file
/// `dedupe`: drops records whose key was seen within a horizon of event time.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `dedupe`.
spec::component_schema dedupe_schema();

/// Builds a `dedupe` instance for one input schema.
core::operator_ptr make_dedupe(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
