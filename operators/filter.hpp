#pragma once
/// \file
/// `filter`: keeps the rows for which an expression is true.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `filter`.
spec::component_schema filter_schema();

/// Builds a `filter` instance for one input schema. Throws spec::config_error (located) when
/// `where` does not compile against the input.
core::operator_ptr make_filter(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
