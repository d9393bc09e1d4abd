#pragma once
/// \file
/// `top_k`: the top K keys by an aggregate per tumbling window.

#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <vector>

namespace pel::operators {

/// The config schema of `top_k`.
spec::component_schema top_k_schema();

/// Builds a `top_k` instance for one input schema.
core::operator_ptr make_top_k(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs);

} // namespace pel::operators
