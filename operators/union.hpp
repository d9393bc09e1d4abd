#pragma once
/// \file
/// `union`: merges any number of streams into one, aligning fields by name.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `union`.
spec::component_schema union_schema();

/// Builds a `union` instance for its input schemas (two or more).
core::operator_ptr make_union(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
