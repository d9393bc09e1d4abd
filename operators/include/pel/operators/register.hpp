#pragma once
/// \file
/// Registration of the built-in operators.

#include "pel/spec/registry.hpp"

namespace pel::operators {

/// Adds every built-in operator type to `reg`.
void register_builtin_operators(spec::registry& reg);

/// Stateless operators: filter, map, flat_map, union, ... (operators/register_stateless.cpp).
void register_stateless_operators(spec::registry& reg);

/// Windows, aggregates, joins and per-key stateful operators (operators/register_analytics.cpp).
void register_analytics_operators(spec::registry& reg);

} // namespace pel::operators
